"""Images of whole numbers with their ground truth, to measure a reader of numbers (POST /v1/read) on.

A number is 1 to 12 digits per line on 1 to 3 lines, with punctuation marks (".", ",", "-", "/") between some
digits. Handwritten digits are MNIST test digits given a pen's crisp strokes (tools.uploads.ink); printed
digits are drawn with the fonts the machine has. Neighbouring digits are spaced, tight, touching (their ink
in contact) or overlapping by a few pixels; the digits' height, baseline, slant and the rotation of the whole
number vary. The number is then rendered as a browser canvas drawing, a scan, a phone photo (JPEG or HEIC)
or a print, and encoded.

The truth is exact: each character is drawn alone into its own coverage patch, slanted and rotated there,
and placed on the page at whole pixels, so its box is the tight box of its own ink (coverage >= INK) in the
final image's pixels. Photos stored sideways with an EXIF orientation have their boxes in the upright image,
as a viewer shows it.

    python -m tools.numbers --out DIR --n 24 [--seed 0] [--npz PATH] [--boxes]
"""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from tools.uploads import (
    ORIENTATION,
    PEN_COLOURS,
    SAMPLE,
    STORED_FOR,
    canvas_rgba,
    encode,
    ink,
    lighting,
    on_paper,
    paper,
    to_uint8,
)

STYLES = ("canvas", "scan", "photo", "photo_heic", "print")
GAPS = ("spaced", "tight", "touching", "overlapping")
MARKS = ".,-/"
INK = 0.5  # a pixel is ink when at least half covered: the boxes, the contact of neighbours and the tests use it
FONT_ROOTS = (Path("/usr/share/fonts"),)
SUFFIXES = {"PNG": "png", "JPEG": "jpg", "HEIF": "heic"}

Box = tuple[int, int, int, int]  # x, y, width, height in the image's pixels
AnyFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Glyph:
    """One digit of a number: its value, the tight box of its ink and its line (0 at the top)."""

    digit: int
    box: Box
    line: int


@dataclass(frozen=True)
class Mark:
    """One punctuation mark between digits: the character (one of MARKS), the tight box of its ink, its line."""

    char: str
    box: Box
    line: int


@dataclass
class NumberImage:
    """An encoded image of a number and its truth; sizes and boxes are the upright image's (EXIF applied)."""

    data: bytes
    format: str  # Pillow's name of the file format: PNG, JPEG or HEIF
    text: str  # the digits left to right, lines joined by "\n", marks left out
    digits: list[Glyph]
    marks: list[Mark]
    gap: str
    style: str
    width: int
    height: int

    @property
    def n_digits(self) -> int:
        return len(self.digits)

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.format]

    def truth(self, file: str) -> dict[str, Any]:
        """The truth as one JSON-ready dict (a line of truth.jsonl)."""
        return {
            "file": file,
            "format": self.format,
            "style": self.style,
            "gap": self.gap,
            "text": self.text,
            "width": self.width,
            "height": self.height,
            "digits": [{"digit": g.digit, "box": list(g.box), "line": g.line} for g in self.digits],
            "marks": [{"char": m.char, "box": list(m.box), "line": m.line} for m in self.marks],
        }


# ---- where digits come from ----


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


@dataclass(frozen=True)
class DigitSource:
    """Handwritten digits (MNIST test digits: images (N, 28, 28) uint8 white on black, labels (N,)) and the
    fonts printed digits are drawn with (sorted; empty: Pillow's default font)."""

    images: np.ndarray
    labels: np.ndarray
    fonts: tuple[Path, ...] = ()

    @classmethod
    def load(cls, npz: Path | str | None = None, fonts: Sequence[Path] | None = None) -> DigitSource:
        """MNIST's test set from a Keras `.npz` (x_test, y_test), else the committed sample (x, y); the
        machine's fonts unless `fonts` are given."""
        with np.load(npz or SAMPLE) as data:
            key = "x_test" if "x_test" in data else "x"
            images, labels = data[key], data["y_test" if key == "x_test" else "y"]
        return cls(images, labels.astype(np.int64), tuple(find_fonts() if fonts is None else fonts))


