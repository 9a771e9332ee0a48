"""A line's ink cut into digits by recognition: the line's components grouped (the pieces of one digit
stacked over each other), wide groups over-cut at the valleys of their column counts, and the cuts of the
whole line chosen together by dynamic programming over the cut points, each candidate digit scored by the
model itself (its confidence and its digit score: a half digit or two digits at once score low)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.contract import flatten_and_scale
from app.errors import ImageError
from app.preprocessing import to_mnist_form
from app.reading.components import STRONG_LEVEL, TALL_SHARE, Component

SQUAT = 0.38  # a short component at least this many line heights high and wide is a squat digit, not a mark
GROUP_OVERLAP = 0.5  # components whose (deslanted) columns overlap by this share of the narrower: one digit's
CUT_FROM = 0.6  # groups at least this many line heights wide are offered cuts ...
CUT_MARGIN = 0.12  # ... no closer than this to their ends ...
CUT_SPACING = 0.1  # ... nor to each other (line heights)
PATH_REACH = 0.25  # a cut's path strays at most this many line heights from its cut point ...
PATH_STRAY = 0.05  # ... and each column it strays costs as much as this share of a full-ink pixel
MAX_DIGIT_WIDTH = 1.25  # a candidate digit made of several pieces is at most this many line heights wide ...
MAX_PIECES = 6  # ... and of at most this many pieces ...
MIN_DIGIT_HEIGHT = 0.5  # ... and at least this many line heights high, ...
MAX_BRIDGE = 0.15  # ... and bridges no white gap wider than this many line heights (two digits, spaced)
SKIP_COST = 6.0  # what leaving a piece out costs (a speck between digits, not a digit)
FLOOR = 1e-6  # probabilities and scores below this count as this (the logs stay finite)
PATH_TEMPERATURE = 0.3  # the paths' weights are exp(score / this): how sharply the best path stands out

Model = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Ink:
    """A set of ink pixels of the working image, with their deslanted columns."""

    ys: np.ndarray
    xs: np.ndarray
    values: np.ndarray
    columns: np.ndarray  # x + slant * (y - the line's middle row)

    @classmethod
    def join(cls, parts: list[Ink]) -> Ink:
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("ys", "xs", "values", "columns")))

    @property
    def left(self) -> float:
        return float(self.columns.min())

    @property
    def right(self) -> float:
        return float(self.columns.max()) + 1

    def where(self, keep: np.ndarray) -> Ink:
        return Ink(self.ys[keep], self.xs[keep], self.values[keep], self.columns[keep])

    def image(self) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Its pixels on a background of 0, cropped: (h, w) float32, and the crop's (left, top, right, bottom)."""
        top, left = int(self.ys.min()), int(self.xs.min())
        bottom, right = int(self.ys.max()) + 1, int(self.xs.max()) + 1
        canvas = np.zeros((bottom - top, right - left), np.float32)
        canvas[self.ys - top, self.xs - left] = self.values
        return canvas, (left, top, right, bottom)

    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of its strokes' cores (of all of it, if it has none)."""
        core = self.values >= STRONG_LEVEL
        ys, xs = (self.ys[core], self.xs[core]) if core.any() else (self.ys, self.xs)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@dataclass
class Digit:
    """A digit cut from a line: its ink, in MNIST form, and where it is in the working image."""

    pixels: np.ndarray  # (28, 28) uint8
    box: tuple[int, int, int, int]  # left, top, right, bottom in the working image


def deslanted(part: Component, slant: float, middle: float) -> Ink:
    return Ink(part.ys, part.xs, part.values, part.xs + slant * (part.ys - middle))


def group(parts: list[Ink], tall: list[bool], height: float) -> tuple[list[Ink], list[Ink]]:
    """The line's digit material in groups, left to right: each tall component, with the small ones that
    sit over or under it (a 5's bar, a broken stroke), and small ones stacked over each other into
    something as tall as a digit (a dotted stroke); the small components left: the marks. Tall
    components stay apart: the cuts decide which of them make one digit."""
    groups = sorted((p for p, t in zip(parts, tall, strict=True) if t), key=lambda p: p.left)
    members: list[list[Ink]] = [[g] for g in groups]
    loose = []
    for part in (p for p, t in zip(parts, tall, strict=True) if not t):
        shares = [_overlap((part.left, part.right), (g.left, g.right), of_first=True) for g in groups]
        if shares and max(shares) >= GROUP_OVERLAP:
            members[int(np.argmax(shares))].append(part)
        else:
            loose.append(part)
    marks = []
    for stack in _stacks(loose):
        rows = max(int(p.ys.max()) for p in stack) + 1 - min(int(p.ys.min()) for p in stack)
        columns = max(p.right for p in stack) - min(p.left for p in stack)
        if (len(stack) > 1 and rows >= TALL_SHARE * height) or min(rows, columns) >= SQUAT * height:
            members.append(stack)
        else:
            marks += stack
    members.sort(key=lambda m: min(p.left for p in m))
    return [Ink.join(m) for m in members], marks


