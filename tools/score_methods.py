"""Alternative "not a digit" scores, computed from the classifier alone, that tools/digit_scores.py
compares with the model's digit scorer (training/scorer.py, the one the service answers). Pure numpy;
higher = more digit-like.

- `energy(logits)`: the negative free energy T * logsumexp(logits / T) (Liu et al. 2020), from the
  LOGITS, the last Dense layer's output before its softmax: (N, 10) float32 (probabilities alone do not
  determine it: softmax drops the constant it measures).
- `max_probability(probabilities)`: the top softmax probability (Hendrycks and Gimpel 2017).
- `mahalanobis(hidden, means, precision)`: minus the smallest squared Mahalanobis distance of the last
  hidden layer's activations (N, H) to the class means (10, H) under one shared precision (H, H)
  (Lee et al. 2018), fitted on the training set.
- `reconstruction(pixels, mean, components)`: minus the squared error of the input (N, 784) rebuilt from
  its first K principal components (a linear auto-encoder) fitted on the training digits.
- `combined(*standardised)`: the mean of several raw scores, each standardised on the validation digits.
"""

from __future__ import annotations

import numpy as np


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
