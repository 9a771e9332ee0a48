"""Image bytes -> the model's input, (1, 784) float32 in [0, 1]. Pure: numpy and Pillow, no web framework.

`mnist` mode turns a real upload (photo, scan, canvas drawing) into an MNIST-style digit in named steps:
decode -> apply_exif_orientation -> to_gray_and_alpha -> flatten_transparency -> normalise_polarity
-> remove_background -> keep_digit -> crop_to_ink -> thin_strokes -> fit_to_box -> centre_by_mass
-> flatten_and_scale.
`simple` mode is only: grayscale, resize to 28x28, flatten and scale.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from app.contract import IMAGE_SHAPE, flatten_and_scale
from app.errors import BlankImage, ImageError, ImageTooLarge, InvalidImage, UnsupportedImageType

Mode = Literal["mnist", "simple"]
MODES: tuple[str, ...] = get_args(Mode)

# Pillow format names we decode; everything else Pillow knows is refused with 415.
# JPEG includes MPO (multi-picture phone JPEGs); HEIF is iPhones' HEIC (pillow-heif), AVIF Pillow's own
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "HEIF", "AVIF")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, WebP, TIFF, HEIC/HEIF or AVIF"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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
DEFAULT_MAX_PIXELS = 40_000_000  # MNIST_MAX_PIXELS's default
# HEIC/HEIF as a Pillow plugin. It applies a photo's rotation itself when decoding (and records the
# orientation it applied as `original_orientation`); 10-bit images come out as 8-bit.
pillow_heif.register_heif_opener()
SIDE = IMAGE_SHAPE[0]  # MNIST: a 28x28 frame ...
BOX = 20  # ... with the digit's longer side scaled to 20 px ...
CENTRE = 14.0  # ... and its centre of mass at pixel (14, 14) (measured on the MNIST test set)
WORKING_SIDE = 1024  # bigger images are reduced first: the digit ends up 20 px anyway
# Stroke widths relative to the digit's longer side (see thin_strokes). Bold digits are thinned by
# THIN_SHARE of their excess over TARGET_STROKE, a little under MNIST's 0.10: a marker that fills holes
# inflates the measured width, so only part of the excess is real. Measured on tools/uploads.py's bold
# digits (other seeds and digits than the accuracy test's): these beat 0.10 with the whole excess.
THICK_STROKE, TARGET_STROKE, THIN_SHARE = 0.14, 0.08, 0.8
MAX_THIN = 0.1  # never erode by more than this share of the digit's longer side
KEEP_INK = 0.25  # thinning that leaves less of the ink than this would erase the digit, not thin it
THIN_MIN_SIDE = 40  # only crops at least this big are thinned
STRONG_INK = 0.3 * 255  # after stretching, stroke pixels are at least this bright
MIN_CONTRAST = 24.0  # ink must stand this many grey levels (of 255) above the background


@dataclass
class Preprocessed:
    """The 28x28 image the model sees (uint8, white digit on black) and what was done to get it."""

    pixels: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def model_input(self) -> np.ndarray:
        """(1, 784) float32 in [0, 1]."""
        return flatten_and_scale(self.pixels[np.newaxis])


def preprocess(data: bytes, mode: Mode = "mnist", max_pixels: int = DEFAULT_MAX_PIXELS) -> Preprocessed:
    """Decode `data` and bring it to MNIST's form; raise an ImageError subclass when that cannot be done."""
    notes: list[str] = []
    image = decode(data, max_pixels, notes)
    if mode == "simple":
        return Preprocessed(simple_pixels(image), notes)
    if (pixels := as_mnist_digit(image)) is not None:
        return Preprocessed(pixels, notes)
    image = apply_exif_orientation(image, notes)
    gray, alpha = to_gray_and_alpha(image, WORKING_SIDE)
    gray = flatten_transparency(gray, alpha, notes)
    gray = normalise_polarity(gray, notes)
    return Preprocessed(to_mnist_form(remove_background(gray), notes), notes)


# 1. decode -------------------------------------------------------------------------------------------


