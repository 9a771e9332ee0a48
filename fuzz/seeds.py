"""The seed corpus: one upload per kind of tools/uploads.py (every accepted format: PNG in its modes,
JPEG, CMYK JPEG, GIF, animated GIF, BMP, WebP, TIFF) in each mode and pixel cap, and a few hostile files
of the kinds the nasty-file tests refuse (a truncated PNG, a header claiming a huge size, a chunk with a
wrong CRC, an EXIF-rotated JPEG, an empty and a text file); each also read as a number at both pixel
caps, and a few images of whole numbers (tools/numbers.py: each style, several lines, marks, the gap
kinds) preprocessed and read with each option. Under 4 MiB in all, made on the fly:
nothing to keep in the repository."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

import app.preprocessing.decode  # noqa: F401  (registers the HEIF plugin)
from fuzz.inputs import READ
from tools.numbers import GAPS, STYLES, DigitSource, make_number
from tools.uploads import KINDS, SAMPLE, make_upload


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def hostile(digit: np.ndarray) -> list[bytes]:
    png = io.BytesIO()
    Image.fromarray(digit).save(png, "PNG")
    data = png.getvalue()
    huge = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    huge += chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    bad_crc = bytearray(data)
    bad_crc[-20] ^= 0xFF
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.kron(digit, np.ones((4, 4), np.uint8))).save(rotated, "JPEG", exif=exif)
    return [data[: len(data) // 2], huge, bytes(bad_crc), rotated.getvalue(), b"", b"hello, world\n"]


def numbers() -> list[bytes]:
    """Images of whole numbers: one per style, the gap kinds in turn, on one to three lines."""
    rng = np.random.default_rng(0)
    source = DigitSource.load(fonts=())  # Pillow's default font: the same seeds on every machine
    return [
        make_number(rng, source, style=style, gap=GAPS[i % len(GAPS)], lines=1 + i % 3, length=(2, 6), marks=0.5).data
        for i, style in enumerate(STYLES)
    ]


def seeds() -> list[bytes]:
    """Every seed, its first byte the task and its options (fuzz/inputs.py)."""
    rng = np.random.default_rng(0)
    with np.load(SAMPLE) as sample:
        digits = sample["x"][:4]
    files = [make_upload(kind, digits[i % len(digits)], rng) for i, kind in enumerate(KINDS)]
    for fmt in ("HEIF", "AVIF"):  # the ISO media formats, which tools/uploads.py has no kind of yet
        buffer = io.BytesIO()
        Image.fromarray(np.kron(255 - digits[1], np.ones((4, 4), np.uint8))).convert("RGB").save(
            buffer, fmt, quality=80
        )
        files.append(buffer.getvalue())
    files += hostile(digits[0])
    one_digit = [bytes([head]) + data for data in files for head in (0, 1, 2, 3, READ, READ | 2)]
    return one_digit + [bytes([head]) + data for data in numbers() for head in range(8)]


def write(corpus: Path, inputs: list[bytes] | None = None) -> int:
    """Write the seeds (or `inputs`: another harness's) into `corpus`, named by content as libFuzzer names
    its entries; how many were new."""
    corpus.mkdir(parents=True, exist_ok=True)
    new = 0
    for data in seeds() if inputs is None else inputs:
        path = corpus / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            new += 1
    return new
