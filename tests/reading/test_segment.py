"""app/reading/: numbers cut into digits, on images whose truth is known: sample digits pasted at known
places, pieces of digits, marks, lines, EXIF rotation; and the reading rate on generated numbers
(tools/numbers.py) as a floor that a regression would break."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.contract import flatten_and_scale
from app.errors import BlankImage, TooManyDigits
from app.model.classifier import Classifier
from app.preprocessing import open_page, preprocess
from app.preprocessing.decode import decode
from app.reading import PAPER_BLOCK, find_lines, reading_region, segment
from app.reading.cuts import MAX_BRIDGE, Ink, candidates
from tests.conftest import load_sample, png
from tools.numbers import DigitSource, sample_numbers
from tools.uploads import ORIENTATION

SCALE = 3  # sample digits are enlarged, as a drawing would be
CELL = 28 * SCALE
MAX_PIXELS = 40_000_000


def big(index: int) -> np.ndarray:
    digit = load_sample()[0][index]
    return np.asarray(Image.fromarray(digit).resize((CELL, CELL), Image.Resampling.BICUBIC))


def page(lines: list[list[int]], gap: int = CELL // 2) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Sample digits (by index) pasted `gap` px apart on black, one line per list; their top-left corners."""
    width = gap + max(map(len, lines)) * (CELL + gap)
    canvas = np.zeros((gap + len(lines) * (CELL + gap), width), np.uint8)
    corners = []
    for row, line in enumerate(lines):
        for column, index in enumerate(line):
            y, x = gap + row * (CELL + gap), gap + column * (CELL + gap)
            canvas[y : y + CELL, x : x + CELL] = np.maximum(canvas[y : y + CELL, x : x + CELL], big(index))
            corners.append((x, y))
    return canvas, corners


def labels(indices: list[int], classifier: Classifier) -> str:
    """What /v1/predict answers for each digit alone, drawn as big (segmentation is what is tested here)."""
    rows = np.concatenate([preprocess(png(big(i))).model_input for i in indices])
    return "".join(str(d) for d in classifier.network(rows)[0].argmax(axis=1))


def read(data: bytes, classifier: Classifier, max_digits: int = 64) -> tuple[str, list]:
    found = segment(data, classifier.network, MAX_PIXELS, max_digits)
    digits = classifier.network(flatten_and_scale(found.pixels))[0].argmax(axis=1)
    layout = found.layout
    lines = max(layout.lines) + 1
    text = "\n".join(
        "".join(str(d) for d, line in zip(digits, layout.lines, strict=True) if line == n) for n in range(lines)
    )
    return text, found.layout


def ink_box(canvas: np.ndarray, corner: tuple[int, int]) -> tuple[int, int, int, int]:
    x, y = corner
    cell = canvas[y : y + CELL, x : x + CELL] >= 128
    rows, cols = np.flatnonzero(cell.any(axis=1)), np.flatnonzero(cell.any(axis=0))
    return x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def test_spaced_digits_are_read_left_to_right_with_their_boxes(classifier: Classifier) -> None:
    indices = [0, 1, 2, 3, 4, 5]
    canvas, corners = page([indices])
    text, layout = read(png(canvas), classifier)
    assert text == labels(indices, classifier)
    assert layout.lines == [0] * 6 and layout.marks == []
    for box, corner in zip(layout.boxes, corners, strict=True):
        assert overlap(box, ink_box(canvas, corner)) > 0.8


def test_dark_ink_on_light_paper_and_a_big_margin(classifier: Classifier) -> None:
    canvas, corners = page([[7, 6, 9]])
    paper = np.full((canvas.shape[0] + 600, canvas.shape[1] + 900), 255, np.uint8)
    paper[400 : 400 + canvas.shape[0], 700 : 700 + canvas.shape[1]] = 255 - canvas
    text, layout = read(png(paper), classifier)
    assert text == labels([7, 6, 9], classifier)
    for box, (x, y) in zip(layout.boxes, corners, strict=True):  # in the whole image's pixels
        truth = ink_box(canvas, (x, y))
        assert overlap(box, (truth[0] + 700, truth[1] + 400, truth[2], truth[3])) > 0.8


def test_lines_are_read_top_to_bottom(classifier: Classifier) -> None:
    canvas, _ = page([[10, 11, 12], [13, 14]])
    text, layout = read(png(canvas), classifier)
    assert text == labels([10, 11, 12], classifier) + "\n" + labels([13, 14], classifier)
    assert layout.lines == [0, 0, 0, 1, 1]


