"""A decoded image -> one grey channel: luminance and alpha (to_gray_and_alpha), transparency flattened
onto the shade that keeps the visible part readable (flatten_transparency), and the thumbnail the paper
and the digit's extent are found on (thumbnail). Pillow images at the decoded size, Pillow's C code."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.errors import BlankImage, InvalidImage

THUMB_SIDE = 128  # the paper's polarity and level and the digit's extent are found on a thumbnail this big


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
