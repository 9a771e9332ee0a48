"""read-files: encoded images of whole numbers, each cut into its digits (app/reading/) with the model
scoring the candidate cuts; the digits of every file are then the task's rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from app.contract import flatten_and_scale
from app.engines.messages import Failed, Prepared
from app.engines.tasks.base import Task, each_file
from app.model.network import Network
from app.reading import segment


@dataclass
class ReadFiles:
    """One request's files; `keep_pixels`: send each digit's 28x28 image back (explain=true)."""

    kind: ClassVar[str] = "read-files"
    decodes: ClassVar[bool] = True
    files: list[bytes]
    max_pixels: int
    max_digits: int
    keep_pixels: bool = False

    @property
    def size(self) -> int:
        return len(self.files)

    @property
    def nbytes(self) -> int:
        return sum(len(data) for data in self.files)

    def prepare(self, network: Network) -> Prepared | Failed:
        """Each file cut into digits in MNIST form; the task stops at its first bad file."""
        found = each_file(self.files, lambda data: segment(data, network, self.max_pixels, self.max_digits), "reading")
        if isinstance(found, Failed):
            return found
        pixels = np.concatenate([one.pixels for one in found])
        return Prepared(
            flatten_and_scale(pixels),
            [[] for _ in pixels],
            list(pixels) if self.keep_pixels else None,
            [one.layout for one in found],
        )

    def split(self) -> list[Task]:
        return [ReadFiles([data], self.max_pixels, self.max_digits, self.keep_pixels) for data in self.files]
