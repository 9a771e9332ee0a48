"""A ruled page's lines taken out of a single digit's ink (app/preprocessing/rules.py), and /v1/predict's
answers on lined pages from tools/handwriting.py."""

from __future__ import annotations

import numpy as np
import pytest

import app.preprocessing
from app.model.classifier import Classifier
from app.preprocessing import preprocess
from app.preprocessing.rules import remove_rules
from tests.conftest import MODEL
from tools import handwriting


def page(height: int = 120, width: int = 100) -> np.ndarray:
    """Ink of a lined page (float32, 0-255): a margin down the left, rules across every 16 rows."""
    ink = np.zeros((height, width), np.float32)
    ink[:, 6:8] = 200.0
    ink[10::16, :] = 160.0
    return ink


def four(ink: np.ndarray, top: int, left: int, size: int) -> None:
    """A 4 drawn into `ink`: a stem `size` high, an arm down to the bar, the bar."""
    ink[top : top + size, left + size // 2 : left + size // 2 + 4] = 255.0
    ink[top : top + size * 2 // 3, left : left + 4] = 255.0
    ink[top + size * 2 // 3 - 4 : top + size * 2 // 3, left : left + size * 3 // 4] = 255.0


def test_a_pages_margin_and_rules_go_and_the_digit_stays() -> None:
    ink = page()
    four(ink, 40, 40, 40)
    notes: list[str] = []
    out = remove_rules(ink, notes)
    assert notes == ["removed the page's ruled lines"]
    assert not out[:, 6:8].any() and not out[10, :35].any()  # the margin and a rule away from the digit
    digit = np.zeros_like(ink)
    four(digit, 40, 40, 40)
    kept = out[digit > 0]
    assert (kept > 0).mean() > 0.9  # the digit, but where a rule crossed it


@pytest.mark.parametrize(
    "case",
    ["a 4 cropped tight", "a 1 down the whole image", "no lines", "lines only"],
)
def test_what_is_not_a_ruled_page_is_left_as_it_is(case: str) -> None:
    ink = np.zeros((60, 45), np.float32)
    if case == "a 4 cropped tight":  # its stem touches both edges, but is not twice the rest's height
        four(ink, 0, 2, 60)
    elif case == "a 1 down the whole image":
        ink[:, 20:24] = 255.0
    elif case == "no lines":
        four(ink, 10, 10, 30)
    else:
        ink = page()
    notes: list[str] = []
    assert remove_rules(ink, notes) is ink and notes == []


def lined_single_digits(seed: int, count: int) -> list[tuple[bytes, int]]:
    """The first `count` one-digit lined pages of tools/handwriting.py (pen-stroke digits: no MNIST needed)."""
    source, found = handwriting.HandSource(None, None), []
    for i in range(10 * count):
        number = handwriting.make_hand_number(
            np.random.default_rng([seed, i]), source, lengths=(1, 1), marks=0.0, background="lined"
        )
        if len(number.text) == 1:
            found.append((number.data, int(number.text)))
        if len(found) == count:
            break
    return found


def test_single_digits_on_lined_pages_are_read_without_the_pages_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The margin line was read as part of the digit: most lined pages read wrong before remove_rules."""
    classifier, pages = Classifier.load(MODEL), lined_single_digits(4321, 24)

    def right() -> int:
        return sum(int(classifier.predict_proba(preprocess(data).model_input)[0].argmax()) == d for data, d in pages)

    assert right() >= 22
    assert any("removed the page's ruled lines" in preprocess(data).notes for data, _ in pages)
    monkeypatch.setattr(app.preprocessing, "remove_rules", lambda ink, notes: ink)
    assert right() <= 16  # the fixture is hard without it
