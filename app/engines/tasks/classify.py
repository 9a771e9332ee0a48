"""classify-files: encoded image files, decoded and preprocessed into MNIST form (app/preprocessing/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from app.contract import flatten_and_scale
from app.engines.messages import Failed, Prepared
from app.engines.tasks.base import Task
from app.errors import ImageError
from app.model.network import Network
from app.preprocessing import Mode, preprocess


@dataclass
class ClassifyFiles:
    """One request's files; `keep_pixels`: send the 28x28 images back (only /v1's explain=true shows them)."""

    kind: ClassVar[str] = "classify-files"
    decodes: ClassVar[bool] = True
    files: list[bytes]
    mode: Mode
    max_pixels: int
    keep_pixels: bool = False

    @property
    def size(self) -> int:
        return len(self.files)

    @property
    def nbytes(self) -> int:
        return sum(len(data) for data in self.files)

    def prepare(self, network: Network) -> Prepared | Failed:
        """Each file in MNIST form; the task stops at its first bad file."""
        images = []
        for index, data in enumerate(self.files):
            try:
                images.append(preprocess(data, self.mode, self.max_pixels))
            except ImageError as exc:
                return Failed(index, detached(exc))
            except Exception as exc:  # a plain summary: it has to cross the pipe
                return Failed(index, RuntimeError(f"preprocessing failed: {type(exc).__name__}: {exc}"))
        pixels = np.stack([image.pixels for image in images])
        return Prepared(
            flatten_and_scale(pixels),
            [image.notes for image in images],
            list(pixels) if self.keep_pixels else None,
        )

    def split(self) -> list[Task]:
        return [ClassifyFiles([data], self.mode, self.max_pixels, self.keep_pixels) for data in self.files]


def detached(error: ImageError) -> ImageError:
    """The error without its traceback or the errors it was raised from: their frames hold the failed
    decode's arrays (tens of MiB for a big photo) in a reference cycle with the handler's frame, which
    only the garbage collector frees, and it runs on object counts, not bytes: the engine's memory
    climbs under hostile uploads before it does."""
    error.__traceback__ = error.__cause__ = error.__context__ = None
    return error
