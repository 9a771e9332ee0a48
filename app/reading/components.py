"""The ink's pieces and lines: connected components of the ink (cc3d), specks dropped, each component's
pixels; the line height; components chained into lines left to right; a line's slant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cc3d
import numpy as np

from app.preprocessing.morphology import long_runs

INK_LEVEL = 0.4 * 255  # a pixel of ink: a faint halo would join neighbouring digits (tight gaps, blurred photos)
STRONG_LEVEL = 0.5 * 255  # ... and of a stroke's core: what boxes and stroke widths are measured on
RULE_THINNESS, RULE_LENGTH = 6.0, 2.5  # a component this many times longer than thick, and than others are high
SPECK_SHARE = 0.4  # a component with fewer core pixels than this share of a stroke's width squared is a speck
TALL_SHARE = 0.5  # a component at least this share of the line height tall holds (part of) a digit
BAND_SHARE = 0.6  # ... and stands in this share of the band the line's digits fill
LINE_SHARE = 0.7  # lines are chained through components this tall (a comma's tail is shorter)
LINK_OVERLAP = 0.3  # a tall component joins a line whose last one shares this share of its height
SLANTS = np.linspace(-0.5, 0.7, 13)  # shears tried when a line is deslanted (top's shift over height)


@dataclass
class Component:
    """One connected piece of ink: its pixels (rows, columns of the working image) and their ink."""

    ys: np.ndarray
    xs: np.ndarray
    values: np.ndarray
    core: int  # pixels at STRONG_LEVEL or more
    top: int = field(init=False)
    bottom: int = field(init=False)  # exclusive
    left: int = field(init=False)
    right: int = field(init=False)  # exclusive

    def __post_init__(self) -> None:
        self.top, self.bottom = int(self.ys.min()), int(self.ys.max()) + 1
        self.left, self.right = int(self.xs.min()), int(self.xs.max()) + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def centre_y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def centre_x(self) -> float:
        return (self.left + self.right) / 2


def find_components(ink: np.ndarray) -> tuple[list[Component], float]:
    """The ink's 8-connected components, specks dropped, and the strokes' width (px)."""
    labels, count = cc3d.connected_components(ink >= INK_LEVEL, connectivity=8, return_N=True)
    if not count:
        return [], 1.0
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(1, count + 2))
    ys, xs = np.divmod(order, ink.shape[1])
    values = ink.ravel()[order]
    parts = []
    for n in range(count):
        a, b = starts[n], starts[n + 1]
        parts.append(Component(ys[a:b], xs[a:b], values[a:b], int(np.count_nonzero(values[a:b] >= STRONG_LEVEL))))
    width = stroke_width(ink >= STRONG_LEVEL)
    kept = [part for part in parts if part.core >= max(2.0, SPECK_SHARE * width * width)]
    ruled = rules(np.array([p.height for p in kept]), np.array([p.width for p in kept]))
    return [part for part, rule in zip(kept, ruled, strict=True) if not rule], width


def rules(heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Which components are ruled lines, not writing (a notebook's rules, its red margin, a form's box):
    thin straight marks RULE_LENGTH times longer than the other components are high."""
    if not len(heights):
        return np.zeros(0, bool)
    long, thin = np.maximum(heights, widths), np.minimum(heights, widths)
    lines = long >= RULE_THINNESS * thin
    others = heights[~lines] if (~lines).any() else heights
    return lines & (long >= RULE_LENGTH * float(np.median(others)))


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a mask: 2 x area / perimeter."""
    perimeter = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    return max(1.0, 2.0 * np.count_nonzero(mask) / max(int(perimeter), 1))


def line_height(parts: list[Component]) -> float:
    """The digits' height: the median height of the components at least half as tall as most of the tall
    ones (the 75th percentile: one tall thing, a digit touching a ruled line, does not set it)."""
    heights = np.array([part.height for part in parts], float)
    return float(np.median(heights[heights >= 0.5 * np.percentile(heights, 75)]))


def without_rules(ink: np.ndarray, height: float) -> np.ndarray | None:
    """The ink without straight runs RULE_LENGTH line heights long, across or down (a notebook's rules,
    its margin, crossing or touching the digits); None when there are none."""
    strong = ink >= INK_LEVEL
    ruled = long_runs(strong, RULE_LENGTH * height) | long_runs(strong.T, RULE_LENGTH * height).T
    return np.where(ruled, np.float32(0.0), ink) if ruled.any() else None


def chain_lines(parts: list[Component], height: float) -> list[list[Component]]:
    """Components in lines, top to bottom: the tall ones chained left to right (each joins the line whose
    last tall component shares most of its height, so a tilted line is followed), then the others put
    in the line whose nearest tall component they sit closest to (their height is checked by the caller)."""
    tall = sorted((p for p in parts if p.height >= LINE_SHARE * height), key=lambda p: p.left)
    lines: list[list[Component]] = []
    for part in tall:
        best, best_overlap = None, LINK_OVERLAP * part.height
        for line in lines:
            last = line[-1]
            overlap = min(last.bottom, part.bottom) - max(last.top, part.top)
            if overlap >= best_overlap * min(1.0, last.height / part.height) and overlap > 0:
                best, best_overlap = line, overlap
        if best is None:
            lines.append([part])
        else:
            best.append(part)
    for part in parts:
        if part.height >= LINE_SHARE * height:
            continue
        if not lines:
            lines.append([part])
            continue
        lines[int(np.argmin([_distance(part, line) for line in lines]))].append(part)
    return sorted(lines, key=lambda line: float(np.mean([p.centre_y for p in line])))


def _distance(part: Component, line: list[Component]) -> float:
    """How far a small component sits from a line: from its centre to the rows of the line's tall
    component nearest to it along the line."""
    tall = [p for p in line if p.height > part.height] or line
    near = min(tall, key=lambda p: abs(p.centre_x - part.centre_x))
    y = part.centre_y
    return max(near.top - y, y - near.bottom, 0.0) + 0.01 * abs(near.centre_x - part.centre_x)


def line_slant(line: list[Component], height: float) -> float:
    """The writer's slant (a stroke's top shift over its height): the median over the line's tall
    components of the shear that makes each one's column counts the most concentrated (vertical strokes
    stack when the slant is undone). Per component, so that one long stroke (a slash, a 1) does not
    set the slant of the whole line."""
    slants = [_slant(p) for p in line if p.height >= TALL_SHARE * height and len(p.ys) >= 8]
    return float(np.median(slants)) if slants else 0.0


def _slant(part: Component) -> float:
    ys = part.ys.astype(np.float64) - part.ys.mean()
    xs = part.xs.astype(np.float64)
    weights = part.values.astype(np.float64)
    best, best_score = 0.0, -1.0
    for slant in SLANTS:
        columns = np.rint(xs + slant * ys).astype(np.int64)
        counts = np.bincount(columns - columns.min(), weights=weights)
        score = float(np.dot(counts, counts))
        if score > best_score:
            best, best_score = float(slant), score
    return best


def in_band(line: list[Component], height: float) -> list[bool]:
    """Which of a line's components stand in the band its digits fill (their tops and bottoms, fitted as
    straight lines along the line, which may be tilted): a tall piece of ink hanging under the baseline
    (a comma's tail) or standing over the tops is not a digit."""
    tall = [p for p in line if p.height >= TALL_SHARE * height]
    xs = np.array([p.centre_x for p in tall])
    tops, bottoms = np.array([p.top for p in tall], float), np.array([p.bottom for p in tall], float)
    top_at, bottom_at = _fit(xs, tops), _fit(xs, bottoms)
    flags = []
    for part in line:
        top, bottom = top_at(part.centre_x), bottom_at(part.centre_x)
        shared = min(bottom, part.bottom) - max(top, part.top)
        flags.append(part.height >= TALL_SHARE * height and shared >= BAND_SHARE * (bottom - top))
    return flags


def _fit(xs: np.ndarray, ys: np.ndarray) -> Callable[[float], float]:
    """y along the line: a straight line through the medians of its left and right halves (robust to a
    few outliers), or the median when there are fewer than 4 points."""
    if len(xs) < 4:
        level = float(np.median(ys))
        return lambda x: level
    order = np.argsort(xs)
    half = len(xs) // 2
    x0, y0 = float(np.median(xs[order[:half]])), float(np.median(ys[order[:half]]))
    x1, y1 = float(np.median(xs[order[-half:]])), float(np.median(ys[order[-half:]]))
    slope = (y1 - y0) / (x1 - x0) if x1 > x0 else 0.0
    return lambda x: y0 + slope * (x - x0)
