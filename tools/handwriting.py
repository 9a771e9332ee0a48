"""A second generator of number images with exact truth, independent of tools/numbers.py, so the reader of
POST /v1/read is not tuned to one generator's habits.

Its digits are either written with a pen from hand-made stroke skeletons (several variants of each digit,
control points jittered, the pen's width and pressure varying along the stroke, and a cursive join to the
next digit now and then, so some neighbours touch as handwriting does), or MNIST digits from the last
10,000 of the TRAINING split (the reader's tests and tools/numbers.py use the test split), upscaled and
inked here. Neighbouring digits are placed by a continuous spacing model: a number's gap is drawn from
-4 to +20 px at MNIST's 20 px digit height, each pair jittered about it. The page is lined paper, grid
paper, a coloured sticky note, faint pencil, or a photographed whiteboard with glare; PNG, JPEG or WebP.

The truth is exact: each digit is drawn alone into its own coverage patch and placed at whole pixels, so
its box is the tight box of its own ink (coverage >= INK) in the final image; a cursive join belongs to
no digit. A number's gap kind is measured from that ink: its tightest neighbouring pair is "overlapping"
(in some row the next digit's ink starts left of where the previous one's ends), "touching" (their ink,
or a join, in contact), "tight" (a clearance of at most a tenth of the height) or "spaced".

    python -m tools.handwriting --out DIR --n 24 [--seed 0] [--npz PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tools.numbers import INK, Glyph, Mark, NumberImage, ink_box
from tools.uploads import encode, to_uint8

BACKGROUNDS = ("lined", "grid", "sticky", "pencil", "whiteboard")
HANDS = ("strokes", "mnist_train")
FORMATS = ("PNG", "JPEG", "WEBP")
SCALE = 4  # strokes are drawn this much larger, then reduced: antialiased edges

Point = tuple[float, float]
# A digit's skeleton: strokes of control points in a box 0.6 wide and 1 high (y down); a point with a
# third value 1 is a corner the pen turns sharply at, the rest are smoothed through
Stroke = list[tuple[float, ...]]
SKELETONS: dict[int, list[list[Stroke]]] = {
    0: [
        [[(0.3, 0), (0.06, 0.25), (0.05, 0.75), (0.3, 1), (0.55, 0.75), (0.55, 0.25), (0.3, 0), (0.22, 0.04)]],
        [[(0.35, 0.02), (0.1, 0.15), (0.02, 0.6), (0.2, 0.98), (0.45, 0.9), (0.58, 0.4), (0.45, 0.05), (0.3, 0.05)]],
    ],
    1: [
        [[(0.3, 0, 1), (0.3, 1, 1)]],
        [[(0.17, 0.18, 1), (0.35, 0, 1), (0.35, 1, 1)]],
        [[(0.12, 0.2, 1), (0.32, 0, 1), (0.3, 1, 1)], [(0.08, 1, 1), (0.52, 1, 1)]],
    ],
    2: [
        [[(0.05, 0.22), (0.3, 0), (0.55, 0.2), (0.45, 0.5), (0.03, 1, 1), (0.6, 0.98, 1)]],
        [[(0.04, 0.25), (0.25, 0.02), (0.52, 0.15), (0.48, 0.45), (0.15, 0.85), (0.05, 0.98), (0.2, 0.9), (0.6, 0.97)]],
    ],
    3: [
        [[(0.05, 0.12), (0.3, 0), (0.55, 0.2), (0.28, 0.47, 1), (0.57, 0.7), (0.32, 1), (0.02, 0.88)]],
        [[(0.04, 0, 1), (0.55, 0, 1), (0.25, 0.4, 1), (0.58, 0.65), (0.35, 1), (0.03, 0.9)]],
    ],
    4: [
        [[(0.4, 0, 1), (0.02, 0.65, 1), (0.6, 0.65, 1)], [(0.45, 0.3, 1), (0.45, 1, 1)]],
        [[(0.45, 1, 1), (0.45, 0, 1), (0.02, 0.65, 1), (0.6, 0.65, 1)]],
        [[(0.08, 0, 1), (0.06, 0.55, 1), (0.58, 0.55, 1)], [(0.45, 0.05, 1), (0.42, 1, 1)]],
    ],
    5: [
        [[(0.55, 0, 1), (0.1, 0, 1), (0.06, 0.45, 1), (0.35, 0.38), (0.58, 0.65), (0.35, 1), (0.03, 0.9)]],
        [
            [(0.12, 0, 1), (0.07, 0.45, 1), (0.36, 0.38), (0.58, 0.66), (0.33, 1), (0.02, 0.88)],
            [(0.12, 0, 1), (0.57, 0.02, 1)],
        ],
    ],
    6: [
        [[(0.5, 0), (0.18, 0.3), (0.05, 0.72), (0.3, 1), (0.55, 0.78), (0.32, 0.55), (0.08, 0.68)]],
        [[(0.45, 0, 1), (0.1, 0.5), (0.12, 0.9), (0.38, 0.98), (0.52, 0.72), (0.3, 0.55), (0.1, 0.65)]],
    ],
    7: [
        [[(0.02, 0, 1), (0.58, 0, 1), (0.22, 1, 1)]],
        [[(0.02, 0.08, 1), (0.58, 0, 1), (0.3, 1, 1)], [(0.15, 0.5, 1), (0.52, 0.5, 1)]],
        [[(0.05, 0.1, 1), (0.02, 0, 1), (0.56, 0.02, 1), (0.45, 0.4), (0.32, 1)]],
    ],
    8: [
        [
            [
                (0.5, 0.1),
                (0.3, 0),
                (0.08, 0.2),
                (0.3, 0.48),
                (0.55, 0.75),
                (0.3, 1),
                (0.05, 0.75),
                (0.3, 0.48),
                (0.52, 0.22),
                (0.5, 0.1),
            ]
        ],
        [
            [
                (0.3, 0.48),
                (0.08, 0.25),
                (0.3, 0),
                (0.52, 0.25),
                (0.3, 0.48),
                (0.05, 0.74),
                (0.3, 1),
                (0.57, 0.74),
                (0.3, 0.48),
            ]
        ],
    ],
    9: [
        [[(0.55, 0.15), (0.3, 0), (0.05, 0.2), (0.2, 0.45), (0.55, 0.3), (0.55, 0.15, 1), (0.5, 1)]],
        [[(0.55, 0.2), (0.3, 0.02), (0.06, 0.22), (0.25, 0.45), (0.55, 0.25, 1), (0.45, 0.7), (0.2, 1)]],
    ],
}


@dataclass(frozen=True)
class HandSource:
    """MNIST training digits to write with (the last 10,000 of x_train; None: strokes only)."""

    images: np.ndarray | None
    labels: np.ndarray | None

    @classmethod
    def load(cls, npz: Path | str | None = None) -> HandSource:
        """The last 10,000 training digits of a Keras MNIST `.npz`; none without one (the committed sample
        is test digits, which this generator leaves to tools/numbers.py)."""
        if npz is None:
            return cls(None, None)
        with np.load(npz) as data:
            return cls(data["x_train"][-10_000:], data["y_train"][-10_000:].astype(np.int64))


@dataclass
class Drawn:
    """One character alone: coverage (h, w) float32 in [0, 1], where its pen started and ended (patch pixels)."""

    char: str
    coverage: np.ndarray
    start: Point
    end: Point


# ---- one digit ----


def smooth(points: list[tuple[float, ...]], rounds: int = 3) -> list[Point]:
    """Chaikin's corner cutting through the control points, keeping the ends and the corners marked 1."""
    pts = [(p[0], p[1], len(p) > 2) for p in points]
    for _ in range(rounds):
        out = [pts[0]]
        for (x0, y0, c0), (x1, y1, _c1) in itertools.pairwise(pts):
            if c0 and out[-1][:2] != (x0, y0):
                out.append((x0, y0, True))
            out += [
                (0.75 * x0 + 0.25 * x1, 0.75 * y0 + 0.25 * y1, False),
                (0.25 * x0 + 0.75 * x1, 0.25 * y0 + 0.75 * y1, False),
            ]
        out.append(pts[-1])
        pts = out
    return [(x, y) for x, y, _ in pts]


