"""What the command line says about each file: an answer (a /v1 prediction) or a refusal, in the
order the files were named, as a table, JSON lines or CSV, with a progress bar on a terminal."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TextIO

Format = Literal["table", "json", "csv"]
# The fields of a /v1 prediction that a later model adds: shown when an answer has them.
OPTIONAL = ("is_digit", "digit_score")
PROGRESS_ABOVE = 8  # files; fewer are done before a bar would be worth drawing


@dataclass
class Answer:
    file: str
    prediction: dict[str, Any]  # as /v1 answers it: digit, confidence, probabilities, notes, model_version, ...


@dataclass
class Refusal:
    file: str
    code: str  # the service's error code (app/errors.py), or `unreadable` for a file that could not be read
    detail: str


Outcome = Answer | Refusal


class Report:
    """Writes each file's outcome as soon as those of the files before it are known: answers to stdout,
    refusals to stderr (`error: FILE: detail`), so the output keeps the order of the files."""

    def __init__(self, fmt: Format, names: list[str]) -> None:
        self.fmt = fmt
        self.width = min(max((len(name) for name in names), default=4), 60)
        self.answered = 0
        self.refused = 0
        self._pending: dict[int, Outcome] = {}
        self._next = 0
        self._columns: list[str] | None = None  # set by the first answer: which OPTIONAL fields it has
        self._csv: Any = None

    def put(self, index: int, outcome: Outcome) -> None:
        """The outcome of the index-th file (from 0)."""
        self._pending[index] = outcome
        while self._next in self._pending:
            self._write(self._pending.pop(self._next))
            self._next += 1

    def _write(self, outcome: Outcome) -> None:
        if isinstance(outcome, Refusal):
            self.refused += 1
            print(f"error: {outcome.file}: {outcome.detail} ({outcome.code})", file=sys.stderr, flush=True)
            return
        self.answered += 1
        out = sys.stdout  # looked up each time: the progress bar redirects it while it is drawn
        prediction = outcome.prediction
        if self._columns is None:
            self._columns = [name for name in OPTIONAL if name in prediction]
            self._header(out)
        if self.fmt == "json":
            out.write(json.dumps({"file": outcome.file, **prediction}) + "\n")
        elif self.fmt == "csv":
            csv.writer(out).writerow([outcome.file, *self._cells(prediction), "; ".join(prediction.get("notes", []))])
        else:
            cells = "  ".join(
                f"{cell:>{len(name)}}" for name, cell in zip(self._titles(), self._cells(prediction), strict=True)
            )
            out.write(
                f"{outcome.file:<{self.width}}  {cells}  {'; '.join(prediction.get('notes', []))}".rstrip() + "\n"
            )
        out.flush()

    def _titles(self) -> list[str]:
        return ["digit", "confidence", *(self._columns or [])]

    def _cells(self, prediction: dict[str, Any]) -> list[str]:
        """The digit, the confidence and the later fields present: rounded in a table, whole in CSV."""
        values = [prediction["digit"], prediction["confidence"], *(prediction.get(n, "") for n in self._columns or [])]
        return [_cell(value, self.fmt == "table") for value in values]

    def _header(self, out: TextIO) -> None:
        if self.fmt == "csv":
            csv.writer(out).writerow(["file", *self._titles(), "notes"])
        elif self.fmt == "table":
            out.write(f"{'file':<{self.width}}  {'  '.join(self._titles())}  notes\n")

    def close(self) -> None:
        """A CSV file has its header even when no file was answered."""
        if self._columns is None and self.fmt == "csv":
            self._columns = []
            self._header(sys.stdout)


def _cell(value: object, rounded: bool) -> str:
    if isinstance(value, bool):
        return str(value).lower()  # as JSON writes it
    if isinstance(value, float) and rounded:
        return f"{value:.4f}"
    return str(value)


@contextmanager
def progress_bar(total: int, enabled: bool | None) -> Iterator[Any]:
    """A bar on stderr for `total` files (`enabled` None: when stderr is a terminal and the files are
    more than a few); yields a callable to count one file done."""
    if enabled is None:
        enabled = sys.stderr.isatty() and total > PROGRESS_ABOVE
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    # stdout is drawn above the bar when it is the same terminal; piped, it is left alone
    with Progress(
        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), redirect_stdout=sys.stdout.isatty(), transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("predicting", total=total)
        yield lambda: progress.advance(task)
