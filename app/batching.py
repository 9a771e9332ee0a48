"""Server-side dynamic batching, as TF Serving's and Triton's batchers do it, on the event loop.

Requests queue jobs; whenever an engine (app/engine.py) is idle it takes everything queued, up to
`max_batch_size` images, decodes and preprocesses it and evaluates the model once for all of it. When
the server is idle a job starts at once; under load, jobs that arrive while the engines are busy form
the next batch, so batches grow with load without any added wait. `max_wait_s` > 0 additionally holds
a batch open that long for requests already being received.

A job whose files are big (photos) is a batch of its own: decoding it takes far longer than a batch
of small images, which would otherwise wait for it.

The queue lives on the event loop and the engines are child processes, so the server's own process
holds no worker threads that would contend with the event loop for the GIL.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.engine import ChildEngine, Done, Engine, Evaluation, Task, ThreadEngine
from app.errors import ImageError, NotReady
from app.inference import Classifier
from app.preprocessing import Mode

SPILL_AFTER_S = 0.005  # a batch of small images is done well within this: one still running is heavy (see _dispatch)
# Images that take an engine this long each to decode and preprocess (a canvas drawing, a scan, a photo;
# not a 28x28 MNIST-form upload, which takes a tenth of it) gain little from a bigger batch: what batching
# saves is the model's time, about 0.1 ms an image at small batches (bench/forward.py), so they spread
# over the engines instead.
HEAVY_IMAGE_S = 0.0005
IMAGE_TIME_WEIGHT = 0.2  # of the newest batch, in the running mean of the time per image
BIG_JOB_BYTES = 256 * 1024  # a job with this many bytes of files is decoded in a batch of its own


@dataclass
class Upload:
    """One file of a request, as it arrived."""

    data: bytes
    filename: str | None = None


@dataclass
class Result:
    """One file's answer: its ten probabilities, what preprocessing did, and (when asked for) the
    28x28 image the model saw."""

    probabilities: np.ndarray  # (10,) float32
    notes: list[str]
    pixels: np.ndarray | None = None  # (28, 28) uint8, white digit on black
    version: str = ""  # of the model that made it
    digit_score: float | None = None  # how digit-like, in [0, 1] (None: the model has no digit scorer)
    is_digit: bool | None = None  # digit_score at or above the model's threshold

    def prediction(self, mode: Mode) -> dict[str, Any]:
        """The answer as /v1 gives it (a `Prediction` as a plain dict), and the command line prints it;
        `digit_score` and `is_digit` only when the model has a digit scorer."""
        digit = int(self.probabilities.argmax())
        prediction = {
            "digit": digit,
            "confidence": float(self.probabilities[digit]),
            "probabilities": self.probabilities.tolist(),
            "preprocess": mode,
            "notes": self.notes,
            "model_version": self.version,
        }
        if self.digit_score is not None:
            prediction["digit_score"], prediction["is_digit"] = self.digit_score, self.is_digit
        return prediction


@dataclass
class Job:
    uploads: list[Upload]
    mode: Mode
    max_pixels: int
    keep_pixels: bool
    future: asyncio.Future[list[Result]]
    big: bool = field(init=False)  # its files hold BIG_JOB_BYTES or more: a batch of its own

    def __post_init__(self) -> None:
        self.big = sum(len(upload.data) for upload in self.uploads) >= BIG_JOB_BYTES


def digit_scores(scores: np.ndarray, flags: np.ndarray | None) -> tuple[list[float | None], list[bool | None]]:
    """(N,) scores and their is_digit flags (None: no scorer) -> each one's digit_score and is_digit, as
    the API answers them."""
    if flags is None:
        return [None] * len(scores), [None] * len(scores)
    # 6 decimals, rounded down: a score shown as 1.0 is 1.0 (float64 scores stay under it)
    return [math.floor(float(s) * 1e6) / 1e6 for s in scores], [bool(f) for f in flags]


class Batcher:
    """Evaluate the model on batches of concurrent requests, one batch per idle engine."""

    def __init__(self, classifier: Classifier, max_batch_size: int = 64, max_wait_s: float = 0.0) -> None:
        self.classifier = classifier
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.receiving = 0  # requests admitted but still reading their body: worth waiting for
        self._jobs: deque[Job] = deque()
        self._queued = 0  # images in self._jobs
        self._idle: list[Engine] = []
        self._engines: list[Engine] = []
        self._running: set[asyncio.Task[None]] = set()
        self._busy: dict[Engine, float] = {}  # engine -> when its batch started (loop time)
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.image_s = 0.0  # a running mean of the seconds an engine took to prepare an image (0: none yet)

    def _flags(self, evaluation: Evaluation) -> np.ndarray | None:
        """The batch's is_digit flags, once for the metrics and the answers (None: no scorer)."""
        if np.isnan(evaluation.digit_scores).any():
            return None
        return self.classifier.is_digit(evaluation.digit_scores)

    def _results(self, evaluation: Evaluation, outcome: Done, flags: np.ndarray | None) -> list[Result]:
        rows, pixels, version = outcome.rows(evaluation), outcome.pixels, self.classifier.version
        own = None if flags is None else flags[outcome.start : outcome.start + len(outcome.notes)]
        scores, flags_ = digit_scores(outcome.scores(evaluation), own)
        return [
            Result(rows[i], notes, None if pixels is None else pixels[i], version, scores[i], flags_[i])
            for i, notes in enumerate(outcome.notes)
        ]

    async def start(self, processes: int, timeout_s: float = 30.0, spin_s: float = 0.0) -> None:
        """Start `processes` child engines (0: one thread engine in this process); `spin_s`: how long each
        polls for its next batch before it sleeps."""
        network = self.classifier.network
        engines: list[Engine] = list(await ChildEngine.start_all(network, processes, timeout_s, spin_s))
        self._engines = engines or [ThreadEngine(network)]
        self._idle = list(self._engines)

    @property
    def engines(self) -> list[Engine]:
        return list(self._engines)

    @property
    def busy(self) -> bool:
        """Requests are queued or being evaluated (a retired version drains until this is False)."""
        return bool(self._jobs or self._busy)

    async def predict(
        self, uploads: list[Upload], mode: Mode, max_pixels: int, keep_pixels: bool = False
    ) -> list[Result]:
        """A Result for each upload; raises the ImageError of the first bad one, with its `index` and
        `filename` set."""
        if self._closed:
            raise NotReady("The server is shutting down; retry shortly.")
        job = Job(uploads, mode, max_pixels, keep_pixels, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued += len(uploads)
        self._dispatch()
        return await job.future

    async def close(self) -> None:
        """Stop: queued requests and those of the batches in progress get 503, then the engines stop."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        while self._jobs:
            _settle(self._jobs.popleft(), error=NotReady("The server is shutting down; retry shortly."))
        self._queued = 0
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)  # out of the engines before they stop
        for engine in self._engines:
            await engine.close()
        self._engines, self._idle = [], []

    def _dispatch(self, timer: bool = False) -> None:
        """Give queued jobs to idle engines, up to max_batch_size images each (a big job alone).

        While an engine is busy, the queue goes to a second one only once the first has worked for
        SPILL_AFTER_S, or holds a full batch or a big job, or when images have lately taken the engines
        HEAVY_IMAGE_S or more each to decode and preprocess: light batches (MNIST-form images) then keep
        growing in one engine, where the model is cheaper per image, and heavy ones spread over the cores.
        """
        if timer:
            self._timer = None
        while self._jobs and self._idle and not self._closed:
            loop = asyncio.get_running_loop()
            wait = 0.0
            heavy = self._jobs[0].big or self._queued >= self.max_batch_size or self.image_s >= HEAVY_IMAGE_S
            if self.max_wait_s > 0 and not timer and self.receiving > 0 and not heavy:
                wait = self.max_wait_s  # a little time for the requests being received to join this batch
            elif self._busy and not heavy:
                wait = min(self._busy.values()) + SPILL_AFTER_S - loop.time()
            if wait > 0:
                if self._timer is None:
                    self._timer = loop.call_later(wait, self._dispatch, True)
                return
            jobs = [self._jobs.popleft()]
            total = len(jobs[0].uploads)
            while (
                not jobs[0].big
                and self._jobs
                and not self._jobs[0].big
                and total + len(self._jobs[0].uploads) <= self.max_batch_size
            ):
                total += len(self._jobs[0].uploads)
                jobs.append(self._jobs.popleft())
            self._queued -= total
            engine = self._idle.pop()
            self._busy[engine] = loop.time()
            task = loop.create_task(self._run(engine, jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _recycle(self, engine: Engine) -> None:
        """Replace an engine's process, then give it work again (the others serve meanwhile)."""
        try:
            await engine.recycle()
        finally:
            del self._busy[engine]
            if not self._closed:
                self._idle.append(engine)
                self._dispatch()

    async def _run(self, engine: Engine, jobs: list[Job]) -> None:
        tasks = [Task([u.data for u in job.uploads], job.mode, job.max_pixels, job.keep_pixels) for job in jobs]
        try:
            evaluation = await engine.evaluate(tasks)
            self._timed(evaluation.prepare_seconds, sum(len(task.files) for task in tasks))
        except asyncio.CancelledError:  # close(): the batch is abandoned, its requests answered 503
            for job in jobs:
                _settle(job, error=NotReady("The server is shutting down; retry shortly."))
            raise
        except Exception as exc:
            for job in jobs:
                _settle(job, error=exc)
            return
        finally:
            if engine.retiring and not self._closed:
                task = asyncio.get_running_loop().create_task(self._recycle(engine))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            else:
                del self._busy[engine]
                self._idle.append(engine)
                self._dispatch()
        try:
            self._deliver(jobs, evaluation)
        except Exception as exc:  # a fault in turning the answer into results: the requests get it, never a hang
            for job in jobs:
                _settle(job, error=exc)

    def _deliver(self, jobs: list[Job], evaluation: Evaluation) -> None:
        """Each job's results (or its upload's error) from the batch's evaluation; the metrics of the call."""
        flags = self._flags(evaluation)
        if evaluation.batch_size and self.classifier.observer is not None:
            self.classifier.observer(evaluation.batch_size, evaluation.seconds, evaluation.probabilities, flags)
        for job, outcome in zip(jobs, evaluation.outcomes, strict=True):
            if isinstance(outcome, Done):
                _settle(job, result=self._results(evaluation, outcome, flags))
            else:
                error = outcome.error
                if isinstance(error, ImageError):
                    error.index, error.filename = outcome.index, job.uploads[outcome.index].filename
                _settle(job, error=error)

    def _timed(self, seconds: float, images: int) -> None:
        """Fold a batch's preparing time per image into the running mean (`image_s`)."""
        per_image = seconds / max(images, 1)
        self.image_s = per_image if not self.image_s else self.image_s + IMAGE_TIME_WEIGHT * (per_image - self.image_s)


def _settle(job: Job, result: list[Result] | None = None, error: BaseException | None = None) -> None:
    """Hand the outcome to the request (it may have gone: the client disconnected; then nothing happens)."""
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result or [])
