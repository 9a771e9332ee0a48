"""training/scorer.py: the scorer's heads, trained from different seeds, merged into one Dense chain."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.scorer import ScorerRecipe, build_scorer, merge_members


def classifier() -> keras.Model:
    inputs = keras.Input(shape=(784,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dense(12, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    p = np.asarray(model(x), np.float64)[:, 0]
    return np.log(p / (1 - p))


@pytest.mark.parametrize("hidden", [(8,), (8, 4), ()])
def test_the_merged_scorer_answers_the_mean_of_its_members_logits(hidden: tuple[int, ...]) -> None:
    """Members with random weights (not trained: the merge is exact whatever they learnt); the merged
    model is one Dense chain on the same trunk, wider by the number of members."""
    keras.utils.set_random_seed(3)
    trunk = classifier()
    recipe = ScorerRecipe(hidden=hidden, members=3)
    members = [build_scorer(recipe, trunk) for _ in range(recipe.members)]
    for seed, member in enumerate(members):  # random own layers, different for each member
        rng = np.random.default_rng(seed)
        for layer in member.layers:
            if layer.trainable and hasattr(layer, "kernel"):
                kernel, bias = layer.get_weights()
                layer.set_weights([rng.normal(0, 0.5, kernel.shape).astype(np.float32),
                                   rng.normal(0, 0.5, bias.shape).astype(np.float32)])  # fmt: skip
    merged = merge_members(recipe, trunk, members)
    x = np.random.default_rng(0).random((50, 784), dtype=np.float32)
    each = [logits(m, x) for m in members]
    expected = np.mean(each, axis=0)
    np.testing.assert_allclose(logits(merged, x), expected, atol=1e-4)
    widths = [layer.units for layer in merged.layers if hasattr(layer, "units")]
    assert widths == [16, 12, *(3 * u for u in hidden), 1]
    assert min(np.abs(e - expected).max() for e in each) > 0.05  # no member alone would pass