def decode(data: bytes, max_pixels: int, notes: list[str]) -> Image.Image:
    """Open the first frame of a PNG/JPEG/GIF/BMP/WebP/TIFF, refusing anything over `max_pixels`."""
    if not data:
        raise InvalidImage("The file is empty.")
    if data.startswith(PNG_SIGNATURE):
        check_png_chunks(data)
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
        if image.format == "JPEG" and max(image.size) > 2 * WORKING_SIDE:
            # decode big JPEGs at a reduced scale (DCT scaling): far faster, and they are reduced anyway
            image.draft("L" if image.mode in ("L", "RGB") else image.mode, (WORKING_SIDE, WORKING_SIDE))
        image.load()
    except Exception as exc:
        raise InvalidImage(f"The {image.format} file is truncated or corrupt ({_reason(exc)}).") from None
    if image.format == "HEIF" and image.info.get("original_orientation", 1) in (2, 3, 4, 5, 6, 7, 8):
        notes.append(f"applied EXIF orientation {image.info['original_orientation']}")  # pillow-heif did
    return image


def check_png_chunks(data: bytes) -> None:
    """Refuse a PNG whose chunks fail their CRC (Pillow doesn't check image data chunks), as libpng does."""
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 8 + length
        if end + 4 > len(data):
            return  # truncated: decoding says so
        if zlib.crc32(memoryview(data)[at + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            name = kind.decode("latin-1")
            raise InvalidImage(f"The PNG file is corrupt (the {name} chunk at byte {at} fails its CRC check).")
        if kind == b"IEND":
            return
        at = end + 4


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


# simple mode ---------------------------------------------------------------------------------------


def simple_pixels(image: Image.Image) -> np.ndarray:
    """Grayscale and resize to 28x28, nothing else: (28, 28) uint8 for callers that send MNIST-format images."""
    gray, _ = to_gray_and_alpha(image, working_side=None)
    resized = np.asarray(Image.fromarray(gray, "F").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
    pixels = _to_uint8(resized)
    if int(pixels.max()) == int(pixels.min()):
        raise BlankImage("The image is blank: every pixel has the same value, so there is no digit in it.")
    return pixels


def as_mnist_digit(image: Image.Image) -> np.ndarray | None:
    """The pixels of an image that already is an MNIST digit, else None: 28x28 grayscale, a light digit
    on black whose longer side is 20 px, centred by mass within half a pixel of (14, 14), strokes at
    full strength. The steps below would give it back unchanged (they are meant to be an identity on
    MNIST) at several times the cost, so it is used as it is. All but 18 of MNIST's 70,000 digits pass
    (those have 19 px boxes or sit just over half a pixel off centre) and take the full path.
    """
    if image.size != (SIDE, SIDE) or image.mode != "L" or image.getexif().get(0x0112, 1) != 1:
        return None
    box = image.getbbox()  # of the non-zero pixels; Pillow's C code, as are the extrema
    if box is None or max(box[2] - box[0], box[3] - box[1]) != BOX:
        return None
    _, high = cast(tuple[int, int], image.getextrema())  # mode L: one band's (min, max)
    if high < 0.97 * 255:
        return None
    pixels = np.asarray(image)
    cy, cx = centre_of_mass(pixels.astype(np.float32))
    return pixels if abs(cy - CENTRE) <= 0.5 and abs(cx - CENTRE) <= 0.5 else None


# 2. orientation ------------------------------------------------------------------------------------


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


# 3. grayscale, transparency ------------------------------------------------------------------------


def to_gray_and_alpha(image: Image.Image, working_side: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance as float32 (H, W) in [0, 255] (any bit depth or mode) and alpha in [0, 1] or None.

    Images larger than `working_side` are reduced first (area averaging), which also evens out noise.
    """
    if working_side and max(image.size) > working_side:
        scale = working_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if image.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "F", "CMYK"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        image = image.resize(size, Image.Resampling.BOX)
    alpha = None
    if _has_alpha(image):
        rgba = image.convert("RGBA") if image.mode in ("P", "PA", "RGBa", "La") else image
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        image = rgba
    if image.mode.startswith("I") or image.mode == "F":
        gray = _high_depth_to_gray(np.asarray(image), image.mode)
    elif image.mode in ("L", "1"):
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    else:
        gray = np.asarray(image.convert("RGB").convert("L"), dtype=np.float32)
    return gray, alpha


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


def _high_depth_to_gray(values: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float pixels -> float32 in [0, 255]."""
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise InvalidImage("The image has NaN or infinite pixel values.")
    top = float(values.max()) if values.size else 0.0
    if mode.startswith("I;16") or (mode == "I" and 255 < top <= 65535):
        values = values / 257.0
    elif mode == "F" and top <= 1.0:
        values = values * 255.0
    elif top > 255:
        values = values * (255.0 / top)
    return np.clip(values, 0, 255).astype(np.float32)


def flatten_transparency(gray: np.ndarray, alpha: np.ndarray | None, notes: list[str]) -> np.ndarray:
    """Composite onto the background that makes the visible part readable.

    When the visible pixels are a minority they are ink (a canvas drawing): put them on the opposite
    shade. When they are the majority they are paper: fill the transparent rest with the paper's shade.
    """
    if alpha is None or float(alpha.min()) >= 1.0:
        return gray
    visible = alpha > 0.5
    if not visible.any():
        raise BlankImage("The image is fully transparent, so there is no digit in it.")
    shade = float(np.average(gray, weights=alpha))
    if visible.mean() < 0.5:
        background = 255.0 if shade < 128 else 0.0
        notes.append(
            f"flattened transparency onto {'white' if background else 'black'} ({'dark' if background else 'light'} ink)"
        )
    else:
        background = float(np.median(gray[visible]))
        notes.append("filled transparent areas with the background shade")
    return (gray * alpha + background * (1.0 - alpha)).astype(np.float32)


# 4. polarity ---------------------------------------------------------------------------------------


def normalise_polarity(gray: np.ndarray, notes: list[str]) -> np.ndarray:
    """Make the digit light on dark, as in MNIST: invert when the image's border (its paper) is light."""
    if _median(_border(gray)) > 127.5:
        notes.append("inverted dark-on-light")
        return 255.0 - gray
    return gray


def _border(gray: np.ndarray) -> np.ndarray:
    """The pixels of the outer 4% of the image on each side: where the paper is."""
    h, w = gray.shape
    band = max(1, round(0.04 * min(h, w)))
    return np.concatenate([gray[:band].ravel(), gray[-band:].ravel(), gray[:, :band].ravel(), gray[:, -band:].ravel()])


# 5. background, crop, scale, centre ----------------------------------------------------------------


LEVELS = np.arange(-256, 256, dtype=np.float64)  # the integer grey levels a signed image can take


def level_histogram(values: np.ndarray) -> np.ndarray:
    """Pixel counts per integer level from -256 to 255 (index = level + 256): one pass, then all stats."""
    index = np.clip(np.rint(values), -256, 255).astype(np.intp) + 256
    return np.bincount(index.ravel(), minlength=512)


def hist_quantile(counts: np.ndarray, levels: np.ndarray, q: float) -> float:
    """The q-quantile of the values a histogram counts (levels in increasing order)."""
    cumulative = np.cumsum(counts)
    return float(levels[min(int(np.searchsorted(cumulative, q * cumulative[-1])), len(levels) - 1)])


def otsu_threshold(counts: np.ndarray) -> int:
    """Otsu's threshold of a 256-level histogram: levels above it are one class (ink), the rest the other."""
    w0 = np.cumsum(counts)[:-1].astype(np.float64)
    w1 = w0[-1] + counts[-1] - w0
    m0 = np.cumsum(counts * LEVELS[256:])[:-1]
    m1 = m0[-1] + 255.0 * counts[-1] - m0
    spread = m0 * w1 - m1 * w0  # (mean0 - mean1) * w0 * w1; squared and over w0 * w1: the between-class variance
    between = np.divide(spread * spread, w0 * w1, out=np.zeros_like(w0), where=(w0 > 0) & (w1 > 0))
    return int(np.argmax(between))


def _median(values: np.ndarray) -> float:
    """The (upper) median of a small array, without np.median's overhead."""
    k = values.size // 2
    return float(np.partition(values, k)[k])


def background_surface(gray: np.ndarray) -> np.ndarray:
    """A smooth (quadratic) estimate of the background's level, fitted robustly to dark blocks.

    Uneven light on a photographed page is smooth; ink is not, so blocks whose low percentile sits far
    above the fit are strokes and are dropped from the fit.
    """
    h, w = gray.shape
    ring = _border(gray)
    if float(ring.max() - ring.min()) <= 2.0:  # an even border (canvas, MNIST-style image): a flat background
        return np.full_like(gray, _median(ring))
    if max(h, w) > 128:  # the surface is smooth: estimate it from a reduced copy
        scale = 128 / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(gray, "F").resize(size, Image.Resampling.BOX))
    else:
        small = gray
    sh, sw = small.shape
    n = 8 if min(sh, sw) >= 16 else 1
    bh, bw = sh // n, sw // n
    blocks = small[: bh * n, : bw * n].reshape(n, bh, n, bw).transpose(0, 2, 1, 3).reshape(n * n, bh * bw)
    z = np.percentile(blocks, 30, axis=1)
    centres = (np.arange(n) + 0.5) / n - 0.5
    py, px = (a.ravel() for a in np.meshgrid(centres * (bh * n / sh), centres * (bw * n / sw), indexing="ij"))
    # a quadratic surface: light gradients and vignetting; robust to the blocks holding ink
    design = np.stack([np.ones_like(py), py, px, py * py, px * px, py * px], axis=1)
    keep = z <= np.median(z)  # start from the darker half of the blocks: background in any sane upload
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], z[keep], rcond=None)
        residual = z - design @ coef
        spread = 1.4826 * float(np.median(np.abs(residual[keep]))) + 2.0
        keep = np.abs(residual) < 2.5 * spread
    gy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, np.newaxis]
    gx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[np.newaxis, :]
    c0, c1, c2, c3, c4, c5 = (np.float32(c) for c in coef)
    surface = (c0 + c1 * gy + c3 * gy * gy) + (c2 * gx + c4 * gx * gx) + c5 * gy * gx
    lo, hi = (float(z[keep].min()), float(z[keep].max())) if keep.any() else (float(z.min()), float(z.min()))
    pad = 0.25 * (hi - lo) + 2.0  # the edges lie beyond the block centres; don't let the fit run wild there
    surface = np.clip(surface, lo - pad, hi + pad)
    if float(surface.max() - surface.min()) < 2.0:  # even already: keep clean images exactly as they are
        surface = np.full_like(surface, np.rint(np.median(z[keep])) if keep.any() else z.min())
    return np.asarray(surface, dtype=np.float32)


