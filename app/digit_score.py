"""How digit-like an input is, from the numpy forward pass: pure numpy, no TensorFlow, no training imports.

Two raw scores, higher = more digit-like, each turned into `digit_score` in [0, 1] by `to_unit`:

- `energy(logits)`: the negative free energy T * logsumexp(logits / T) (Liu et al. 2020). It needs the
  LOGITS, the last Dense layer's output before its softmax: (N, 10) float32. With the calibrated model,
  those are the saved last layer's x @ kernel + bias (the temperature is already folded in). Probabilities
  alone do not determine it (softmax drops the constant the energy measures).
- `max_probability(probabilities)`: the top softmax probability (Hendrycks and Gimpel 2017); it needs only
  the model's (N, 10) output.
- `mahalanobis(hidden, means, precision)`: minus the smallest squared Mahalanobis distance of the LAST
  HIDDEN LAYER's activations (after its ReLU), (N, H) float32, to the class means (10, H) under one shared
  precision matrix (H, H) (Lee et al. 2018). Its parameters come from the training set.
- `reconstruction(pixels, mean, components)`: minus the squared error of the INPUT (N, 784) float32 in
  [0, 1] rebuilt from its first K principal components (a linear auto-encoder): `mean` (784,) and
  `components` (K, 784) orthonormal rows, fitted on the training digits.
- `combined(*standardised)`: the mean of several raw scores, each standardised by its validation digits'
  mean and standard deviation, `(raw - mean) / std`.

`to_unit(raw, threshold, scale)` maps a raw score to (0, 1) with a logistic centred on the threshold
chosen on validation digits, so `is_digit = digit_score >= 0.5` at the model's own threshold. The model's
metadata ("digit_score") names the method and gives `threshold`, `scale` (and `temperature` for energy).
"""

from __future__ import annotations

import numpy as np

IS_DIGIT_AT = 0.5  # digit_score at the metadata's threshold


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, C) logits -> (N,) float64 T * logsumexp(logits / T); higher = more digit-like."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    top = z.max(axis=1)
    return temperature * (top + np.log(np.exp(z - top[:, None]).sum(axis=1)))


def max_probability(probabilities: np.ndarray) -> np.ndarray:
    """(N, C) softmax probabilities -> (N,) float64 top probability."""
    return np.asarray(probabilities, dtype=np.float64).max(axis=1)


def mahalanobis(hidden: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(N, H) activations, (C, H) class means, (H, H) shared precision -> (N,) float64 minus the smallest
    squared distance to a class mean; higher = more digit-like."""
    h = np.asarray(hidden, dtype=np.float64)
    mu = np.asarray(means, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64)
    hp = h @ p  # (N, H)
    # (h - mu)^T P (h - mu) = h P h - 2 h P mu + mu P mu, for every class at once
    distances = (hp * h).sum(axis=1)[:, None] - 2 * hp @ mu.T + ((mu @ p) * mu).sum(axis=1)[None, :]
    return -distances.min(axis=1)


def reconstruction(pixels: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """(N, 784) pixels, (784,) mean, (K, 784) orthonormal components -> (N,) float64 minus the squared
    reconstruction error; higher = more digit-like."""
    centred = np.asarray(pixels, dtype=np.float64) - mean
    codes = centred @ components.T
    residual = centred - codes @ components
    return -(residual**2).sum(axis=1)


def combined(*standardised: np.ndarray) -> np.ndarray:
    """The mean of raw scores already standardised on validation digits: (N,) each -> (N,) float64."""
    return np.mean(np.stack([np.asarray(s, dtype=np.float64) for s in standardised]), axis=0)


def to_unit(raw: np.ndarray, threshold: float, scale: float) -> np.ndarray:
    """(N,) raw scores -> (N,) float64 digit_score in (0, 1): 1 / (1 + exp(-(raw - threshold) / scale))."""
    x = (np.asarray(raw, dtype=np.float64) - threshold) / scale
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # the logistic, without overflow


def is_digit(digit_score: np.ndarray, at: float = IS_DIGIT_AT) -> np.ndarray:
    """(N,) digit_score -> (N,) bool; `at` is MNIST_DIGIT_THRESHOLD when set."""
    return np.asarray(digit_score) >= at
