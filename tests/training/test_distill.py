"""training/distill.py: Hinton's distillation loss on known values, and the distiller trains the student only."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.distill import Distillation, distillation_loss, make_distiller


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference(targets: np.ndarray, s: np.ndarray, t: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    p, q = softmax(t / temperature), softmax(s / temperature)
    kl = (p * np.log(p / q)).sum(axis=-1)
    ce = -(targets * np.log(softmax(s))).sum(axis=-1)
    return alpha * temperature**2 * kl + (1 - alpha) * ce


def loss(targets: np.ndarray, s: np.ndarray, t: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    return distillation_loss(tf.constant(targets), tf.constant(s), tf.constant(t), temperature, alpha).numpy()


def test_a_hand_computed_example() -> None:
    targets = np.array([[1.0, 0.0, 0.0]], np.float32)
    s = np.array([[0.0, 0.0, 0.0]], np.float32)
    t = np.array([[np.log(2.0), 0.0, 0.0]], np.float32)  # teacher at T = 1: (1/2, 1/4, 1/4)
    # KL((1/2, 1/4, 1/4) || uniform) = log 3 - 1.5 log 2; CE(one-hot, uniform) = log 3
    expected = 0.5 * (np.log(3) - 1.5 * np.log(2)) + 0.5 * np.log(3)
    np.testing.assert_allclose(loss(targets, s, t, 1.0, 0.5), [expected], rtol=1e-5)


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.0), (4.0, 0.7), (2.0, 1.0)], ids=["labels", "mix", "soft"])
def test_matches_the_formula(temperature: float, alpha: float) -> None:
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 6, 10)).astype(np.float32) * 3
    targets = np.eye(10, dtype=np.float32)[rng.integers(10, size=6)]
    np.testing.assert_allclose(
        loss(targets, s, t, temperature, alpha), reference(targets, s, t, temperature, alpha), rtol=1e-4
    )


def test_the_student_equal_to_the_teacher_leaves_only_the_label_term() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 10)).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[[1, 2, 3, 4]]
    np.testing.assert_allclose(loss(targets, z, z, 4.0, 1.0), 0.0, atol=1e-5)


def test_a_uniform_target_ignores_the_teacher() -> None:
    """Outlier-exposure negatives: a uniform row wants a uniform output, whatever the teacher says."""
    uniform = np.full((1, 10), 0.1, np.float32)
    s = np.zeros((1, 10), np.float32)
    confident_teacher = np.eye(10, dtype=np.float32)[[3]] * 20
    np.testing.assert_allclose(loss(uniform, s, confident_teacher, 4.0, 0.7), 0.3 * np.log(10), rtol=1e-5)


def test_the_distiller_trains_the_student_and_leaves_the_teacher() -> None:
    keras.utils.set_random_seed(0)
    student = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    teacher = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    before = [w.copy() for w in teacher.get_weights()], [w.copy() for w in student.get_weights()]
    model = make_distiller(student, teacher, Distillation(temperature=2.0, alpha=0.5), label_smoothing=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    x = np.random.default_rng(0).random((32, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(32) % 10]
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for a, b in zip(before[0], teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(before[1][0], student.get_weights()[0])
    np.testing.assert_allclose(model(x[:4]), student(x[:4]), rtol=1e-6)
