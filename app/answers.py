"""What the model answers, as arrays. The engines decide them, where the model is (probabilities,
digit scores, is_digit at the model's threshold, notes, pixels); each transport renders them (/v1's
JSON, /v2's tensors, the command line's table). Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height in the upright image's pixels


@dataclass
class Classified:
    """The model's answers for N images, in order."""

    probabilities: np.ndarray  # (N, 10) float32 softmax
    digit_scores: np.ndarray | None  # (N,) float64 in [0, 1]; None: the model has no digit scorer
    is_digit: np.ndarray | None  # (N,) bool: digit_score at or above the model's threshold
    notes: list[list[str]]  # what preprocessing did to each image
    pixels: list[np.ndarray] | None  # the (28, 28) uint8 images the model saw, when they were asked for
    version: str  # of the model that computed them
    layouts: list[Layout] | None = None  # read-files: where each file's images (its digits) were found

    def __len__(self) -> int:
        return len(self.probabilities)

    @property
    def digits(self) -> np.ndarray:
        """(N,) int64: the most probable digit of each image."""
        return self.probabilities.argmax(axis=1).astype(np.int64)


@dataclass
class Mark:
    """A small mark between digits (not a digit: left out of a reading's text): its likeliest character."""

    char: str  # ".", ",", "-" or "/"
    box: Box
    line: int


@dataclass
class Layout:
    """Where one file's digits are: the next `len(boxes)` images of the answers, in reading order (lines
    top to bottom, digits left to right), each with its box and line; and the file's marks and notes."""

    boxes: list[Box]
    lines: list[int]
    marks: list[Mark] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    certainty: float = 1.0  # the probability that the cuts between its digits are right


@dataclass
class ReadDigit:
    digit: int
    confidence: float  # its probability (the model is calibrated)
    probabilities: np.ndarray  # (10,) float32
    digit_score: float | None
    is_digit: bool | None
    box: Box
    line: int
    pixels: np.ndarray | None  # (28, 28) uint8, when asked for


@dataclass
class Reading:
    """A number read from one image."""

    text: str  # the digits left to right, lines joined by "\n"
    # the probability that the reading is right: here its cuts' certainty x its digits' probabilities;
    # the model's reading calibration then replaces it (app/model/reading_calibration.py)
    confidence: float
    digits: list[ReadDigit]
    marks: list[Mark]
    notes: list[str]
    version: str
    certainty: float = 1.0  # that its cuts are right (Layout.certainty)


def readings(classified: Classified) -> list[Reading]:
    """The read-files task's answers, one Reading per file, from its rows and layouts."""
    out: list[Reading] = []
    start = 0
    digits, confidences = classified.digits, classified.probabilities.max(axis=1)
    for layout in classified.layouts or []:
        rows = range(start, start + len(layout.boxes))
        start = rows.stop
        found = [
            ReadDigit(
                int(digits[i]),
                float(confidences[i]),
                classified.probabilities[i],
                None if classified.digit_scores is None else float(classified.digit_scores[i]),
                None if classified.is_digit is None else bool(classified.is_digit[i]),
                layout.boxes[i - rows.start],
                layout.lines[i - rows.start],
                None if classified.pixels is None else classified.pixels[i],
            )
            for i in rows
        ]
        lines = max(layout.lines, default=-1) + 1
        text = "\n".join("".join(str(d.digit) for d in found if d.line == n) for n in range(lines))
        confidence = layout.certainty * float(np.prod([d.confidence for d in found])) if found else 0.0
        out.append(Reading(text, confidence, found, layout.marks, layout.notes, classified.version, layout.certainty))
    return out
