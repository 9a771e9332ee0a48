"""The Typer app behind `mnist-service` (and `python -m app.cli`).

    mnist-service predict scans/ photo.heic 'more/**/*.png'    # a table; in-process, on every core
    mnist-service predict scans/ --json > digits.jsonl         # JSON lines (--csv: CSV)
    mnist-service predict scans/ --url http://127.0.0.1:8000   # with a running service instead
    mnist-service read meters/ --json                          # whole numbers (/v1/read), the same options
    mnist-service serve                                        # python -m app
    mnist-service train --preset default                       # python -m training

Exit status: 0 when every file was answered, 1 when some were refused (each named on stderr), 2 for a
usage error or when nothing could be tried (no such file, the model or the service unavailable), 130
after Ctrl-C. Only typer is imported up front: numpy and the app load in the command that needs them,
after `serve` has set up the server's environment (app/__main__.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import runpy
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from app.cli.jobs import Job

INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
TRAINING_NEEDS = ("training", "keras", "tensorflow")

cli = typer.Typer(
    name="mnist-service",
    help="Handwritten-digit recognition: predict the digits in image files, read whole numbers, serve the model, "
    "train one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Preprocess(StrEnum):
    """The service's preprocessing modes (app/preprocessing/, `?preprocess=` on /v1)."""

    mnist = "mnist"
    simple = "simple"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# the options predict and read share
Paths = Annotated[
    list[str], typer.Argument(help="Image files, folders (read recursively) or glob patterns.", metavar="PATH")
]
Url = Annotated[
    str | None,
    typer.Option(
        help="Post the files to the service at this base URL instead of working in-process.", envvar="MNIST_URL"
    ),
]
JsonLines = Annotated[bool, typer.Option("--json", help="One JSON object per file: its /v1 answer and `file`.")]
CsvRows = Annotated[bool, typer.Option("--csv", help="CSV with a header: the table's columns.")]
Processes = Annotated[
    int | None,
    typer.Option("--processes", "-j", min=1, help="Engine processes in-process.", show_default="the usable cores"),
]
BatchSize = Annotated[
    int | None, typer.Option(min=1, help="Files per request with --url.", show_default="the service's most")
]
Concurrency = Annotated[int, typer.Option(min=1, help="Requests at once with --url.")]
Retries = Annotated[int, typer.Option(min=0, help="Retries of a request answered 503 or whose connection failed.")]
Timeout = Annotated[float, typer.Option(min=0.1, help="Seconds a request may take with --url.")]
ApiKey = Annotated[
    str | None,
    typer.Option(help="Sent as `Authorization: Bearer` with --url.", envvar="MNIST_API_KEY", show_default=False),
]
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="A progress bar on stderr.",
        show_default="on a terminal, for more than a few files",
    ),
]


@cli.command()
def predict(
    paths: Paths,
    url: Url = None,
    json_lines: JsonLines = False,
    csv_rows: CsvRows = False,
    preprocess: Annotated[
        Preprocess, typer.Option(help="How uploads become the model's input (see /v1/model).")
    ] = Preprocess.mnist,
    processes: Processes = None,
    batch_size: BatchSize = None,
    concurrency: Concurrency = 4,
    retries: Retries = 5,
    timeout: Timeout = 120.0,
    api_key: ApiKey = None,
    progress: ShowProgress = None,
) -> None:
    """Print the digit in each image file, in the order named (refused files on stderr)."""
    from app.cli.jobs import Predict

    answer(
        Predict(preprocess.value), paths, url=url, json_lines=json_lines, csv_rows=csv_rows, processes=processes,
        batch_size=batch_size, concurrency=concurrency, retries=retries, timeout=timeout, api_key=api_key,
        progress=progress,
    )  # fmt: skip


