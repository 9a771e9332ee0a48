"""Upload bytes -> a Pillow image: the formats served, the pixel cap, the decode itself (JPEGs in draft
mode), HEIC/HEIF and AVIF, the EXIF orientation, and the error an undecodable file gets (what it looks
like: corrupt PNG, PDF, SVG, text, a format Pillow knows but we don't serve)."""

from __future__ import annotations

import io
import warnings

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import ImageError, ImageTooLarge, InvalidImage, UnsupportedImageType
from app.preprocessing import png

# Pillow format names we decode; everything else Pillow knows is refused with 415.
# JPEG includes MPO (multi-picture phone JPEGs); HEIF is iPhones' HEIC (pillow-heif), AVIF Pillow's own
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "HEIF", "AVIF")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, WebP, TIFF, HEIC/HEIF or AVIF"
SIGNATURES = {  # magic numbers of the formats above, to tell "corrupt PNG" from "not an image"
    b"\x89PNG": "PNG",
    b"\xff\xd8": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"RIFF": "WebP",
}
ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}
# HEIC/HEIF as a Pillow plugin. It applies a photo's rotation itself when decoding (and records the
# orientation it applied as `original_orientation`); 10-bit images come out as 8-bit.
pillow_heif.register_heif_opener()
DRAFT_SIDE = 1024  # JPEGs over twice this are decoded at a reduced scale, to at least this (see request_draft)


def decode(data: bytes, max_pixels: int, notes: list[str]) -> Image.Image:
    """Open the first frame of a PNG/JPEG/GIF/BMP/WebP/TIFF, refusing anything over `max_pixels`."""
    if not data:
        raise InvalidImage("The file is empty.")
    if data.startswith(png.SIGNATURE):
        png.check_chunks(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"The image is too large to decode (over {max_pixels:,} pixels).") from None
    except Exception as exc:
        raise InvalidImage(f"The image header could not be read ({_reason(exc)}).") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage(f"The image has no pixels ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageTooLarge(f"The image is {width}x{height} pixels; at most {max_pixels:,} pixels are accepted.")
    try:
        frames = getattr(image, "n_frames", 1)  # counting frames reads the file: corrupt later frames fail here
        if frames > 1:
            image.seek(0)
            notes.append(f"used the first of {frames} frames")
        request_draft(image)
        image.load()
    except Exception as exc:
        raise InvalidImage(f"The {image.format} file is truncated or corrupt ({_reason(exc)}).") from None
    if image.format == "HEIF" and image.info.get("original_orientation", 1) in (2, 3, 4, 5, 6, 7, 8):
        notes.append(f"applied EXIF orientation {image.info['original_orientation']}")  # pillow-heif did
    return image


def request_draft(image: Image.Image) -> None:
    """Ask a JPEG's decoder for what the steps use: grayscale (the luma it stores) for L and RGB files, and
    for big ones a reduced scale (DCT scaling) of at least DRAFT_SIDE px on the longer side, more than the
    digit needs. Far less work than full-size colour. Other images are left as they are."""
    if image.format == "JPEG" and image.mode in ("L", "RGB"):
        big = max(image.size) > 2 * DRAFT_SIDE
        image.draft("L", (DRAFT_SIDE, DRAFT_SIDE) if big else image.size)
    elif image.format == "JPEG" and max(image.size) > 2 * DRAFT_SIDE:
        image.draft(image.mode, (DRAFT_SIDE, DRAFT_SIDE))


def _reason(exc: Exception) -> str:
    return str(exc).split("\n")[0][:200] or type(exc).__name__


def _unidentified(data: bytes) -> ImageError:
    head = data[:1024]
    lowered = head.lower()
    if head.startswith(b"%PDF"):
        return UnsupportedImageType(f"PDF documents are not supported; send a {FORMAT_NAMES} image.")
    if b"<svg" in lowered or (lowered.lstrip().startswith(b"<?xml") and b"svg" in lowered):
        return UnsupportedImageType(f"SVG images are not supported; send a {FORMAT_NAMES} image.")
    try:  # a format Pillow knows but we don't serve (ICO, PPM, PSD, JPEG 2000, ...)? Header only.
        with Image.open(io.BytesIO(data)) as other:
            return UnsupportedImageType(f"{other.format} images are not supported; send a {FORMAT_NAMES} image.")
    except Exception:
        pass
    for magic, name in SIGNATURES.items():
        if head.startswith(magic):
            return InvalidImage(f"The file starts like a {name} image but is corrupt.")
    if head[4:8] == b"ftyp" and (brand := ISO_BRANDS.get(head[8:12])):  # an ISO media file: HEIF and AVIF
        return InvalidImage(f"The file starts like a {brand} image but is truncated or corrupt.")
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            kind = "HTML" if b"<html" in lowered or b"<!doctype" in lowered else "text"
            return UnsupportedImageType(f"The file is {kind}, not an image; send a {FORMAT_NAMES} image.")
        except UnicodeDecodeError:
            pass
    return InvalidImage(f"The file is not a decodable image; send a {FORMAT_NAMES} image.")


def apply_exif_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip as the EXIF Orientation tag says, as viewers show the photo."""
    try:
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            rotated = ImageOps.exif_transpose(image)
            notes.append(f"applied EXIF orientation {orientation}")
            return rotated
    except Exception:
        notes.append("ignored unreadable EXIF metadata")
    return image
