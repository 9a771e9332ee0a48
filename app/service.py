"""Uploads -> predictions: the one service behind /v1 and /v2 (no HTTP in it).

`Service` owns the loaded classifier and the batcher that feeds the engine processes. Encoded files
go through the batcher, so every one of them is decoded in an engine; MNIST-form pixel rows (/v2's
`pixels`) need no decoding and are evaluated in a worker thread.
"""

from __future__ import annotations

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.batching import Batcher, Result, Upload
from app.config import Settings
from app.inference import Classifier
from app.preprocessing import Mode

__all__ = ["Result", "Service", "Upload"]


class Receiving:
    """Counts a request in `batcher.receiving` while its body arrives (a class: cheaper than @contextmanager)."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher

    def __enter__(self) -> None:
        self.batcher.receiving += 1

    def __exit__(self, *exc: object) -> None:
        self.batcher.receiving -= 1


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

    def receiving(self) -> Receiving:
        """`with service.receiving():` marks a request whose body is still arriving: the batcher may
        wait for it (MNIST_BATCH_MAX_WAIT_MS)."""
        return Receiving(self.batcher)

    async def classify_files(self, uploads: list[Upload], mode: Mode, keep_pixels: bool = False) -> list[Result]:
        """Decode, preprocess and classify encoded image files, in an engine; raises the ImageError of
        the first bad file, with its `index` and `filename` set. `keep_pixels`: also the 28x28 images."""
        return await self.batcher.predict(uploads, mode, self.max_pixels, keep_pixels)

    async def classify_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 784) float32 in [0, 1] -> (N, 10) probabilities."""
        return await run_in_threadpool(self.classifier.predict_proba, pixels)