def remove_background(gray: np.ndarray) -> np.ndarray:
    """Light-on-dark gray -> ink in [0, 255] on a background of exactly 0 (uneven light and noise removed).

    Otsu's threshold splits ink from the rest; the rest's median plus three robust standard deviations
    is the noise floor, cut to 0; the ink's 90th percentile is stretched to 255 (MNIST strokes saturate).
    """
    foreground = gray - background_surface(gray)
    counts = level_histogram(foreground)  # index = level + 256
    positive = counts[256:].copy()
    positive[0] += counts[:256].sum()  # Otsu on the clipped image: below-background counts as background
    threshold = otsu_threshold(positive)
    rest, rest_levels = counts[: 256 + threshold + 1], LEVELS[: 256 + threshold + 1]
    ink, ink_levels = counts[256 + threshold + 1 :], LEVELS[256 + threshold + 1 :]
    median = hist_quantile(rest, rest_levels, 0.5) if rest.any() else 0.0
    deviation = np.abs(rest_levels - median)
    order = np.argsort(deviation, kind="stable")
    noise = 1.4826 * hist_quantile(rest[order], deviation[order], 0.5) if rest.any() else 0.0
    low = max(0.0, median) + 3.0 * noise
    high = hist_quantile(ink, ink_levels, 0.9) if ink.any() else float(foreground.max())
    if high > 0.97 * 255:  # strokes already saturate, as in MNIST: no stretch
        high = 255.0
    if high - low < MIN_CONTRAST:
        raise BlankImage("No digit found: the image has no marks that stand out from its background.")
    return np.clip((foreground - low) * (255.0 / (high - low)), 0.0, 255.0).astype(np.float32)


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's 8 neighbours are set."""
    padded = np.pad(mask, 1).astype(np.uint8)
    h, w = mask.shape
    count = np.zeros((h, w), dtype=np.uint8)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        count += padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    return count


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a mask by `radius` pixels (square), separably."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            if axis == 0:
                grown[shift:] |= out[:-shift]
                grown[:-shift] |= out[shift:]
            else:
                grown[:, shift:] |= out[:, :-shift]
                grown[:, :-shift] |= out[:, shift:]
        out = grown
    return out


