"""Engines: where uploads are decoded, preprocessed and evaluated, a batch at a time.

`ChildEngine` is a child process (`python -m app.engine`: numpy, Pillow and the model's weights; no
web framework, no TensorFlow) driven from the event loop through its pipes, one message each way per
batch (length-prefixed pickles). It is the crash boundary: every upload is decoded in an engine,
whatever its size, so a decoder that crashes or hangs on a hostile file costs a child process, never
the server. `ThreadEngine` does the same work in a thread of the server (MNIST_ENGINE_PROCESSES=0):
no crash boundary, for debugging and small deployments.

Decoding is Python and numpy work that holds the GIL; in a child it doesn't compete with the event
loop for it. After each answer a child polls for its next batch a little while before it sleeps
(MNIST_ENGINE_SPIN_MS, `await_input`): one that wakes from sleep pays far more for its next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import numpy as np

from app.__main__ import ONE_THREAD
from app.contract import NUM_CLASSES, flatten_and_scale
from app.errors import ImageError, InvalidImage, NotReady
from app.inference import Network
from app.preprocessing import Mode, Preprocessed, preprocess

log = logging.getLogger("app")
HEADER = struct.Struct("<Q")
# Each file of a batch beyond the first adds this share of the engine timeout: the budget grows with
# the work, so a batch of 64 small files is not held to one file's time, nor one file to 64 files'.
TIMEOUT_PER_FILE = 1 / 16
# The child's environment: one BLAS thread (small products; the other cores serve other engines), and
# glibc's allocator fixed: buffers over 1 MiB (a big decode's) are mapped and go back to the system when
# freed, while up to 64 MiB of freed heap is kept for the next batch instead of being trimmed after each
# (with glibc's defaults the mmap threshold rises after the first big free, the heap then only grows,
# and trimming at every free costs the canvas path a quarter of its time).
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024)}
CHILD_ENV = {**ONE_THREAD, **ALLOCATOR_ENV}
TRIM_ABOVE = 16 * 1024 * 1024  # an engine whose RSS is this far over its baseline after a batch trims its heap
# ... and one that stays far over the level it has kept before asks to be replaced, as gunicorn's max_requests
# recycles workers: what the allocator can't give back (fragmentation that trimming doesn't reach) goes
# with the process. The batcher starts a new engine after that batch's answer is delivered.
RECYCLE_ABOVE = 256 * 1024 * 1024  # over the least RSS it has kept after trimming ...
SPAWN_TIMEOUT_S = 60.0  # at least this long for a new child to start and load the weights
SPAWN_ATTEMPTS = 3  # children started in a row before a start or restart gives up
RECYCLE_AFTER = 8  # ... after this many trims in a row: a lasting rise, not one big batch still in flight
SPIN_ENV = "MNIST_ENGINE_SPIN_MS"  # in the child: its polling for the next batch (await_input)


@dataclass
class Task:
    """One request's uploads: the bytes of each file, and whether to send back the 28x28 images."""

    files: list[bytes]
    mode: Mode
    max_pixels: int
    keep_pixels: bool = False  # only /v1's explain=true shows them: they are not pickled back otherwise


@dataclass
class Done:
    """A task's images were preprocessed and evaluated: their rows of the evaluation's probabilities
    start at `start`, one per file."""

    start: int
    notes: list[list[str]]  # what preprocessing did, per file
    pixels: list[np.ndarray] | None  # the 28x28 uint8 images the model saw, when the task kept them

    def rows(self, evaluation: Evaluation) -> np.ndarray:
        """(files, 10): this task's probabilities."""
        return evaluation.probabilities[self.start : self.start + len(self.notes)]

    def scores(self, evaluation: Evaluation) -> np.ndarray:
        """(files,): this task's digit scores (NaN: the model has none)."""
        return evaluation.digit_scores[self.start : self.start + len(self.notes)]


@dataclass
class Failed:
    index: int  # the first upload that failed
    error: Exception  # an ImageError, or an unexpected error (a server fault)


@dataclass
class Evaluation:
    outcomes: list[Done | Failed]  # one per task
    batch_size: int  # images in the model call (0: no call)
    seconds: float  # the model call's duration
    probabilities: np.ndarray  # (batch_size, 10): one array for the batch, one pickle to unpack
    digit_scores: np.ndarray  # (batch_size,) float64: NaN when the model has no digit scorer
    prepare_seconds: float = 0.0  # decoding and preprocessing the batch's files, all of them
    retire: bool = False  # the engine process asks to be replaced (RECYCLE_ABOVE)


