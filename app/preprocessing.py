"""Image bytes -> the model's input, (1, 784) float32 in [0, 1]. Pure: numpy and Pillow, no web framework.

`mnist` mode turns a real upload (photo, scan, canvas drawing) into an MNIST-style digit in named steps:
decode -> apply_exif_orientation -> to_gray_and_alpha -> flatten_transparency -> thumbnail
-> normalise_polarity -> fit_background -> find_digit -> cut_out -> remove_background -> keep_digit
-> crop_to_ink -> thin_strokes -> fit_to_box -> centre_by_mass -> flatten_and_scale.
Up to flatten_transparency the image stays a Pillow image at its decoded size (C code, 8 bits). The
paper's polarity and level and the digit's extent are found on a thumbnail of at most 128 px; the
steps after that run in float32 on the digit's region only, reduced to at most 128 px (the digit ends
up 20 px). Images that small already are worked on whole. An image that already is an MNIST digit is
used as it is (as_mnist_digit); saved as a plain 8-bit grayscale PNG, it is decoded by libspng rather
than Pillow (mnist_form_png, app/png.py), the commonest upload at a fraction of the cost.
`simple` mode is only: grayscale, resize to 28x28, flatten and scale.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from app import png
from app.contract import IMAGE_SHAPE, flatten_and_scale
from app.errors import BlankImage, ImageError, ImageTooLarge, InvalidImage, UnsupportedImageType

Mode = Literal["mnist", "simple"]
MODES: tuple[str, ...] = get_args(Mode)

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
DEFAULT_MAX_PIXELS = 40_000_000  # MNIST_MAX_PIXELS's default
# HEIC/HEIF as a Pillow plugin. It applies a photo's rotation itself when decoding (and records the
# orientation it applied as `original_orientation`); 10-bit images come out as 8-bit.
pillow_heif.register_heif_opener()
SIDE = IMAGE_SHAPE[0]  # MNIST: a 28x28 frame ...
BOX = 20  # ... with the digit's longer side scaled to 20 px ...
CENTRE = 14.0  # ... and its centre of mass at pixel (14, 14) (measured on the MNIST test set)
# A flattened 28x28 image's mass and its mass weighted by row and by column are one product with these
# three rows (as_mnist_digit: integer pixels, so the sums are exact, as centre_of_mass's are).
MOMENTS = np.vstack([np.ones(SIDE * SIDE), np.indices((SIDE, SIDE)).reshape(2, -1)]).astype(np.float64)
DRAFT_SIDE = 1024  # JPEGs over twice this are decoded at a reduced scale, to at least this (see request_draft)
THUMB_SIDE = 128  # the paper's polarity and level and the digit's extent are found on a thumbnail this big
WORKING_SIDE = 128  # the digit's region is reduced to this; the digit ends up 20 px anyway
FIND_SHARE = 0.2  # the digit's extent: the thumbnail's marks brighter than this share of the brightest ...
FIND_MARGIN, FIND_MARGIN_SHARE = 2, 0.1  # ... with a margin of 2 thumbnail pixels and 10% of that extent
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
# A border whose pixels are all one exact level but for up to this share at either end (ink that crosses
# the edge) is paper of one flat shade: no surface to fit. Photos and scans have noise: never exact.
EVEN_SHARE = 0.1


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
    if mode == "mnist" and (pixels := mnist_form_png(data, max_pixels)) is not None:
        return Preprocessed(pixels, notes)
    image = decode(data, max_pixels, notes)
    if mode == "simple":
        return Preprocessed(simple_pixels(image), notes)
    if (pixels := as_mnist_digit(image)) is not None:
        return Preprocessed(pixels, notes)
    image = apply_exif_orientation(image, notes)
    gray = flatten_transparency(*to_gray_and_alpha(image), notes)
    small, scale = thumbnail(gray)
    small, inverted = normalise_polarity(small, notes)
    background = fit_background(small)
    if scale == 1 and max(gray.size) <= WORKING_SIDE:  # small already: the thumbnail is the image, all of it
        region, work = Region.whole(gray.size), small
    else:
        thumb = Region.whole(gray.size, (small.shape[1], small.shape[0]))
        region = find_digit(small - background.over(thumb), scale, gray.size)
        work = cut_out(gray, region, inverted)
    ink = remove_background(work, background.over(region))
    return Preprocessed(to_mnist_form(ink, notes, region.near), notes)


# 1. decode -------------------------------------------------------------------------------------------


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


# simple mode ---------------------------------------------------------------------------------------


def simple_pixels(image: Image.Image) -> np.ndarray:
    """Grayscale and resize to 28x28, nothing else: (28, 28) uint8 for callers that send MNIST-format images."""
    gray, _ = to_gray_and_alpha(image)
    resized = np.asarray(gray.convert("F").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
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
    pixels = np.asarray(image)
    return pixels if is_mnist_form(pixels) else None


def mnist_form_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """The pixels of a plain 8-bit grayscale 28x28 PNG that holds an MNIST digit, decoded without Pillow
    (app/png.py: only files Pillow would decode to the same pixels, with nothing else that as_mnist_digit
    reads), else None: the file takes decode() and the steps."""
    if max_pixels < SIDE * SIDE or (pixels := png.plain_gray(data, (SIDE, SIDE))) is None:
        return None
    return pixels if is_mnist_form(pixels) else None


def is_mnist_form(pixels: np.ndarray) -> bool:
    """(28, 28) uint8: a light digit on black whose longer side is 20 px, centred by mass within half a
    pixel of (14, 14), strokes at full strength (as_mnist_digit)."""
    rows, columns = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    if not rows.size or max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1 != BOX or pixels.max() < 0.97 * 255:
        return False
    mass, row, column = MOMENTS @ pixels.reshape(-1)  # centre_of_mass's sums in one call (mass > 0: a box)
    return bool(abs(row / mass - CENTRE) <= 0.5 and abs(column / mass - CENTRE) <= 0.5)


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


def to_gray_and_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Luminance as a Pillow image of mode L, or F in [0, 255] for deeper pixels (16/32-bit, float), and
    alpha (mode L) or None. Pillow's C conversions, at the decoded size."""
    alpha = None
    if _has_alpha(image):
        image = image.convert("RGBA") if image.mode in ("P", "PA", "RGBa", "La") else image
        alpha = image.getchannel("A")
    if image.mode.startswith("I") or image.mode == "F":
        return Image.fromarray(_high_depth_to_gray(np.asarray(image), image.mode), "F"), alpha
    if image.mode == "L":
        return image, alpha
    if image.mode in ("1", "LA", "RGB", "RGBA"):  # RGB(A) to L: the ITU-R 601-2 luma, as via RGB
        return image.convert("L"), alpha
    return image.convert("RGB").convert("L"), alpha


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


