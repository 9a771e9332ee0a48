"""The batcher's work, preprocessing then one model call for a batch of requests, in a child process.

Decoding and normalising an image is Python and numpy work on small arrays: it holds the GIL, so in
the server's own process it competes with the event loop for one core. `ChildEngine` runs the batch
in a child (`python -m app.engine`: numpy, Pillow and the model's weights, no TensorFlow), so the
event loop keeps a core to itself. One message each way per batch: length-prefixed pickles over the
child's stdin and stdout. `ThreadEngine` does the same work in a thread instead (MNIST_ENGINE_PROCESSES=0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from app.inference import DenseLayer, forward
from app.preprocessing import ImageError, InvalidImage, Mode, Preprocessed, preprocess

log = logging.getLogger("app")
HEADER = struct.Struct("<Q")
Source = bytes | Preprocessed | ImageError  # an upload's bytes, or the outcome of preprocessing them already


@dataclass
class Task:
    """One request's uploads."""

    sources: list[Source]
    mode: Mode
    max_pixels: int


@dataclass
class Done:
    images: list[Preprocessed]
    rows: np.ndarray  # (len(images), 10) probabilities


@dataclass
class Failed:
    index: int  # the first upload that failed
    error: Exception  # an ImageError, or an unexpected error (a server fault)


@dataclass
class Evaluation:
    outcomes: list[Done | Failed]  # one per task
    batch_size: int  # images in the model call (0: no call)
    seconds: float  # the model call's duration
    probabilities: np.ndarray  # (batch_size, 10)


def evaluate(tasks: list[Task], layers: list[DenseLayer]) -> Evaluation:
    """Preprocess each task's uploads (a task stops at its first bad one), then evaluate the model once
    on the images of every good task."""
    prepared: list[list[Preprocessed] | Failed] = [_prepare(task) for task in tasks]
    images = [image for entry in prepared if isinstance(entry, list) for image in entry]
    started = time.perf_counter()
    probabilities = forward(layers, np.concatenate([i.model_input for i in images])) if images else np.empty((0, 10))
    seconds = time.perf_counter() - started
    outcomes: list[Done | Failed] = []
    start = 0
    for entry in prepared:
        if isinstance(entry, Failed):
            outcomes.append(entry)
        else:
            outcomes.append(Done(entry, probabilities[start : start + len(entry)]))
            start += len(entry)
    return Evaluation(outcomes, len(images), seconds, probabilities)


def _prepare(task: Task) -> list[Preprocessed] | Failed:
    images = []
    for index, source in enumerate(task.sources):
        try:
            if isinstance(source, ImageError):
                raise source
            images.append(
                source if isinstance(source, Preprocessed) else preprocess(source, task.mode, task.max_pixels)
            )
        except ImageError as exc:
            return Failed(index, exc)
        except Exception as exc:  # a plain summary: it has to cross the pipe
            return Failed(index, RuntimeError(f"preprocessing failed: {type(exc).__name__}: {exc}"))
    return images


