"""Small marks between digits (a decimal point, a comma, a dash) and what they most likely are, from
their shape and where they sit on the line."""

from __future__ import annotations

from app.reading.cuts import Ink

DASH_RATIO = 1.8  # a mark this many times wider than high is a dash
COMMA_DROP = 0.12  # a mark reaching this share of the line height under the digits' baseline is a comma ...
COMMA_RATIO = 1.2  # ... when it is this many times higher than wide


def mark_char(mark: Ink, baseline: float, height: float) -> str:
    """'-', ',' or '.' for a small mark of a line whose digits stand on `baseline` (a row of the working image)."""
    left, top, right, bottom = mark.box()
    w, h = right - left, bottom - top
    if w >= DASH_RATIO * h:
        return "-"
    if bottom - baseline > COMMA_DROP * height and h >= COMMA_RATIO * w:
        return ","
    return "."
