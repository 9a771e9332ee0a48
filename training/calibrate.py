"""Temperature scaling (Guo et al. 2017): one temperature T fitted on the validation split (never the test
set) by minimising the negative log-likelihood of softmax(logits / T); then folded into the last Dense
layer (kernel / T, bias / T), so the saved file itself gives calibrated probabilities to every reader."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.model.calibration import ECE_BINS, expected_calibration_error, softmax

T_RANGE = (0.05, 20.0)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of (N,) integer labels under softmax((N, C) logits / temperature)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tol: float = 1e-4) -> float:
    """The T in T_RANGE minimising nll (golden-section search on log T: the NLL is unimodal in T)."""
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, float(np.exp(a))), nll(logits, labels, float(np.exp(b)))
    while hi - lo > tol:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, float(np.exp(a)))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, float(np.exp(b)))
    return float(np.exp((lo + hi) / 2))


def fold_temperature(weights: list[np.ndarray], temperature: float) -> list[np.ndarray]:
    """A Dense stack's weights (kernel, bias, ..., last kernel, last bias) with the last layer divided by T:
    softmax(x W / T + b / T) = softmax((x W + b) / T)."""
    *rest, kernel, bias = weights
    return [*rest, (kernel / temperature).astype(kernel.dtype), (bias / temperature).astype(bias.dtype)]


def calibration_report(
    temperature: float, splits: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = ECE_BINS
) -> dict[str, Any]:
    """What the metadata records: T, and ECE before and after on each split of (logits, labels)."""
    report: dict[str, Any] = {"method": "temperature scaling", "fitted_on": "validation", "temperature": temperature}
    report["ece_bins"] = bins
    for name, (logits, labels) in splits.items():
        before = softmax(logits)
        after = softmax(logits, temperature)
        report[name] = {
            "ece_before": round(expected_calibration_error(before, labels, bins), 6),
            "ece_after": round(expected_calibration_error(after, labels, bins), 6),
            "mean_confidence_before": round(float(before.max(axis=1).mean()), 6),
            "mean_confidence_after": round(float(after.max(axis=1).mean()), 6),
            "nll_before": round(nll(logits, labels, 1.0), 6),
            "nll_after": round(nll(logits, labels, temperature), 6),
        }
    return report
