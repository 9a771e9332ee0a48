"""Ink from paper: the background's level subtracted, Otsu's threshold between ink and the rest, the
noise floor cut to 0 and the strokes stretched to full strength (remove_background), on one histogram
of the image's integer levels (level_histogram, hist_quantile, otsu_threshold); and the same evened out
per block, for pages of many digits (remove_uneven_background)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
from PIL import Image

from app.errors import BlankImage
from app.preprocessing.background import fit_background
from app.preprocessing.gray import thumbnail
from app.preprocessing.region import Region

MIN_CONTRAST = 24.0  # ink must stand this many grey levels (of 255) above the background
PAPER_SHARE = 0.3  # uneven paper: a block's level is this percentile of it (ink covers less of a block)
MAX_GAIN = 2.5  # ... and faint ink is strengthened at most this many times, to the strongest ink near it
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


def remove_uneven_background(gray: np.ndarray, surface: np.ndarray, block: int) -> np.ndarray:
    """remove_background on paper whose level and ink vary faster than the smooth `surface` follows (a
    glare on a whiteboard, a marker running dry, a shadow): the level left over is taken per block of
    about `block` px (its PAPER_SHARE percentile, interpolated between blocks) and subtracted too, and
    the ink is then stretched to full strength against the strongest ink in and around each block (at
    most MAX_GAIN times: the noise between far-apart digits stays under the ink's level)."""
    h, w = gray.shape
    rows = np.linspace(0, h, max(1, round(h / block)) + 1).astype(int)
    across = max(block, block * block * (len(rows) - 1) / h)  # on a strip thinner than a block, wider blocks:
    cols = np.linspace(0, w, max(1, round(w / across)) + 1).astype(int)  # never more than h * w / block^2 of them
    rest = gray - surface
    level = _per_block(rest, rows, cols, lambda part: np.percentile(part, 100 * PAPER_SHARE))
    ink = remove_background(gray, surface + _spread(level, (w, h)))
    peaks = np.pad(_per_block(ink, rows, cols, np.max), 1)
    near = np.max(
        [peaks[dy : dy + len(rows) - 1, dx : dx + len(cols) - 1] for dy in range(3) for dx in range(3)], axis=0
    )
    gain = 255.0 / np.clip(_spread(near, (w, h)), 255.0 / MAX_GAIN, 255.0)
    return np.minimum(ink * gain, 255.0).astype(np.float32)


def _per_block(
    values: np.ndarray, rows: np.ndarray, cols: np.ndarray, statistic: Callable[[np.ndarray], Any]
) -> np.ndarray:
    """`statistic` of each block between consecutive `rows` and `cols` edges: (len(rows) - 1, len(cols) - 1)."""
    return np.array(
        [[statistic(values[r0:r1, c0:c1]) for c0, c1 in pairwise(cols)] for r0, r1 in pairwise(rows)],
        np.float32,
    )


def _spread(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A coarse grid of per-block values interpolated (bilinear, between the blocks' centres) to `size`."""
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(grid, np.float32), "F").resize(size, Image.Resampling.BILINEAR)
    )
