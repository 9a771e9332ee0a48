"""What one fuzz input is, shared by the harness and the replay: its first byte chooses the task and its
options, the rest is the file.

bit 2  the task: 0 preprocess (/v1/predict's path), 1 read (app.reading.segment: /v1/read's path, with
       the model scoring the candidate cuts)
bit 1  the pixel cap: the default 40 MP, or SMALL_CAP, so that the size checks are reached too
bit 0  preprocess: the mode (`mnist` or `simple`); read: the most digits (MNIST_MAX_DIGITS's default,
       or SMALL_MAX_DIGITS, so that too_many_digits is reached too)

The only exceptions either task may raise are the image errors (app/errors.py's ImageError: 400, 413,
415, 422); anything else is a crash."""

from __future__ import annotations

import contextlib

from app.errors import ImageError
from app.model.classifier import Classifier
from app.model.network import Network
from app.preprocessing import DEFAULT_MAX_PIXELS, Mode, preprocess
from app.reading import segment

SMALL_CAP = 64 * 64
MODES: tuple[Mode, Mode] = ("mnist", "simple")
READ = 4  # the bit of the read task
MAX_DIGITS = (64, 2)
SMALL_MAX_DIGITS = MAX_DIGITS[1]


def options(head: int) -> tuple[Mode, int]:
    """The preprocessing mode and the pixel cap of an input whose first byte is `head`."""
    return MODES[head & 1], SMALL_CAP if head & 2 else DEFAULT_MAX_PIXELS


def reads(head: int) -> bool:
    """Whether the input is read as a number (the read task) rather than preprocessed as one digit."""
    return bool(head & READ)


def max_digits(head: int) -> int:
    """The most digits the read task takes."""
    return MAX_DIGITS[head & 1]


def load_network() -> Network:
    """The committed model's network: the read task scores its cuts with it, as the engines do."""
    from app.config import DEFAULT_MODEL_PATH

    return Classifier.load(DEFAULT_MODEL_PATH).network


def run(data: bytes, network: Network) -> None:
    """One input through its task; an image error is what a hostile or broken file should get."""
    if not data:
        return
    head, file = data[0], data[1:]
    mode, cap = options(head)
    with contextlib.suppress(ImageError):
        if reads(head):
            segment(file, network, cap, max_digits(head))
        else:
            preprocess(file, mode, cap)
