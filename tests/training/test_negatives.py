"""training/negatives.py: the outlier-exposure negatives have MNIST's format, come from the seed, and are not digits."""

from __future__ import annotations

import numpy as np
import pytest

from training import negatives
from training.negatives import KINDS, MAKERS, make_negatives


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_mnists_format(kind: str, sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    out = MAKERS[kind](x, y, 12, np.random.default_rng(0))
    assert out.shape == (12, 28, 28) and out.dtype == np.uint8
    assert (out.reshape(12, -1).max(axis=1) > 0).all(), "every image has ink"


def test_make_negatives_is_reproducible_and_mixes_the_kinds(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    a, b = make_negatives(x, y, 41, seed=3), make_negatives(x, y, 41, seed=3)
    assert a.shape == (41, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, make_negatives(x, y, 41, seed=4))
    assert ((a > 127).sum(axis=(1, 2)) >= 15).all()


def test_halves_join_two_classes(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    rng = np.random.default_rng(5)
    out = negatives.halves(x, y, 50, rng)
    # no output equals a whole MNIST digit
    flat = x.reshape(len(x), -1).astype(np.int32)
    for image in out.reshape(50, -1).astype(np.int32):
        assert np.abs(flat - image).sum(axis=1).min() > 0


def test_scrambled_keeps_the_ink(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample
    out = negatives.scrambled(x[:1], y[:1], 1, np.random.default_rng(0))
    assert sorted(out.ravel()) == sorted(x[0].ravel())