# ---- one character alone: a coverage patch and where its baseline is ----


@dataclass(frozen=True)
class Piece:
    """One character drawn alone: coverage (h, w) float32 in [0, 1], and its anchor (x, y), a point on the
    baseline in the patch's pixels (continuous coordinates: the patch spans 0..w, 0..h)."""

    char: str
    coverage: np.ndarray
    anchor: tuple[float, float]


def crop(piece: Piece) -> Piece:
    """The piece with its empty borders cut off (the anchor moved with it)."""
    rows, cols = np.flatnonzero(piece.coverage.any(axis=1)), np.flatnonzero(piece.coverage.any(axis=0))
    if rows.size == 0:
        return piece
    top, left = int(rows[0]), int(cols[0])
    coverage = piece.coverage[top : rows[-1] + 1, left : cols[-1] + 1]
    return Piece(piece.char, np.ascontiguousarray(coverage), (piece.anchor[0] - left, piece.anchor[1] - top))


def ink_box(mask: np.ndarray) -> Box:
    """The tight box (x, y, width, height) of a (h, w) bool mask's True pixels; (0, 0, 0, 0) when none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def on_baseline(char: str, coverage: np.ndarray) -> Piece:
    """A piece whose anchor is the bottom left of its ink: a digit written standing on the line."""
    x, y, _, height = ink_box(coverage >= INK)
    return crop(Piece(char, coverage.astype(np.float32), (float(x), float(y + height))))


def pen_digit(image: np.ndarray, label: int, height: float, rng: np.random.Generator, bold: float) -> Piece:
    """An MNIST digit ((28, 28) uint8) with a pen's strokes, its ink `height` pixels high."""
    side = max(8, round(28 * height / 20))  # MNIST fits each digit's ink in the middle 20 of its 28 pixels
    return on_baseline(str(label), ink(image, side, rng, bold=bold))


def stroke_width(mask: np.ndarray) -> float:
    """A pen's width in pixels from the (h, w) bool mask of its ink: the area over half the boundary."""
    inner = mask.copy()
    inner[1:-1, 1:-1] &= mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    boundary = int(mask.sum() - inner[1:-1, 1:-1].sum())
    return 2.0 * float(mask.sum()) / max(1, boundary)


