"""training/positives.py: printed digits, digit pieces and coarse scans for the digit scorer, and the
negatives of wrong cuts in training/negatives.py (issue 34): MNIST's format, from the seed, and what
their names say."""

from __future__ import annotations

import numpy as np
import pytest

from app.contract import flatten_and_scale
from app.model.classifier import Classifier
from training import negatives, positives
from training.positives import HELD_OUT_FAMILIES, find_fonts, ink_span, side_by_side, split_fonts

FONTS = find_fonts()
needs_fonts = pytest.mark.skipif(not split_fonts(FONTS)[0], reason="no fonts on this machine")


def assert_mnist_form(out: np.ndarray, n: int) -> None:
    assert out.shape == (n, 28, 28) and out.dtype == np.uint8
    assert (out.reshape(n, -1).max(axis=1) > 127).all(), "every image has strong ink"
    rows, cols = out.any(axis=2), out.any(axis=1)
    assert rows.sum(axis=1).max() <= 22 and cols.sum(axis=1).max() <= 22, "fitted to MNIST's 20 px box"


def test_the_held_out_font_families_are_not_trained_on() -> None:
    training, held = split_fonts(FONTS)
    assert set(training).isdisjoint(held) and set(training) | set(held) == set(FONTS)
    assert all(positives.family(f) in HELD_OUT_FAMILIES for f in held)
    assert not any(positives.family(f) in HELD_OUT_FAMILIES for f in training)


@needs_fonts
def test_printed_digits_have_mnists_form_and_come_from_the_seed() -> None:
    fonts = split_fonts(FONTS)[0]
    images, labels = positives.printed_digits(30, 5, fonts)
    assert_mnist_form(images, 30)
    assert labels.shape == (30,) and set(labels) <= set(range(10))
    again, same = positives.printed_digits(30, 5, fonts)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, same)
    assert not np.array_equal(images, positives.printed_digits(30, 6, fonts)[0])


def test_printed_digits_need_fonts() -> None:
    with pytest.raises(ValueError):
        positives.printed_digits(3, 0, ())


