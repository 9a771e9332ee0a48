"""The paper, found on the thumbnail: its shade at the border, which sets the polarity
(normalise_polarity), and its level over the image, a smooth surface fitted robustly to the dark blocks
(fit_background, Background)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from app.preprocessing.region import Region

# A border whose pixels are all one exact level but for up to this share at either end (ink that crosses
# the edge) is paper of one flat shade: no surface to fit. Photos and scans have noise: never exact.
EVEN_SHARE = 0.1


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


def _median(values: np.ndarray) -> float:
    """The (upper) median of a small array, without np.median's overhead."""
    k = values.size // 2
    return float(np.partition(values, k)[k])


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
    """np.percentile(rows, 100 * q, axis=1) (linear interpolation), from the sorted rows: the rows are
    short, so one sort costs less than np.partition with two pivots."""
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
