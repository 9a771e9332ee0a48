"""Image bytes -> the model's input, (1, 784) float32 in [0, 1]. Pure: numpy and Pillow, no web framework.

`mnist` mode turns a real upload (photo, scan, canvas drawing) into an MNIST-style digit in named steps:
decode -> apply_exif_orientation -> to_gray_and_alpha -> flatten_transparency -> thumbnail
-> normalise_polarity -> fit_background -> find_digit -> cut_out -> remove_background -> remove_rules -> keep_digit
-> crop_to_ink -> thin_strokes -> fit_to_box -> centre_by_mass -> flatten_and_scale.
Up to flatten_transparency the image stays a Pillow image at its decoded size (C code, 8 bits). The
paper's polarity and level and the digit's extent are found on a thumbnail of at most 128 px; the
steps after that run in float32 on the digit's region only, reduced to at most 128 px (the digit ends
up 20 px). Images that small already are worked on whole. An image that already is an MNIST digit is
used as it is (as_mnist_digit); saved as a plain 8-bit grayscale PNG, it is decoded by libspng rather
than Pillow (mnist_form_png, png.py), the commonest upload at a fraction of the cost.
`simple` mode is only: grayscale, resize to 28x28, flatten and scale.

This module is the pipeline (preprocess, simple mode) and the names other code uses; each step lives in
the module that owns its job, and imports run one way, down this list:
png.py         PNG files before Pillow: chunk CRCs, libspng's decode of plain 8-bit grayscale PNGs
decode.py      bytes -> a Pillow image: formats, the pixel cap, HEIF/AVIF, EXIF orientation, decode errors
gray.py        one grey channel: luminance, alpha, transparency flattened; the thumbnail
form.py        MNIST's form (28x28, 20 px box, centre of mass) and images already in it
region.py      Region; the digit's region (find_digit) and its pixels (cut_out)
background.py  the paper: polarity and its level over the image (fit_background)
ink.py         ink from paper: histogram, Otsu's threshold, remove_background (and per block: remove_uneven_background)
morphology.py  neighbour counts, dilation, grey erosion, long straight runs, padding
rules.py       a ruled page's lines taken out of a digit's ink (remove_rules)
steps.py       ink -> MNIST form: keep_digit, crop_to_ink, thin_strokes, fit_to_box, centre_by_mass
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from PIL import Image

from app.contract import DEFAULT_MAX_PIXELS, flatten_and_scale
from app.errors import BlankImage, ImageError, ImageTooLarge, InvalidImage, UnsupportedImageType
from app.preprocessing.background import Background, fit_background, normalise_polarity
from app.preprocessing.decode import FORMAT_NAMES, FORMATS, apply_exif_orientation, decode
from app.preprocessing.form import SIDE, as_mnist_digit, mnist_form_png
from app.preprocessing.gray import flatten_transparency, thumbnail, to_gray_and_alpha
from app.preprocessing.ink import remove_background, remove_uneven_background
from app.preprocessing.region import WORKING_SIDE, Region, cut_out, find_digit
from app.preprocessing.rules import remove_rules
from app.preprocessing.steps import to_mnist_form, to_uint8

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "FORMAT_NAMES",
    "MODES",
    "BlankImage",
    "ImageError",
    "ImageTooLarge",
    "InvalidImage",
    "Mode",
    "Page",
    "Preprocessed",
    "UnsupportedImageType",
    "one_digit",
    "open_page",
    "preprocess",
    "simple_pixels",
    "to_mnist_form",
]

Mode = Literal["mnist", "simple"]
MODES: tuple[str, ...] = get_args(Mode)


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
    return Preprocessed(one_digit(open_page(image, notes), notes), notes)


def one_digit(page: Page, notes: list[str]) -> np.ndarray:
    """The page's ink as one digit in MNIST form: (28, 28) uint8 (the steps after open_page)."""
    if page.scale == 1 and max(page.gray.size) <= WORKING_SIDE:  # small already: the thumbnail is the image
        region, work = Region.whole(page.gray.size), page.small
    else:
        region = find_digit(page.foreground(), page.scale, page.gray.size)
        work = cut_out(page.gray, region, page.inverted)
    ink = remove_rules(remove_background(work, page.background.over(region)), notes)
    return to_mnist_form(ink, notes, region.near)


@dataclass
class Page:
    """An upload as one grey channel, upright and opaque (`gray`, its decoded size), with what its
    thumbnail says: `small` (light on dark, `scale` full-size pixels per sample), whether it was
    `inverted` to get there, and the paper's level (`background`)."""

    gray: Image.Image
    small: np.ndarray
    scale: int
    inverted: bool
    background: Background

    def foreground(self) -> np.ndarray:
        """The thumbnail with the paper's level subtracted: the marks stand out from 0."""
        return self.small - self.background.over(
            Region.whole(self.gray.size, (self.small.shape[1], self.small.shape[0]))
        )

    def ink(self, region: Region, block: int | None = None) -> np.ndarray:
        """The region's ink, light on a background of 0: (h, w) float32 in [0, 255] at `region.size`; with
        `block`, the paper's level and the ink's strength are also evened out per block of that many px
        (remove_uneven_background: a page of many digits, some under a glare)."""
        gray, surface = cut_out(self.gray, region, self.inverted), self.background.over(region)
        return remove_background(gray, surface) if block is None else remove_uneven_background(gray, surface, block)


def open_page(image: Image.Image, notes: list[str]) -> Page:
    """decode's image -> a Page: EXIF orientation applied, grey, transparency flattened, the paper found."""
    image = apply_exif_orientation(image, notes)
    gray = flatten_transparency(*to_gray_and_alpha(image), notes)
    small, scale = thumbnail(gray)
    small, inverted = normalise_polarity(small, notes)
    return Page(gray, small, scale, inverted, fit_background(small))


def simple_pixels(image: Image.Image) -> np.ndarray:
    """Grayscale and resize to 28x28, nothing else: (28, 28) uint8 for callers that send MNIST-format images."""
    gray, _ = to_gray_and_alpha(image)
    resized = np.asarray(gray.convert("F").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
    pixels = to_uint8(resized)
    if int(pixels.max()) == int(pixels.min()):
        raise BlankImage("The image is blank: every pixel has the same value, so there is no digit in it.")
    return pixels