def _stroke(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], width: float) -> None:
    """A polyline with round ends and joints, as a pen or a canvas's round line cap draws it."""
    draw.line(points, fill=255, width=max(1, round(width)), joint="curve")
    r = width / 2
    for x, y in points:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def pen_mark(char: str, height: float, pen: float, rng: np.random.Generator) -> Piece:
    """A punctuation mark as a pen of width `pen` writes it beside digits `height` pixels high: a dot and a
    comma at the baseline (the comma's tail below it), a dash at mid-height, a slash as high as the digits."""
    scale = 4  # drawn 4x larger and reduced: antialiased edges like the digits'
    pen = max(pen, 3.0)  # thinner, a dot has no pixel half covered
    side = round(1.6 * height + 4 * pen)
    x0, base = 2 * pen, 0.8 * side  # the anchor: left of the mark, on the baseline
    if char == ".":
        d = pen * rng.uniform(1.1, 1.5)
        points = [(x0 + d / 2, base - d / 2 - rng.uniform(0, 0.05) * height)]
        width = d
    elif char == ",":
        top = base - pen / 2 - rng.uniform(0, 0.05) * height
        points = [(x0 + 0.1 * height, top), (x0 + 0.08 * height, top + 0.12 * height), (x0, base + 0.2 * height)]
        width = pen * 1.1
    elif char == "-":
        mid, length = base - height * rng.uniform(0.4, 0.55), height * rng.uniform(0.3, 0.5)
        points = [(x0, mid), (x0 + length, mid - length * rng.uniform(-0.1, 0.1))]
        width = pen
    else:  # "/"
        points = [(x0, base), (x0 + height * rng.uniform(0.3, 0.5), base - height * rng.uniform(0.9, 1.05))]
        width = pen
    drawing = Image.new("L", (side * scale, side * scale))
    _stroke(ImageDraw.Draw(drawing), [(x * scale, y * scale) for x, y in points], width * scale)
    coverage = np.asarray(drawing.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255
    return crop(Piece(char, coverage, (x0, base)))


def load_font(path: Path | None, size: int) -> AnyFont:
    """The font at `path` in `size` pixels; Pillow's default font when there is no path."""
    return ImageFont.load_default(size) if path is None else ImageFont.truetype(str(path), size)


def font_size(path: Path | None, height: float) -> int:
    """The font size whose digit 0 is `height` pixels high."""
    top, bottom = load_font(path, 100).getbbox("0", anchor="ls")[1::2]
    return max(6, round(100 * height / max(1.0, float(bottom - top))))


def type_piece(font: AnyFont, char: str) -> Piece:
    """A character as the font prints it, the anchor on its baseline at the left of its ink."""
    left, top, right, bottom = (round(v) for v in font.getbbox(char, anchor="ls"))
    drawing = Image.new("L", (right - left + 4, bottom - top + 4))
    ImageDraw.Draw(drawing).text((2 - left, 2 - top), char, fill=255, font=font, anchor="ls")
    coverage = np.asarray(drawing, dtype=np.float32) / 255
    x = ink_box(coverage >= INK)[0]
    return crop(Piece(char, coverage, (float(x), float(2 - top))))


def warp(piece: Piece, matrix: np.ndarray) -> Piece:
    """The piece mapped by the (2, 2) float64 `matrix` (slant, then rotation) about its anchor, in a patch
    grown to hold it: the same map the whole number's drawing undergoes, so the truth follows the ink."""
    h, w = piece.coverage.shape
    ax, ay = piece.anchor
    corners = (np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) - (ax, ay)) @ matrix.T
    low = np.floor(corners.min(axis=0)) - 2
    high = np.ceil(corners.max(axis=0)) + 2
    size = (int(high[0] - low[0]), int(high[1] - low[1]))
    # Pillow asks, for each output point p, the input point: inverse @ (p + low) + anchor
    (a, b), (d, e) = np.linalg.inv(matrix)
    coefficients = (a, b, a * low[0] + b * low[1] + ax, d, e, d * low[0] + e * low[1] + ay)
    image = Image.fromarray(piece.coverage).transform(
        size, Image.Transform.AFFINE, coefficients, Image.Resampling.BICUBIC
    )
    coverage = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    coverage[coverage < 1 / 255] = 0  # bicubic ringing far from the ink
    return crop(Piece(piece.char, coverage, (float(-low[0]), float(-low[1]))))


def turn(degrees: float, slant: float = 0.0) -> np.ndarray:
    """The (2, 2) map that slants (the top to the right by `slant` of the height) and then rotates
    counter-clockwise by `degrees`, in image coordinates (y down)."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, s], [-s, c]]) @ np.array([[1.0, -slant], [0.0, 1.0]])


# ---- layout: pieces placed on the page ----


@dataclass
class Placed:
    """A piece on the page: its coverage (h, w) float32 with its top left corner at (left, top)."""

    char: str
    line: int
    coverage: np.ndarray
    top: int
    left: int

    def mask(self) -> np.ndarray:
        """(h, w) bool: the piece's ink."""
        return self.coverage >= INK

    @property
    def box(self) -> Box:
        """The tight box of the ink in page pixels."""
        x, y, w, h = ink_box(self.mask())
        return (x + self.left, y + self.top, w, h)

    def right_edges(self) -> dict[int, int]:
        """Page row -> the rightmost ink column in that row, for the rows with ink."""
        mask = self.mask()
        rows = np.flatnonzero(mask.any(axis=1))
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        return {self.top + int(r): self.left + int(last[r]) for r in rows}


