"""`mnist-service predict` and `read` in-process: the server's data plane (app/dataplane.py), its batcher
and engine processes, without the server. Every file is a request of its own, so one bad file is refused
alone; the batcher gathers them into batches for the engines, one per core, and a file that crashes or
hangs a decoder costs an engine process, as in the server, never this one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli.jobs import Job, Read
from app.cli.outcomes import Answer, Outcome, Refusal
from app.config import Settings
from app.dataplane import DataPlane, Upload
from app.errors import PayloadTooLarge, ServiceError
from app.schemas import predictions, reading_answers

IN_FLIGHT_BATCHES = 2  # per engine: the next batch is queued while one is evaluated
# On Ctrl-C, how long the batches already given to the engines may take to finish (their answers are
# printed) before they are abandoned: their files are then refused with 503.
DRAIN_S = 2.0


async def answer_files(
    files: list[Path], job: Job, processes: int, settings: Settings, report: Callable[[int, Outcome], None]
) -> None:
    """Answer `job` for each file; `report(index, outcome)` as each is known (in any order). Raises
    ModelLoadError before any file is read when the model cannot be served."""
    settings = settings.model_copy(update={"engine_processes": processes, "batch_max_wait_ms": 0.0})
    dataplane = await DataPlane.load(settings, check_with_keras=False)
    try:
        window = asyncio.Semaphore(max(1, processes) * settings.batch_max_size * IN_FLIGHT_BATCHES)

        async def one(index: int, path: Path) -> None:
            try:
                report(index, await _answer(dataplane, path, job, settings))
            finally:
                window.release()

        async with asyncio.TaskGroup() as group:
            for index, path in enumerate(files):
                await window.acquire()
                group.create_task(one(index, path))
    finally:
        await dataplane.close(drain_s=DRAIN_S)


async def _answer(dataplane: DataPlane, path: Path, job: Job, settings: Settings) -> Outcome:
    name = str(path)
    try:
        upload = Upload(read_file(path, settings.max_batch_body_bytes), name)
        body = await ask(dataplane, upload, job)
    except OSError as exc:
        return Refusal(name, "unreadable", f"cannot read the file: {exc.strerror or exc}.")
    except ServiceError as exc:  # an ImageError; NotReady if the engines can't be restarted
        return Refusal(name, exc.code, exc.detail)
    except Exception as exc:  # preprocessing failed unexpectedly: a bug, reported as the server answers 500
        return Refusal(name, "internal_error", str(exc))
    return Answer(name, body)


async def ask(dataplane: DataPlane, upload: Upload, job: Job) -> dict[str, Any]:
    """The file's answer, as /v1/predict or /v1/read gives it."""
    if isinstance(job, Read):
        found = await dataplane.read_files([upload])
        return reading_answers(found)[0] | {"model_version": found[0].version}
    return predictions(await dataplane.predict_files([upload], job.mode), job.mode)[0]


def read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; PayloadTooLarge beyond `max_bytes`, the most a batch request of the service
    may hold, so that a file too big for `--url` is too big here too."""
    size = path.stat().st_size
    if size > max_bytes:
        raise PayloadTooLarge(
            f"The file is {size} bytes; the service accepts at most {max_bytes} (MNIST_MAX_BATCH_BODY_BYTES)."
        )
    return path.read_bytes()
