"""Uploads -> predictions: the one service behind /v1 and /v2 (no HTTP in it).

`Service` owns the served model version: a `Deployment`, the loaded classifier with the batcher and
engine processes that serve it. Encoded files go through the batcher, so every one of them is decoded
in an engine; MNIST-form pixel rows (/v2's `pixels`) need no decoding and are evaluated in a worker
thread. Every answer says which version made it.

A new version is swapped in whole (`swap`): its engines are started with its weights first, then new
requests go to it, while those already queued on the old version finish there; the old engines are
stopped once drained. A batch is evaluated by one version, never a mix. Which file to load and
whether it may be served is app/reload.py's and app/gate.py's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.batching import Batcher, Result, Upload
from app.config import Settings
from app.inference import Classifier
from app.preprocessing import Mode

__all__ = ["Answers", "Deployment", "Result", "Service", "Upload"]
log = logging.getLogger("app")
DRAIN_POLL_S = 0.02  # how often a retired version is checked for work still in flight


def load_classifier(settings: Settings, check_with_keras: bool | None = None) -> Classifier:
    """The model at MNIST_MODEL_PATH, loaded and checked as the settings say (raises ModelLoadError)."""
    return Classifier.load(
        settings.model_path,
        settings.verify_model_sha256,
        settings.check_with_keras if check_with_keras is None else check_with_keras,
        settings.digit_threshold,
    )


@dataclass
class Answers:
    """The model's answers for N images, as arrays (/v2's outputs)."""

    probabilities: np.ndarray  # (N, 10) float32
    digit_scores: np.ndarray | None  # (N,) float64; None: the model has no digit scorer
    is_digit: np.ndarray | None  # (N,) bool
    version: str  # of the model that computed them

    @classmethod
    def of(cls, results: list[Result]) -> Answers:
        scored = results[0].digit_score is not None
        return cls(
            np.stack([result.probabilities for result in results]),
            np.array([r.digit_score for r in results], np.float64) if scored else None,
            np.array([r.is_digit for r in results], np.bool_) if scored else None,
            results[0].version,
        )


@dataclass
class Deployment:
    """One model version being served: its classifier and the batcher (and engines) in front of it."""

    classifier: Classifier
    batcher: Batcher
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    async def start(cls, classifier: Classifier, settings: Settings) -> Deployment:
        """Start the engines for `classifier`, as `settings` say; they hold its weights once this returns."""
        batcher = Batcher(classifier, settings.batch_max_size, settings.batch_max_wait_ms / 1000)
        await batcher.start(settings.engine_processes, settings.engine_timeout_s, settings.engine_spin_ms / 1000)
        return cls(classifier, batcher)

    @property
    def version(self) -> str:
        return self.classifier.version

    async def drain_and_close(self, timeout_s: float) -> None:
        """Wait for the requests already queued on this version (at most `timeout_s`), then stop its engines."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.batcher.busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        await self.batcher.close()


class Receiving:
    """Counts a request in `batcher.receiving` while its body arrives (a class: cheaper than @contextmanager)."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher

    def __enter__(self) -> None:
        self.batcher.receiving += 1

    def __exit__(self, *exc: object) -> None:
        self.batcher.receiving -= 1


class Service:
    """The served model version, swappable while serving."""

    def __init__(self, deployment: Deployment, settings: Settings) -> None:
        self.current = deployment
        self.settings = settings
        self.max_pixels = settings.max_pixels
        self._retiring: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, classifier: Classifier, settings: Settings) -> Service:
        """Serve `classifier`, with engines as `settings` say."""
        return cls(await Deployment.start(classifier, settings), settings)

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await self.current.batcher.close()

    @property
    def classifier(self) -> Classifier:
        return self.current.classifier

    @property
    def batcher(self) -> Batcher:
        return self.current.batcher

    @property
    def version(self) -> str:
        return self.current.version

    async def swap(self, classifier: Classifier) -> Deployment:
        """Serve `classifier` from now on: its engines are started first, the old version drains in
        the background. Returns the new deployment."""
        new = await Deployment.start(classifier, self.settings)
        old, self.current = self.current, new
        drain = asyncio.get_running_loop().create_task(old.drain_and_close(self.drain_timeout_s))
        self._retiring.add(drain)
        drain.add_done_callback(self._retiring.discard)
        log.info("now serving model %s (was %s)", new.version, old.version)
        return new

    @property
    def drain_timeout_s(self) -> float:
        """Time for the batches of a retired version to finish: a full batch's engine timeout and retries."""
        return self.settings.engine_timeout_s * 4

    def receiving(self) -> Receiving:
        """`with service.receiving():` marks a request whose body is still arriving: the batcher may
        wait for it (MNIST_BATCH_MAX_WAIT_MS)."""
        return Receiving(self.current.batcher)

    async def classify_files(self, uploads: list[Upload], mode: Mode, keep_pixels: bool = False) -> list[Result]:
        """Decode, preprocess and classify encoded image files, in an engine; raises the ImageError of
        the first bad file, with its `index` and `filename` set. `keep_pixels`: also the 28x28 images.
        Each Result names the version that made it."""
        return await self.current.batcher.predict(uploads, mode, self.max_pixels, keep_pixels)

    async def classify_pixels(self, pixels: np.ndarray) -> Answers:
        """(N, 784) float32 in [0, 1] -> the model's answers, and the version that computed them."""
        classifier = self.current.classifier
        probabilities, scores = await run_in_threadpool(classifier.predict, pixels)
        return Answers(probabilities, scores, classifier.is_digit(scores), classifier.version)