@dataclass
class Layout:
    """A number laid out on a height x width page, before rendering; `size` is the digits' nominal height."""

    height: int
    width: int
    size: float
    items: list[Placed] = field(default_factory=list)

    def coverage(self) -> np.ndarray:
        """(height, width) float32 ink coverage of the whole page: where pieces overlap, the darker one."""
        page = np.zeros((self.height, self.width), dtype=np.float32)
        for item in self.items:
            h, w = item.coverage.shape
            window = page[item.top : item.top + h, item.left : item.left + w]
            np.maximum(window, item.coverage, out=window)
        return page

    def page_mask(self, index: int) -> np.ndarray:
        """(height, width) bool: the ink of item `index` alone, on the page."""
        item = self.items[index]
        page = np.zeros((self.height, self.width), dtype=bool)
        h, w = item.coverage.shape
        page[item.top : item.top + h, item.left : item.left + w] = item.mask()
        return page

    def text(self) -> str:
        """The digits left to right, lines joined by a newline, marks left out."""
        lines = max((item.line for item in self.items), default=0) + 1
        return "\n".join("".join(i.char for i in self.items if i.line == n and i.char.isdigit()) for n in range(lines))


@dataclass(frozen=True)
class Geometry:
    """How a style's numbers are drawn: digit height in pixels, the most rotation either way in degrees,
    the writer's slant (shear: the top's shift over the height), and the margins, in digit heights."""

    heights: tuple[float, float]
    rotation: float
    slant: tuple[float, float]
    margins: tuple[float, float]


GEOMETRY = {
    "canvas": Geometry((40, 110), 3.0, (-0.1, 0.3), (0.2, 1.0)),
    "scan": Geometry((36, 110), 3.0, (-0.1, 0.3), (0.4, 1.5)),
    "photo": Geometry((44, 110), 5.0, (-0.1, 0.3), (0.8, 2.0)),
    "photo_heic": Geometry((44, 110), 5.0, (-0.1, 0.3), (0.8, 2.0)),
    "print": Geometry((18, 64), 1.5, (0.0, 0.0), (0.15, 0.6)),
}


def _characters(rng: np.random.Generator, count: int, marks: float, mark: str) -> list[str]:
    """A line's characters: `count` "d" placeholders, a mark between some of them when `marks` fires."""
    chars = ["d"] * count
    if count < 2 or rng.random() >= marks:
        return chars
    spots = [i for i in range(1, count) if rng.random() < 0.3] or [int(rng.integers(1, count))]
    for i in reversed(spots):
        chars.insert(i, mark)
    return chars


def _spacing(rng: np.random.Generator, gap: str, size: float, printed: bool) -> tuple[str, int]:
    """How the next digit is put after the previous one: a rule and its clearance in pixels.

    "box": clear of every earlier box on the line; "line": clear of the line's ink, row by row;
    "previous": clear of the previous piece's ink, row by row (0: in contact, negative: overlapping).
    """
    if gap == "spaced":
        return "box", max(2, round(size * (rng.uniform(0.12, 0.45) if printed else rng.uniform(0.2, 0.6))))
    if gap == "tight":
        return "line", int(rng.integers(1, max(1, round(0.1 * size)) + 1))
    if gap == "touching":
        return "previous", 0
    # "overlapping": 1 to 4 pixels of a 20-pixel-high MNIST digit, at this digit's scale
    return "previous", -max(1, round(int(rng.integers(1, 5)) * size / 20))


