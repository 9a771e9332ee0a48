"""A corpus of hostile files, generated here: each gets its documented status, and the server stays
healthy afterwards. (Plain bad uploads are in test_contract.py; fuzzing in preprocessing/test_steps.py.)"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from app.model.classifier import Classifier
from app.preprocessing import ImageError, preprocess
from tests.conftest import SEVEN, encode, load_sample


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb if anyone decoded it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def corrupt_crc(png: bytes) -> bytes:
    at = png.index(b"IDAT") + 4 + 2  # inside the IDAT data
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :]


def wrong_crc_only(png: bytes) -> bytes:
    """The pixels intact, only the IDAT chunk's stored CRC wrong."""
    at = png.index(b"IDAT") - 4
    end = at + 8 + struct.unpack_from(">I", png, at)[0]
    return png[:end] + bytes([png[end] ^ 0xFF]) + png[end + 1 :]


def float_tiff_with_nan() -> bytes:
    pixels = np.zeros((28, 28), dtype=np.float32)
    pixels[4:24, 12:16], pixels[0, 0] = 1.0, np.nan
    return encode(Image.fromarray(pixels, "F"), "TIFF")


def huge_text_chunk() -> bytes:
    """A valid PNG carrying 4 MB of text metadata before its pixels."""
    data = SEVEN
    at = data.index(b"IDAT") - 4
    return data[:at] + chunk(b"tEXt", b"Comment\x00" + b"A" * 4_000_000) + data[at:]


def digit_image() -> Image.Image:
    return Image.fromarray(load_sample()[0][0])


def animated_gif() -> bytes:
    first = digit_image()
    return encode(first, "GIF", save_all=True, append_images=[Image.new("L", first.size, 128)] * 30)


def multipage_tiff() -> bytes:
    first = digit_image()
    return encode(first, "TIFF", save_all=True, append_images=[Image.new("L", first.size, 0)] * 5)


CORPUS = {
    # name: (bytes, content type sent, expected status)
    "bomb-png-50000x50000": (png_claiming(50_000, 50_000), "image/png", 413),
    "bomb-png-100000x1000": (png_claiming(100_000, 1000), "image/png", 413),
    "claims-100000x1-short-data": (png_claiming(100_000, 1), "image/png", 400),
    "absurd-10000x1": (encode(Image.new("L", (10_000, 1), 255), "PNG"), "image/png", 422),
    "corrupt-idat-crc": (corrupt_crc(SEVEN), "image/png", 400),
    "wrong-idat-crc-only": (wrong_crc_only(SEVEN), "image/png", 400),
    "float-tiff-with-nan": (float_tiff_with_nan(), "image/tiff", 400),
    "random-300-kb": (np.random.default_rng(0).bytes(300_000), "image/png", 400),  # decoded in the thread pool
    "truncated-jpeg": (encode(digit_image(), "JPEG")[:300], "image/jpeg", 400),
    "truncated-gif": (encode(digit_image(), "GIF")[:60], "image/gif", 400),
    "header-only-webp": (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp", 400),
    "huge-metadata-chunk": (huge_text_chunk(), "image/png", 200),
    "animated-gif-31-frames": (animated_gif(), "image/gif", 200),
    "multipage-tiff": (multipage_tiff(), "image/tiff", 200),
    "png-sent-as-jpeg": (SEVEN, "image/jpeg", 200),
    "png-sent-as-octet-stream": (SEVEN, "application/octet-stream", 200),
    "svg-sent-as-png": (b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>', "image/png", 415),
    "zip-sent-as-png": (b"PK\x03\x04" + b"\x00" * 100, "image/png", 400),
    "utf16-text": ("seven".encode("utf-16"), "image/png", 400),
    "nul-bytes": (b"\x00" * 4096, "image/png", 400),
}


@pytest.fixture(scope="module")
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(max_pixels=40_000_000), classifier)) as c:
        yield c


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_file_gets_its_status(client: TestClient, name: str) -> None:
    data, content_type, status = CORPUS[name]
    raw = client.post("/v1/predict", content=data, headers={"Content-Type": content_type})
    multipart = client.post("/v1/predict", files={"file": (f"{name}.png", data, content_type)})
    for response in (raw, multipart):
        assert response.status_code == status, (name, response.text[:300])
        body = response.json()
        assert ("digit" in body) if status == 200 else (body["code"] and body["detail"])
    assert client.get("/healthz").status_code == 200


def test_the_whole_corpus_in_one_batch_names_the_first_bad_file(client: TestClient) -> None:
    files = [("files", ("ok.png", SEVEN, "image/png"))] + [
        ("files", (f"{name}.bin", data, "application/octet-stream")) for name, (data, _, _) in CORPUS.items()
    ]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 413 and "File 1 ('bomb-png-50000x50000.bin')" in response.json()["detail"]
    assert client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "image/png"}).json()["digit"] == 7


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_every_truncation_of_a_multi_frame_file_is_a_declared_error(fmt: str) -> None:
    """Counting frames reads the later ones: a file cut anywhere is an ImageError (400), never another exception."""
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), fmt, save_all=True, append_images=[Image.new("L", (28, 28), 128)] * 3)
    for cut in range(len(data) // 2, len(data)):
        with contextlib.suppress(ImageError):
            preprocess(data[:cut])


def test_too_many_files_in_a_batch_is_422_at_any_count(client: TestClient) -> None:
    for count in (65, 66, 100):
        files = [("files", (f"{i}.png", SEVEN, "image/png")) for i in range(count)]
        response = client.post("/v1/predict/batch", files=files)
        assert response.status_code == 422 and response.json()["code"] == "too_many_files", (count, response.text)
