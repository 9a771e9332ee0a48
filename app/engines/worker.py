"""The engine's side: `python -m app.engines.worker`, a child process that holds the model's network and
answers batches of tasks read from its stdin until the parent closes it.

A batch is prepared task by task (a task stops at its first bad input), then the model is evaluated
once on the images of every good task. No web framework and no TensorFlow load here: numpy, Pillow
and the weights. After each answer the child polls for its next batch a little while before it
sleeps (MNIST_ENGINE_SPIN_MS, `await_input`), and it watches its own memory (`Resident`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import time
from typing import BinaryIO

import numpy as np

from app.contract import NUM_CLASSES
from app.engines.environment import SPIN_ENV
from app.engines.messages import Done, Evaluation, Failed, Prepared, read_message, write_message
from app.engines.tasks import KINDS, Task
from app.model.network import Network

TRIM_ABOVE = 16 * 1024 * 1024  # an engine whose RSS is this far over its baseline after a batch trims its heap
# ... and one that stays far over the level it has kept before asks to be replaced, as gunicorn's max_requests
# recycles workers: what the allocator can't give back (fragmentation that trimming doesn't reach) goes
# with the process. The batcher starts a new engine after that batch's answer is delivered.
RECYCLE_ABOVE = 256 * 1024 * 1024  # over the least RSS it has kept after trimming ...
RECYCLE_AFTER = 8  # ... after this many trims in a row: a lasting rise, not one big batch still in flight
KNOWN = tuple(KINDS.values())


def evaluate(tasks: list[Task], network: Network) -> Evaluation:
    """Prepare each task's inputs, then evaluate the model once on the images of every good task."""
    started = time.perf_counter()
    prepared = [task.prepare(network) if isinstance(task, KNOWN) else unknown(task) for task in tasks]
    rows = [entry.rows for entry in prepared if isinstance(entry, Prepared)]
    prepared_at = time.perf_counter()
    prepare_seconds, started = prepared_at - started, prepared_at
    if rows:
        probabilities, scores = network(rows[0] if len(rows) == 1 else np.concatenate(rows))  # one pass for all
    else:
        probabilities, scores = np.empty((0, NUM_CLASSES), np.float32), None
    seconds = time.perf_counter() - started
    outcomes: list[Done | Failed] = []
    start = 0
    for entry in prepared:
        if isinstance(entry, Failed):
            outcomes.append(entry)
        else:
            outcomes.append(Done(start, entry.notes, entry.pixels, entry.layouts))
            start += len(entry.rows)
    return Evaluation(
        outcomes, start, seconds, probabilities, scores, network.is_digit(scores), network.version, prepare_seconds
    )


def unknown(task: object) -> Failed:
    return Failed(0, TypeError(f"the engine has no task kind {type(task).__name__}"))


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
    process that wants it. A process that sleeps between batches wakes with cold caches, and on a VM its
    next batch then costs it several times the CPU (docs/performance.md); the next batch of a busy
    server comes within a millisecond. A core that nothing else wants is what the polling spends: while
    the server or another engine is runnable, sched_yield lets it run."""
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
    from app.engines.worker import main as worker_main  # run as app.engines.worker: pickled classes must match

    worker_main()