def _left_for(rule: str, clearance: int, line: list[Placed], piece: Piece, top: int) -> int:
    """The page column of the piece's patch such that, with its top at `top`, it keeps `clearance` to the
    line's ink by `rule` (see _spacing); rows with no ink on both sides fall back to the box rule."""
    mask = piece.coverage >= INK
    if rule != "box":
        edges: dict[int, int] = {}
        for item in line if rule == "line" else line[-1:]:
            for row, col in item.right_edges().items():
                edges[row] = max(col, edges.get(row, col))
        first = np.argmax(mask, axis=1)
        rows = [int(r) for r in np.flatnonzero(mask.any(axis=1))]
        need = [edges[top + r] - int(first[r]) for r in rows if top + r in edges]
        if need:
            return max(need) + 1 + clearance
    right = max(item.box[0] + item.box[2] - 1 for item in line)
    return right + 1 + clearance - ink_box(mask)[0]


@dataclass(frozen=True)
class Baseline:
    """A line's baseline on the page, tilted with the number: y = offset - x * tilt."""

    offset: float
    tilt: float

    def top(self, piece: Piece, left: int, lift: float) -> int:
        """The top row of the piece's patch, at column `left`, that puts its anchor `lift` pixels under the line."""
        return round(self.offset - (left + piece.anchor[0]) * self.tilt + lift - piece.anchor[1])


def _beside(
    spacing: tuple[str, int], line: list[Placed], piece: Piece, baseline: Baseline, lift: float
) -> tuple[int, int]:
    """The (top, left) of the piece's patch after the line's last piece, `spacing` (rule, clearance) apart."""
    rule, clearance = spacing
    # the baseline is tilted, so the row depends on the column: settle the column twice (the rule holds for the last)
    left = _left_for(rule, clearance, line, piece, baseline.top(piece, max(i.box[0] + i.box[2] for i in line), lift))
    top = baseline.top(piece, left, lift)
    return top, _left_for(rule, clearance, line, piece, top)


class Writer:
    """Draws a number's characters as pieces: MNIST digits with a pen, or a font's digits."""

    def __init__(self, rng: np.random.Generator, source: DigitSource, size: float, printed: bool, bold: float):
        self.rng, self.source, self.size, self.printed, self.bold = rng, source, size, printed, bold
        self.font: AnyFont | None = None
        self.pen = 0.0
        if printed:
            path = source.fonts[int(rng.integers(len(source.fonts)))] if source.fonts else None
            self.font = load_font(path, font_size(path, size))

    def digit(self, jitter: float) -> Piece:
        """A digit: a random MNIST test digit, `jitter` times the height; or a random digit in the font."""
        if self.font is not None:
            return type_piece(self.font, str(int(self.rng.integers(10))))
        index = int(self.rng.integers(len(self.source.images)))
        label = int(self.source.labels[index])
        piece = pen_digit(self.source.images[index], label, self.size * jitter, self.rng, self.bold)
        if not self.pen:  # the marks are written with the pen of the first digit
            self.pen = stroke_width(piece.coverage >= INK)
        return piece

    def mark(self, char: str) -> Piece:
        """A punctuation mark, by the font or the pen."""
        if self.font is not None:
            return type_piece(self.font, char)
        return pen_mark(char, self.size, self.pen or 0.12 * self.size, self.rng)


