"""What crosses the pipe between the server and an engine: a batch of tasks one way, its `Evaluation`
the other, each one frame (its length, then its pickle)."""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from app.answers import Classified, Layout
from app.contract import NUM_CLASSES

HEADER = struct.Struct("<Q")


@dataclass
class Prepared:
    """A task's inputs, ready for the model (in the engine)."""

    rows: np.ndarray  # (n, 784) float32 in [0, 1]
    notes: list[list[str]]  # what preprocessing did, per image
    pixels: list[np.ndarray] | None  # the (28, 28) uint8 images, when the task sends them back
    layouts: list[Layout] | None = None  # read-files: which rows are each file's digits, and where


@dataclass
class Done:
    """A task's images were evaluated: their rows of the evaluation's arrays start at `start`."""

    start: int
    notes: list[list[str]]  # one per image (row)
    pixels: list[np.ndarray] | None
    layouts: list[Layout] | None = None


@dataclass
class Failed:
    index: int  # the first input that failed
    error: Exception  # an ImageError, or an unexpected error (a server fault)


@dataclass
class Evaluation:
    """A batch's answer: one outcome per task, and the model's outputs for all of their images as one
    array each (one pickle to unpack, however many requests the batch holds)."""

    outcomes: list[Done | Failed]  # one per task
    batch_size: int  # images in the model call (0: no call)
    seconds: float  # the model call's duration
    probabilities: np.ndarray  # (batch_size, 10) float32
    digit_scores: np.ndarray | None  # (batch_size,) float64; None: the model has no digit scorer
    is_digit: np.ndarray | None  # (batch_size,) bool, at the model's threshold
    version: str  # of the model that computed them
    prepare_seconds: float = 0.0  # decoding and preprocessing the batch's inputs, all of them
    retire: bool = False  # the engine process asks to be replaced (app/engines/worker.py)

    def answer(self, done: Done) -> Classified:
        """One task's answers: views of the batch's arrays."""
        rows = slice(done.start, done.start + len(done.notes))
        scores, flags = self.digit_scores, self.is_digit
        return Classified(
            self.probabilities[rows],
            None if scores is None else scores[rows],
            None if flags is None else flags[rows],
            done.notes,
            done.pixels,
            self.version,
            done.layouts,
        )


def failed(outcome: Failed, version: str) -> Evaluation:
    return Evaluation([outcome], 0, 0.0, np.empty((0, NUM_CLASSES), np.float32), None, None, version)


def merge(parts: list[Evaluation]) -> Evaluation:
    """Evaluations of consecutive tasks as one (their model calls counted together, rows renumbered)."""
    outcomes: list[Done | Failed] = []
    offset = 0
    for part in parts:
        for outcome in part.outcomes:
            if isinstance(outcome, Done):
                outcome = Done(outcome.start + offset, outcome.notes, outcome.pixels, outcome.layouts)
            outcomes.append(outcome)
        offset += len(part.probabilities)
    called = [part for part in parts if part.batch_size]
    scored = bool(called) and all(part.digit_scores is not None for part in called)
    return Evaluation(
        outcomes,
        sum(part.batch_size for part in parts),
        sum(part.seconds for part in parts),
        np.concatenate([part.probabilities for part in parts]),
        np.concatenate([p.digit_scores for p in called]) if scored else None,
        np.concatenate([p.is_digit for p in called]) if scored else None,
        parts[0].version,
        sum(part.prepare_seconds for part in parts),
    )


def join(parts: list[Evaluation]) -> Evaluation:
    """The evaluations of one task's inputs, each evaluated alone, as that task's evaluation."""
    merged = merge(parts)
    done = [outcome for outcome in merged.outcomes if isinstance(outcome, Done)]
    assert len(done) == len(merged.outcomes)
    pixels = None if any(o.pixels is None for o in done) else [p for o in done for p in o.pixels or []]
    layouts = None if any(o.layouts is None for o in done) else [x for o in done for x in o.layouts or []]
    merged.outcomes = [Done(0, [notes for o in done for notes in o.notes], pixels, layouts)]
    return merged


def frame(value: object) -> list[bytes]:
    """One message on the pipes: its length, then its pickle (two buffers: no copy of a big pickle)."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return [HEADER.pack(len(data)), data]


def write_message(stream: BinaryIO, value: object) -> None:
    stream.writelines(frame(value))
    stream.flush()


def read_message(stream: BinaryIO) -> object:
    header = stream.read(HEADER.size)
    data = stream.read(HEADER.unpack(header)[0]) if len(header) == HEADER.size else b""
    if not data:
        raise EOFError("the engine's input closed")
    return pickle.loads(data)