def evaluate(tasks: list[Task], network: Network) -> Evaluation:
    """Preprocess each task's uploads (a task stops at its first bad one), then evaluate the model once
    on the images of every good task."""
    started = time.perf_counter()
    prepared: list[list[Preprocessed] | Failed] = [_prepare(task) for task in tasks]
    images = [image for entry in prepared if isinstance(entry, list) for image in entry]
    prepared_at = time.perf_counter()
    prepare_seconds, started = prepared_at - started, prepared_at
    if images:
        probabilities, scores = network(flatten_and_scale(np.stack([i.pixels for i in images])))  # one pass for all
    else:
        probabilities, scores = np.empty((0, NUM_CLASSES), np.float32), None
    if scores is None:
        scores = np.full(len(probabilities), np.nan)
    seconds = time.perf_counter() - started
    outcomes: list[Done | Failed] = []
    start = 0
    for task, entry in zip(tasks, prepared, strict=True):
        if isinstance(entry, Failed):
            outcomes.append(entry)
        else:
            pixels = [image.pixels for image in entry] if task.keep_pixels else None
            outcomes.append(Done(start, [image.notes for image in entry], pixels))
            start += len(entry)
    return Evaluation(outcomes, len(images), seconds, probabilities, scores, prepare_seconds)


def _prepare(task: Task) -> list[Preprocessed] | Failed:
    images = []
    for index, data in enumerate(task.files):
        try:
            images.append(preprocess(data, task.mode, task.max_pixels))
        except ImageError as exc:
            return Failed(index, detached(exc))
        except Exception as exc:  # a plain summary: it has to cross the pipe
            return Failed(index, RuntimeError(f"preprocessing failed: {type(exc).__name__}: {exc}"))
    return images


def detached(error: ImageError) -> ImageError:
    """The error without its traceback or the errors it was raised from: their frames hold the failed
    decode's arrays (tens of MiB for a big photo) in a reference cycle with the handler's frame, which
    only the garbage collector frees, and it runs on object counts, not bytes: the engine's memory
    climbed by hundreds of MiB under hostile uploads before it did."""
    error.__traceback__ = error.__cause__ = error.__context__ = None
    return error


def failed(outcome: Failed) -> Evaluation:
    return Evaluation([outcome], 0, 0.0, np.empty((0, NUM_CLASSES), np.float32), np.empty(0))


def merge(parts: list[Evaluation]) -> Evaluation:
    """Evaluations of consecutive tasks as one (their model calls counted together, rows renumbered)."""
    outcomes: list[Done | Failed] = []
    offset = 0
    for part in parts:
        for outcome in part.outcomes:
            if isinstance(outcome, Done):
                outcome = Done(outcome.start + offset, outcome.notes, outcome.pixels)
            outcomes.append(outcome)
        offset += len(part.probabilities)
    return Evaluation(
        outcomes,
        sum(part.batch_size for part in parts),
        sum(part.seconds for part in parts),
        np.concatenate([part.probabilities for part in parts]),
        np.concatenate([part.digit_scores for part in parts]),
        sum(part.prepare_seconds for part in parts),
    )


def join_files(parts: list[Evaluation]) -> Evaluation:
    """The evaluations of one task's files, each evaluated alone, as that task's evaluation."""
    merged = merge(parts)
    done = [outcome for outcome in merged.outcomes if isinstance(outcome, Done)]
    assert len(done) == len(merged.outcomes)
    pixels = None if any(o.pixels is None for o in done) else [p for o in done for p in o.pixels or []]
    return Evaluation(
        [Done(0, [notes for o in done for notes in o.notes], pixels)],
        merged.batch_size,
        merged.seconds,
        merged.probabilities,
        merged.digit_scores,
        merged.prepare_seconds,
    )


