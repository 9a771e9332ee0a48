"""PNG files before Pillow: their chunks' CRC check, and a fast decode of the commonest upload, an MNIST
digit saved as it is (a plain 8-bit grayscale PNG).

`check_chunks` refuses a PNG whose chunks fail their CRC (Pillow doesn't check image data chunks), as
libpng does. `plain_gray` decodes a PNG that is nothing but 8-bit grayscale pixels of a given size with
libspng (pyspng) instead of Pillow: for an image that small, Pillow's Python around its C decoder costs
more than the decoding, and libspng is one C call (`make bench-preprocess` times both: the "28x28 MNIST
form" row). It takes only files where the two cannot differ: a header, the pixels and the end
(PLAIN_CHUNKS), no interlacing, a whole zlib stream. Anything else, and any file libspng refuses, is left
to Pillow (None), so whether a file is accepted, and the error it gets, stay Pillow's
(tests/preprocessing/test_png.py compares the two on MNIST digits and on mutated files). Without pyspng
(it has no wheel for Linux on ARM) every file goes to Pillow.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from app.errors import InvalidImage

try:
    import pyspng
except ImportError:  # pragma: no cover - platforms without a wheel
    pyspng = None

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK = struct.Struct(">I4s")  # length, type
IHDR = struct.Struct(">IIBBBBB")  # width, height, bit depth, colour type, compression, filter, interlace
IHDR_HEAD = SIGNATURE + CHUNK.pack(IHDR.size, b"IHDR")
GRAY = 0  # colour type
# The chunks of a plain PNG (what Pillow, OpenCV and numpy-based tools write for an 8-bit grayscale
# array): header, pixels, end. Any other (tRNS: transparency; acTL: an animation; eXIf, tEXt, zTXt, iTXt:
# EXIF or XMP, an orientation; even gAMA or pHYs) is left to Pillow, which parses each it knows and refuses
# some malformed ones that libspng passes (tests/preprocessing/test_png.py found an empty gAMA).
PLAIN_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND"})


def check_chunks(data: bytes) -> list[tuple[bytes, memoryview]]:
    """A PNG's chunks in file order, (type, payload), up to IEND or to where the file is cut short; raises
    InvalidImage for the first whose CRC fails."""
    found = []
    at = len(SIGNATURE)
    while at + 12 <= len(data):
        length, kind = CHUNK.unpack_from(data, at)
        end = at + 8 + length
        if end + 4 > len(data):
            break  # truncated: decoding says so
        if zlib.crc32(memoryview(data)[at + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            name = kind.decode("latin-1")
            raise InvalidImage(f"The PNG file is corrupt (the {name} chunk at byte {at} fails its CRC check).")
        found.append((kind, memoryview(data)[at + 8 : end]))
        if kind == b"IEND":
            break
        at = end + 4
    return found


def plain_gray(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The (height, width) uint8 pixels of a complete, plain 8-bit grayscale PNG of `size` (width,
    height), decoded by libspng; None for any other file (Pillow's to decode). Raises InvalidImage as
    check_chunks does."""
    if pyspng is None or not data.startswith(IHDR_HEAD) or len(data) < len(IHDR_HEAD) + IHDR.size:
        return None
    width, height, depth, colour, _, _, interlace = IHDR.unpack_from(data, len(IHDR_HEAD))
    if (width, height) != size or depth != 8 or colour != GRAY or interlace:
        return None
    chunks = check_chunks(data)
    kinds = [kind for kind, _ in chunks]
    if kinds[-1:] != [b"IEND"] or not PLAIN_CHUNKS.issuperset(kinds) or kinds.count(b"IHDR") != 1:
        return None
    # libspng checks neither the CRCs (done above) nor the stream's Adler-32, which Pillow refuses when
    # wrong: only a zlib stream that ends where the data does, with its checksum right and one filter byte
    # and a row of pixels per row, goes to it (inflating it again is cheap beside the decode)
    inflater = zlib.decompressobj()
    try:
        rows = inflater.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data or len(rows) != height * (width + 1):
        return None
    try:
        pixels = pyspng.load(data)
    except Exception:  # libspng refuses it (RuntimeError): Pillow decides, and says why
        return None
    return pixels if pixels.shape == (height, width) and pixels.dtype == np.uint8 else None
