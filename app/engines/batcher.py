"""Server-side dynamic batching, as TF Serving's and Triton's batchers do it, on the event loop.

Requests queue tasks (app/engines/tasks/); whenever an engine (app/engines/process.py) is idle it takes
everything queued, up to `max_batch_size` images, prepares each task's inputs (decodes and preprocesses
files; pixel rows are ready) and evaluates the model once for all of them. When the server is idle a
job starts at once; under load, jobs that arrive while the engines are busy form
the next batch, so batches grow with load without any added wait. `max_wait_s` > 0 additionally holds
a batch open that long for requests already being received.

A job whose files are big (photos) is a batch of its own: decoding it takes far longer than a batch
of small images, which would otherwise wait for it.

The queue lives on the event loop and the engines are child processes, so the server's own process
holds no worker threads that would contend with the event loop for the GIL.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.answers import Classified
from app.engines.messages import Done, Evaluation
from app.engines.process import ChildEngine, Engine, ThreadEngine
from app.engines.tasks import Task
from app.errors import ImageError, NotReady
from app.model.network import Network

SPILL_AFTER_S = 0.005  # a batch of small images is done well within this: one still running is heavy (see _dispatch)
# Images that take an engine this long each to decode and preprocess (a canvas drawing, a scan, a photo;
# not a 28x28 MNIST-form upload, which takes far less) gain little from a bigger batch: what batching
# saves is the model's time per image, small beside that (docs/performance.md), so they spread over the
# engines instead.
HEAVY_IMAGE_S = 0.0005
IMAGE_TIME_WEIGHT = 0.2  # of the newest batch, in the running mean of the time per image
BIG_JOB_BYTES = 256 * 1024  # a job with this many bytes of files is decoded in a batch of its own


@dataclass
class Job:
    task: Task
    future: asyncio.Future[Classified]
    size: int = field(init=False)  # the task's inputs
    big: bool = field(init=False)  # its files hold BIG_JOB_BYTES or more: a batch of its own

    def __post_init__(self) -> None:
        self.size = self.task.size
        self.big = self.task.nbytes >= BIG_JOB_BYTES


class Batcher:
    """Evaluate the model on batches of concurrent requests, one batch per idle engine; `observe` is
    called with each batch's evaluation (the metrics)."""

    def __init__(
        self,
        network: Network,
        max_batch_size: int = 64,
        max_wait_s: float = 0.0,
        observe: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self.network = network
        self.observe = observe
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

    async def start(self, processes: int, timeout_s: float = 30.0, spin_s: float = 0.0) -> None:
        """Start `processes` child engines (0: one thread engine in this process); `spin_s`: how long each
        polls for its next batch before it sleeps."""
        network = self.network
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

    async def run(self, task: Task) -> Classified:
        """The task's answers, from the next batch an engine evaluates; raises the error of its first bad
        input (an ImageError with its `index` set)."""
        if self._closed:
            raise NotReady("The server is shutting down; retry shortly.")
        job = Job(task, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued += job.size
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
        self._drop_abandoned()
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
            total = jobs[0].size
            while (
                not jobs[0].big
                and self._jobs
                and not self._jobs[0].big
                and total + self._jobs[0].size <= self.max_batch_size
            ):
                total += self._jobs[0].size
                jobs.append(self._jobs.popleft())
            self._queued -= total
            engine = self._idle.pop()
            self._busy[engine] = loop.time()
            task = loop.create_task(self._run(engine, jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _drop_abandoned(self) -> None:
        """Forget queued jobs whose request has gone (its deadline passed, its client left: `run` was
        cancelled, and its future with it): no engine spends time on an answer nobody will read."""
        if any(job.future.cancelled() for job in self._jobs):
            self._jobs = deque(job for job in self._jobs if not job.future.cancelled())
            self._queued = sum(job.size for job in self._jobs)

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
        try:
            evaluation = await engine.evaluate([job.task for job in jobs])
            self._timed(evaluation.prepare_seconds, sum(job.size for job in jobs))
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
        """Each job's answers (or its input's error) from the batch's evaluation; the metrics of the call."""
        if evaluation.batch_size and self.observe is not None:
            self.observe(evaluation)
        for job, outcome in zip(jobs, evaluation.outcomes, strict=True):
            if isinstance(outcome, Done):
                _settle(job, result=evaluation.answer(outcome))
            else:
                error = outcome.error
                if isinstance(error, ImageError):
                    error.index = outcome.index
                _settle(job, error=error)

    def _timed(self, seconds: float, images: int) -> None:
        """Fold a batch's preparing time per image into the running mean (`image_s`)."""
        per_image = seconds / max(images, 1)
        self.image_s = per_image if not self.image_s else self.image_s + IMAGE_TIME_WEIGHT * (per_image - self.image_s)


def _settle(job: Job, result: Classified | None = None, error: BaseException | None = None) -> None:
    """Hand the outcome to the request (it may have gone: the client disconnected; then nothing happens)."""
    if job.future.done():
        return
    if error is not None or result is None:
        job.future.set_exception(error or RuntimeError("a batch delivered no answer"))
    else:
        job.future.set_result(result)