def _stacks(parts: list[Ink]) -> list[list[Ink]]:
    """Small components in stacks: those whose columns overlap (by GROUP_OVERLAP of the narrower), chained."""
    stacks: list[list[Ink]] = []
    for part in sorted(parts, key=lambda p: p.left):
        for stack in stacks:
            if any(_overlap((part.left, part.right), (p.left, p.right)) >= GROUP_OVERLAP for p in stack):
                stack.append(part)
                break
        else:
            stacks.append([part])
    return stacks


def _overlap(a: tuple[float, float], b: tuple[float, float], of_first: bool = False) -> float:
    """The share of the narrower span (of `a`, if `of_first`) that the two spans share."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    width = a[1] - a[0] if of_first else min(a[1] - a[0], b[1] - b[0])
    return max(0.0, shared) / max(width, 1.0)


def cut_points(group: Ink, height: float) -> list[float]:
    """Where a wide group may hold two digits' boundary: the valleys of its column counts (ink-weighted),
    away from its ends and from each other."""
    left, right = group.left, group.right
    if right - left < CUT_FROM * height:
        return []
    bins = np.floor(group.columns - left).astype(np.int64)
    counts = np.bincount(bins, weights=group.values, minlength=int(np.ceil(right - left)))
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    margin, spacing = CUT_MARGIN * height, max(1.0, CUT_SPACING * height)
    inner = np.arange(1, len(smooth) - 1)
    valleys = inner[(smooth[inner] <= smooth[inner - 1]) & (smooth[inner] <= smooth[inner + 1])]
    valleys = valleys[(valleys >= margin) & (valleys <= len(smooth) - margin)]
    chosen: list[int] = []
    for column in valleys[np.argsort(smooth[valleys], kind="stable")]:
        if all(abs(column - c) >= spacing for c in chosen):
            chosen.append(int(column))
    return sorted(left + c + 0.5 for c in chosen)


def atoms(groups: list[Ink], height: float) -> list[Ink]:
    """The line over-cut: each group split along a cut path from each of its cut points, left to right."""
    pieces = []
    for g in groups:
        paths = [cut_path(g, column, height) for column in cut_points(g, height)]
        for k in range(1, len(paths)):
            np.maximum(paths[k], paths[k - 1], out=paths[k])  # paths never cross
        row = g.ys - int(g.ys.min())
        side = np.zeros(len(row), np.int64)
        for path in paths:
            side += np.floor(g.columns) > path[row]
        for k in range(len(paths) + 1):
            part = g.where(side == k)
            if len(part.ys):
                pieces.append(part)
    return pieces


def cut_path(group: Ink, column: float, height: float) -> np.ndarray:
    """Per row of the group (top to bottom), the deslanted column a cut from `column` passes at: the path
    through the least ink that moves at most one column per row and strays at most PATH_REACH line
    heights from `column` (touching digits meet along a curve, not a straight line). A pixel is left
    of the cut when its column is at most the path's."""
    top = int(group.ys.min())
    rows = int(group.ys.max()) + 1 - top
    reach = max(1, round(PATH_REACH * height))
    low, width = int(np.floor(column)) - reach, 2 * reach + 1
    columns = np.floor(group.columns).astype(np.int64) - low
    inside = (columns >= 0) & (columns < width)
    cost = np.zeros((rows, width))
    np.add.at(cost, (group.ys[inside] - top, columns[inside]), group.values[inside])
    cost += PATH_STRAY * 255.0 * np.abs(np.arange(width) - reach)  # otherwise drawn to the window's edges
    padded = np.full(width + 2, np.inf)  # the totals so far, between two columns no path may take
    padded[1:-1] = cost[0]
    options = np.lib.stride_tricks.sliding_window_view(padded, 3)  # (width, 3): from the left, above, right
    steps = np.zeros((rows, width), np.int64)
    every = np.arange(width)
    for r in range(1, rows):
        step = options.argmin(axis=1)
        padded[1:-1] = options[every, step] + cost[r]  # the view's values are read before they are written
        steps[r] = step - 1
    total = padded[1:-1]
    path = np.empty(rows)
    c = int(total.argmin())
    for r in range(rows - 1, -1, -1):
        path[r] = low + c
        c += int(steps[r, c])
    return path


