"""evaluate-pixels: rows already in the model's input form (/v2's `pixels`), evaluated as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from app.engines.messages import Failed, Prepared
from app.engines.tasks.base import Task
from app.model.network import Network


@dataclass
class EvaluatePixels:
    kind: ClassVar[str] = "evaluate-pixels"
    decodes: ClassVar[bool] = False
    rows: np.ndarray  # (N, 784) float32 in [0, 1]

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        return 0  # nothing to decode: never a batch of its own for its size

    def prepare(self, network: Network) -> Prepared | Failed:
        return Prepared(self.rows, [[] for _ in range(len(self.rows))], None)

    def split(self) -> list[Task]:
        return [self]  # no decoder to crash: a failure is the engine's, not one row's
