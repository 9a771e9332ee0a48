"""How sure a reading is: the probability that its whole text is right.

The product of the digits' calibrated probabilities times the cuts' certainty (`Layout.certainty`) is
not calibrated: the reader's mistakes are wrong cuts whose pieces still look like digits, so a wrong
reading keeps a high product, and a long right one gets a low one. A logistic model on what the
reading itself shows (its digits' probabilities and digit scores, its cuts' certainty, how many digits
and lines, how close its digits stand, how wide its widest one is) gives that probability instead.
It is fitted on generated numbers by `python -m training.reading_calibration`, for one model: the
file beside it, `<model>.reading.json`, names the model's sha256. A model without one (or with one
fitted for another model) keeps the product, and the log says so. Figures: docs/reading.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.answers import Reading
from app.model.keras_file import ModelLoadError

log = logging.getLogger("app")

FEATURES = (
    "log_product",  # log of the product of the digits' probabilities
    "log_certainty",  # log of the cuts' certainty
    "log_digits",  # log of the number of digits
    "lines",
    "log_least_probability",  # the least sure digit
    "least_score_logit",  # the least digit-like digit, as a logit / 10
    "closest_gap",  # the narrowest white gap between neighbours of a line, in digit heights, in [-1, 1]
    "share_touching",  # the share of neighbours with no white gap between them
    "touching",  # how many neighbours have none, / 5
    "marks",  # how many marks, / 3
    "widest",  # the widest digit, in digit heights
    "thin",  # how many digits are under 0.35 digit heights wide (a 1, or a sliver read as one), / 3
)
TOUCHING = 0.02  # a gap under this many digit heights: the two digits touch (the reader cut through ink)
THIN = 0.35
FLOOR = 1e-6


def features(reading: Reading) -> np.ndarray:
    """The reading's FEATURES, (len(FEATURES),) float64 (all finite)."""
    digits = reading.digits
    probability = np.array([d.confidence for d in digits], np.float64).clip(FLOOR, 1.0)
    score = np.array([1.0 if d.digit_score is None else d.digit_score for d in digits]).clip(1e-4, 1 - 1e-4)
    height = max(1.0, float(np.median([d.box[3] for d in digits])))
    gaps = np.array([
        (b.box[0] - a.box[0] - a.box[2]) / height for a, b in itertools.pairwise(digits) if a.line == b.line
    ]).reshape(-1)  # fmt: skip
    touching = gaps <= TOUCHING
    widths = np.array([d.box[2] for d in digits]) / height
    return np.array([
        np.log(probability).sum(),
        np.log(max(reading.certainty, 1e-12)),
        np.log(len(digits)),
        1 + max(d.line for d in digits),
        np.log(probability.min()),
        np.log(score / (1 - score)).min() / 10,
        np.clip(gaps.min(), -1.0, 1.0) if len(gaps) else 1.0,
        touching.mean() if len(gaps) else 0.0,
        touching.sum() / 5,
        len(reading.marks) / 3,
        widths.max(),
        (widths < THIN).sum() / 3,
    ])  # fmt: skip


@dataclass(frozen=True)
class ReadingCalibration:
    """P(reading right) = sigmoid(weights . features + bias) for readings of two digits or more, for the
    model whose sha256 it names."""

    weights: tuple[float, ...]  # one per feature
    bias: float
    model_sha256: str
    fitted: dict[str, Any] = dataclasses.field(default_factory=dict)  # how and on what it was fitted

    def probability(self, reading: Reading) -> float:
        """The reading's calibrated confidence. One digit keeps its own (its calibrated probability, as
        /v1/predict gives it, times the cuts' certainty): on single digits that was the better calibrated
        of the two (docs/reading.md), and the model is fitted on numbers of two digits or more."""
        if len(reading.digits) < 2:
            return reading.confidence
        return float(self.of_features(features(reading)[np.newaxis])[0])

    def of_features(self, x: np.ndarray) -> np.ndarray:
        """(N, len(FEATURES)) features -> (N,) the logistic model's probability."""
        logit = x @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -40.0, 40.0)))

    def calibrate(self, readings: list[Reading]) -> list[Reading]:
        """The readings with this calibration's confidence."""
        return [dataclasses.replace(r, confidence=self.probability(r)) for r in readings]

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "model_sha256": self.model_sha256,
            "fitted": self.fitted,
        }

    @classmethod
    def from_json(cls, data: Any) -> ReadingCalibration:
        """Raises ValueError unless `data` is what to_json writes, for today's FEATURES."""
        if not isinstance(data, dict) or data.get("features") != list(FEATURES):
            raise ValueError(f"it is not a reading calibration of the features {', '.join(FEATURES)}")
        weights = np.asarray(data.get("weights"), np.float64)
        bias = data.get("bias")
        if weights.shape != (len(FEATURES),) or not np.isfinite(weights).all():
            raise ValueError(f"its weights are not {len(FEATURES)} finite numbers")
        if not isinstance(bias, (int, float)) or not np.isfinite(bias) or not isinstance(data.get("model_sha256"), str):
            raise ValueError("its bias or model_sha256 is missing")
        return cls(tuple(map(float, weights)), float(bias), data["model_sha256"], dict(data.get("fitted") or {}))


def calibration_path(model_path: Path) -> Path:
    """models/mnist-mlp.keras -> models/mnist-mlp.reading.json"""
    return model_path.with_suffix(".reading.json")


def load_reading_calibration(model_path: Path, sha256: str) -> ReadingCalibration | None:
    """The model's reading calibration; None (logged) when it has none, or one fitted for another model.
    Raises ModelLoadError when the model's own is unreadable."""
    path = calibration_path(model_path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        log.warning("no reading calibration %s: /v1/read's confidence is the product of the digits' "
                    "probabilities and the cuts' certainty, not calibrated", path)  # fmt: skip
        return None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"reading calibration {path} is not readable JSON ({exc}).") from None
    if isinstance(data, dict) and data.get("model_sha256") != sha256:
        log.warning("reading calibration %s was fitted for another model (sha256 %s): not used; refit it with "
                    "`python -m training.reading_calibration`", path, data.get("model_sha256"))  # fmt: skip
        return None
    try:
        return ReadingCalibration.from_json(data)
    except ValueError as exc:
        raise ModelLoadError(f"reading calibration {path}: {exc}.") from None
