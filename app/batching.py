"""Server-side dynamic batching, as TF Serving's and Triton's batchers do it.

Requests put jobs on a queue; one worker thread takes everything queued (up to `max_batch_size`
images), preprocesses what still needs it, evaluates the model once for all of them and hands each
request its rows. When the server is idle a job runs at once; under load, jobs that arrive while a
batch is being computed form the next batch, so batches grow with load without any added wait.
`max_wait_s` > 0 additionally holds a batch open that long for requests already being received.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from app.inference import Classifier
from app.preprocessing import ImageError, Mode, Preprocessed, preprocess


@dataclass
class Upload:
    """One image of a request: its bytes (preprocessed by the worker), or the outcome of preprocessing
    them already (an image or the error), which the worker reports in upload order."""

    data: bytes | None
    filename: str | None = None
    image: Preprocessed | None = None
    error: ImageError | None = None


@dataclass
class Job:
    uploads: list[Upload]
    mode: Mode
    max_pixels: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[tuple[Preprocessed, np.ndarray]]]
    images: list[Preprocessed] = field(default_factory=list)


class BatchError(Exception):
    """An upload of a job failed preprocessing: which one (index, filename) and why."""

    def __init__(self, index: int, filename: str | None, error: ImageError) -> None:
        super().__init__(str(error))
        self.index, self.filename, self.error = index, filename, error


class Batcher:
    """Evaluate the model on batches of concurrent requests in one worker thread."""

    def __init__(self, classifier: Classifier, max_batch_size: int = 64, max_wait_s: float = 0.0) -> None:
        self.classifier = classifier
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.receiving = 0  # requests admitted but still reading their body: worth waiting for
        self._jobs: deque[Job] = deque()
        self._ready = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="mnist-batcher", daemon=True)
        self._thread.start()

    async def predict(
        self, uploads: list[Upload], mode: Mode, max_pixels: int
    ) -> list[tuple[Preprocessed, np.ndarray]]:
        """(28x28 image, 10 probabilities) for each upload; raises BatchError for a bad one."""
        loop = asyncio.get_running_loop()
        job = Job(uploads, mode, max_pixels, loop, loop.create_future())
        with self._ready:
            self._jobs.append(job)
            self._ready.notify()
        return await job.future

    def close(self) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify()
        self._thread.join(timeout=5)

    def _take(self) -> list[Job]:
        """Block until there is work; then take jobs totalling at most max_batch_size images (at least one job)."""
        with self._ready:
            while not self._jobs and not self._stopped:
                self._ready.wait()
            if self._stopped:
                return []
            if self.max_wait_s > 0 and self.receiving > 0 and self._size() < self.max_batch_size:
                self._ready.wait_for(lambda: self._size() >= self.max_batch_size, timeout=self.max_wait_s)
            jobs = [self._jobs.popleft()]
            total = len(jobs[0].uploads)
            while self._jobs and total + len(self._jobs[0].uploads) <= self.max_batch_size:
                total += len(self._jobs[0].uploads)
                jobs.append(self._jobs.popleft())
            return jobs

    def _size(self) -> int:
        return sum(len(job.uploads) for job in self._jobs)

    def _run(self) -> None:
        while jobs := self._take():
            good = [job for job in jobs if self._preprocess(job)]
            if not good:
                continue
            try:
                probabilities = self.classifier.predict_proba(
                    np.concatenate([image.model_input for job in good for image in job.images])
                )
            except Exception as exc:
                for job in good:
                    _settle(job, error=exc)
                continue
            start = 0
            for job in good:
                rows = probabilities[start : start + len(job.images)]
                start += len(job.images)
                _settle(job, result=list(zip(job.images, rows, strict=True)))

    @staticmethod
    def _preprocess(job: Job) -> bool:
        """Preprocess the job's uploads; on the first bad one fail the job and return False."""
        for index, upload in enumerate(job.uploads):
            try:
                if upload.error is not None:
                    raise upload.error
                image = upload.image or preprocess(upload.data or b"", job.mode, job.max_pixels)
            except ImageError as exc:
                _settle(job, error=BatchError(index, upload.filename, exc))
                return False
            except Exception as exc:
                _settle(job, error=exc)
                return False
            job.images.append(image)
        return True


def _settle(
    job: Job, result: list[tuple[Preprocessed, np.ndarray]] | None = None, error: BaseException | None = None
) -> None:
    """Hand the outcome to the request's event loop (the request may have gone: then nothing happens)."""

    def settle() -> None:
        if job.future.done():  # cancelled: the client disconnected
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result or [])

    job.loop.call_soon_threadsafe(settle)
