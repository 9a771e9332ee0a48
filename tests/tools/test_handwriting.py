"""The second number generator, tools/handwriting.py: deterministic, decodable in every format, and its truth
(text, boxes, gap kinds) right on the decoded pixels."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.handwriting import (
    BACKGROUNDS,
    FORMATS,
    SKELETONS,
    HandSource,
    gap_kind,
    main,
    make_hand_number,
    sample_hand_numbers,
    stroke_digit,
)
from tools.numbers import INK, ink_box

STROKES = HandSource(None, None)  # no MNIST file in the tests: pen-stroke digits only


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first, again, other = (sample_hand_numbers(4, seed) for seed in (0, 0, 1))
    assert [n.data for n in first] == [n.data for n in again]
    assert [n.data for n in first] != [n.data for n in other]
    assert [n.text for n in first] == [n.text for n in again]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_every_page_and_format_decodes_at_its_size(background: str, fmt: str) -> None:
    number = make_hand_number(np.random.default_rng([3, 1]), STROKES, lengths=(2, 4), background=background, fmt=fmt)
    image = Image.open(io.BytesIO(number.data))
    assert image.format == number.format == fmt
    image.load()
    assert image.size == (number.width, number.height)
    assert number.style.startswith(background)


@pytest.mark.parametrize("seed", range(6))
def test_the_text_matches_the_digits_line_by_line(seed: int) -> None:
    number = make_hand_number(np.random.default_rng([seed]), STROKES, lengths=(1, 8))
    lines = number.text.split("\n")
    assert len(number.digits) == sum(len(line) for line in lines)
    for n, line in enumerate(lines):
        assert "".join(str(g.digit) for g in number.digits if g.line == n) == line


@pytest.mark.parametrize("seed", range(8))
def test_each_truth_box_is_the_tight_box_of_dark_ink_in_the_decoded_image(seed: int) -> None:
    """On a sticky note in PNG (flat colour, lossless): inside each box, ink reaches all four edges, and
    the boxes hold nearly all the ink (the rest: cursive joins, which belong to no digit)."""
    number = make_hand_number(np.random.default_rng([seed, 7]), STROKES, lengths=(2, 6), background="sticky", fmt="PNG")
    grey = np.asarray(Image.open(io.BytesIO(number.data)).convert("L"), dtype=np.float32)
    paper = float(np.median(grey))
    dark = grey < paper - INK * (paper - 15)  # the marker is (15, 15, 20): half-way from paper to it
    inside = np.zeros_like(dark)
    for x, y, w, h in [g.box for g in number.digits] + [m.box for m in number.marks]:
        patch = dark[y : y + h, x : x + w]
        assert patch[:2].any() and patch[-2:].any() and patch[:, :2].any() and patch[:, -2:].any()
        inside[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1] = True
    assert (dark & ~inside).sum() <= 0.05 * dark.sum()


@pytest.mark.parametrize("digit", range(10))
def test_every_skeleton_draws_ink(digit: int) -> None:
    for seed in range(len(SKELETONS[digit]) * 3):
        drawn = stroke_digit(digit, 60.0, 6.0, 0.2, np.random.default_rng(seed))
        x, y, w, h = ink_box(drawn.coverage >= INK)
        assert (x, y) == (0, 0) and (h, w) == drawn.coverage.shape and h > 40


@pytest.mark.parametrize(
    ("left", "right", "joined", "kind"),
    [
        ((0, 10), (30, 40), False, "spaced"),
        ((0, 10), (12, 20), False, "tight"),
        ((0, 10), (10, 20), False, "touching"),
        ((0, 10), (20, 30), True, "touching"),
        ((0, 10), (8, 20), False, "overlapping"),
    ],
    ids=["spaced", "tight", "touching", "joined", "overlapping"],
)
def test_gap_kinds(left: tuple[int, int], right: tuple[int, int], joined: bool, kind: str) -> None:
    a, b = np.zeros((20, 50), bool), np.zeros((20, 50), bool)
    a[2:18, left[0] : left[1]] = True
    b[2:18, right[0] : right[1]] = True
    assert gap_kind(a, b, joined, size=40.0) == kind


def test_the_cli_writes_files_and_truth(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--n", "3", "--seed", "2"]) == 0
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert len(truth) == 3
    for entry in truth:
        assert (tmp_path / entry["file"]).is_file()
        assert len(entry["digits"]) == len(entry["text"].replace("\n", ""))
