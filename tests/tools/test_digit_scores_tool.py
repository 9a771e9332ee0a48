"""tools/digit_scores.py: the AUROC and the Mahalanobis fit that compare the "not a digit" scores."""

from __future__ import annotations

import numpy as np
import pytest

from tools import score_methods
from tools.digit_scores import auroc, fit_mahalanobis


@pytest.mark.parametrize(
    "positive, negative, expected",
    [([2, 3], [0, 1], 1.0), ([0, 1], [2, 3], 0.0), ([1, 1], [1, 1], 0.5), ([1, 3], [2, 0], 0.75)],
    ids=["separated", "reversed", "ties", "mixed"],
)
def test_auroc(positive: list[float], negative: list[float], expected: float) -> None:
    assert auroc(np.array(positive, float), np.array(negative, float)) == pytest.approx(expected)


def test_mahalanobis_fit_scores_the_training_classes_above_far_points() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 50)
    centres = rng.normal(size=(10, 6)) * 5
    hidden = centres[labels] + rng.normal(size=(500, 6))
    means, precision = fit_mahalanobis(hidden, labels)
    np.testing.assert_allclose(means, centres, atol=0.5)
    near = score_methods.mahalanobis(hidden, means, precision)
    far = score_methods.mahalanobis(rng.normal(size=(50, 6)) * 5 + 40, means, precision)
    assert auroc(near, far) == 1.0


def test_sklearn_style_digits_have_mnists_form_and_come_from_the_seed(sample: tuple[np.ndarray, np.ndarray]) -> None:
    from tools.digit_scores import sklearn_style

    x, _ = sample
    out = sklearn_style(x[:20], 1)
    assert out.shape == (20, 28, 28) and out.dtype == np.uint8
    assert (out.reshape(20, -1).max(axis=1) > 127).all()
    np.testing.assert_array_equal(out, sklearn_style(x[:20], 1))


def test_the_table_lists_digit_kinds_then_non_digits() -> None:
    from tools.digit_scores import format_table

    text = format_table([("MNIST test", 10000, 0.0086), ("set a", 1000, 0.923)], 1)
    lines = text.splitlines()
    assert "flagged" in lines[0] and "0.86%" in lines[2] and "caught" in lines[3] and "92.30%" in lines[5]
