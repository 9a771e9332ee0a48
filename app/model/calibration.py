"""Calibration measures of a classifier's probabilities, and of any probability that an answer is right
(a reading's confidence); pure numpy (training and evaluation import them).

Expected calibration error (Naeini et al. 2015, Guo et al. 2017): the predictions are put into equal-width
bins of confidence (the top probability); ECE is the share-weighted mean, over the bins, of
|accuracy - mean confidence| in each bin.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ECE_BINS = 15


class Reliability(NamedTuple):
    """Per-bin figures of a reliability diagram; bins with no prediction have counts 0 and NaN means."""

    edges: np.ndarray  # (bins + 1,) float64 from 0 to 1
    confidence: np.ndarray  # (bins,) mean top probability in each bin
    accuracy: np.ndarray  # (bins,) share right in each bin
    counts: np.ndarray  # (bins,) int64


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """(N, C) probabilities and (N,) integer labels -> the per-bin confidence, accuracy and count.

    Bins are (lo, hi], the first one [0, hi], as Guo et al. bin them."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct.astype(np.float64), minlength=bins) / count
    return Reliability(edges, mean_confidence, accuracy, count.astype(np.int64))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """(N, C) probabilities and (N,) integer labels -> ECE in [0, 1] over `bins` equal-width bins."""
    r = reliability(probabilities, labels, bins)
    used = r.counts > 0
    weights = r.counts[used] / r.counts.sum()
    return float(np.sum(weights * np.abs(r.accuracy[used] - r.confidence[used])))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, C) logits -> (N, C) float64 softmax of logits / temperature."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confidence_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of a probability that each answer is right, over equal-width bins."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    if not len(confidence):
        return float("nan")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def ece_floor(confidence: np.ndarray, bins: int = ECE_BINS, draws: int = 200) -> float:
    """The ECE that a perfectly calibrated `confidence` would still show on this many answers: the mean
    over `draws` of the ECE when each answer is right with exactly its confidence. An ECE near it is as
    calibrated as this many answers can tell."""
    confidence = np.asarray(confidence, np.float64)
    rng = np.random.default_rng(0)
    return float(
        np.mean([confidence_ece(confidence, rng.random(len(confidence)) < confidence, bins) for _ in range(draws)])
    )


def auroc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The chance that a right answer has a higher confidence than a wrong one (ties count half)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    right, wrong = confidence[correct], confidence[~correct]
    if not len(right) or not len(wrong):
        return float("nan")
    order = np.sort(wrong)
    below = np.searchsorted(order, right, side="left") + 0.5 * (
        np.searchsorted(order, right, side="right") - np.searchsorted(order, right, side="left")
    )
    return float(below.mean() / len(wrong))