def flatten_transparency(gray: Image.Image, alpha: Image.Image | None, notes: list[str]) -> Image.Image:
    """Composite onto the background that makes the visible part readable.

    When the visible pixels are a minority they are ink (a canvas drawing): put them on the opposite
    shade. When they are the majority they are paper: fill the transparent rest with the paper's shade.
    """
    if alpha is None:
        return gray
    opacity = np.asarray(alpha)
    if int(opacity.min()) == 255:
        return gray
    visible = np.count_nonzero(opacity >= 128)  # alpha > 0.5
    if not visible:
        raise BlankImage("The image is fully transparent, so there is no digit in it.")
    values, weights = np.asarray(gray, dtype=np.float32).ravel(), opacity.ravel().astype(np.float32)
    if 2 * visible < opacity.size:
        shade = float(np.dot(values, weights)) / float(weights.sum())
        background = 255.0 if shade < 128 else 0.0
        notes.append(
            f"flattened transparency onto {'white' if background else 'black'} ({'dark' if background else 'light'} ink)"
        )
    else:
        background = float(np.median(values[weights >= 128]))
        notes.append("filled transparent areas with the background shade")
    if gray.mode == "L" and background == round(background):  # Pillow's blend, to the nearest level
        return Image.composite(gray, Image.new("L", gray.size, int(background)), alpha)
    weights /= 255.0
    blended = values * weights + background * (1.0 - weights)
    return Image.fromarray(blended.reshape(opacity.shape).astype(np.float32), "F")


