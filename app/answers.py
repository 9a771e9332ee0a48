"""What the model answers, as arrays. The engines decide them, where the model is (probabilities,
digit scores, is_digit at the model's threshold, notes, pixels); each transport renders them (/v1's
JSON, /v2's tensors, the command line's table). Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Classified:
    """The model's answers for N images, in order."""

    probabilities: np.ndarray  # (N, 10) float32 softmax
    digit_scores: np.ndarray | None  # (N,) float64 in [0, 1]; None: the model has no digit scorer
    is_digit: np.ndarray | None  # (N,) bool: digit_score at or above the model's threshold
    notes: list[list[str]]  # what preprocessing did to each image
    pixels: list[np.ndarray] | None  # the (28, 28) uint8 images the model saw, when they were asked for
    version: str  # of the model that computed them

    def __len__(self) -> int:
        return len(self.probabilities)

    @property
    def digits(self) -> np.ndarray:
        """(N,) int64: the most probable digit of each image."""
        return self.probabilities.argmax(axis=1).astype(np.int64)
