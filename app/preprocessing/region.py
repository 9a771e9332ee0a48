"""Where the digit is: Region (a rectangle of the image and the size it is sampled at), find_digit (the
digit's region, from the thumbnail) and cut_out (that region of the image, reduced to WORKING_SIDE)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WORKING_SIDE = 128  # the digit's region is reduced to this; the digit ends up 20 px anyway
FIND_SHARE = 0.2  # the digit's extent: the thumbnail's marks brighter than this share of the brightest ...
FIND_MARGIN, FIND_MARGIN_SHARE = 2, 0.1  # ... with a margin of 2 thumbnail pixels and 10% of that extent


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
