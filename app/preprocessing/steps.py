"""The named steps that bring light ink on a background of 0, any size, to MNIST's form (to_mnist_form):
keep_digit -> crop_to_ink -> thin_strokes -> fit_to_box -> centre_by_mass, each usable on its own."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.errors import BlankImage
from app.preprocessing.form import BOX, CENTRE, SIDE
from app.preprocessing.morphology import dilate, erode, neighbours, padded

# Stroke widths relative to the digit's longer side (see thin_strokes). Bold digits are thinned by
# THIN_SHARE of their excess over TARGET_STROKE, a little under MNIST's 0.10: a marker that fills holes
# inflates the measured width, so only part of the excess is real. Measured on tools/uploads.py's bold
# digits (other seeds and digits than the accuracy test's): these beat 0.10 with the whole excess.
THICK_STROKE, TARGET_STROKE, THIN_SHARE = 0.14, 0.08, 0.8
MAX_THIN = 0.1  # never erode by more than this share of the digit's longer side
KEEP_INK = 0.25  # thinning that leaves less of the ink than this would erase the digit, not thin it
THIN_MIN_SIDE = 40  # only crops at least this big are thinned
STRONG_INK = 0.3 * 255  # after stretching, stroke pixels are at least this bright


def to_mnist_form(ink: np.ndarray, notes: list[str], near: int | None = None) -> np.ndarray:
    """Light ink on a background of 0, any size -> the digit as MNIST has it, (28, 28) uint8: specks
    dropped, cropped, bold strokes thinned, the longer side fitted to 20 px, centred by mass."""
    return centre_by_mass(fit_to_box(thin_strokes(crop_to_ink(keep_digit(ink, near)), notes)))


def keep_digit(ink: np.ndarray, near: int | None = None) -> np.ndarray:
    """Zero everything but the strokes: specks (strong pixels with fewer than 2 strong neighbours) and
    faint noise farther than `near` px from the strokes (default: 1% of the longer side, at least 2)
    would otherwise widen the crop and shrink the digit."""
    strong = ink >= STRONG_INK
    strong &= neighbours(strong) >= 2
    if not strong.any():
        raise BlankImage("No digit found: the image has only specks, no strokes.")
    close = dilate(strong, near or max(2, round(0.01 * max(ink.shape))))
    return np.where(close, ink, np.float32(0.0))


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every non-zero pixel."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not rows.size:
        raise BlankImage("No digit found: the image is blank.")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def stroke_width(crop: np.ndarray) -> float:
    """Mean stroke width relative to the digit's longer side: 2 x area / perimeter of the strokes."""
    mask = padded(crop >= 0.5 * 255, 1, 1)  # the strokes touch the crop's edges: those edges count too
    perimeter = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    return 2.0 * np.count_nonzero(mask) / max(int(perimeter), 1) / max(int(crop.shape[0]), int(crop.shape[1]))


def thin_strokes(crop: np.ndarray, notes: list[str]) -> np.ndarray:
    """Thin markedly bolder-than-MNIST strokes (a marker, a thick brush) towards MNIST's usual width.

    MNIST strokes are about 0.10 of the digit's height; a digit much bolder than that loses its holes
    when scaled down. Only large crops are thinned: an MNIST-sized digit is left alone. The result is
    cropped to its ink again, so the thinned digit still fills the 20 px box.
    """
    side = max(crop.shape)
    if side < THIN_MIN_SIDE:
        return crop
    width = stroke_width(crop)
    radius = min(int(THIN_SHARE * (width - TARGET_STROKE) * side / 2), int(MAX_THIN * side))
    if width <= THICK_STROKE or radius < 1:
        return crop
    thinned = erode(crop, radius)
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
    return to_uint8(frame)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Rounded to the nearest level and clipped to [0, 255]: uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