def frame(value: object) -> list[bytes]:
    """One message on the pipes: its length, then its pickle (two buffers: no copy of a big pickle)."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return [HEADER.pack(len(data)), data]


def write_message(stream: BinaryIO, value: object) -> None:
    stream.writelines(frame(value))
    stream.flush()


def read_message(stream: BinaryIO) -> object:
    header = stream.read(HEADER.size)
    data = stream.read(HEADER.unpack(header)[0]) if len(header) == HEADER.size else b""
    if not data:
        raise EOFError("the engine's input closed")
    return pickle.loads(data)


class Engine(Protocol):
    retiring: bool

    async def evaluate(self, tasks: list[Task]) -> Evaluation: ...

    async def recycle(self) -> None: ...

    async def close(self) -> None: ...


class ThreadEngine:
    """The work in a thread of this process (MNIST_ENGINE_PROCESSES=0): simpler, but it holds the GIL
    the event loop needs, and a decoder crash would take the server down."""

    retiring = False  # a thread is never replaced

    def __init__(self, network: Network) -> None:
        self.network = network
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mnist-engine")

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        return await asyncio.get_running_loop().run_in_executor(self._executor, evaluate, tasks, self.network)

    async def recycle(self) -> None:
        pass

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Pipes(asyncio.SubprocessProtocol):
    """The parent's end of a child's pipes (asyncio's protocol API: no stream reader between the pipe
    and the frames). Answers are collected from the child's stdout; one is awaited at a time."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.answer: asyncio.Future[bytes] | None = None  # the pickle of the answer awaited
        self.exited: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < HEADER.size + size:
                return
            message = bytes(memoryview(self.buffer)[HEADER.size : HEADER.size + size])
            del self.buffer[: HEADER.size + size]
            if self.answer is not None and not self.answer.done():
                self.answer.set_result(message)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._fail(EOFError("the engine process closed its output"))

    def process_exited(self) -> None:
        self._fail(EOFError("the engine process exited"))
        if not self.exited.done():
            self.exited.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)


def _expire(answer: asyncio.Future[bytes], seconds: float) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError(f"no answer within {seconds:g} s"))