def thumbnail(gray: Image.Image, side: int = THUMB_SIDE) -> tuple[np.ndarray, int]:
    """The image reduced by a whole factor (box averages: Pillow's `reduce`) to at most `side` px, as
    float32, and the factor: the paper and the digit's extent are found on it."""
    factor = -(-max(gray.size) // side)
    return np.asarray(gray.reduce(factor) if factor > 1 else gray, dtype=np.float32), factor


# 4. polarity ---------------------------------------------------------------------------------------


def normalise_polarity(gray: np.ndarray, notes: list[str]) -> tuple[np.ndarray, bool]:
    """Make the digit light on dark, as in MNIST: invert when the image's border (its paper) is light.
    Returns the image and whether it was inverted (the rest of the image is, later, too)."""
    if _median(_border(gray)) > 127.5:
        notes.append("inverted dark-on-light")
        return 255.0 - gray, True
    return gray, False


def _border(gray: np.ndarray) -> np.ndarray:
    """The pixels of the outer 4% of the image on each side: where the paper is."""
    h, w = gray.shape
    band = max(1, round(0.04 * min(h, w)))
    return np.concatenate([gray[:band].ravel(), gray[-band:].ravel(), gray[:, :band].ravel(), gray[:, -band:].ravel()])


# 5. background, the digit's region -----------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A rectangle (left, top, right, bottom) of an image of `full` (width, height) px, sampled at `size`
    (width, height): the whole image at full size, its thumbnail, or the digit's region reduced."""

    full: tuple[int, int]
    box: tuple[int, int, int, int]
    size: tuple[int, int]

    @classmethod
    def whole(cls, full: tuple[int, int], size: tuple[int, int] | None = None) -> Region:
        return cls(full, (0, 0, *full), size or full)

    @property
    def scale(self) -> float:
        """Full-size pixels per sample."""
        return max((self.box[2] - self.box[0]) / self.size[0], (self.box[3] - self.box[1]) / self.size[1])

    @property
    def near(self) -> int:
        """keep_digit's reach, 1% of the image's longer side (at least 2 samples), in samples."""
        return max(2, round(0.01 * max(self.full) / self.scale))

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples' centres, (h, 1) and (1, w) float32, in -0.5 .. 0.5 from the image's first pixel
        centre to its last (at full size: np.linspace(-0.5, 0.5, n))."""

        def axis(start: int, stop: int, n: int, full: int) -> np.ndarray:
            centres = start + (np.arange(n, dtype=np.float32) + 0.5) * ((stop - start) / n) - 0.5
            return centres / max(full - 1, 1) - 0.5

        left, top, right, bottom = self.box
        return (
            axis(top, bottom, self.size[1], self.full[1])[:, np.newaxis],
            axis(left, right, self.size[0], self.full[0])[np.newaxis, :],
        )


@dataclass(frozen=True)
class Background:
    """The paper's level over the image: a quadratic surface in Region.coordinates, clipped to
    [low, high], or a constant (`coefficients` None, the level in `low`)."""

    coefficients: tuple[float, float, float, float, float, float] | None
    low: float
    high: float

    def over(self, region: Region) -> np.ndarray:
        """The level at each sample of `region`: (h, w) float32."""
        width, height = region.size
        if self.coefficients is None:
            return np.full((height, width), self.low, dtype=np.float32)
        gy, gx = region.coordinates()
        c0, c1, c2, c3, c4, c5 = (np.float32(c) for c in self.coefficients)
        surface = (c5 * gy) * gx  # the one term that needs the whole grid; the others are a column and a row
        surface += c0 + c1 * gy + c3 * gy * gy
        surface += c2 * gx + c4 * gx * gx
        return np.minimum(np.maximum(surface, np.float32(self.low), out=surface), np.float32(self.high), out=surface)

    def spread(self) -> float:
        """How far its level varies over the image (max - min, on a 17 x 17 grid)."""
        if self.coefficients is None:
            return 0.0
        levels = np.clip(SPREAD_GRID @ np.array(self.coefficients), self.low, self.high)
        return float(levels.max() - levels.min())


def fit_background(small: np.ndarray) -> Background:
    """A smooth (quadratic) estimate of the background's level, fitted robustly to dark blocks of the
    (light-on-dark) thumbnail.

    Uneven light on a photographed page is smooth; ink is not, so blocks whose low percentile sits far
    above the fit are strokes and are dropped from the fit.
    """
    ring = _border(small)
    if float(ring.max() - ring.min()) <= 2.0:  # an even border (canvas, MNIST-style image): a flat background
        return Background(None, _median(ring), _median(ring))
    low, high = (int(EVEN_SHARE * (ring.size - 1)), int((1 - EVEN_SHARE) * (ring.size - 1)))
    ordered = np.partition(ring, (low, high))
    if ordered[low] == ordered[high]:  # paper of one exact level, ink crossing the edge (a canvas drawing)
        return Background(None, float(ordered[low]), float(ordered[low]))
    sh, sw = small.shape
    n = 8 if min(sh, sw) >= 16 else 1
    bh, bw = sh // n, sw // n
    blocks = small[: bh * n, : bw * n].reshape(n, bh, n, bw).transpose(0, 2, 1, 3).reshape(n * n, bh * bw)
    z = _percentile(blocks, 0.3)
    design = _design(n, bh * n / sh, bw * n / sw)
    keep = z <= _exact_median(z)  # start from the darker half of the blocks: background in any sane upload
    for _ in range(3):
        coef = _least_squares(design[keep], z[keep])
        residual = z - design @ coef
        spread = 1.4826 * _exact_median(np.abs(residual[keep])) + 2.0
        keep = np.abs(residual) < 2.5 * spread
    lo, hi = (float(z[keep].min()), float(z[keep].max())) if keep.any() else (float(z.min()), float(z.min()))
    pad = 0.25 * (hi - lo) + 2.0  # the edges lie beyond the block centres; don't let the fit run wild there
    fitted = Background(tuple(float(c) for c in coef), lo - pad, hi + pad)  # type: ignore[arg-type]
    if fitted.spread() < 2.0:  # even already: keep clean images exactly as they are
        level = float(np.rint(_exact_median(z[keep]))) if keep.any() else float(z.min())
        return Background(None, level, level)
    return fitted


def _terms(py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """The quadratic surface's terms (1, y, x, y^2, x^2, yx) at the points (py, px): (len, 6) float64."""
    return np.stack([np.ones_like(py), py, px, py * py, px * px, py * px], axis=1)


def _grid(n: int, span: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The (y, x) of an n x n grid of points centred on 0, row by row, `span` from first to last."""
    points = np.linspace(-0.5, 0.5, n) * span
    return np.repeat(points, n), np.tile(points, n)


SPREAD_GRID = _terms(*_grid(17))  # where Background.spread looks: the image's corners, edges and inside


@functools.cache
def _unit_design(n: int) -> np.ndarray:
    """_design's terms for blocks spanning the whole image: at the centres of n x n blocks."""
    return _terms(*_grid(n, (n - 1) / n))


def _design(n: int, height: float, width: float) -> np.ndarray:
    """The quadratic surface's terms at the centres of n x n blocks spanning `height` and `width` of the
    image (shares of it): (n * n, 6) float64 (1, y, x, y^2, x^2, yx). The terms scale with the
    span, so they are the whole image's, scaled (a cache by size would miss: thumbnails vary)."""
    return _unit_design(n) * np.array([1.0, height, width, height * height, width * width, height * width])


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The coefficients minimising |design @ c - values|: the normal equations (6 x 6) when they are well
    posed, else lstsq's minimum-norm solution (few blocks, or blocks on a line)."""
    if len(values) >= 2 * design.shape[1]:
        normal = design.T @ design
        eigenvalues = np.linalg.eigvalsh(normal)  # ascending
        if eigenvalues[0] > 1e-9 * eigenvalues[-1]:
            return np.linalg.solve(normal, design.T @ values)
    return np.linalg.lstsq(design, values, rcond=None)[0]


def _percentile(rows: np.ndarray, q: float) -> np.ndarray:
    """np.percentile(rows, 100 * q, axis=1) (linear interpolation). Sorting the short rows is several
    times faster than np.partition with two pivots."""
    at = q * (rows.shape[1] - 1)
    low = int(at)
    high = min(low + 1, rows.shape[1] - 1)
    ordered = np.sort(rows, axis=1)
    return ordered[:, low] + (at - low) * (ordered[:, high] - ordered[:, low])


def _exact_median(values: np.ndarray) -> float:
    """np.median of a small 1-d array (the mean of the two middle values when their number is even)."""
    k = values.size // 2
    if values.size % 2:
        return float(np.partition(values, k)[k])
    part = np.partition(values, (k - 1, k))
    return float(0.5 * (part[k - 1] + part[k]))


def find_digit(foreground: np.ndarray, scale: int, full: tuple[int, int]) -> Region:
    """The digit's region of the image, from its thumbnail's `foreground` (light on dark, the background
    subtracted; `scale` full-size pixels per thumbnail pixel): the box of the marks brighter than
    FIND_SHARE of the brightest, with a margin, reduced to at most WORKING_SIDE px."""
    peak = float(foreground.max())
    rows = np.flatnonzero((foreground > FIND_SHARE * peak).any(axis=1)) if peak > 0 else np.empty(0, np.intp)
    if not rows.size:  # nothing stands out: remove_background says so on the whole image
        left, top, right, bottom = 0, 0, *full
    else:
        cols = np.flatnonzero((foreground > FIND_SHARE * peak).any(axis=0))
        margin = FIND_MARGIN + round(FIND_MARGIN_SHARE * max(rows[-1] - rows[0], cols[-1] - cols[0]))
        top, bottom = max(0, (rows[0] - margin) * scale), min(full[1], (rows[-1] + 1 + margin) * scale)
        left, right = max(0, (cols[0] - margin) * scale), min(full[0], (cols[-1] + 1 + margin) * scale)
    reduce_by = max(1.0, max(right - left, bottom - top) / WORKING_SIDE)
    size = (max(1, round((right - left) / reduce_by)), max(1, round((bottom - top) / reduce_by)))
    return Region(full, (int(left), int(top), int(right), int(bottom)), size)


def cut_out(gray: Image.Image, region: Region, inverted: bool) -> np.ndarray:
    """The region of the image at its sampled size (box averages, Pillow's C code), light on dark:
    (h, w) float32 in [0, 255]."""
    if region.size == (region.box[2] - region.box[0], region.box[3] - region.box[1]):
        part = gray.crop(region.box) if region.box != (0, 0, *gray.size) else gray
    else:
        part = gray.resize(region.size, Image.Resampling.BOX, box=region.box)
    values = np.asarray(part, dtype=np.float32)
    return 255.0 - values if inverted else values


# 6. ink: background removed, specks dropped, crop, thin, scale, centre -----------------------------


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


def remove_background(gray: np.ndarray, surface: np.ndarray | None = None) -> np.ndarray:
    """Light-on-dark gray -> ink in [0, 255] on a background of exactly 0 (uneven light and noise removed).

    `surface` is the background's level at each pixel (default: fitted to `gray`'s own thumbnail).
    Otsu's threshold splits ink from the rest; the rest's median plus three robust standard deviations
    is the noise floor, cut to 0; the ink's 90th percentile is stretched to 255 (MNIST strokes saturate).
    """
    if surface is None:
        image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32), "F")
        small, _ = thumbnail(image)
        surface = fit_background(small).over(Region.whole(image.size))
    foreground = gray - surface
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
    """How many of each pixel's 8 neighbours are set: the 3x3 sums (separably) less the pixel itself."""
    padded = _padded(mask, 1, 1, np.uint8)
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] - padded[1:-1, 1:-1]


