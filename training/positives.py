"""More digits for the digit scorer (training/scorer.py), of the kinds a number reader shows it: printed
digits, and digits cut out of a number whose neighbour touches them.

- `printed_digits`: a digit typed in one of the machine's TrueType/OpenType fonts (`find_fonts`; the
  families in HELD_OUT_FAMILIES are kept out, so that `python -m tools.digit_scores` can measure fonts the
  scorer never saw), at a random size, position, slight slant and rotation, sometimes blurred;
- `digit_pieces`: an MNIST digit with a touching or overlapping neighbour digit at its left or right,
  cut at the true boundary (a column inside their overlap): the piece is the digit with a few columns of
  the neighbour's strokes intruding at its edge, and perhaps a column or two of its own edge lost;
- `coarse_scans`: an MNIST digit at a low resolution (7-12 px high) with few grey levels, enlarged again
  (blocks or blur), as low-resolution scans and small datasets' digits come.

Both are brought to MNIST's form by the service's own steps (`to_mnist_form`), as its uploads are.
`side_by_side` places two MNIST digits next to each other by their ink, which training/negatives.py also
uses for the pieces of wrong cuts (half a digit, two digits, a digit and most of its neighbour).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.preprocessing import ImageError, to_mnist_form

FONT_ROOTS = (Path("/usr/share/fonts"),)
# font families (the file name before its first "-") kept out of training, for the held-out measurement:
# a serif, a monospace and a narrow sans, each with a sibling family left in training
HELD_OUT_FAMILIES = ("LiberationSerif", "DejaVuSansMono", "LiberationSansNarrow")
PRINTED_SIZES = (28, 90)  # training font sizes in px; tools/digit_scores measures at others
INK = 64  # a column with a pixel at least this bright holds ink


def find_fonts(roots: Sequence[Path] = FONT_ROOTS) -> tuple[Path, ...]:
    """The machine's TrueType and OpenType fonts that draw distinct digits, sorted by path."""
    found = {p for root in roots if root.is_dir() for pattern in ("*.ttf", "*.otf") for p in root.rglob(pattern)}
    return tuple(p for p in sorted(found) if _draws_digits(p))


@cache
def _draws_digits(path: Path) -> bool:
    """Whether the font loads and draws a 1 and an 8 differently (symbol, emoji and broken fonts do not)."""
    try:
        font = ImageFont.truetype(str(path), 40)
        one, eight = (np.asarray(font.getmask(c)) for c in "18")
    except OSError:
        return False
    return eight.size > 0 and (one.shape != eight.shape or not np.array_equal(one, eight))


def family(font: Path) -> str:
    return font.stem.split("-")[0]


def split_fonts(fonts: Sequence[Path]) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """(training fonts, held-out fonts): those of HELD_OUT_FAMILIES are held out."""
    held = tuple(f for f in fonts if family(f) in HELD_OUT_FAMILIES)
    return tuple(f for f in fonts if f not in held), held


@cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def type_digit(
    digit: int, font: Path, size: int, rng: np.random.Generator, degrees: float = 0.0, slant: float = 0.0
) -> np.ndarray:
    """One digit typed white on black in `font` at `size` px, at a random place on a canvas with a random
    margin, slanted (the top to the right by `slant` of the height) and turned by `degrees`: float32 0-255."""
    face = _font(font, size)
    left, top, right, bottom = face.getbbox(str(digit))
    margin = rng.integers(2, max(3, size // 2), size=4)
    width, height = right - left + margin[0] + margin[1], bottom - top + margin[2] + margin[3]
    image = Image.new("L", (int(width), int(height)), 0)
    ImageDraw.Draw(image).text((margin[0] - left, margin[2] - top), str(digit), fill=255, font=face)
    if slant:
        shift = slant * height
        image = image.transform(
            (int(width + abs(shift)), int(height)),
            Image.Transform.AFFINE,
            (1, slant, -max(shift, 0.0), 0, 1, 0),
            Image.Resampling.BICUBIC,
        )
    if degrees:
        image = image.rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    return np.asarray(image, dtype=np.float32)


def in_mnist_form(images: Sequence[np.ndarray]) -> np.ndarray:
    """Light-on-black images of any size -> (N, 28, 28) uint8 in MNIST's form (blank if no strokes)."""
    out = np.zeros((len(images), 28, 28), dtype=np.uint8)
    for i, image in enumerate(images):
        with contextlib.suppress(ImageError):
            out[i] = to_mnist_form(np.asarray(image, dtype=np.float32), [])
    return out


def printed_digits(n: int, seed: int, fonts: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """n printed digits in MNIST's form ((n, 28, 28) uint8) and their labels ((n,) uint8), reproducible
    from `seed` and the fonts: each digit in a random font of `fonts`, at a random size of PRINTED_SIZES,
    slanted by up to 0.2 (a fifth of the fonts' digits, as italics), turned by up to 6 degrees, and a
    third of them blurred a little (print, scans)."""
    if not fonts:
        raise ValueError("no fonts to print digits with")
    rng = np.random.default_rng([seed, 34, 1])

    def one() -> tuple[np.ndarray, int]:
        digit = int(rng.integers(10))
        font = fonts[int(rng.integers(len(fonts)))]
        size = int(rng.integers(*PRINTED_SIZES))
        slant = float(rng.uniform(0.05, 0.2)) if rng.random() < 0.2 else 0.0
        image = type_digit(digit, font, size, rng, float(rng.uniform(-6, 6)), slant)
        if rng.random() < 1 / 3:
            blurred = Image.fromarray(image.astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(rng.uniform(0.01, 0.03) * size)
            )
            image = np.asarray(blurred, dtype=np.float32)
        return image, digit

    return made(one, n)


def made(one: Callable[[], tuple[np.ndarray, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """n images from `one()` (an image of any size and its label) brought to MNIST's form, those with
    fewer than 15 strong pixels left (a faint or tiny digit) dropped and drawn again: ((n, 28, 28) uint8,
    (n,) uint8)."""
    images, labels = np.zeros((n, 28, 28), dtype=np.uint8), np.zeros(n, dtype=np.uint8)
    i = 0
    while i < n:
        image, label = one()
        with contextlib.suppress(ImageError):
            images[i] = to_mnist_form(np.asarray(image, dtype=np.float32), [])
            if (images[i] > 127).sum() >= 15:
                labels[i] = label
                i += 1
    return images, labels


def coarse_scans(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n digits of x as a coarse scan shows them, in MNIST's form: the digit's ink box reduced (area
    average) to 7-12 px on its longer side, its greys cut to 5-17 levels, then enlarged again 3-10x
    (nearest, bilinear or bicubic: pixel blocks or blur) with a margin, as a low-resolution scan or a small
    dataset's digit (scikit-learn's 8x8 ones) is shown to the service."""
    rng = np.random.default_rng([seed, 34, 3])
    resamples = (Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)

    def one() -> tuple[np.ndarray, int]:
        digit = x[rng.integers(len(x))]
        rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        ink = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        side = int(rng.integers(7, 13))
        scale = side / max(ink.shape)
        size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
        small = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BOX), dtype=np.float32)
        levels = int(rng.integers(4, 17))
        grey = (np.round(small / 255 * levels) * (255 / levels)).clip(0, 255).astype(np.uint8)
        factor = float(rng.uniform(3, 10))
        big = Image.fromarray(grey).resize(
            (round(size[0] * factor), round(size[1] * factor)), resamples[int(rng.integers(3))]
        )
        return np.pad(np.asarray(big), round(2 * factor)), 0

    return made(one, n)[0]


def ink_span(image: np.ndarray) -> tuple[int, int]:
    """The first and last columns of `image` with ink (both 0 when it has none)."""
    cols = np.flatnonzero((image >= INK).any(axis=0))
    return (int(cols[0]), int(cols[-1])) if cols.size else (0, 0)


def side_by_side(left: np.ndarray, right: np.ndarray, overlap: int, dy: int) -> tuple[np.ndarray, int, int]:
    """Two (28, 28) digits in one image, `right`'s ink starting `overlap` columns before `left`'s ends
    (negative: a gap of that many columns) and shifted down by `dy` rows (|dy| <= 4): (the image (36, W)
    uint8, the column where `right`'s ink starts, the column where `left`'s ends)."""
    _, left_end = ink_span(left)
    right_start, _ = ink_span(right)
    offset = max(0, left_end + 1 - overlap - right_start)
    canvas = np.zeros((36, max(28, offset + 28)), dtype=np.uint8)
    canvas[4:32, :28] = left
    region = canvas[4 + dy : 32 + dy, offset : offset + 28]
    np.maximum(region, right, out=region)
    return canvas, offset + right_start, left_end


def _upscaled(image: np.ndarray) -> np.ndarray:
    """Twice the size (bilinear), so that `to_mnist_form` resamples a smooth image."""
    h, w = image.shape
    return np.asarray(Image.fromarray(image).resize((2 * w, 2 * h), Image.Resampling.BILINEAR), dtype=np.float32)


def digit_pieces(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n digits cut out of numbers, in MNIST's form, and their labels: a digit of x with a neighbour of x
    touching (their ink overlapping by 1-4 columns) at its left or right, shifted up or down by up to 3
    rows, cut at a column inside the overlap (the true boundary)."""
    rng = np.random.default_rng([seed, 34, 2])

    def one() -> tuple[np.ndarray, int]:
        own, other = rng.integers(len(x), size=2)
        overlap, dy = int(rng.integers(1, 5)), int(rng.integers(-3, 4))
        if rng.random() < 0.5:  # the neighbour on the right: keep up to the cut
            canvas, start, end = side_by_side(x[own], x[other], overlap, dy)
            piece = canvas[:, : int(rng.integers(start, end + 1)) + 1]
        else:  # on the left: keep from the cut on
            canvas, start, end = side_by_side(x[other], x[own], overlap, dy)
            piece = canvas[:, int(rng.integers(start, end + 1)) :]
        return _upscaled(np.ascontiguousarray(piece)), int(y[own])

    return made(one, n)
