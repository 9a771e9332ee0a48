"""Reading whole numbers: an upload -> its digits left to right, line by line, each in MNIST form with its
box, and the small marks between them (POST /v1/read; the read-files task runs this in the engines).
Pure: numpy, Pillow and cc3d, no web framework.

The upload takes /v1/predict's steps up to the ink (app/preprocessing/: decode, orientation,
transparency, polarity, the paper's level), sampled finer: so that a line of digits is about
TARGET_HEIGHT px high (region.py's WORKING_SIDE fits one digit). Then, in modules that import down
this list:
components.py  the ink's connected components, specks dropped; the line height; lines; a line's slant
cuts.py        a line's components grouped, over-cut, and the cuts chosen by recognition (the model
               scores every candidate digit; dynamic programming over the cut points)
marks.py       what a small mark between digits most likely is
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np

from app.answers import Box, Layout, Mark
from app.errors import BlankImage, TooManyDigits
from app.preprocessing import Page, one_digit, open_page
from app.preprocessing.decode import decode
from app.preprocessing.form import as_mnist_digit, mnist_form_png
from app.preprocessing.region import FIND_MARGIN, FIND_MARGIN_SHARE, FIND_SHARE, Region
from app.reading.components import (
    TALL_SHARE,
    chain_lines,
    find_components,
    in_band,
    line_height,
    line_slant,
    rules,
    without_rules,
)
from app.reading.cuts import Ink, Model, atoms, deslanted, group, read_line
from app.reading.marks import mark_char

TARGET_HEIGHT = 48  # working pixels per line of digits (MNIST form is 20 px: room to cut in)
MAX_WORKING_PIXELS = 4_000_000  # the working image is never larger than this
TOO_MANY_PIECES = 3  # more tall pieces than this many per digit allowed: refused before cutting
PAPER_BLOCK = 2 * TARGET_HEIGHT  # a page of many digits is evened out per block this many working px wide


@dataclass
class Segmented:
    """An upload's digits in reading order (lines top to bottom, digits left to right), each in MNIST
    form, and where they and the marks between them are."""

    pixels: np.ndarray  # (n, 28, 28) uint8
    layout: Layout


def segment(data: bytes, model: Model, max_pixels: int, max_digits: int) -> Segmented:
    """The digits and marks of an encoded image; `model` scores candidate digits (the engine's network).
    Raises an ImageError when there is no ink, and TooManyDigits over `max_digits`."""
    notes: list[str] = []
    if (pixels := mnist_form_png(data, max_pixels)) is not None:
        return _one_digit(pixels, notes)
    image = decode(data, max_pixels, notes)
    if (pixels := as_mnist_digit(image)) is not None:
        return _one_digit(pixels, notes)
    page = open_page(image, notes)
    region = reading_region(page)
    written, height = find_lines(page.ink(region, block=PAPER_BLOCK), max_digits)
    pixels_out: list[np.ndarray] = []
    boxes: list[Box] = []
    lines: list[int] = []
    marks: list[Mark] = []
    certainty = 1.0  # that every line's cuts are right
    for number, line in enumerate(written):
        digits, sure = read_line(atoms(line.groups, height), height, model) if line.groups else ([], 1.0)
        certainty *= sure
        baseline = float(np.median([d.box[3] for d in digits])) if digits else line.middle
        for mark in sorted(line.small, key=lambda m: m.left):
            marks.append(Mark(mark_char(mark, baseline, height), region_box(region, mark.box()), number))
        for digit in digits:
            pixels_out.append(digit.pixels)
            boxes.append(region_box(region, digit.box))
            lines.append(number)
        if len(pixels_out) > max_digits:
            raise _too_many(max_digits)
    if not pixels_out:
        raise BlankImage("No digits found: the image has only small marks, no digits.")
    renumber(lines, marks)
    if len(pixels_out) == 1 and not marks:  # a single digit: read exactly as /v1/predict reads it
        pixels_out = [one_digit(page, notes)]
    return Segmented(np.stack(pixels_out), Layout(boxes, lines, marks, notes, certainty))


@dataclass
class Line:
    """A line of the working image: its digit material in groups, left to right (cuts.group), the small
    marks beside them, and its middle row."""

    groups: list[Ink]
    small: list[Ink]
    middle: float


def find_lines(ink: np.ndarray, max_digits: int) -> tuple[list[Line], float]:
    """The working image's ink in lines, top to bottom, each deslanted and grouped; and the line height.
    Raises BlankImage when there are no strokes, TooManyDigits when there are far too many to cut."""
    parts, _ = find_components(ink)
    if not parts:
        raise BlankImage("No digits found: the image has only specks, no strokes.")
    height = line_height(parts)
    if (cleaned := without_rules(ink, height)) is not None:  # ruled paper: read what is written on it
        parts, _ = find_components(cleaned)
        if not parts:
            raise BlankImage("No digits found: the image has only ruled lines, no writing.")
        height = line_height(parts)
    if sum(p.height >= TALL_SHARE * height for p in parts) > TOO_MANY_PIECES * max_digits:
        raise _too_many(max_digits)
    lines = []
    for line in chain_lines(parts, height):
        middle = float(np.mean([p.centre_y for p in line]))
        slant = line_slant(line, height)
        groups, small = group([deslanted(p, slant, middle) for p in line], in_band(line, height), height)
        lines.append(Line(groups, small, middle))
    return lines, height


def reading_region(page: Page) -> Region:
    """The ink's region of the image (the box of the thumbnail's marks, with find_digit's margin),
    sampled so that a line of digits is about TARGET_HEIGHT px high (never above the image's own size)."""
    foreground = page.foreground()
    full = page.gray.size
    peak = float(foreground.max())
    marks = foreground > FIND_SHARE * peak if peak > 0 else np.zeros(foreground.shape, bool)
    rows, cols = np.flatnonzero(marks.any(axis=1)), np.flatnonzero(marks.any(axis=0))
    if not rows.size:
        box, height = (0, 0, *full), float(max(full))
    else:
        margin = FIND_MARGIN + round(FIND_MARGIN_SHARE * max(rows[-1] - rows[0], cols[-1] - cols[0]))
        s = page.scale
        top, bottom = max(0, (rows[0] - margin) * s), min(full[1], (rows[-1] + 1 + margin) * s)
        left, right = max(0, (cols[0] - margin) * s), min(full[0], (cols[-1] + 1 + margin) * s)
        box = (int(left), int(top), int(right), int(bottom))
        labels = cc3d.connected_components(marks, connectivity=8)
        found = [b for b in cc3d.statistics(labels)["bounding_boxes"][1:] if b]
        extents = np.array([(b[0].stop - b[0].start, b[1].stop - b[1].start) for b in found], float).reshape(-1, 2)
        heights = extents[~rules(extents[:, 0], extents[:, 1]), 0]
        tallest = float(heights.max()) if len(heights) else 1.0
        height = float(np.median([h for h in heights if h >= 0.5 * tallest] or [tallest])) * s
    width, high = box[2] - box[0], box[3] - box[1]
    reduce_by = max(1.0, height / TARGET_HEIGHT, float(np.sqrt(width * high / MAX_WORKING_PIXELS)))
    return Region(full, box, (max(1, round(width / reduce_by)), max(1, round(high / reduce_by))))


def region_box(region: Region, box: tuple[int, int, int, int]) -> Box:
    """(left, top, right, bottom) in the region's samples -> [x, y, width, height] in the image's pixels."""
    left, top, right, bottom = region.box
    sx, sy = (right - left) / region.size[0], (bottom - top) / region.size[1]
    x0, y0 = int(np.floor(left + box[0] * sx)), int(np.floor(top + box[1] * sy))
    x1, y1 = int(np.ceil(left + box[2] * sx)), int(np.ceil(top + box[3] * sy))
    return (x0, y0, x1 - x0, y1 - y0)


def renumber(lines: list[int], marks: list[Mark]) -> None:
    """Lines numbered from 0 by the lines that hold digits (a line of marks only joins the one above)."""
    order = sorted(set(lines))
    for i, line in enumerate(lines):
        lines[i] = order.index(line)
    for mark in marks:
        mark.line = sum(1 for line in order if line <= mark.line) - 1 if mark.line >= order[0] else 0


def _one_digit(pixels: np.ndarray, notes: list[str]) -> Segmented:
    """An upload already in MNIST form: one digit, the box of its ink."""
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
    return Segmented(pixels[np.newaxis], Layout([box], [0], [], notes))


def _too_many(max_digits: int) -> TooManyDigits:
    return TooManyDigits(f"The image holds more than {max_digits} digits, the most one read takes (MNIST_MAX_DIGITS).")