def to_mnist_form(ink: np.ndarray, notes: list[str]) -> np.ndarray:
    """Light ink on a background of 0, any size -> the digit as MNIST has it, (28, 28) uint8: specks
    dropped, cropped, bold strokes thinned, the longer side fitted to 20 px, centred by mass."""
    return centre_by_mass(fit_to_box(thin_strokes(crop_to_ink(keep_digit(ink)), notes)))


def keep_digit(ink: np.ndarray) -> np.ndarray:
    """Zero everything but the strokes: specks (strong pixels with fewer than 2 strong neighbours) and
    faint noise away from the strokes would otherwise widen the crop and shrink the digit."""
    strong = ink >= STRONG_INK
    strong &= _neighbours(strong) >= 2
    if not strong.any():
        raise BlankImage("No digit found: the image has only specks, no strokes.")
    near = _dilate(strong, max(2, round(0.01 * max(ink.shape))))
    return np.where(near, ink, np.float32(0.0))


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every non-zero pixel."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not rows.size:
        raise BlankImage("No digit found: the image is blank.")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def stroke_width(crop: np.ndarray) -> float:
    """Mean stroke width relative to the digit's longer side: 2 x area / perimeter of the strokes."""
    mask = np.pad(crop >= 0.5 * 255, 1)  # the strokes touch the crop's edges: those edges count too
    perimeter = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    return 2.0 * np.count_nonzero(mask) / max(int(perimeter), 1) / max(int(crop.shape[0]), int(crop.shape[1]))