@cli.command()
def read(
    paths: Paths,
    url: Url = None,
    json_lines: JsonLines = False,
    csv_rows: CsvRows = False,
    processes: Processes = None,
    batch_size: BatchSize = None,
    concurrency: Concurrency = 4,
    retries: Retries = 5,
    timeout: Timeout = 120.0,
    api_key: ApiKey = None,
    progress: ShowProgress = None,
) -> None:
    """Print the number in each image file (its digits, as /v1/read reads them), in the order named."""
    from app.cli.jobs import Read

    answer(
        Read(), paths, url=url, json_lines=json_lines, csv_rows=csv_rows, processes=processes, batch_size=batch_size,
        concurrency=concurrency, retries=retries, timeout=timeout, api_key=api_key, progress=progress,
    )  # fmt: skip


def answer(
    job: Job,
    paths: list[str],
    *,
    url: str | None,
    json_lines: bool,
    csv_rows: bool,
    processes: int | None,
    batch_size: int | None,
    concurrency: int,
    retries: int,
    timeout: float,
    api_key: str | None,
    progress: bool | None,
) -> NoReturn:
    """Answer `job` for each file named, in-process or with the service at `url`; exit with the status."""
    from app.cli.files import NoFiles, find_files
    from app.cli.outcomes import Outcome, Report, progress_bar

    if json_lines and csv_rows:
        raise typer.BadParameter("choose one of them.", param_hint="'--json' / '--csv'")
    try:
        files = find_files(paths)
    except NoFiles as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    report = Report("json" if json_lines else "csv" if csv_rows else "table", [str(f) for f in files], job.columns)
    try:
        with progress_bar(len(files), progress) as advance:

            def put(index: int, outcome: Outcome) -> None:
                report.put(index, outcome)
                advance()

            if url is not None:
                from app.cli import remote

                asyncio.run(
                    remote.answer_files(
                        files, url, job, put, batch_files=batch_size, concurrency=concurrency, api_key=api_key,
                        retries=retries, timeout_s=timeout,
                    )
                )  # fmt: skip
            else:
                from app.cli import local
                from app.config import Settings

                asyncio.run(local.answer_files(files, job, processes or usable_cores(), Settings(), put))
        report.close()
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(f"interrupted: {report.answered + report.refused} of {len(files)} files done", file=sys.stderr)
        raise typer.Exit(INTERRUPTED) from None
    except Exception as exc:
        raise typer.Exit(stopped(exc, report.answered + report.refused, len(files))) from None
    raise typer.Exit(1 if report.refused else 0)


def stopped(error: Exception, done: int, total: int) -> int:
    """Say why the run stopped early, and the exit status; re-raise what is a bug."""
    from pydantic import ValidationError

    from app.cli.remote import ServiceUnavailable
    from app.model.keras_file import ModelLoadError

    cause: BaseException = error
    while isinstance(cause, BaseExceptionGroup):  # from a task group: the first of its errors
        cause = cause.exceptions[0]
    if isinstance(cause, BrokenPipeError):  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    if isinstance(cause, ModelLoadError | ValidationError):
        print(f"error: cannot work in-process: {cause}", file=sys.stderr)
        return 2
    if isinstance(cause, ServiceUnavailable):
        left = f"; {total - done} of {total} files were not answered" if done else ""
        print(f"error: {cause}{left}", file=sys.stderr)
        return 1 if done else 2
    raise error


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.", show_default="$HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Port.", show_default="$PORT or 8000")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes.", show_default="$WEB_CONCURRENCY or 1")
    ] = None,
) -> None:
    """Serve the model over HTTP: what `python -m app` runs (settings from the MNIST_* variables)."""
    for name, value in (("HOST", host), ("PORT", port), ("WEB_CONCURRENCY", workers)):
        if value is not None:
            os.environ[name] = str(value)
    runpy.run_module("app", run_name="__main__", alter_sys=True)  # python -m app: raises SystemExit with its status


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Train a model: what `python -m training` runs, with its options (`mnist-service train --help`)."""
    missing = [name for name in TRAINING_NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"error: training isn't installed here (no {', '.join(missing)}): it needs a checkout of the repository "
            "and its `train` extra, `pip install '.[train]'`. Serving and predicting don't.",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    sys.argv = ["mnist-service train", *ctx.args]
    runpy.run_module("training", run_name="__main__", alter_sys=True)  # raises SystemExit with its status


def main() -> None:
    """The console script `mnist-service`."""
    cli()