def test_side_by_side_places_the_right_digit_by_its_ink(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = sample
    for overlap in (-2, 0, 3):
        canvas, start, end = side_by_side(x[0], x[1], overlap, 0)
        assert start == end + 1 - overlap
        assert ink_span(canvas) == (ink_span(x[0])[0], start + ink_span(x[1])[1] - ink_span(x[1])[0])


def test_digit_pieces_keep_their_digit_and_label(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    images, labels = positives.digit_pieces(x, y, 40, 3)
    assert_mnist_form(images, 40)
    np.testing.assert_array_equal(images, positives.digit_pieces(x, y, 40, 3)[0])
    np.testing.assert_array_equal(labels, positives.digit_pieces(x, y, 40, 3)[1])
    assert not np.array_equal(images, positives.digit_pieces(x, y, 40, 4)[0])
    assert set(labels) <= set(y)


def test_coarse_scans_have_mnists_form_and_come_from_the_seed(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = sample
    images = positives.coarse_scans(x, 30, 1)
    assert_mnist_form(images, 30)
    np.testing.assert_array_equal(images, positives.coarse_scans(x, 30, 1))
    assert not np.array_equal(images, positives.coarse_scans(x, 30, 2))


@pytest.mark.parametrize("kind", ["cut_halves", "touching", "digit_and_part"])
def test_wrong_cuts_have_mnists_form_and_come_from_the_seed(kind: str, sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    out = negatives.MAKERS[kind](x, y, 20, np.random.default_rng(0))
    assert_mnist_form(out, 20)
    np.testing.assert_array_equal(out, negatives.MAKERS[kind](x, y, 20, np.random.default_rng(0)))
    assert not np.array_equal(out, negatives.MAKERS[kind](x, y, 20, np.random.default_rng(1)))


def test_two_touching_digits_have_ink_on_both_halves_and_are_wide(sample: tuple[np.ndarray, np.ndarray]) -> None:
    """Two digits side by side, fitted to 20 px by their width: each half of the ink box holds a good
    share of the ink, and the box is nearly as wide as it is high or wider (most single digits are far
    narrower)."""
    x, y = sample
    out = negatives.touching(x, y, 50, np.random.default_rng(2))
    for image in out:
        start, end = ink_span(image)
        middle = (start + end + 1) // 2
        ink = image.astype(np.float64)
        left, right = ink[:, start:middle].sum(), ink[:, middle : end + 1].sum()
        assert min(left, right) > 0.2 * (left + right)
        rows = np.flatnonzero((image >= positives.INK).any(axis=1))
        assert end - start + 1 >= 0.7 * (rows[-1] - rows[0] + 1)


def test_half_digits_are_narrower_than_the_digit(sample: tuple[np.ndarray, np.ndarray]) -> None:
    """A cut half, fitted to 20 px high, keeps at most about 60% of the digit's width (at 56 px)."""
    x, y = sample
    pool = np.flatnonzero(np.isin(y, negatives.HALF_LEFT_CLASSES + negatives.HALF_RIGHT_CLASSES))
    assert not set(y[pool]) & {1}
    out = negatives.cut_halves(x, y, 40, np.random.default_rng(3))
    widths = np.array([ink_span(i)[1] - ink_span(i)[0] + 1 for i in out])
    heights = np.array([np.ptp(np.flatnonzero(i.any(axis=1))) + 1 for i in out])
    assert (widths <= heights).mean() > 0.9


def test_a_digit_and_part_of_its_neighbour_is_wider_than_a_piece(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    part = negatives.digit_and_part(x, y, 60, np.random.default_rng(4))
    piece, _ = positives.digit_pieces(x, y, 60, 4)

    def aspect(images: np.ndarray) -> float:
        return float(np.median([
            (ink_span(i)[1] - ink_span(i)[0] + 1) / (np.ptp(np.flatnonzero(i.any(axis=1))) + 1) for i in images
        ]))  # fmt: skip

    assert aspect(part) > 1.2 * aspect(piece)


def test_the_scorer_recipe_adds_the_new_digits(sample: tuple[np.ndarray, np.ndarray]) -> None:
    from training.scorer import ScorerRecipe, more_digits

    x, y = sample
    recipe = ScorerRecipe(printed=0.1 if split_fonts(FONTS)[0] else 0.0, pieces=0.05, coarse=0.02)
    made = more_digits(x[:200], y[:200], recipe, 0)
    assert [len(m) for m in made] == ([20] if recipe.printed else []) + [10, 4]
    assert not more_digits(x[:200], y[:200], ScorerRecipe(), 0)


def test_the_committed_classifier_reads_the_new_digits_as_their_labels(
    sample: tuple[np.ndarray, np.ndarray], classifier: Classifier
) -> None:
    """The pieces and printed digits are digits: the committed model reads nearly all as their label."""
    x, y = sample
    made = [positives.digit_pieces(x, y, 200, 0)]
    if split_fonts(FONTS)[0]:
        made.append(positives.printed_digits(200, 0, split_fonts(FONTS)[0]))
    for images, labels in made:
        probabilities = classifier.predict_proba(flatten_and_scale(images))
        assert (probabilities.argmax(axis=1) == labels).mean() > 0.9


def test_make_negatives_makes_the_wrong_cuts(sample: tuple[np.ndarray, np.ndarray]) -> None:
    from training.scorer import KINDS, WRONG_CUTS

    x, y = sample
    out = negatives.make_negatives(x, y, 24, seed=1, kinds=KINDS + WRONG_CUTS)
    assert out.shape == (24, 28, 28) and ((out > 127).sum(axis=(1, 2)) >= 15).all()
    np.testing.assert_array_equal(out, negatives.make_negatives(x, y, 24, seed=1, kinds=KINDS + WRONG_CUTS))
