"""classify-files: encoded image files, decoded and preprocessed into MNIST form (app/preprocessing/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from app.contract import flatten_and_scale
from app.engines.messages import Failed, Prepared
from app.engines.tasks.base import Task, each_file
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
        images = each_file(self.files, lambda data: preprocess(data, self.mode, self.max_pixels), "preprocessing")
        if isinstance(images, Failed):
            return images
        pixels = np.stack([image.pixels for image in images])
        return Prepared(
            flatten_and_scale(pixels),
            [image.notes for image in images],
            list(pixels) if self.keep_pixels else None,
        )

    def split(self) -> list[Task]:
        return [ClassifyFiles([data], self.mode, self.max_pixels, self.keep_pixels) for data in self.files]
