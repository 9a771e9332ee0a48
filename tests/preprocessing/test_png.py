"""app/preprocessing/png.py: libspng decodes plain grayscale PNGs as Pillow does, or leaves the file to Pillow.

The property that matters: for any file, preprocess answers the same (the same pixels and notes, or the
same error and message) with the fast decode as without it. Checked on the sample's digits saved the
ways encoders save them, on files with chunks that Pillow acts on, and on digits whose chunks are
mutated and re-checksummed (so they get past the CRC check to the decoders).
"""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from app.contract import DEFAULT_MAX_PIXELS
from app.errors import ImageError
from app.preprocessing import Mode, png, preprocess
from app.preprocessing.form import mnist_form_png
from tests.conftest import encode, load_sample

pytestmark = pytest.mark.skipif(png.pyspng is None, reason="pyspng is not installed (no wheel for this platform)")


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's (type, payload) chunks."""
    return [(kind, bytes(payload)) for kind, payload in png.check_chunks(data)]


def assemble(parts: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG of these chunks, each with its CRC computed."""
    body = b"".join(
        struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        for kind, payload in parts
    )
    return png.SIGNATURE + body


def outcome(data: bytes, mode: Mode = "mnist") -> tuple[str, object, object]:
    """What preprocess answers: ("ok", pixels, notes) or (error class, message, status)."""
    try:
        result = preprocess(data, mode)
    except ImageError as exc:
        return type(exc).__name__, exc.detail, exc.status
    return "ok", result.pixels.tobytes(), result.notes


def pillow_outcome(data: bytes, mode: Mode = "mnist") -> tuple[str, object, object]:
    with mock.patch.object(png, "pyspng", None):
        return outcome(data, mode)


def pillow_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


DIGITS = load_sample()[0]


def test_the_sample_saved_by_any_encoder_setting_decodes_as_pillow_decodes_it() -> None:
    for i, digit in enumerate(DIGITS):
        encoders: list[dict[str, Any]] = [{}, {"optimize": True}, {"compress_level": i % 10}]
        options = encoders[i % 3]
        data = encode(Image.fromarray(digit), "PNG", **options)
        pixels = png.plain_gray(data, (28, 28))
        assert pixels is not None, options
        assert np.array_equal(pixels, pillow_pixels(data)) and np.array_equal(pixels, digit)


def test_preprocess_answers_the_same_with_and_without_it() -> None:
    for i, digit in enumerate(DIGITS[:300]):
        variants = [digit, np.roll(digit, 3, axis=1), 255 - digit, digit // 2]  # MNIST form, then the steps
        for pixels in variants:
            data = encode(Image.fromarray(np.ascontiguousarray(pixels)))
            assert outcome(data) == pillow_outcome(data), i
    assert mnist_form_png(encode(Image.fromarray(DIGITS[0])), DEFAULT_MAX_PIXELS) is not None


def test_files_with_more_than_plain_pixels_are_left_to_pillow() -> None:
    digit = Image.fromarray(DIGITS[0])
    rotated_exif = digit.getexif()
    rotated_exif[0x0112] = 6
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "a digit")
    others = {
        "EXIF orientation": encode(digit, exif=rotated_exif),
        "transparency": encode(digit, transparency=0),
        "text": encode(digit, pnginfo=text),
        "resolution": encode(digit, dpi=(96, 96)),
        "animation": encode(digit, save_all=True, append_images=[Image.fromarray(255 - DIGITS[0])]),
        "RGB": encode(digit.convert("RGB")),
        "palette": encode(digit.convert("P")),
        "16-bit": encode(Image.fromarray(DIGITS[0].astype(np.uint16) * 257)),
        "other size": encode(digit.resize((27, 27))),
        "JPEG": encode(digit, "JPEG"),
        "truncated": encode(digit)[:-20],
    }
    for name, data in others.items():
        assert png.plain_gray(data, (28, 28)) is None, name
        assert outcome(data) == pillow_outcome(data), name
    assert outcome(others["EXIF orientation"])[2] == ["applied EXIF orientation 6"]  # the full path ran
    # a limit under 28x28 pixels refuses the digit, as Pillow's path does
    assert mnist_form_png(encode(digit), 28 * 28 - 1) is None


def test_a_chunk_that_fails_its_crc_is_refused_the_same_way() -> None:
    data = bytearray(encode(Image.fromarray(DIGITS[0])))
    data[45] ^= 0xFF  # inside the IDAT payload
    with pytest.raises(ImageError, match="fails its CRC check"):
        png.plain_gray(bytes(data), (28, 28))
    assert outcome(bytes(data)) == pillow_outcome(bytes(data))


@st.composite
def mutated_digits(draw: st.DrawFn) -> bytes:
    """A sample digit's PNG with one structural change, CRCs recomputed: the decoders see it."""
    digit = DIGITS[draw(st.integers(0, len(DIGITS) - 1))]
    parts = chunks(encode(Image.fromarray(digit), compress_level=draw(st.integers(0, 9))))
    ihdr, idat, iend = parts[0][1], b"".join(p for k, p in parts if k == b"IDAT"), parts[-1]
    kinds = ["idat bytes", "idat cut", "idat extra", "rows", "ihdr field", "split", "chunk", "tail"]
    kind = draw(st.sampled_from(kinds))
    if kind == "rows":  # the rows changed and compressed again: filter types (0-4 valid), pixels, length
        rows = bytearray(zlib.decompress(idat))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, 27)) * 29 if draw(st.booleans()) else draw(st.integers(0, len(rows) - 1))
            rows[at] = draw(st.integers(0, 255))
        idat = zlib.compress(bytes(rows[: len(rows) - draw(st.sampled_from([0, 0, 1, 29]))]))
    elif kind == "idat bytes":  # bytes of the compressed stream replaced
        changed = bytearray(idat)
        for _ in range(draw(st.integers(1, 4))):
            changed[draw(st.integers(0, len(changed) - 1))] = draw(st.integers(0, 255))
        idat = bytes(changed)
    elif kind == "idat cut":
        idat = idat[: draw(st.integers(0, len(idat) - 1))]
    elif kind == "idat extra":  # more compressed data than the rows, or junk after the stream
        extra = (
            zlib.compress(bytes(draw(st.integers(1, 200))))
            if draw(st.booleans())
            else draw(st.binary(min_size=1, max_size=40))
        )
        idat = idat + extra
    elif kind == "ihdr field":
        offset = draw(st.integers(0, 12))
        ihdr = ihdr[:offset] + bytes([draw(st.integers(0, 255))]) + ihdr[offset + 1 :]
    body = [(b"IHDR", ihdr)]
    if kind == "split":  # the stream over several IDAT chunks, as big encoders write it
        cuts = sorted(draw(st.lists(st.integers(0, len(idat)), min_size=1, max_size=4)))
        bounds = [0, *cuts, len(idat)]
        body += [(b"IDAT", idat[a:b]) for a, b in itertools.pairwise(bounds)]
    else:
        body.append((b"IDAT", idat))
    if kind == "chunk":  # an ancillary chunk, known to the fast path or not, before or after the data
        ancillary = (
            draw(st.sampled_from([b"gAMA", b"pHYs", b"tIME", b"sRGB", b"bKGD", b"prVt", b"tRNS"])),
            draw(st.binary(min_size=0, max_size=16)),
        )
        body.insert(draw(st.sampled_from([1, len(body)])), ancillary)
    data = assemble([*body, iend])
    if kind == "tail":
        data += draw(st.binary(min_size=1, max_size=32))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_digits())
def test_mutated_files_get_the_same_answer_with_and_without_it(data: bytes) -> None:
    assert outcome(data) == pillow_outcome(data)
