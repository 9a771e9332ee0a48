"""Uploads -> predictions: the one service behind /v1 and /v2 (no HTTP in it).

`Service` owns the loaded classifier and the batcher that feeds the engine processes. Encoded files
go through the batcher, so every one of them is decoded in an engine; MNIST-form pixel rows (/v2's
`pixels`) need no decoding and are evaluated in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.batching import Batcher, Upload
from app.config import Settings
from app.inference import Classifier
from app.preprocessing import Mode, Preprocessed

__all__ = ["Result", "Service", "Upload"]


@dataclass
class Result:
    """One file's answer: the 28x28 image the model saw and its ten probabilities."""

    image: Preprocessed
    probabilities: np.ndarray  # (10,) float32


class Service:
    """The served model and the batcher in front of it."""

    def __init__(self, classifier: Classifier, batcher: Batcher, max_pixels: int) -> None:
        self.classifier = classifier
        self.batcher = batcher
        self.max_pixels = max_pixels

    @classmethod
    async def start(cls, classifier: Classifier, settings: Settings) -> Service:
        """Start the engines for `classifier`, as `settings` say."""
        batcher = Batcher(classifier, settings.batch_max_size, settings.batch_max_wait_ms / 1000)
        await batcher.start(settings.engine_processes, settings.engine_timeout_s)
        return cls(classifier, batcher, settings.max_pixels)

    async def close(self) -> None:
        await self.batcher.close()

    @property
    def version(self) -> str:
        return self.classifier.version

    @contextmanager
    def receiving(self) -> Iterator[None]:
        """Mark a request whose body is still arriving: the batcher may wait for it (MNIST_BATCH_MAX_WAIT_MS)."""
        self.batcher.receiving += 1
        try:
            yield
        finally:
            self.batcher.receiving -= 1

    async def classify_files(self, uploads: list[Upload], mode: Mode) -> list[Result]:
        """Decode, preprocess and classify encoded image files, in an engine; raises the ImageError of
        the first bad file, with its `index` and `filename` set."""
        results = await self.batcher.predict(uploads, mode, self.max_pixels)
        return [Result(image, row) for image, row in results]

    async def classify_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 784) float32 in [0, 1] -> (N, 10) probabilities."""
        return await run_in_threadpool(self.classifier.predict_proba, pixels)