def test_a_digit_in_pieces_is_one_digit(classifier: Classifier) -> None:
    """A digit with a gap across it (a 5's bar drawn apart, a broken stroke) is one digit, not two."""
    y = load_sample()[1]
    index = int(np.flatnonzero(y == 5)[0])
    canvas, _ = page([[0, index, 2]])
    column = CELL // 2 + CELL + CELL // 2
    canvas[canvas.shape[0] // 2 - 4 : canvas.shape[0] // 2 - 1, column - CELL // 2 : column + CELL // 2] = 0
    text, _ = read(png(canvas), classifier)
    assert text == labels([0, index, 2], classifier)


def test_small_marks_are_listed_apart(classifier: Classifier) -> None:
    canvas, corners = page([[1, 2, 3]], gap=CELL // 2)
    baseline = corners[0][1] + CELL - 3 * SCALE
    dot_x = corners[1][0] - CELL // 4
    canvas[baseline - 9 : baseline, dot_x - 4 : dot_x + 5] = 255  # a point between the first two digits
    dash_x = corners[2][0] - CELL // 4
    middle = corners[0][1] + CELL // 2
    canvas[middle - 3 : middle + 3, dash_x - 12 : dash_x + 12] = 255  # a dash before the third
    text, layout = read(png(canvas), classifier)
    assert text == labels([1, 2, 3], classifier)
    assert [mark.char for mark in layout.marks] == [".", "-"]
    assert layout.marks[0].box[0] < layout.boxes[1][0] and layout.marks[1].box[0] < layout.boxes[2][0]


def test_boxes_are_in_the_upright_image(classifier: Classifier) -> None:
    """A photo stored sideways (EXIF orientation 6: turn 90 degrees clockwise to view) is read upright."""
    canvas, corners = page([[20, 21, 22]])
    stored = Image.fromarray(canvas).transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    text, layout = read(buffer.getvalue(), classifier)
    assert text == labels([20, 21, 22], classifier)
    for box, corner in zip(layout.boxes, corners, strict=True):
        assert overlap(box, ink_box(canvas, corner)) > 0.7


def test_a_single_mnist_digit_reads_as_predict_reads_it(classifier: Classifier) -> None:
    digits = load_sample()[0]
    for index in range(10):
        data = png(digits[index])
        found = segment(data, classifier.network, MAX_PIXELS, 64)
        assert np.array_equal(found.pixels[0], preprocess(data).pixels)
        assert len(found.layout.boxes) == 1


def test_too_many_digits_and_no_ink_are_refused(classifier: Classifier) -> None:
    canvas, _ = page([[0, 1, 2]])
    with pytest.raises(TooManyDigits):
        segment(png(canvas), classifier.network, MAX_PIXELS, 2)
    with pytest.raises(BlankImage):
        segment(png(np.zeros((100, 300), np.uint8)), classifier.network, MAX_PIXELS, 64)


@pytest.mark.parametrize(("gap", "floor"), [("spaced", 0.85), ("tight", 0.6), ("touching", 0.35)])
def test_generated_numbers_are_read_at_least_as_well_as_today(classifier: Classifier, gap: str, floor: float) -> None:
    """A regression floor, under today's rate (python -m bench.reading_accuracy measures it on many more):
    numbers of 2 to 6 sample digits without marks, every style, from seeds no test tunes on."""
    numbers = sample_numbers(40, 1234, gaps=(gap,), lengths=(2, 6), marks=0.0, source=DigitSource.load(None))
    right = sum(read(number.data, classifier)[0] == number.text for number in numbers)
    assert right / len(numbers) >= floor


def test_a_single_drawn_digit_reads_as_predict_reads_it(classifier: Classifier) -> None:
    """Not in MNIST form (a big drawing on white paper): the same 28x28 image as /v1/predict's."""
    for index in range(8):
        canvas, _ = page([[index]])
        data = png(255 - canvas)
        found = segment(data, classifier.network, MAX_PIXELS, 64)
        assert np.array_equal(found.pixels[0], preprocess(data).pixels)


def bar(left: int, height: int = 40, width: int = 4) -> Ink:
    """A vertical stroke of full ink `width` px wide from column `left`, `height` rows high."""
    ys, xs = np.mgrid[0:height, left : left + width]
    return Ink(ys.ravel(), xs.ravel(), np.full(ys.size, 255.0, np.float32), xs.ravel().astype(np.float64))


@pytest.mark.parametrize(("gap", "joined"), [(2, True), (round(MAX_BRIDGE * 40) + 2, False)])
def test_a_candidate_never_bridges_a_wide_white_gap(gap: int, joined: bool) -> None:
    # two strokes close together may be one digit (a broken 4); across a clear gap they are two digits
    found = candidates([bar(0), bar(4 + gap)], height=40.0)
    assert (0, 1) in found.spans and (1, 2) in found.spans
    assert ((0, 2) in found.spans) is joined


def glared(canvas: np.ndarray) -> np.ndarray:
    """Light-on-black digits as dark ink on paper under a glare that grows to the right: the paper
    brightens from 170 to 235 and the ink's contrast fades from 160 to 40 grey levels."""
    share = np.linspace(0.0, 1.0, canvas.shape[1], dtype=np.float32)[np.newaxis]
    paper = 170.0 + 65.0 * share
    contrast = 160.0 - 120.0 * share
    return np.clip(np.rint(paper - contrast * canvas.astype(np.float32) / 255.0), 0, 255).astype(np.uint8)


def test_digits_washed_out_by_a_glare_are_still_read(classifier: Classifier) -> None:
    indices = [20, 21, 22, 23, 24, 25, 26, 27]
    canvas, _ = page([indices])
    data = png(glared(canvas))
    text, _ = read(data, classifier)
    assert text == labels(indices, classifier)
    # the page's one level and one stretch, without the blocks, lose the faintest digits here
    found = open_page(decode(data, MAX_PIXELS, []), [])
    region = reading_region(found)
    assert len(find_lines(found.ink(region), 64)[0][0].groups) < len(indices)
    assert len(find_lines(found.ink(region, PAPER_BLOCK), 64)[0][0].groups) == len(indices)
