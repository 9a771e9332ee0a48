"""What the command line says about each file: an answer (a /v1 prediction or reading) or a refusal, in
the order the files were named, as a table, JSON lines or CSV, with a progress bar on a terminal."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TextIO

Format = Literal["table", "json", "csv"]
PROGRESS_ABOVE = 8  # files; fewer are done before a bar would be worth drawing


@dataclass(frozen=True)
class Columns:
    """The fields of an answer that a table or a CSV row shows between `file` and `notes`: `shown`
    always, `optional` when the first answer has them (fields a later model adds). A list shows its length."""

    shown: tuple[str, ...]
    optional: tuple[str, ...] = ()
    text: str | None = None  # a column of text, left-aligned in a table at `text_width` characters and more
    text_width: int = 0


PREDICTIONS = Columns(("digit", "confidence"), ("is_digit", "digit_score"))
READINGS = Columns(("text", "confidence", "digits"), text="text", text_width=12)


@dataclass
class Answer:
    file: str
    body: dict[str, Any]  # as /v1 answers it: a prediction (digit, confidence, ...) or a reading (text, ...)


@dataclass
class Refusal:
    file: str
    code: str  # the service's error code (app/errors.py), or `unreadable` for a file that could not be read
    detail: str


Outcome = Answer | Refusal


class Report:
    """Writes each file's outcome as soon as those of the files before it are known: answers to stdout,
    refusals to stderr (`error: FILE: detail`), so the output keeps the order of the files."""

    def __init__(self, fmt: Format, names: list[str], columns: Columns = PREDICTIONS) -> None:
        self.fmt = fmt
        self.columns = columns
        self.width = min(max((len(name) for name in names), default=4), 60)
        self.answered = 0
        self.refused = 0
        self._pending: dict[int, Outcome] = {}
        self._next = 0
        self._columns: list[str] | None = None  # set by the first answer: which optional fields it has
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
        body = outcome.body
        if self._columns is None:
            self._columns = [name for name in self.columns.optional if name in body]
            self._header(out)
        if self.fmt == "json":
            out.write(json.dumps({"file": outcome.file, **body}) + "\n")
        elif self.fmt == "csv":
            csv.writer(out).writerow([outcome.file, *self._cells(body), "; ".join(body.get("notes", []))])
        else:
            cells = "  ".join(
                f"{cell:<{self._width(name)}}" if name == self.columns.text else f"{cell:>{len(name)}}"
                for name, cell in zip(self._titles(), self._cells(body), strict=True)
            )
            out.write(f"{outcome.file:<{self.width}}  {cells}  {'; '.join(body.get('notes', []))}".rstrip() + "\n")
        out.flush()

    def _titles(self) -> list[str]:
        return [*self.columns.shown, *(self._columns or [])]

    def _width(self, name: str) -> int:
        return max(len(name), self.columns.text_width) if name == self.columns.text else len(name)

    def _cells(self, body: dict[str, Any]) -> list[str]:
        """The columns' values: rounded in a table, whole in CSV."""
        return [_cell(body.get(name, ""), self.fmt == "table") for name in self._titles()]

    def _header(self, out: TextIO) -> None:
        if self.fmt == "csv":
            csv.writer(out).writerow(["file", *self._titles(), "notes"])
        elif self.fmt == "table":
            titles = "  ".join(f"{name:<{self._width(name)}}" for name in self._titles())
            out.write(f"{'file':<{self.width}}  {titles}  notes\n")

    def close(self) -> None:
        """A CSV file has its header even when no file was answered."""
        if self._columns is None and self.fmt == "csv":
            self._columns = []
            self._header(sys.stdout)


def _cell(value: object, rounded: bool) -> str:
    if isinstance(value, bool):
        return str(value).lower()  # as JSON writes it
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, float) and rounded:
        return f"{value:.4f}"
    if isinstance(value, str) and rounded:
        return value.replace("\n", "\\n")  # a reading's lines, as JSON writes them: one row per file
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
        task = progress.add_task("files", total=total)
        yield lambda: progress.advance(task)