def _padded(values: np.ndarray, rows: int, columns: int, dtype: type | None = None) -> np.ndarray:
    """`values` with `rows` and `columns` of zeros on each side (np.pad's result, without its overhead)."""
    h, w = values.shape
    out = np.zeros((h + 2 * rows, w + 2 * columns), dtype=dtype or values.dtype)
    out[rows : rows + h, columns : columns + w] = values
    return out


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


def to_mnist_form(ink: np.ndarray, notes: list[str], near: int | None = None) -> np.ndarray:
    """Light ink on a background of 0, any size -> the digit as MNIST has it, (28, 28) uint8: specks
    dropped, cropped, bold strokes thinned, the longer side fitted to 20 px, centred by mass."""
    return centre_by_mass(fit_to_box(thin_strokes(crop_to_ink(keep_digit(ink, near)), notes)))


def keep_digit(ink: np.ndarray, near: int | None = None) -> np.ndarray:
    """Zero everything but the strokes: specks (strong pixels with fewer than 2 strong neighbours) and
    faint noise farther than `near` px from the strokes (default: 1% of the longer side, at least 2)
    would otherwise widen the crop and shrink the digit."""
    strong = ink >= STRONG_INK
    strong &= _neighbours(strong) >= 2
    if not strong.any():
        raise BlankImage("No digit found: the image has only specks, no strokes.")
    close = _dilate(strong, near or max(2, round(0.01 * max(ink.shape))))
    return np.where(close, ink, np.float32(0.0))


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every non-zero pixel."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not rows.size:
        raise BlankImage("No digit found: the image is blank.")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def stroke_width(crop: np.ndarray) -> float:
    """Mean stroke width relative to the digit's longer side: 2 x area / perimeter of the strokes."""
    mask = _padded(crop >= 0.5 * 255, 1, 1)  # the strokes touch the crop's edges: those edges count too
    perimeter = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    return 2.0 * np.count_nonzero(mask) / max(int(perimeter), 1) / max(int(crop.shape[0]), int(crop.shape[1]))


def _erode(values: np.ndarray, radius: int) -> np.ndarray:
    """Grey erosion (minimum over a square of side 2 * radius + 1, outside the image counting as 0), separably."""
    out = values
    for _ in range(2):  # rows, then (transposed) columns, then back
        out = _window_min(_padded(out, radius, 0), 2 * radius + 1).T
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