def layout(
    rng: np.random.Generator,
    source: DigitSource,
    *,
    style: str = "canvas",
    gap: str = "spaced",
    lines: int = 1,
    length: int | tuple[int, int] = (1, 12),
    marks: float = 0.3,
    printed: bool | None = None,
) -> Layout:
    """A number laid out on its page: `lines` lines of `length` digits each (or a count drawn from the
    range, per line), a mark between some digits in a fraction `marks` of numbers, neighbouring digits
    `gap` apart. Handwritten (MNIST) unless `printed` (default: the print style only)."""
    if gap not in GAPS or style not in GEOMETRY:
        raise ValueError(f"unknown gap {gap!r} or style {style!r}")
    geometry = GEOMETRY[style]
    printed = style == "print" if printed is None else printed
    size = float(rng.uniform(*geometry.heights))
    low, high = (length, length) if isinstance(length, int) else length
    degrees = float(rng.uniform(-geometry.rotation, geometry.rotation))
    slant = float(rng.uniform(*geometry.slant)) if not printed else 0.0
    writer = Writer(rng, source, size, printed, bold=float(rng.uniform(0, 0.02)) if style == "canvas" else 0.0)
    mark = MARKS[int(rng.integers(len(MARKS)))]  # a number uses one kind of mark: 12.50, 1,000, 555-1234
    spacing = size * (rng.uniform(1.3, 1.5) if printed else rng.uniform(1.45, 1.9))  # baseline to baseline
    items: list[Placed] = []
    for n in range(lines):
        baseline = Baseline(n * spacing / np.cos(np.radians(degrees)), np.tan(np.radians(degrees)))
        indent = 0.0 if printed else size * rng.uniform(0, 0.5)
        start = indent * np.cos(np.radians(degrees)) + n * spacing * np.sin(np.radians(degrees))
        line: list[Placed] = []
        for char in _characters(rng, int(rng.integers(low, high + 1)), marks, mark):
            raw = writer.digit(1.0 if printed else rng.uniform(0.92, 1.08)) if char == "d" else writer.mark(char)
            piece = warp(raw, turn(degrees, 0.0 if printed else slant + rng.uniform(-0.05, 0.05)))
            lift = 0.0 if printed else size * rng.uniform(-0.05, 0.05)  # baseline jitter
            if not line:
                left = round(start - piece.anchor[0])
                top = baseline.top(piece, left, lift)
            elif char == "d" and line[-1].char.isdigit():
                top, left = _beside(_spacing(rng, gap, size, printed), line, piece, baseline, lift)
            else:  # a mark, or the digit after it: beside it, not under it
                top, left = _beside(("box", max(1, round(size * rng.uniform(0.05, 0.2)))), line, piece, baseline, lift)
            line.append(Placed(raw.char, n, piece.coverage, top, left))
        items += line
    return _framed(rng, items, size, geometry, photo=style.startswith("photo"))


def _framed(rng: np.random.Generator, items: list[Placed], size: float, geometry: Geometry, photo: bool) -> Layout:
    """The items moved onto a page with margins around them; a photo's page is a 4:3 or 3:4 frame."""
    top = min(i.top for i in items)
    left = min(i.left for i in items)
    bottom = max(i.top + i.coverage.shape[0] for i in items)
    right = max(i.left + i.coverage.shape[1] for i in items)
    margins = [round(size * rng.uniform(*geometry.margins)) for _ in range(4)]  # top, right, bottom, left
    height = bottom - top + margins[0] + margins[2]
    width = right - left + margins[1] + margins[3]
    if photo:  # a phone's frame, held to fit the number: more paper around it
        if width >= height:
            grow_h, grow_w = max(0, round(width * 3 / 4) - height), max(0, round(height * 4 / 3) - width)
        else:
            grow_h, grow_w = max(0, round(width * 4 / 3) - height), max(0, round(height * 3 / 4) - width)
        extra_top, extra_left = int(rng.integers(grow_h + 1)), int(rng.integers(grow_w + 1))
        margins[0] += extra_top
        margins[3] += extra_left
        height, width = height + grow_h, width + grow_w
    for item in items:
        item.top += margins[0] - top
        item.left += margins[3] - left
    return Layout(height, width, size, items)


# ---- rendering: the page as a canvas, a scan, a photo or a print ----


def _exif(orientation: int) -> bytes:
    """A phone's EXIF block with the given Orientation tag."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 13"  # Make, Model
    return exif.tobytes()


def render_canvas(coverage: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A browser canvas's PNG: a black or coloured pen, the background transparent or filled white."""
    colour: Sequence[float] = (0, 0, 0)
    if rng.random() < 0.5:
        pen = np.asarray(PEN_COLOURS[int(rng.integers(len(PEN_COLOURS)))]) + rng.integers(-20, 21, 3)
        colour = np.clip(pen, 0, 255).tolist()
    image = Image.fromarray(canvas_rgba(coverage, colour))
    if rng.random() < 0.5:  # the page filled the canvas white before drawing
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return encode(image, "PNG"), "PNG"


