"""training/bold.py: bold-pen copies are the same digits with wider strokes, in MNIST's form, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest

from app.preprocessing.form import BOX, CENTRE
from app.preprocessing.steps import centre_of_mass, stroke_width
from training.bold import bold_copies, bold_digit


@pytest.fixture(scope="module")
def digits(sample: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The first 300 digits of the committed sample, (300, 28, 28) uint8."""
    return sample[0][:300]


@pytest.fixture(scope="module")
def bold(digits: np.ndarray) -> np.ndarray:
    return bold_copies(digits, seed=3, workers=2)


def test_copies_are_mnist_form_digits(digits: np.ndarray, bold: np.ndarray) -> None:
    assert bold.shape == digits.shape and bold.dtype == np.uint8
    for digit in bold:
        rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == BOX  # the longer side fills the 20 px box
        cy, cx = centre_of_mass(digit.astype(np.float32))
        assert abs(cy - CENTRE) <= 0.6 and abs(cx - CENTRE) <= 0.6  # placed on whole pixels
        assert digit.max() == 255


def test_strokes_are_bolder(digits: np.ndarray, bold: np.ndarray) -> None:
    before = np.array([stroke_width(d.astype(np.float32)) for d in digits])
    after = np.array([stroke_width(d.astype(np.float32)) for d in bold])
    assert np.median(after / before) > 1.3
    assert np.mean(after > before) > 0.8  # the thinnest pens add less than the service's thinning takes off


def test_reproducible_from_the_seed_whatever_the_workers(digits: np.ndarray, bold: np.ndarray) -> None:
    np.testing.assert_array_equal(bold_copies(digits, seed=3, workers=1), bold)
    assert not np.array_equal(bold_copies(digits, seed=4, workers=1), bold)


def test_a_digit_without_strokes_is_returned_as_it_is() -> None:
    faint = np.full((28, 28), 40, dtype=np.uint8)  # no pixel strong enough to be a stroke
    np.testing.assert_array_equal(bold_digit(faint, np.random.default_rng(0)), faint)
