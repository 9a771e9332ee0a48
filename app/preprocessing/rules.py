"""A ruled page's lines, taken out of a digit's ink: a notebook's rules and its margin, straight runs of
ink from one edge of the digit's region to the other (find_digit's region has a margin around the
marks, so only what crosses the whole page reaches both edges), at least twice as long as the ink they
leave is high or wide, and thin. A digit cropped to its ink with no margin at all can reach both edges
with a stem or a bar: those three tests are what keeps it (docs/preprocessing.md measures how often)."""

from __future__ import annotations

import numpy as np

from app.preprocessing.morphology import dilate, long_runs

EDGE_TO_EDGE = 0.97  # a rule spans at least this share of the region, across or down
RULE_OVER_INK = 2.0  # ... and at least this many times the rest of the ink's extent along it
RULE_THINNESS = 16.0  # ... and this many times longer than deep (a digit's bar or stem is 5-10 times)
BESIDE = 2  # px: a rule's edge
HALF = 0.5  # a straight run over this share of the region is no measure of the digit's extent
RULE_LEVEL = 0.3 * 255  # what counts as ink here: steps.keep_digit's strong level, so a kept rule is one


def remove_rules(ink: np.ndarray, notes: list[str]) -> np.ndarray:
    """The ink without the page's ruled lines (a note says so), or the ink itself when it has none."""
    strong = ink >= RULE_LEVEL
    h, w = strong.shape
    if strong.sum(axis=1).max(initial=0) < EDGE_TO_EDGE * w and strong.sum(axis=0).max(initial=0) < EDGE_TO_EDGE * h:
        return ink  # no row or column holds ink enough for a rule: most uploads, at the cost of two sums
    across, down = long_runs(strong, EDGE_TO_EDGE * w), long_runs(strong.T, EDGE_TO_EDGE * h).T
    if not (across.any() or down.any()):
        return ink
    # the rest of the ink: without any long straight run (a rule's pieces, broken at the digit) nor the
    # pixels beside one (a rule's blurred edge, where other rules cross it)
    runs = long_runs(strong, HALF * w) | long_runs(strong.T, HALF * h).T
    rest = strong & ~dilate(runs, BESIDE)
    if not rest.any():  # nothing but lines: they are what was written (a 1 drawn down a tight crop)
        return ink
    rows, cols = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    across &= w >= RULE_OVER_INK * (cols[-1] - cols[0] + 1) and thin(across, w)
    down &= h >= RULE_OVER_INK * (rows[-1] - rows[0] + 1) and thin(down.T, h)
    ruled = across | down
    if not ruled.any():
        return ink
    notes.append("removed the page's ruled lines")
    return np.where(ruled, np.float32(0.0), ink)


def thin(lines: np.ndarray, length: int) -> bool:
    """Whether the runs along the rows of `lines` are as thin as a rule: each band of them (a rule, a few
    rows deep) at most `length` / RULE_THINNESS deep, by the median over the columns that hold any."""
    starts = np.diff(lines.astype(np.int8), axis=0, prepend=0) == 1
    bands = starts.sum(axis=0)
    held = bands > 0
    return bool(held.any()) and float(np.median(lines.sum(axis=0)[held] / bands[held])) * RULE_THINNESS <= length
