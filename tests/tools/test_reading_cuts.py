"""bench/reading_cuts.py: the reader's cuts against the truth, piece by piece."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from app.config import Settings
from app.model.classifier import load_classifier
from bench.reading_cuts import LineCount, count_lines, main, summary, wrong_kind
from tools.numbers import DigitSource, make_number


@pytest.fixture(scope="module")
def network():
    return load_classifier(Settings(), False).network


@pytest.fixture(scope="module")
def source() -> DigitSource:
    return DigitSource.load()


def test_spaced_printed_digits_are_cut_exactly_as_the_truth_cuts_them(network, source) -> None:
    for i in range(4):
        number = make_number(np.random.default_rng([3, i]), source, style="print", gap="spaced", length=4, marks=0.0)
        (line,) = count_lines(number, network)
        assert line.digits == 4 and line.exact_available == 4, number.text
        assert line.cut_right, number.text


def test_a_digit_wrongly_owned_is_not_an_exact_cut(network, source) -> None:
    """The truth moved one digit to the right: its pieces now belong to no digit, so that digit has no
    exact cut and the line is not cut right (the check can fail)."""
    number = make_number(np.random.default_rng([3, 0]), source, style="print", gap="spaced", length=4, marks=0.0)
    glyph = number.digits[1]
    x, y, w, h = glyph.box
    number.digits[1] = dataclasses.replace(glyph, box=(x + 3 * w, y, w, h))
    (line,) = count_lines(number, network)
    assert line.exact_available == 3
    assert not line.cut_right


def test_wrong_kinds() -> None:
    assert wrong_kind([{0}, set(), {1, 2}]) == "ghost"
    assert wrong_kind([{0}, {1, 2}]) == "merged"
    assert wrong_kind([{0}, {0}, {1}]) == "split"


def test_summary_shares() -> None:
    figures = summary(
        [
            ("spaced", [LineCount(4, 4, 4, True, True), LineCount(2, 2, 1, True, False)]),
            ("touching", [LineCount(3, 2, 1, False, False, "merged")]),
        ]
    )
    assert figures["spaced"]["classifier_on_exact_cuts"] == pytest.approx(5 / 6)
    assert figures["spaced"]["lines_read_right"] == 0.5
    assert figures["touching"]["exact_cut_available"] == pytest.approx(2 / 3)
    assert figures["all"]["digits"] == 9
    assert figures["touching"]["wrong_merged"] == 1.0 and figures["spaced"]["wrong_ghost"] == 0.0


def test_main_prints_json(capsys) -> None:
    assert main(["--n", "4", "--generator", "numbers", "--lengths", "2", "3", "--json", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    for figures in report["numbers"].values():
        assert 0 <= figures["lines_read_right"] <= figures["lines_cut_right"] <= 1
