"""bench/reading_accuracy.py's figures and bench/reading_speed.py's canvases."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.model.calibration import confidence_ece as ece
from bench.reading_accuracy import Outcome, _numbers_chunk, edit_distance, main, summary
from bench.reading_speed import HEIGHT, WIDTH, canvas
from tools.numbers import sample_numbers


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("123", "123", 0), ("123", "13", 1), ("1234", "1243", 2), ("", "42", 2), ("7", "1", 1)],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance == edit_distance(b, a)


def test_ece_is_zero_when_confidence_is_the_accuracy_and_large_when_overconfident() -> None:
    confidence = np.full(100, 0.75)
    right = np.array([1.0] * 75 + [0.0] * 25)
    assert ece(confidence, right) == pytest.approx(0.0)
    assert ece(np.full(100, 0.99), np.zeros(100)) == pytest.approx(0.99)


def outcome(truth: str, text: str | None, confidence: float = 0.9, gap: str = "spaced") -> Outcome:
    return Outcome("numbers", "canvas", gap, truth, [], text, confidence, [])


def test_summary_counts_exact_digits_and_too_many_or_few() -> None:
    figures = summary(
        [outcome("12", "12"), outcome("345", "3445"), outcome("6789", "689"), outcome("1\n2", None, 0.0, "touching")]
    )
    assert figures["exact"] == 0.25
    assert figures["digit_accuracy"] == pytest.approx(1 - (0 + 1 + 1 + 2) / 11)
    assert figures["too_many"] == 0.25 and figures["too_few"] == 0.5 and figures["refused"] == 1
    assert figures["by_gap"]["touching"]["exact"] == 0.0
    assert set(figures["by_length"]) == {"2-3", "4-6"}


def test_the_numbers_chunks_are_sample_numbers_own() -> None:
    """The bench makes tools.numbers' numbers index by index, in a pool: the same ones sample_numbers makes."""
    whole = sample_numbers(3, 5, lengths=(1, 3))
    chunk = _numbers_chunk((5, [1, 2], (1, 3), None))
    assert [n.data for n in chunk] == [n.data for n in whole[1:]]


def test_the_speed_canvases_are_the_demo_pages() -> None:
    image = Image.open(io.BytesIO(canvas("4825")))
    assert image.size == (WIDTH, HEIGHT) and image.mode == "RGBA"
    assert np.asarray(image)[..., 3].min() == 255  # the page fills the pad white before drawing


def test_a_small_run_prints_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--n", "2", "--generator", "handwriting", "--lengths", "1", "3", "--workers", "1", "--engines", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "| gap | n | exact | digit accuracy |" in out and "ECE <= 2%" in out