class ChildEngine:
    """A child process `python -m app.engine`, driven from the event loop through its pipes.

    A batch whose child dies (a decoder crash), answers garbage, or takes longer than its timeout (a
    decoder hang) costs the child: a new one is started and the batch retried request by request, then
    the failing request file by file. The file that fails alone is refused as corrupt (400); every
    result obtained on the way is kept, so the other requests and files are answered. A child that
    dies while idle (killed from outside, the OOM killer) is replaced at once, not at its next batch.
    """

    def __init__(self, network: Network, timeout_s: float = 30.0, spin_s: float = 0.0) -> None:
        self.network = network
        self.timeout_s = timeout_s
        self.spin_s = spin_s  # the child's polling for its next batch before it sleeps (await_input)
        self.retiring = False  # the child asked to be replaced once its batch is answered
        self._child: asyncio.SubprocessTransport | None = None
        self._pipes: Pipes | None = None
        self._lock = asyncio.Lock()  # one batch, recycle or revival at a time
        self._closing = False
        self._revivals: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, network: Network, timeout_s: float = 30.0, spin_s: float = 0.0) -> ChildEngine:
        """An engine with its child started: one that dies while starting is replaced, as in _restart
        (a server whose engine is killed while it starts would otherwise fail to start, and uvicorn's
        supervisor stops the whole server when a worker fails to start)."""
        engine = cls(network, timeout_s, spin_s)
        await engine._spawn_retrying()
        return engine

    @classmethod
    async def start_all(
        cls, network: Network, processes: int, timeout_s: float = 30.0, spin_s: float = 0.0
    ) -> list[ChildEngine]:
        """`processes` engines, started side by side (each child takes a few tenths of a second to import
        numpy and load the weights: one after another, a many-core node would wait for all in turn).
        If one cannot start, those that did are stopped and its error raised."""
        outcomes = await asyncio.gather(
            *(cls.start(network, timeout_s, spin_s) for _ in range(processes)), return_exceptions=True
        )
        started = [outcome for outcome in outcomes if isinstance(outcome, ChildEngine)]
        if failures := [outcome for outcome in outcomes if isinstance(outcome, BaseException)]:
            for engine in started:
                await engine.close()
            raise failures[0]
        return started

    @property
    def pid(self) -> int | None:
        return self._child.get_pid() if self._child is not None else None

    async def _spawn(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)  # where `app` is, whatever the working directory
        env = {**os.environ, **CHILD_ENV, SPIN_ENV: f"{self.spin_s * 1000:g}"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self._child, self._pipes = await asyncio.get_running_loop().subprocess_exec(
            Pipes, sys.executable, "-m", "app.engine", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            env=env,
        )  # fmt: skip
        pipes = self._pipes
        pipes.exited.add_done_callback(lambda _: self._on_exit(pipes))
        # the child answers once it holds the weights; starting Python and numpy on a busy node can take
        # far longer than a batch may (MNIST_ENGINE_TIMEOUT_S), hence a bound of its own
        await self._ask(self.network, max(self.timeout_s, SPAWN_TIMEOUT_S))

    def _on_exit(self, pipes: Pipes) -> None:
        """The child exited: if it was not replaced or closed on purpose, replace it now."""
        if self._closing or self._pipes is not pipes:
            return
        revival = asyncio.get_running_loop().create_task(self._revive(pipes))
        self._revivals.add(revival)
        revival.add_done_callback(self._revivals.discard)

    async def _revive(self, pipes: Pipes) -> None:
        async with self._lock:  # a batch in progress finds the death itself, and restarts the child
            if self._closing or self._pipes is not pipes:
                return
            log.error(
                "an idle engine process exited (%s); starting another", self._child and self._child.get_returncode()
            )
            try:
                await self._restart()
            except Exception:  # its next batch tries again
                log.exception("restarting the engine process failed")

    def timeout_for(self, tasks: list[Task]) -> float:
        """The time a batch may take: the engine timeout for one file, plus a share of it per further file."""
        files = sum(len(task.files) for task in tasks)
        return self.timeout_s * (1 + TIMEOUT_PER_FILE * max(files - 1, 0))

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        async with self._lock:
            return await self._evaluate_or_retry(tasks)

    async def _evaluate_or_retry(self, tasks: list[Task]) -> Evaluation:
        try:
            return await self._evaluate(tasks)
        except Exception as exc:  # a dead child (EOF), a broken pipe, an answer that doesn't unpickle, a timeout
            log.error("the engine process failed (%s: %s); retrying its batch in a new one", type(exc).__name__, exc)
            await self._restart()
        if len(tasks) == 1:
            return await self._isolate_files(tasks[0])
        return merge([await self._isolate(task) for task in tasks])

    async def _isolate(self, task: Task) -> Evaluation:
        """One request alone; if it fails again, each of its files alone."""
        try:
            return await self._evaluate([task])
        except Exception:
            await self._restart()
        return await self._isolate_files(task)

    async def _isolate_files(self, task: Task) -> Evaluation:
        """Each file of a request alone: the first that fails is the request's answer; if none fails,
        their results together are."""
        parts = []
        for index, data in enumerate(task.files):
            try:
                part = await self._evaluate([Task([data], task.mode, task.max_pixels, task.keep_pixels)])
            except Exception as exc:
                await self._restart()
                stalled = isinstance(exc, TimeoutError)
                log.error("an upload %s the engine process; refused", "stalled" if stalled else "crashed")
                why = f"decoding it took over {self.timeout_s:g} s" if stalled else "it crashed the decoder"
                return failed(Failed(index, InvalidImage(f"The image could not be decoded: {why}.")))
            outcome = part.outcomes[0]
            if isinstance(outcome, Failed):
                return failed(Failed(index, outcome.error))
            parts.append(part)
        return join_files(parts)

    async def _evaluate(self, tasks: list[Task]) -> Evaluation:
        evaluation = await self._ask(tasks, self.timeout_for(tasks))
        if not isinstance(evaluation, Evaluation):
            raise TypeError(f"the engine process answered a {type(evaluation).__name__}")
        self.retiring |= evaluation.retire
        return evaluation

    async def recycle(self) -> None:
        """Replace the child process by a new one (it asked to be: RECYCLE_ABOVE)."""
        log.info("recycling an engine process whose memory stays high after trimming")
        async with self._lock:
            self.retiring = False
            await self._stop_child()
            await self._spawn()

    async def _ask(self, value: object, timeout_s: float) -> object:
        """Send one message and await the child's answer, for at most `timeout_s` (one timer, not a
        timeout scope: this is every request's path)."""
        if self._child is None or self._pipes is None or self._pipes.exited.done():
            raise EOFError("the engine process is not running")
        loop = asyncio.get_running_loop()
        pipes = self._pipes  # the child's, even if it is stopped (close()) while this waits
        answer = pipes.answer = loop.create_future()
        stdin = cast(asyncio.WriteTransport, self._child.get_pipe_transport(0))
        stdin.writelines(frame(value))  # buffered by the transport while the child reads
        timer = loop.call_later(timeout_s, _expire, answer, timeout_s)
        try:
            data = await answer
        finally:
            timer.cancel()
            pipes.answer = None
        return pickle.loads(data)

    async def kill(self) -> None:
        """Kill the child and wait until it is gone."""
        if self._child is not None and self._pipes is not None and not self._pipes.exited.done():
            with contextlib.suppress(ProcessLookupError):  # it is already gone; its exit is not yet reported
                self._child.kill()
            await self._pipes.exited

    async def _restart(self) -> None:
        """Kill the child (it failed, or hangs) and start another."""
        await self.kill()
        await self._stop_child()
        await self._spawn_retrying()

    async def _spawn_retrying(self) -> None:
        """Start a child. One that dies while starting (killed from outside, out of memory) is replaced
        again, SPAWN_ATTEMPTS times in all; then the engine is unavailable for now (503 + Retry-After),
        not broken (500)."""
        for attempt in range(1, SPAWN_ATTEMPTS + 1):
            try:
                await self._spawn()
                return
            except Exception as exc:
                log.error("a new engine process failed to start (%s: %s), attempt %d", type(exc).__name__, exc, attempt)
                await self.kill()
                await self._stop_child()
        raise NotReady("The engine processes are restarting; retry shortly.")

    async def close(self) -> None:
        """Stop for good: close the child's input (it exits at end of input) and reap it."""
        self._closing = True
        for revival in list(self._revivals):
            revival.cancel()
        await self._stop_child()

    async def _stop_child(self) -> None:
        child, pipes, self._child, self._pipes = self._child, self._pipes, None, None
        if child is None or pipes is None:
            return
        if (stdin := child.get_pipe_transport(0)) is not None:
            stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(pipes.exited), 5)
        except TimeoutError:
            child.kill()
            await pipes.exited
        child.close()