def render_scan(coverage: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A flatbed scan: textured off-white paper, uneven ink, grey or a warm colour scan, JPEG."""
    height, width = coverage.shape
    sheet = paper(height, width, rng, rng.uniform(205, 240), rng.uniform(2, 5))
    values = on_paper(coverage, sheet, rng.uniform(25, 75))
    values += 6 * rng.normal(0, 1, values.shape).astype(np.float32) * coverage  # ink is uneven too
    image = Image.fromarray(to_uint8(values))
    if rng.random() < 0.3:
        image = Image.fromarray(to_uint8(values[..., None] * (1.0, rng.uniform(0.96, 0.99), rng.uniform(0.88, 0.95))))
    dpi = int(rng.choice([150, 200, 300, 600]))
    return encode(image, "JPEG", quality=int(rng.integers(50, 86)), dpi=(dpi, dpi)), "JPEG"


def photographed(coverage: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phone's picture of the page, upright: paper under uneven, tinted light; the sheet a little tilted
    away from the lens, so the blur grows across the frame; sensor noise. RGB."""
    height, width = coverage.shape
    shade = on_paper(coverage, paper(height, width, rng, rng.uniform(200, 235), 1.0), rng.uniform(30, 80))
    tint = np.array([1.0, rng.uniform(0.93, 0.99), rng.uniform(0.82, 0.95)], dtype=np.float32)  # warm indoor light
    if rng.random() < 0.3:  # daylight: slightly bluish instead
        tint = np.array([rng.uniform(0.9, 0.96), rng.uniform(0.95, 0.99), 1.0], dtype=np.float32)
    picture = Image.fromarray(to_uint8(shade[..., None] * lighting(height, width, rng)[..., None] * tint))
    near = np.asarray(picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.0))), dtype=np.float32)
    far = np.asarray(picture.filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 2.2))), dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = (x / width - 0.5) * np.cos(angle) + (y / height - 0.5) * np.sin(angle)
    depth = np.clip(along + 0.5, 0, 1)[..., None]
    rgb = near * (1 - depth) + far * depth + rng.normal(0, rng.uniform(2, 5), (height, width, 3)).astype(np.float32)
    return Image.fromarray(to_uint8(rgb))