@dataclass
class Candidates:
    """Every run of neighbouring pieces of a line that could be one digit: `spans[k]` = (first piece, one
    past the last), its MNIST form `images[k]` and its box (left, top, right, bottom) `boxes[k]`."""

    spans: list[tuple[int, int]]
    images: list[np.ndarray]
    boxes: list[tuple[int, int, int, int]]


def candidates(pieces: list[Ink], height: float) -> Candidates:
    """The candidate digits of a line's over-cut pieces: runs of at most MAX_PIECES pieces, at most
    MAX_DIGIT_WIDTH line heights wide (a single piece may be wider), at least MIN_DIGIT_HEIGHT high and
    with no white gap between its pieces wider than MAX_BRIDGE line heights."""
    found = Candidates([], [], [])
    n = len(pieces)
    for i in range(n):
        right = pieces[i].right
        for j in range(i + 1, min(n, i + MAX_PIECES) + 1):
            if j > i + 1:
                if pieces[j - 1].left - right > MAX_BRIDGE * height:
                    break
                right = max(right, pieces[j - 1].right)
            ink = Ink.join(pieces[i:j])
            if j > i + 1 and ink.right - ink.left > MAX_DIGIT_WIDTH * height:
                break
            if ink.ys.max() + 1 - ink.ys.min() < MIN_DIGIT_HEIGHT * height:
                continue  # a fragment: part of a digit, or a speck
            crop, _ = ink.image()
            try:
                found.images.append(to_mnist_form(crop, []))
            except ImageError:  # only specks: no digit
                continue
            found.spans.append((i, j))
            found.boxes.append(ink.box())
    return found


def candidate_values(probabilities: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """How good each candidate is as a digit: log of its top probability (+ log of its digit score)."""
    value = np.log(np.maximum(probabilities.max(axis=1), FLOOR))
    if scores is not None:
        value += np.log(np.maximum(scores, FLOOR))
    return value


def best_path(n: int, spans: list[tuple[int, int]], value: np.ndarray) -> tuple[list[int], float]:
    """The candidates (indices, left to right) of the best path through a line's n pieces, each piece
    in one candidate or left out at SKIP_COST; and the share of the weight of all the paths (each weighs
    exp(its score / PATH_TEMPERATURE)) that the chosen one holds: its cuts' certainty."""
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    every = np.full(n + 1, -np.inf)  # log of the summed weights of every path (the forward algorithm)
    every[0] = 0.0
    back: list[int | None] = [None] * (n + 1)
    by_end: dict[int, list[int]] = {}
    for k, (_, j) in enumerate(spans):
        by_end.setdefault(j, []).append(k)
    for j in range(1, n + 1):
        # a piece may also be left out (a speck between digits), at a cost
        if best[j - 1] - SKIP_COST > best[j]:
            best[j], back[j] = best[j - 1] - SKIP_COST, None
        every[j] = every[j - 1] - SKIP_COST / PATH_TEMPERATURE
        for k in by_end.get(j, []):
            i = spans[k][0]
            every[j] = np.logaddexp(every[j], every[i] + value[k] / PATH_TEMPERATURE)
            if best[i] + value[k] > best[j]:
                best[j], back[j] = best[i] + value[k], k
    chosen: list[int] = []
    j = n
    while j > 0:
        step = back[j]
        if step is None:
            j -= 1
            continue
        chosen.append(step)
        j = spans[step][0]
    return chosen[::-1], float(np.exp(best[n] / PATH_TEMPERATURE - every[n]))


def read_line(pieces: list[Ink], height: float, model: Model) -> tuple[list[Digit], float]:
    """The digits of a line's over-cut pieces: every candidate digit is put in MNIST form and scored by
    the model in one call, then the best path through the cut points is the reading (most probable
    digits, most digit-like pieces); and its cuts' certainty (best_path)."""
    found = candidates(pieces, height)
    if not found.spans:
        return [], 1.0
    probabilities, scores = model(flatten_and_scale(np.stack(found.images)))
    chosen, certainty = best_path(len(pieces), found.spans, candidate_values(probabilities, scores))
    return [Digit(found.images[k], found.boxes[k]) for k in chosen], certainty
