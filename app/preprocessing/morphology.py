"""Morphology on 2-d arrays, separable and in numpy alone: neighbour counts of a mask, a mask grown
(dilate), grey erosion (erode, over window_min), long straight runs of a mask (long_runs), and zero
padding."""

from __future__ import annotations

import numpy as np


def neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's 8 neighbours are set: the 3x3 sums (separably) less the pixel itself."""
    padded_mask = padded(mask, 1, 1, np.uint8)
    rows = padded_mask[:-2] + padded_mask[1:-1] + padded_mask[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] - padded_mask[1:-1, 1:-1]


def padded(values: np.ndarray, rows: int, columns: int, dtype: type | None = None) -> np.ndarray:
    """`values` with `rows` and `columns` of zeros on each side (np.pad's result, without its overhead)."""
    h, w = values.shape
    out = np.zeros((h + 2 * rows, w + 2 * columns), dtype=dtype or values.dtype)
    out[rows : rows + h, columns : columns + w] = values
    return out


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a mask by `radius` pixels (square), separably."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            if axis == 0:
                grown[shift:] |= out[:-shift]
                grown[:-shift] |= out[shift:]
            else:
                grown[:, shift:] |= out[:, :-shift]
                grown[:, :-shift] |= out[:, shift:]
        out = grown
    return out


def erode(values: np.ndarray, radius: int) -> np.ndarray:
    """Grey erosion (minimum over a square of side 2 * radius + 1, outside the image counting as 0), separably."""
    out = values
    for _ in range(2):  # rows, then (transposed) columns, then back
        out = window_min(padded(out, radius, 0), 2 * radius + 1).T
    return out


def window_min(values: np.ndarray, length: int) -> np.ndarray:
    """Minimum over each `length` consecutive rows, (n, m) -> (n - length + 1, m), in O(log length) passes."""
    span = 1
    while 2 * span <= length:  # then values[i] is the minimum of rows i .. i + span - 1
        values = np.minimum(values[:-span], values[span:])
        span *= 2
    rest = length - span  # two overlapping windows of `span` rows cover `length`
    return np.minimum(values[:-rest], values[rest:]) if rest else values


def long_runs(mask: np.ndarray, length: float) -> np.ndarray:
    """The pixels of runs of True along each row of `mask` at least `length` long."""
    rows, width = mask.shape
    flat = np.zeros((rows, width + 2), np.int8)
    flat[:, 1:-1] = mask
    edges = np.diff(flat.ravel())
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = ends - starts >= length
    marks = np.zeros(flat.size + 1, np.int32)
    np.add.at(marks, starts[keep] + 1, 1)
    np.add.at(marks, ends[keep] + 1, -1)
    return np.cumsum(marks[:-1]).reshape(rows, width + 2)[:, 1:-1] > 0