def main() -> None:
    """The child: read the model's network, then answer batches until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answer pipe
    spin_s = float(os.environ.get(SPIN_ENV) or 0) / 1000
    try:
        network = read_message(requests)
        write_message(answers, "ready")
        resident_bytes = Resident()
        baseline = resident_bytes()
        floor: int | None = None  # the least RSS seen after trimming: this engine's warmed-up level
        high = 0  # trims in a row that left the RSS over floor + RECYCLE_ABOVE
        while True:
            tasks = read_message(requests)
            evaluation = evaluate(tasks, network)  # type: ignore[arg-type]
            del tasks  # the uploads' bytes
            if resident_bytes() > baseline + TRIM_ABOVE:
                trim_heap()
                kept = resident_bytes()
                floor = kept if floor is None else min(floor, kept)
                high = high + 1 if kept > floor + RECYCLE_ABOVE else 0
                evaluation.retire = high >= RECYCLE_AFTER
            write_message(answers, evaluation)
            await_input(requests, spin_s)
    except EOFError:
        return


def await_input(stream: BinaryIO, spin_s: float) -> None:
    """Poll `stream` for up to `spin_s` before the next read blocks, yielding the core to any other
    process that wants it. A process that sleeps between batches wakes with cold caches: on a VM, the
    next batch then costs it 2-3x the CPU it costs one that stays awake (docs/performance.md), and the
    next batch of a busy server comes within a millisecond. A core that nothing else wants is what the
    polling spends: while the server or another engine is runnable, sched_yield lets it run."""
    if spin_s <= 0 or not hasattr(select, "poll"):
        return
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLIN)
    deadline = time.perf_counter() + spin_s
    while not poller.poll(0) and time.perf_counter() < deadline:
        os.sched_yield()


class Resident:
    """This process's resident memory in bytes, from /proc/self/statm through one open descriptor: read
    after every batch, so a pread rather than an open and a close (Linux; 0 elsewhere)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        try:
            self.fd: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self.fd = None

    def __call__(self) -> int:
        if self.fd is None:
            return 0
        return int(os.pread(self.fd, 128, 0).split()[1]) * self.page


def trim_heap() -> None:
    """Give the free memory inside glibc's heap back to the system (malloc_trim): freed chunks left
    between live ones by big decodes stay resident otherwise, and the engine's RSS creeps up."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL(None).malloc_trim(0)  # the C library this process already has loaded


if __name__ == "__main__":
    from app.engine import main as engine_main  # run as app.engine, not __main__: pickled classes must match

    engine_main()