def pen_path(draw: ImageDraw.ImageDraw, points: list[Point], width: float, rng: np.random.Generator) -> None:
    """A stroke whose width follows the pen's pressure: heavier in the middle, lighter at the ends."""
    n = len(points)
    wobble = rng.uniform(0, 0.25)
    for i, ((x0, y0), (x1, y1)) in enumerate(itertools.pairwise(points)):
        t = (i + 0.5) / max(1, n - 1)
        w = width * (0.7 + 0.3 * np.sin(np.pi * t) + wobble * np.sin(7 * t + wobble * 9))
        r = max(0.5, w / 2)
        draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, round(w)))
        draw.ellipse((x1 - r, y1 - r, x1 + r, y1 + r), fill=255)
    x, y = points[0]
    r = width * 0.35
    draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def stroke_digit(digit: int, height: float, pen: float, slant: float, rng: np.random.Generator) -> Drawn:
    """A digit written from one of its skeletons: control points jittered, slanted, the pen `pen` px wide."""
    variants = SKELETONS[digit]
    strokes = variants[int(rng.integers(len(variants)))]
    aspect = rng.uniform(0.8, 1.25)
    margin = pen + 2
    paths = []
    for stroke in strokes:
        jittered = []
        for p in stroke:
            x, y = p[0] + rng.normal(0, 0.035), p[1] + rng.normal(0, 0.03)
            x = x * aspect + slant * (1 - y)  # the top leans right by `slant` of the height
            jittered.append((x, y, *p[2:]))
        paths.append([(margin + x * height, margin + y * height) for x, y in smooth(jittered)])
    width = int(np.ceil((0.6 * aspect + abs(slant) + 0.2) * height + 2 * margin))
    side = int(np.ceil(1.15 * height + 2 * margin))
    shift = max(0.0, -slant * height)  # a left slant would draw off the patch
    drawing = Image.new("L", (width * SCALE, side * SCALE))
    draw = ImageDraw.Draw(drawing)
    for path in paths:
        pen_path(draw, [((x + shift) * SCALE, y * SCALE) for x, y in path], pen * SCALE, rng)
    coverage = np.asarray(drawing.resize((width, side), Image.Resampling.BOX), dtype=np.float32) / 255
    start = (paths[0][0][0] + shift, paths[0][0][1])
    end = (paths[-1][-1][0] + shift, paths[-1][-1][1])
    return _cropped(Drawn(str(digit), coverage, start, end))


