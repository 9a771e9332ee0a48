"""The quality gate a model passes before it is served: its file's checks (app/model/keras_file.py: sha256
against its metadata, Dense layers only, the contract's shapes) and its accuracy on a built-in sample.

The gate sample is the first 1,000 MNIST test digits (app/data/mnist-sample.npz), already in MNIST's
form: the model is evaluated on them directly, in a few milliseconds, with no decoding.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from app.contract import flatten_and_scale
from app.model.classifier import Classifier
from app.model.keras_file import ModelLoadError
from app.model.network import forward

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist-sample.npz"
DEFAULT_MARGIN = 0.005  # unset MNIST_GATE_MIN_ACCURACY: half a point under the serving model's score


class Refused(ModelLoadError):
    """A candidate that failed the gate; the message says which check and by how much."""


@cache
def sample() -> tuple[np.ndarray, np.ndarray]:
    """The gate sample: (1000, 784) float32 in [0, 1] and (1000,) labels."""
    with np.load(SAMPLE_PATH) as data:
        return flatten_and_scale(data["x"]), data["y"].astype(np.int64)


def accuracy(classifier: Classifier) -> float:
    """The classifier's accuracy on the gate sample (numpy, no observer: not counted as predictions)."""
    x, y = sample()
    return float((forward(classifier.layers, x).argmax(axis=1) == y).mean())


def check(candidate: Classifier, min_accuracy: float | None, serving: Classifier | None) -> float:
    """The candidate's gate accuracy, or Refused when it is under `min_accuracy` (absolute), or, unset,
    under the serving model's own score less DEFAULT_MARGIN (no serving model: no accuracy bar)."""
    score = accuracy(candidate)
    if min_accuracy is None and serving is not None:
        min_accuracy = accuracy(serving) - DEFAULT_MARGIN
        bar = f"{min_accuracy:.2%} (the serving model's {min_accuracy + DEFAULT_MARGIN:.2%} less {DEFAULT_MARGIN:.1%})"
    else:
        bar = f"{min_accuracy:.2%} (MNIST_GATE_MIN_ACCURACY)" if min_accuracy is not None else ""
    if min_accuracy is not None and score < min_accuracy - 1e-9:
        raise Refused(
            f"model {candidate.version} scores {score:.2%} on the gate sample ({len(sample()[1])} MNIST test "
            f"digits), under the bar of {bar}."
        )
    return score