def render_photo(coverage: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A phone photo as JPEG, stored sideways or upside down with the EXIF orientation that turns it upright."""
    orientation = int(rng.choice([1, 3, 6, 8]))
    picture = photographed(coverage, rng)
    stored = picture if orientation == 1 else picture.transpose(STORED_FOR[orientation])
    return encode(stored, "JPEG", quality=int(rng.integers(75, 93)), exif=_exif(orientation)), "JPEG"


def render_heic(coverage: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """The same photo as an iPhone saves it: HEIC, upright or with an EXIF orientation."""
    orientation = int(rng.choice([1, 1, 1, 3, 6, 8]))
    picture = photographed(coverage, rng)
    stored = picture if orientation == 1 else picture.transpose(STORED_FOR[orientation])
    # x265's ultrafast preset: the same kind of stream for a decoder, at a fraction of the encoding time
    options = {"quality": int(rng.integers(60, 91)), "enc_params": {"preset": "ultrafast"}}
    return encode(stored, "HEIF", exif=_exif(orientation), **options), "HEIF"


def render_print(coverage: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A printed label or form: near-black toner on white, a grey PNG or an RGB JPEG."""
    values = on_paper(coverage, rng.uniform(240, 255), rng.uniform(0, 40))
    if rng.random() < 0.5:
        return encode(Image.fromarray(to_uint8(values)), "PNG"), "PNG"
    image = Image.fromarray(to_uint8(values)).convert("RGB")
    return encode(image, "JPEG", quality=int(rng.integers(80, 96))), "JPEG"


RENDERERS = {
    "canvas": render_canvas,
    "scan": render_scan,
    "photo": render_photo,
    "photo_heic": render_heic,
    "print": render_print,
}


def make_number(
    rng: np.random.Generator,
    source: DigitSource,
    *,
    style: str = "canvas",
    gap: str = "spaced",
    lines: int = 1,
    length: int | tuple[int, int] = (1, 12),
    marks: float = 0.3,
    printed: bool | None = None,
) -> NumberImage:
    """One number image and its truth (see `layout` for the arguments); the same rng state, the same bytes."""
    page = layout(rng, source, style=style, gap=gap, lines=lines, length=length, marks=marks, printed=printed)
    data, fmt = RENDERERS[style](page.coverage(), rng)
    digits = [Glyph(int(i.char), i.box, i.line) for i in page.items if i.char.isdigit()]
    marks_ = [Mark(i.char, i.box, i.line) for i in page.items if not i.char.isdigit()]
    return NumberImage(data, fmt, page.text(), digits, marks_, gap, style, page.width, page.height)


def sample_numbers(
    n: int,
    seed: int,
    npz: Path | str | None = None,
    styles: Sequence[str] = STYLES,
    gaps: Sequence[str] = GAPS,
    lengths: tuple[int, int] = (1, 12),
    marks: float = 0.3,
    source: DigitSource | None = None,
) -> list[NumberImage]:
    """`n` numbers cycling over every style, then every gap kind (n = len(styles) * len(gaps) covers each
    pair once), mostly on one line, some on two or three; number i depends on (seed, i) only."""
    source = source or DigitSource.load(npz)
    return [number_at(i, seed, source, styles, gaps, lengths, marks) for i in range(n)]


def number_at(
    i: int,
    seed: int,
    source: DigitSource,
    styles: Sequence[str] = STYLES,
    gaps: Sequence[str] = GAPS,
    lengths: tuple[int, int] = (1, 12),
    marks: float = 0.3,
) -> NumberImage:
    """sample_numbers(seed)'s number i alone (so that processes can make a sample's numbers in parts)."""
    rng = np.random.default_rng([seed, i])
    style, gap = styles[i % len(styles)], gaps[(i // len(styles)) % len(gaps)]
    lines = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
    return make_number(rng, source, style=style, gap=gap, lines=lines, length=lengths, marks=marks)


# ---- for humans to look at ----


def upright(data: bytes) -> Image.Image:
    """The decoded image as a viewer shows it: EXIF orientation applied."""
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data)))


def annotated(number: NumberImage) -> Image.Image:
    """The upright image over white with its truth drawn on: digit boxes in red, mark boxes in blue. RGB."""
    image = upright(number.data).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    draw = ImageDraw.Draw(image)
    for boxes, colour in (([g.box for g in number.digits], (230, 0, 0)), ([m.box for m in number.marks], (0, 90, 255))):
        for x, y, w, h in boxes:
            draw.rectangle((x - 1, y - 1, x + w, y + h), outline=colour)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.numbers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the files and truth.jsonl to")
    parser.add_argument("--n", type=int, default=24, help="how many numbers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--npz",
        type=Path,
        default=os.environ.get("MNIST_NPZ") or None,
        help="MNIST .npz (default: $MNIST_NPZ, else the committed sample)",
    )
    parser.add_argument("--boxes", action="store_true", help="also write NAME.boxes.png, the truth drawn on the image")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "truth.jsonl").open("w") as truth:
        for i, number in enumerate(sample_numbers(args.n, args.seed, args.npz)):
            name = f"{i:03d}-{number.style}-{number.gap}.{number.suffix}"
            (args.out / name).write_bytes(number.data)
            truth.write(json.dumps(number.truth(name)) + "\n")
            if args.boxes:
                annotated(number).save(args.out / f"{name}.boxes.png")
    print(f"wrote {args.n} numbers and truth.jsonl to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
