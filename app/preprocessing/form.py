"""MNIST's form (a 28x28 frame, the digit's longer side 20 px, its centre of mass at (14, 14)) and the
images already in it, used as they are: a decoded image (as_mnist_digit) or, before Pillow, a plain
grayscale PNG decoded by libspng (mnist_form_png, png.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.contract import IMAGE_SHAPE
from app.preprocessing import png

SIDE = IMAGE_SHAPE[0]  # MNIST: a 28x28 frame ...
BOX = 20  # ... with the digit's longer side scaled to 20 px ...
CENTRE = 14.0  # ... and its centre of mass at pixel (14, 14) (measured on the MNIST test set)
# A flattened 28x28 image's mass and its mass weighted by row and by column are one product with these
# three rows (as_mnist_digit: integer pixels, so the sums are exact, as centre_of_mass's are).
MOMENTS = np.vstack([np.ones(SIDE * SIDE), np.indices((SIDE, SIDE)).reshape(2, -1)]).astype(np.float64)


def as_mnist_digit(image: Image.Image) -> np.ndarray | None:
    """The pixels of an image that already is an MNIST digit, else None: 28x28 grayscale, a light digit
    on black whose longer side is 20 px, centred by mass within half a pixel of (14, 14), strokes at
    full strength. The steps would give it back unchanged (they are meant to be an identity on MNIST),
    so it is used as it is, without their cost. Nearly all of MNIST's digits pass; the few that don't
    (19 px boxes, or just over half a pixel off centre) take the full path.
    """
    if image.size != (SIDE, SIDE) or image.mode != "L" or image.getexif().get(0x0112, 1) != 1:
        return None
    pixels = np.asarray(image)
    return pixels if is_mnist_form(pixels) else None


def mnist_form_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """The pixels of a plain 8-bit grayscale 28x28 PNG that holds an MNIST digit, decoded without Pillow
    (png.py: only files Pillow would decode to the same pixels, with nothing else that as_mnist_digit
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
