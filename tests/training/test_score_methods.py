"""tools/score_methods.py: the alternative digit scores against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from tools import score_methods


def test_energy_is_t_logsumexp() -> None:
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(score_methods.energy(z)[0], np.log(np.exp(z[0]).sum()))
    assert score_methods.energy(z)[1] == pytest.approx(1000.0)  # no overflow
    np.testing.assert_allclose(score_methods.energy(z[:1], 2.0), 2 * np.log(np.exp(z[0] / 2).sum()))


def test_energy_grows_with_a_confident_logit() -> None:
    flat, peaked = np.zeros((1, 10)), np.eye(10)[[0]] * 8
    assert score_methods.energy(peaked)[0] > score_methods.energy(flat)[0]


def test_max_probability() -> None:
    np.testing.assert_allclose(score_methods.max_probability(np.array([[0.1, 0.9], [0.6, 0.4]])), [0.9, 0.6])


def test_mahalanobis_is_minus_the_nearest_class_distance() -> None:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(7, 5))
    means = rng.normal(size=(3, 5))
    a = rng.normal(size=(5, 5))
    precision = a @ a.T + np.eye(5)
    brute = [-min((v - m) @ precision @ (v - m) for m in means) for v in h]
    np.testing.assert_allclose(score_methods.mahalanobis(h, means, precision), brute, rtol=1e-9)
    assert score_methods.mahalanobis(means[:1], means, precision)[0] == pytest.approx(0.0, abs=1e-9)


def test_reconstruction_is_zero_in_the_span_and_negative_off_it() -> None:
    mean = np.full(4, 0.5)
    components = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    inside = mean + np.array([[0.3, -0.2, 0.0, 0.0]])
    outside = mean + np.array([[0.0, 0.0, 0.3, 0.4]])
    assert score_methods.reconstruction(inside, mean, components)[0] == pytest.approx(0.0)
    assert score_methods.reconstruction(outside, mean, components)[0] == pytest.approx(-0.25)


def test_combined_is_the_mean_of_the_standardised_scores() -> None:
    np.testing.assert_allclose(score_methods.combined(np.array([1.0, -1.0]), np.array([3.0, 1.0])), [2.0, 0.0])
