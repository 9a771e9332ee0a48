"""The engines' processes, driven from the event loop: `ChildEngine`, a child process
(`python -m app.engines.worker`) and its supervision, and `ThreadEngine`, the same work in a thread of
the server (MNIST_ENGINE_PROCESSES=0: no crash boundary, for debugging and small deployments).

A child is the crash boundary: every input is decoded in one, whatever its size, so a decoder that
crashes or hangs on a hostile file costs a child process, never the server. It is driven through its
pipes, one message each way per batch (app/engines/messages.py); decoding holds the GIL, and in a child
it doesn't compete with the event loop for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, cast

from app.engines.environment import CHILD_ENV, SPIN_ENV
from app.engines.messages import HEADER, Evaluation, Failed, failed, frame, join, merge
from app.engines.tasks import Task
from app.engines.worker import evaluate
from app.errors import InvalidImage, NotReady
from app.model.network import Network

log = logging.getLogger("app")
# Each input of a batch beyond the first adds this share of the engine timeout: the budget grows with
# the work, so a batch of 64 small files is not held to one file's time, nor one file to 64 files'.
TIMEOUT_PER_FILE = 1 / 16
SPAWN_TIMEOUT_S = 60.0  # at least this long for a new child to start and load the weights
SPAWN_ATTEMPTS = 3  # children started in a row before a start or restart gives up


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
    """A child process `python -m app.engines.worker`, driven from the event loop through its pipes.

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
            Pipes, sys.executable, "-m", "app.engines.worker", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
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
        """The time a batch may take: the engine timeout for one input, plus a share of it per further input."""
        inputs = sum(task.size for task in tasks)
        return self.timeout_s * (1 + TIMEOUT_PER_FILE * max(inputs - 1, 0))

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
            return await self._isolate_inputs(tasks[0])
        return merge([await self._isolate(task) for task in tasks])

    async def _isolate(self, task: Task) -> Evaluation:
        """One request alone; if it fails again, each of its inputs alone."""
        try:
            return await self._evaluate([task])
        except Exception:
            await self._restart()
        return await self._isolate_inputs(task)

    async def _isolate_inputs(self, task: Task) -> Evaluation:
        """Each input of a request alone: the first that fails is the request's answer; if none fails,
        their results together are."""
        parts = []
        for index, part_task in enumerate(task.split()):
            try:
                part = await self._evaluate([part_task])
            except Exception as exc:
                await self._restart()
                return failed(Failed(index, self._refusal(task, exc)), self.network.version)
            outcome = part.outcomes[0]
            if isinstance(outcome, Failed):
                return failed(Failed(index, outcome.error), self.network.version)
            parts.append(part)
        return join(parts)

    def _refusal(self, task: Task, exc: Exception) -> Exception:
        """The answer to an input that fails an engine on its own: a file that crashes or stalls its
        decoder is refused (400); a task that decodes nothing failed for the engine's own reasons (503)."""
        stalled = isinstance(exc, TimeoutError)
        if not task.decodes:
            log.error("a request %s the engine process twice", "stalled" if stalled else "crashed")
            return NotReady("The engine failed twice on this request; retry shortly.")
        log.error("an upload %s the engine process; refused", "stalled" if stalled else "crashed")
        why = f"decoding it took over {self.timeout_s:g} s" if stalled else "it crashed the decoder"
        return InvalidImage(f"The image could not be decoded: {why}.")

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
