"""HEIC/HEIF (pillow-heif) and AVIF (Pillow's own) uploads, made here: decoded like JPEG photos (the
first image, the orientation applied, the pixel cap checked from the header), refused with a 400 when
truncated or corrupt, and answered as the same digit in PNG is."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pillow_heif
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.errors import ImageTooLarge, InvalidImage
from app.main import create_app
from app.model.classifier import Classifier
from app.preprocessing import FORMAT_NAMES, preprocess
from tests.conftest import load_sample

STORED_FOR = {  # the pixels a camera stores for each EXIF orientation, so that a viewer shows them upright
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def photo(index: int = 0, side: int = 160) -> Image.Image:
    """An MNIST digit as dark ink on light paper, RGB, upright."""
    x, _ = load_sample()
    digit = Image.fromarray(255 - x[index]).resize((side, side), Image.Resampling.BICUBIC)
    return digit.convert("RGB")


def encode(image: Image.Image, fmt: str, orientation: int = 1, **options: object) -> bytes:
    stored = image if STORED_FOR[orientation] is None else image.transpose(STORED_FOR[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, fmt, exif=exif.tobytes(), quality=90, **options)
    return buffer.getvalue()


def upright(fmt: str) -> np.ndarray:
    """What the service makes of the same photo as a PNG (lossless)."""
    return preprocess(encode(photo(), "PNG")).pixels


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_orientation_is_applied(fmt: str, orientation: int) -> None:
    result = preprocess(encode(photo(), fmt, orientation))
    expected = upright(fmt)
    # lossy at quality 90: the same digit, within a few grey levels on average
    assert float(np.abs(result.pixels.astype(int) - expected.astype(int)).mean()) < 6
    noted = [n for n in result.notes if "orientation" in n]
    assert noted == ([] if orientation == 1 else [f"applied EXIF orientation {orientation}"])


def test_ten_bit_heic_is_read() -> None:
    pixels = np.asarray(photo()).astype(np.uint16) * 257  # 16-bit values, stored at 10 bits
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(160, 160), data=pixels.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, bit_depth=10, quality=90)
    assert Image.open(io.BytesIO(buffer.getvalue())).info["bit_depth"] == 10
    result = preprocess(buffer.getvalue())
    assert float(np.abs(result.pixels.astype(int) - upright("HEIF").astype(int)).mean()) < 6


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_alpha_is_flattened(fmt: str) -> None:
    x, _ = load_sample()
    ink = Image.fromarray(x[0]).resize((160, 160), Image.Resampling.BICUBIC)
    drawing = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    drawing.putalpha(ink)  # black ink on a transparent canvas, as a browser exports it
    result = preprocess(encode(drawing, fmt))
    assert any("transparency" in note for note in result.notes)
    assert float(np.abs(result.pixels.astype(int) - upright(fmt).astype(int)).mean()) < 8


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("cut", [0.25, 0.5, 0.9])
def test_truncated_files_are_a_400(fmt: str, cut: float) -> None:
    data = encode(photo(), fmt)
    with pytest.raises(InvalidImage, match="corrupt"):
        preprocess(data[: int(len(data) * cut)])


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_the_pixel_cap_is_checked_from_the_header(fmt: str) -> None:
    with pytest.raises(ImageTooLarge, match="160x160"):
        preprocess(encode(photo(), fmt), max_pixels=100 * 100)


@pytest.fixture(scope="module")
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(engine_processes=1), classifier)) as c:
        yield c


def test_heic_and_avif_through_the_api(client: TestClient) -> None:
    png = client.post("/v1/predict", files={"file": ("d.png", encode(photo(), "PNG"), "image/png")}).json()
    for fmt, media in (("HEIF", "image/heic"), ("AVIF", "image/avif")):
        answer = client.post("/v1/predict", files={"file": ("d", encode(photo(), fmt, 6), media)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["digit"] == png["digit"] and "applied EXIF orientation 6" in answer.json()["notes"]
    assert "HEIC/HEIF or AVIF" in FORMAT_NAMES
    assert "HEIC" in client.get("/openapi.json").text
    bad = client.post("/v1/predict", files={"file": ("d", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, "image/heic")})
    assert bad.status_code == 400 and "HEIC" in bad.json()["detail"]