def mnist_digit(image: np.ndarray, label: int, height: float, rng: np.random.Generator) -> Drawn:
    """An MNIST training digit ((28, 28) uint8) upscaled bicubically and inked with a soft threshold."""
    side = max(8, round(28 * height / 20))
    big = Image.fromarray(np.ascontiguousarray(image)).resize((side, side), Image.Resampling.BICUBIC)
    level = rng.uniform(0.3, 0.5)
    coverage = np.clip((np.asarray(big, dtype=np.float32) / 255 - level) / 0.25 + 0.5, 0, 1)
    if rng.random() < 0.5:  # a heavier pen
        grown = Image.fromarray(to_uint8(coverage * 255)).filter(ImageFilter.MaxFilter(3))
        coverage = np.asarray(grown, dtype=np.float32) / 255
    x, y, w, h = ink_box(coverage >= INK)
    return _cropped(Drawn(str(label), coverage, (float(x + w), float(y + h / 2)), (float(x), float(y + h / 2))))


def mark(char: str, height: float, pen: float, rng: np.random.Generator) -> Drawn:
    """A decimal point or a dash, written with the same pen as the digits."""
    side = int(np.ceil(height))
    drawing = Image.new("L", (side * SCALE, side * SCALE))
    draw = ImageDraw.Draw(drawing)
    if char == ".":
        r = max(pen * rng.uniform(0.6, 0.9), 1.6) * SCALE
        c = (side / 2 * SCALE, (side - pen - 1) * SCALE)
        draw.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=255)
    else:
        y = side * rng.uniform(0.45, 0.6) * SCALE
        draw.line(
            [(pen * SCALE, y), ((side * rng.uniform(0.35, 0.55) + pen) * SCALE, y)], fill=255, width=round(pen * SCALE)
        )
    coverage = np.asarray(drawing.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255
    return _cropped(Drawn(char, coverage, (0.0, 0.0), (0.0, 0.0)))


def _cropped(drawn: Drawn) -> Drawn:
    """The patch cut to the box of its ink (the pen's ends moved with it)."""
    x, y, w, h = ink_box(drawn.coverage >= INK)
    if not w:
        return drawn
    patch = np.ascontiguousarray(drawn.coverage[y : y + h, x : x + w])
    move = lambda p: (p[0] - x, p[1] - y)  # noqa: E731
    return Drawn(drawn.char, patch, move(drawn.start), move(drawn.end))


# ---- a number on a page ----


@dataclass
class Put:
    """A character on the page: its patch's top left corner and its line."""

    drawn: Drawn
    top: int
    left: int
    line: int

    def mask(self, height: int, width: int) -> np.ndarray:
        page = np.zeros((height, width), dtype=bool)
        h, w = self.drawn.coverage.shape
        page[self.top : self.top + h, self.left : self.left + w] = self.drawn.coverage >= INK
        return page

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.drawn.coverage.shape  # cropped to its ink: the patch is the box
        return (self.left, self.top, w, h)


def gap_kind(a: np.ndarray, b: np.ndarray, joined: bool, size: float) -> str:
    """How two neighbours' page masks (bool, same shape) stand: overlapping, touching, tight or spaced."""
    rows = np.flatnonzero(a.any(axis=1) & b.any(axis=1))
    if rows.size:
        right = a.shape[1] - 1 - np.argmax(a[rows, ::-1], axis=1)
        left = np.argmax(b[rows], axis=1)
        clearance = int((left - right - 1).min())
    else:
        clearance = int(np.flatnonzero(b.any(axis=0))[0] - np.flatnonzero(a.any(axis=0))[-1] - 1)
    if clearance < 0:
        return "overlapping"
    grown = np.asarray(Image.fromarray(a.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    if joined or (grown & b).any():
        return "touching"
    return "tight" if clearance <= 0.1 * size else "spaced"


WORST = ("spaced", "tight", "touching", "overlapping")


def make_hand_number(
    rng: np.random.Generator,
    source: HandSource,
    *,
    lengths: tuple[int, int] = (1, 12),
    marks: float = 0.2,
    background: str | None = None,
    fmt: str | None = None,
) -> NumberImage:
    """One number image and its truth; the same rng state, the same bytes. `background` and `fmt` (one of
    BACKGROUNDS and FORMATS) are drawn at random unless given."""
    hand = HANDS[int(rng.integers(2))] if source.images is not None else "strokes"
    drawn_background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    background = background or drawn_background
    size = float(rng.uniform(30, 90))
    unit = size / 20  # page pixels per MNIST pixel of a 20 px high digit
    pen = size * rng.uniform(0.06, 0.14) * (1.6 if background in ("sticky", "whiteboard") else 1.0)
    slant = float(rng.uniform(-0.1, 0.35))
    mean_gap = float(rng.uniform(-4, 20))
    n_lines = int(rng.choice([1, 2], p=[0.75, 0.25]))
    mark_char = "." if rng.random() < 0.5 else "-"
    puts: list[Put] = []
    joins: list[tuple[Point, Point]] = []
    joined_pairs: set[int] = set()
    for line in range(n_lines):
        count = int(rng.integers(lengths[0], lengths[1] + 1))
        baseline = size * (1.2 + 1.7 * line)
        x = size * rng.uniform(0.3, 0.8)
        previous: Put | None = None
        for k in range(count):
            if k and rng.random() < marks / max(1, count - 1):
                drawn = mark(mark_char, size, pen, rng)
                left = round(x + size * rng.uniform(0.08, 0.2))
                top = round(baseline - drawn.coverage.shape[0]) if mark_char == "." else round(baseline - 0.5 * size)
                puts.append(Put(drawn, top, left, line))
                x = left + drawn.coverage.shape[1] + size * rng.uniform(0.08, 0.2)
                previous = None
            digit_height = size * rng.uniform(0.9, 1.1)
            if hand == "strokes":
                drawn = stroke_digit(int(rng.integers(10)), digit_height, pen, slant, rng)
            else:
                i = int(rng.integers(len(source.images)))  # type: ignore[arg-type]
                drawn = mnist_digit(source.images[i], int(source.labels[i]), digit_height, rng)  # type: ignore[index]
            shift = float(np.clip(mean_gap + rng.normal(0, 1.5), -4, 20)) * unit
            left = round(x + shift) if previous is not None else round(x)
            top = round(baseline - drawn.coverage.shape[0] + size * rng.normal(0, 0.03))
            put = Put(drawn, top, left, line)
            if previous is not None and hand == "strokes" and mean_gap < 8 and rng.random() < 0.3:
                joins.append(((previous.left + previous.drawn.end[0], previous.top + previous.drawn.end[1]),
                              (left + drawn.start[0], top + drawn.start[1])))  # fmt: skip
                joined_pairs.add(len(puts))
            puts.append(put)
            x = left + drawn.coverage.shape[1]
            previous = put
    height, width, pad = _frame(puts, size, rng)
    for put in puts:
        put.top += pad[0]
        put.left += pad[1]
    joins = [((a[0] + pad[1], a[1] + pad[0]), (b[0] + pad[1], b[1] + pad[0])) for a, b in joins]
    coverage = np.zeros((height, width), dtype=np.float32)
    for put in puts:
        h, w = put.drawn.coverage.shape
        window = coverage[put.top : put.top + h, put.left : put.left + w]
        np.maximum(window, put.drawn.coverage, out=window)
    if joins:
        np.maximum(coverage, _joins(joins, height, width, pen), out=coverage)
    gap = "spaced"
    for i in range(1, len(puts)):
        a, b = puts[i - 1], puts[i]
        if a.line == b.line and a.drawn.char.isdigit() and b.drawn.char.isdigit():
            kind = gap_kind(a.mask(height, width), b.mask(height, width), i in joined_pairs, size)
            gap = max(gap, kind, key=WORST.index)
    data, encoded_as = RENDERERS[background](coverage, rng, fmt)
    digits = [Glyph(int(p.drawn.char), p.box, p.line) for p in puts if p.drawn.char.isdigit()]
    found_marks = [Mark(p.drawn.char, p.box, p.line) for p in puts if not p.drawn.char.isdigit()]
    text = "\n".join(
        "".join(p.drawn.char for p in puts if p.line == n and p.drawn.char.isdigit()) for n in range(n_lines)
    )
    return NumberImage(data, encoded_as, text, digits, found_marks, gap, f"{background}/{hand}", width, height)


def _frame(puts: list[Put], size: float, rng: np.random.Generator) -> tuple[int, int, tuple[int, int]]:
    """The page's height and width with margins around the ink, and the (down, right) shift of the ink."""
    top = min(p.top for p in puts)
    left = min(p.left for p in puts)
    bottom = max(p.top + p.drawn.coverage.shape[0] for p in puts)
    right = max(p.left + p.drawn.coverage.shape[1] for p in puts)
    margins = [round(size * rng.uniform(0.4, 1.2)) for _ in range(4)]
    return (
        bottom - top + margins[0] + margins[2],
        right - left + margins[1] + margins[3],
        (margins[0] - top, margins[3] - left),
    )


def _joins(joins: list[tuple[Point, Point]], height: int, width: int, pen: float) -> np.ndarray:
    """Coverage of the cursive joins: a thin sagging stroke from one digit's last point to the next's first."""
    drawing = Image.new("L", (width * SCALE, height * SCALE))
    draw = ImageDraw.Draw(drawing)
    for (x0, y0), (x1, y1) in joins:
        sag = 0.25 * abs(x1 - x0) + 2
        points = [(x0, y0), ((x0 + x1) / 2, max(y0, y1) + sag), (x1, y1)]
        draw.line([(x * SCALE, y * SCALE) for x, y in smooth([(*p, 0)[:2] for p in points], 3)], fill=255,
                  width=max(1, round(0.7 * pen * SCALE)), joint="curve")  # fmt: skip
    return np.asarray(drawing.resize((width, height), Image.Resampling.BOX), dtype=np.float32) / 255


# ---- pages ----


def _inked(coverage: np.ndarray, page: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32: ink of `colour` over the `page` (h, w, 3) by coverage."""
    c = coverage[..., None]
    return page * (1 - c) + colour * c


def _rules(height: int, width: int, step: float, offset: float, vertical: bool) -> np.ndarray:
    """(h, w) float32 in [0, 1]: thin printed lines every `step` px (horizontal, and vertical too)."""
    y = (np.arange(height)[:, None] - offset) % step
    out = np.broadcast_to(np.clip(1.3 - np.minimum(y, step - y), 0, 1), (height, width)).astype(np.float32)
    if vertical:
        x = (np.arange(width)[None, :] - offset) % step
        out = np.maximum(out, np.clip(1.3 - np.minimum(x, step - x), 0, 1))
    return out


def _encoded(rgb: np.ndarray, rng: np.random.Generator, fmt: str | None, noise: float = 2.0) -> tuple[bytes, str]:
    """The page with sensor noise, encoded as `fmt` (PNG, JPEG or WEBP; None: one at random)."""
    rgb = rgb + rng.normal(0, noise, rgb.shape).astype(np.float32)
    image = Image.fromarray(to_uint8(rgb))
    drawn = FORMATS[int(rng.integers(len(FORMATS)))]
    fmt = fmt or drawn
    options = {} if fmt == "PNG" else {"quality": int(rng.integers(70, 95))}
    return encode(image, fmt, **options), fmt


def render_lined(coverage: np.ndarray, rng: np.random.Generator, fmt: str | None = None) -> tuple[bytes, str]:
    """Ruled notebook paper (blue rules, a red margin), a blue or black ballpoint."""
    h, w = coverage.shape
    page: np.ndarray = np.full((h, w, 3), (250, 248, rng.uniform(235, 248)), dtype=np.float32)
    rules = _rules(h, w, rng.uniform(22, 45), rng.uniform(0, 20), vertical=False)[..., None] * 0.6
    page = page * (1 - rules) + np.array([120, 160, 220], np.float32) * rules
    margin = int(rng.integers(2, max(3, w // 8)))
    page[:, margin : margin + 2] = (225, 120, 120)
    ink = np.array([(20, 40, 140), (25, 25, 30)][int(rng.integers(2))], np.float32)
    return _encoded(_inked(coverage, page, ink), rng, fmt)


def render_grid(coverage: np.ndarray, rng: np.random.Generator, fmt: str | None = None) -> tuple[bytes, str]:
    """Squared paper: a light grey or blue grid, a dark pen."""
    h, w = coverage.shape
    page: np.ndarray = np.full((h, w, 3), 246, dtype=np.float32)
    grid = _rules(h, w, rng.uniform(12, 30), rng.uniform(0, 10), vertical=True)[..., None] * rng.uniform(0.3, 0.6)
    page = page * (1 - grid) + np.array([(150, 150, 150), (130, 170, 210)][int(rng.integers(2))], np.float32) * grid
    return _encoded(_inked(coverage, page, np.array([30, 30, 40], np.float32)), rng, fmt)


def render_sticky(coverage: np.ndarray, rng: np.random.Generator, fmt: str | None = None) -> tuple[bytes, str]:
    """A coloured sticky note with a soft shadow towards one edge, a black marker."""
    h, w = coverage.shape
    colour = np.array([(255, 235, 120), (255, 170, 200), (170, 235, 170), (150, 210, 250)][int(rng.integers(4))])
    fall = np.linspace(1.0, rng.uniform(0.8, 0.95), h, dtype=np.float32)[:, None, None]
    page = np.broadcast_to(colour.astype(np.float32), (h, w, 3)) * fall
    return _encoded(_inked(coverage, page, np.array([15, 15, 20], np.float32)), rng, fmt)


def render_pencil(coverage: np.ndarray, rng: np.random.Generator, fmt: str | None = None) -> tuple[bytes, str]:
    """Pencil on white: grey graphite, low contrast, grainy strokes."""
    _h, _w = coverage.shape
    paper = rng.uniform(225, 245)
    grain = rng.uniform(0.55, 1.0, coverage.shape).astype(np.float32)
    lead = rng.uniform(110, 150)
    values = paper - (paper - lead) * coverage * grain
    rgb = np.repeat(values[..., None], 3, axis=2)
    return _encoded(rgb, rng, fmt, noise=3.0)


def render_whiteboard(coverage: np.ndarray, rng: np.random.Generator, fmt: str | None = None) -> tuple[bytes, str]:
    """A photo of a whiteboard: grey-white, a marker, a bright glare that washes out the ink under it, blur."""
    h, w = coverage.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(0.2, 0.5) * max(h, w)
    glare = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))[..., None] * rng.uniform(0.3, 0.7)
    base = rng.uniform(190, 225) + 15 * (x / w)[..., None]
    page = np.repeat(base, 3, axis=2)
    ink = np.array([(20, 20, 30), (20, 50, 170), (180, 30, 30), (20, 120, 50)][int(rng.integers(4))], np.float32)
    rgb = _inked(coverage, page, ink)
    rgb = rgb * (1 - glare) + 255 * glare
    blurred = Image.fromarray(to_uint8(rgb)).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    return _encoded(np.asarray(blurred, dtype=np.float32), rng, fmt, noise=4.0)


RENDERERS = {
    "lined": render_lined,
    "grid": render_grid,
    "sticky": render_sticky,
    "pencil": render_pencil,
    "whiteboard": render_whiteboard,
}


def sample_hand_numbers(
    n: int, seed: int, npz: Path | str | None = None, lengths: tuple[int, int] = (1, 12)
) -> list[NumberImage]:
    """`n` numbers; number i depends on (seed, i) only."""
    source = HandSource.load(npz)
    return [make_hand_number(np.random.default_rng([seed, i]), source, lengths=lengths) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.handwriting", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the files and truth.jsonl to")
    parser.add_argument("--n", type=int, default=24, help="how many numbers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--npz", type=Path, default=os.environ.get("MNIST_NPZ") or None, help="MNIST .npz")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
    with (args.out / "truth.jsonl").open("w") as truth:
        for i, number in enumerate(sample_hand_numbers(args.n, args.seed, args.npz)):
            name = f"{i:03d}-{number.style.replace('/', '-')}-{number.gap}.{suffix[number.format]}"
            (args.out / name).write_bytes(number.data)
            truth.write(json.dumps(number.truth(name)) + "\n")
    print(f"wrote {args.n} numbers and truth.jsonl to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
