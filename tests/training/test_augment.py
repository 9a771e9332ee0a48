"""training/augment.py: random affine augmentation keeps the digits' format, is reproducible, and is the identity at zero."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training import augment
from training.augment import random_affine
from training.train import make_dataset


@pytest.fixture(scope="module")
def digits(sample: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(32, 28, 28) float32 in [0, 1], as the input pipeline feeds random_affine."""
    return sample[0][:32].astype(np.float32) / 255


def run(images: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    return random_affine(tf.constant(images), tf.constant(seed, dtype=tf.int64)).numpy()


def test_keeps_shape_dtype_and_range(digits: np.ndarray) -> None:
    out = run(digits, (1, 2))
    assert out.shape == digits.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    # a moderate transform: the ink is neither lost off the edge nor multiplied
    np.testing.assert_allclose(out.sum(axis=(1, 2)), digits.sum(axis=(1, 2)), rtol=0.35)


def test_same_seed_same_output(digits: np.ndarray) -> None:
    np.testing.assert_array_equal(run(digits, (3, 4)), run(digits, (3, 4)))


def test_other_seeds_other_transforms(digits: np.ndarray) -> None:
    a, b = run(digits, (3, 4)), run(digits, (3, 5))
    assert np.abs(a - b).mean(axis=(1, 2)).min() > 1e-3, "every image moves differently"
    assert np.abs(a - digits).mean(axis=(1, 2)).min() > 1e-3, "every image is transformed"
    # and each image of a batch gets its own transform: the same digit twice comes out differently
    twice = run(np.stack([digits[0], digits[0]]), (3, 4))
    assert np.abs(twice[0] - twice[1]).mean() > 1e-3


def test_zero_ranges_are_the_identity(digits: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_ROTATION_DEG", "MAX_SCALE_DELTA", "MAX_SHEAR", "MAX_SHIFT_PX"):
        monkeypatch.setattr(augment, name, 0.0)
    np.testing.assert_allclose(run(digits, (7, 8)), digits, atol=1e-6)


def test_shift_only_moves_the_centre_of_mass_within_the_range(
    digits: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MAX_ROTATION_DEG", "MAX_SCALE_DELTA", "MAX_SHEAR"):
        monkeypatch.setattr(augment, name, 0.0)
    rows, cols = np.mgrid[0:28, 0:28]

    def centre(images: np.ndarray) -> np.ndarray:
        mass = images.sum(axis=(1, 2))
        return np.stack([(images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass], axis=1)

    moved = np.abs(centre(run(digits, (9, 9))) - centre(digits))
    assert moved.max() <= augment.MAX_SHIFT_PX + 0.1
    assert moved.max() > 0.5


def test_augmenting_pipeline_yields_model_batches(digits: np.ndarray) -> None:
    x = (digits[:20] * 255).astype(np.uint8)
    y = np.arange(20) % 10
    batches = list(make_dataset(x, y, batch_size=8, seed=5, augment=True).as_numpy_iterator())
    assert [len(images) for images, _ in batches] == [8, 8, 4]
    images, labels = batches[0]
    assert images.shape == (8, 784) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 + 1e-6
    assert labels.shape == (8, 10) and (labels.sum(axis=1) == 1).all()
    again = list(make_dataset(x, y, batch_size=8, seed=5, augment=True).as_numpy_iterator())
    for (a, la), (b, lb) in zip(batches, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)


def test_pipeline_keeps_each_image_with_its_label(digits: np.ndarray) -> None:
    x = (digits * 255).astype(np.uint8)
    y = np.arange(len(x)) % 10
    seen = 0
    for images, labels in make_dataset(x, y, batch_size=7, seed=1, augment=False).as_numpy_iterator():
        for image, label in zip(images, labels, strict=True):
            index = int(np.argmin(np.abs(x.reshape(len(x), 784) / 255 - image).sum(axis=1)))
            np.testing.assert_array_equal(image, x[index].reshape(784).astype(np.float32) / 255)
            assert int(label.argmax()) == y[index]
            seen += 1
    assert seen == len(x)


def test_use_some_replaces_that_share_of_the_images(digits: np.ndarray) -> None:
    others = 1 - digits
    seed = tf.constant((2, 3), dtype=tf.int64)

    def mixed(share: float) -> np.ndarray:
        return augment.use_some(tf.constant(digits), tf.constant(others), share, seed).numpy()

    np.testing.assert_array_equal(mixed(0.0), digits)
    np.testing.assert_array_equal(mixed(1.0), others)
    half = mixed(0.5)
    replaced = [np.array_equal(h, o) for h, o in zip(half, others, strict=True)]
    kept = [np.array_equal(h, d) for h, d in zip(half, digits, strict=True)]
    assert all(r != k for r, k in zip(replaced, kept, strict=True))  # each image is one or the other, whole
    assert 6 <= sum(replaced) <= 26  # of 32, at p = 0.5


def test_bold_pipeline_mixes_in_bold_copies(digits: np.ndarray) -> None:
    x = (digits * 255).astype(np.uint8)
    y = np.arange(len(x)) % 10
    plain = np.concatenate([b for b, _ in make_dataset(x, y, 32, seed=1, augment=False).as_numpy_iterator()])
    bold = np.concatenate([b for b, _ in make_dataset(x, y, 32, seed=1, augment=False, bold=1.0).as_numpy_iterator()])
    assert bold.shape == plain.shape
    # same order, every image replaced by its bold copy: more ink in most of them
    assert np.median(bold.sum(axis=1) / plain.sum(axis=1)) > 1.1


def distort(images: np.ndarray, seed: tuple[int, int], alpha: float = augment.ELASTIC_ALPHA) -> np.ndarray:
    return augment.elastic_distort(tf.constant(images), tf.constant(seed, dtype=tf.int64), alpha=alpha).numpy()


def test_elastic_keeps_shape_dtype_range_and_ink(digits: np.ndarray) -> None:
    out = distort(digits, (1, 2))
    assert out.shape == digits.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    # resampling through a bent field can thin or thicken a stroke, not make or lose a digit's worth of ink
    ratio = out.sum(axis=(1, 2)) / digits.sum(axis=(1, 2))
    assert 0.85 < np.median(ratio) < 1.15 and ratio.min() > 0.5 and ratio.max() < 2.5
    assert np.abs(out - digits).mean(axis=(1, 2)).min() > 1e-3, "every image is distorted"


def test_elastic_at_alpha_zero_is_the_identity(digits: np.ndarray) -> None:
    np.testing.assert_array_equal(distort(digits, (3, 4), alpha=0.0), digits)


def test_elastic_is_reproducible_from_the_seed(digits: np.ndarray) -> None:
    np.testing.assert_array_equal(distort(digits, (5, 6)), distort(digits, (5, 6)))
    assert np.abs(distort(digits, (5, 6)) - distort(digits, (5, 7))).mean(axis=(1, 2)).min() > 1e-3
    twice = distort(np.stack([digits[0], digits[0]]), (5, 6))
    assert np.abs(twice[0] - twice[1]).mean() > 1e-3, "each image gets its own field"


def test_elastic_moves_pixels_by_about_a_pixel_not_more(digits: np.ndarray) -> None:
    """Simard's sigma 4, alpha 34 is a gentle bend: a shifted copy of an image is no closer than the distortion."""
    out = distort(digits, (8, 9))
    shifted = np.roll(digits, 3, axis=2)
    assert np.abs(out - digits).mean() < np.abs(shifted - digits).mean()


def test_elastic_pipeline_yields_model_batches(digits: np.ndarray) -> None:
    x = (digits[:20] * 255).astype(np.uint8)
    y = np.arange(20) % 10
    batches = list(make_dataset(x, y, batch_size=8, seed=5, augment=True, elastic=34.0).as_numpy_iterator())
    assert [len(images) for images, _ in batches] == [8, 8, 4]
    plain = list(make_dataset(x, y, batch_size=8, seed=5, augment=True).as_numpy_iterator())
    assert not np.array_equal(batches[0][0], plain[0][0])
    again = list(make_dataset(x, y, batch_size=8, seed=5, augment=True, elastic=34.0).as_numpy_iterator())
    np.testing.assert_array_equal(batches[0][0], again[0][0])


def test_pipeline_adds_negatives_with_uniform_targets(digits: np.ndarray) -> None:
    x = (digits * 255).astype(np.uint8)
    y = np.arange(len(x)) % 10
    negatives = np.zeros((8, 28, 28), np.uint8)  # 8 of 32: two per batch of 8
    batches = list(make_dataset(x, y, 8, seed=1, augment=False, negatives=negatives).as_numpy_iterator())
    assert [len(images) for images, _ in batches] == [10, 10, 10, 10]
    images, labels = batches[0]
    np.testing.assert_allclose(labels[-2:], 0.1)
    assert (images[-2:] == 0).all() and (labels[:-2].max(axis=1) == 1).all()
    bold = list(make_dataset(x, y, 8, seed=1, augment=False, bold=0.5, negatives=negatives).as_numpy_iterator())
    assert [len(images) for images, _ in bold] == [10, 10, 10, 10]
