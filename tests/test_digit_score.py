"""app/digit_score.py: the serving-side digit scores against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from app import digit_score


def test_energy_is_t_logsumexp() -> None:
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(digit_score.energy(z)[0], np.log(np.exp(z[0]).sum()))
    assert digit_score.energy(z)[1] == pytest.approx(1000.0)  # no overflow
    np.testing.assert_allclose(digit_score.energy(z[:1], 2.0), 2 * np.log(np.exp(z[0] / 2).sum()))


def test_energy_grows_with_a_confident_logit() -> None:
    flat, peaked = np.zeros((1, 10)), np.eye(10)[[0]] * 8
    assert digit_score.energy(peaked)[0] > digit_score.energy(flat)[0]


def test_max_probability() -> None:
    np.testing.assert_allclose(digit_score.max_probability(np.array([[0.1, 0.9], [0.6, 0.4]])), [0.9, 0.6])


def test_mahalanobis_is_minus_the_nearest_class_distance() -> None:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(7, 5))
    means = rng.normal(size=(3, 5))
    a = rng.normal(size=(5, 5))
    precision = a @ a.T + np.eye(5)
    brute = [-min((v - m) @ precision @ (v - m) for m in means) for v in h]
    np.testing.assert_allclose(digit_score.mahalanobis(h, means, precision), brute, rtol=1e-9)
    assert digit_score.mahalanobis(means[:1], means, precision)[0] == pytest.approx(0.0, abs=1e-9)


def test_to_unit_is_half_at_the_threshold_and_monotone() -> None:
    raw = np.array([-1e6, 1.0, 2.0, 3.0, 1e6])
    score = digit_score.to_unit(raw, threshold=2.0, scale=0.5)
    assert score[2] == pytest.approx(0.5) and (np.diff(score) > 0).all()
    assert score[0] == 0.0 and score[-1] == 1.0 and ((score >= 0) & (score <= 1)).all()
    assert list(digit_score.is_digit(score)) == [False, False, True, True, True]


def test_reconstruction_is_zero_in_the_span_and_negative_off_it() -> None:
    mean = np.full(4, 0.5)
    components = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    inside = mean + np.array([[0.3, -0.2, 0.0, 0.0]])
    outside = mean + np.array([[0.0, 0.0, 0.3, 0.4]])
    assert digit_score.reconstruction(inside, mean, components)[0] == pytest.approx(0.0)
    assert digit_score.reconstruction(outside, mean, components)[0] == pytest.approx(-0.25)


def test_combined_is_the_mean_of_the_standardised_scores() -> None:
    np.testing.assert_allclose(digit_score.combined(np.array([1.0, -1.0]), np.array([3.0, 1.0])), [2.0, 0.0])