def _erode(values: np.ndarray, radius: int) -> np.ndarray:
    """Grey erosion (minimum over a square of side 2 * radius + 1, outside the image counting as 0), separably."""
    out = values
    for _ in range(2):  # rows, then (transposed) columns, then back
        out = _window_min(np.pad(out, ((radius, radius), (0, 0))), 2 * radius + 1).T
    return out


def _window_min(values: np.ndarray, length: int) -> np.ndarray:
    """Minimum over each `length` consecutive rows, (n, m) -> (n - length + 1, m), in O(log length) passes."""
    span = 1
    while 2 * span <= length:  # then values[i] is the minimum of rows i .. i + span - 1
        values = np.minimum(values[:-span], values[span:])
        span *= 2
    rest = length - span  # two overlapping windows of `span` rows cover `length`
    return np.minimum(values[:-rest], values[rest:]) if rest else values


def thin_strokes(crop: np.ndarray, notes: list[str]) -> np.ndarray:
    """Thin markedly bolder-than-MNIST strokes (a marker, a thick brush) towards MNIST's usual width.

    MNIST strokes are about 0.10 of the digit's height (95% under 0.17); a digit much bolder than that
    loses its holes when scaled down. Only large crops are thinned: an MNIST-sized digit is left alone.
    The result is cropped to its ink again, so the thinned digit still fills the 20 px box.
    """
    side = max(crop.shape)
    if side < THIN_MIN_SIDE:
        return crop
    width = stroke_width(crop)
    radius = min(int(THIN_SHARE * (width - TARGET_STROKE) * side / 2), int(MAX_THIN * side))
    if width <= THICK_STROKE or radius < 1:
        return crop
    thinned = _erode(crop, radius)
    if float(thinned.sum()) < KEEP_INK * float(crop.sum()):
        return crop
    notes.append(f"thinned bold strokes by {radius} px")
    return crop_to_ink(thinned)


def fit_to_box(crop: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale so the longer side is `box` px, keeping the aspect ratio, with antialiasing."""
    h, w = crop.shape
    if max(h, w) == box:
        return crop
    scale = box / max(h, w)
    size = (max(1, min(box, round(w * scale))), max(1, min(box, round(h * scale))))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), "F").resize(size, resample))
    return np.clip(resized, 0.0, 255.0)


def centre_of_mass(values: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass; the middle of an all-zero array."""
    h, w = values.shape
    mass = float(values.sum())
    cy = float((values.sum(axis=1) * np.arange(h)).sum() / mass) if mass else (h - 1) / 2
    cx = float((values.sum(axis=0) * np.arange(w)).sum() / mass) if mass else (w - 1) / 2
    return cy, cx


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste into a 28x28 frame with the centre of mass at (14, 14): (28, 28) uint8."""
    h, w = digit.shape
    cy, cx = centre_of_mass(digit)
    top = min(max(int(np.floor(CENTRE - cy + 0.5)), 0), SIDE - h)
    left = min(max(int(np.floor(CENTRE - cx + 0.5)), 0), SIDE - w)
    frame = np.zeros((SIDE, SIDE), dtype=np.float32)
    frame[top : top + h, left : left + w] = digit
    return _to_uint8(frame)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