def frame(value: object) -> bytes:
    """One message on the pipes: its length, then its pickle."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def write_message(stream: BinaryIO, value: object) -> None:
    stream.write(frame(value))
    stream.flush()


def read_message(stream: BinaryIO) -> object:
    header = stream.read(HEADER.size)
    data = stream.read(HEADER.unpack(header)[0]) if len(header) == HEADER.size else b""
    if not data:
        raise EOFError("the engine's input closed")
    return pickle.loads(data)


class Engine(Protocol):
    async def evaluate(self, tasks: list[Task]) -> Evaluation: ...

    async def close(self) -> None: ...


class ThreadEngine:
    """The work in a thread of this process (MNIST_ENGINE_PROCESSES=0): simpler, but it holds the GIL
    the event loop needs."""

    def __init__(self, layers: list[DenseLayer]) -> None:
        self.layers = layers
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mnist-engine")

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        return await asyncio.get_running_loop().run_in_executor(self._executor, evaluate, tasks, self.layers)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class ChildEngine:
    """A child process `python -m app.engine`, driven from the event loop through its pipes.

    It is also a crash boundary: image decoders are native code, and a file that crashes one kills
    only the child. A new child is started and the batch retried request by request, then file by
    file; the file that kills the child again is refused as corrupt (400), the rest are answered.
    A batch that takes over `timeout_s` is treated the same way, so a file that would hang a decoder
    costs a few timeouts, not an engine.
    """

    def __init__(self, layers: list[DenseLayer], timeout_s: float = 30.0) -> None:
        self.layers = layers
        self.timeout_s = timeout_s
        self._child: asyncio.subprocess.Process | None = None

    @classmethod
    async def start(cls, layers: list[DenseLayer], timeout_s: float = 30.0) -> ChildEngine:
        engine = cls(layers, timeout_s)
        await engine._spawn()
        return engine

    async def _spawn(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)  # where `app` is, whatever the working directory
        self._child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.engine", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))},
        )  # fmt: skip
        await self._ask(self.layers)  # the child answers once it holds the weights

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        try:
            return await self._evaluate(tasks)
        except Exception as exc:  # a dead child (EOF), a broken pipe, an answer that doesn't unpickle
            log.error("the engine process failed (%s: %s); retrying its batch in a new one", type(exc).__name__, exc)
            await self._restart()
        return merge([await self._isolate(task) for task in tasks])

    async def _isolate(self, task: Task) -> Evaluation:
        """One request alone; if it kills the child, each of its files alone to find the one that does."""
        try:
            return await self._evaluate([task])
        except Exception:
            await self._restart()
        for index, source in enumerate(task.sources):
            try:
                await self._evaluate([Task([source], task.mode, task.max_pixels)])
            except Exception as exc:
                await self._restart()
                log.error(
                    "an upload %s the engine process; refused",
                    "stalled" if isinstance(exc, TimeoutError) else "crashed",
                )
                why = (
                    f"decoding it took over {self.timeout_s:g} s"
                    if isinstance(exc, TimeoutError)
                    else "it crashed the decoder"
                )
                return failed(Failed(index, InvalidImage(f"The image could not be decoded: {why}.")))
        return failed(Failed(0, RuntimeError("the engine process failed twice on this request")))

    async def _evaluate(self, tasks: list[Task]) -> Evaluation:
        async with asyncio.timeout(self.timeout_s):
            evaluation = await self._ask(tasks)
        if not isinstance(evaluation, Evaluation):
            raise TypeError(f"the engine process answered a {type(evaluation).__name__}")
        return evaluation

    async def _ask(self, value: object) -> object:
        assert self._child is not None and self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write(frame(value))
        await self._child.stdin.drain()
        (size,) = HEADER.unpack(await self._child.stdout.readexactly(HEADER.size))
        return pickle.loads(await self._child.stdout.readexactly(size))

    async def _restart(self) -> None:
        """Kill the child (it failed, or hangs) and start another."""
        if self._child is not None and self._child.returncode is None:
            self._child.kill()
        await self.close()
        await self._spawn()

    async def close(self) -> None:
        """Close its input (the child exits at end of input) and reap it."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 5)
        except TimeoutError:
            child.kill()
            await child.wait()


def failed(outcome: Failed) -> Evaluation:
    return Evaluation([outcome], 0, 0.0, np.empty((0, 10), np.float32))


def merge(parts: list[Evaluation]) -> Evaluation:
    """Evaluations of consecutive tasks as one (their model calls counted together)."""
    return Evaluation(
        [outcome for part in parts for outcome in part.outcomes],
        sum(part.batch_size for part in parts),
        sum(part.seconds for part in parts),
        np.concatenate([part.probabilities for part in parts]),
    )


def main() -> None:
    """The child: read the model's layers, then answer batches until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answer pipe
    try:
        layers = read_message(requests)
        write_message(answers, "ready")
        while True:
            tasks = read_message(requests)
            write_message(answers, evaluate(tasks, layers))  # type: ignore[arg-type]
    except EOFError:
        return


if __name__ == "__main__":
    from app.engine import main as engine_main  # run as app.engine, not __main__: pickled classes must match

    engine_main()
