"""What a command asks of each file: `predict` its digit, `read` its number. A job names the batch route
that answers it with --url, the field of that route's answer that lists the files' answers, and the
columns of its table; local.py asks the data plane the same in-process. Light: remote.py and the
command line import it without the data plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from app.cli.outcomes import PREDICTIONS, READINGS, Columns

if TYPE_CHECKING:
    from app.preprocessing import Mode


@dataclass(frozen=True)
class Predict:
    """The digit in each file (/v1/predict), preprocessed in `mode`."""

    mode: Mode = "mnist"
    path: ClassVar[str] = "/v1/predict/batch"
    answers: ClassVar[str] = "predictions"
    columns: ClassVar[Columns] = PREDICTIONS

    @property
    def params(self) -> dict[str, str]:
        return {"preprocess": self.mode}


@dataclass(frozen=True)
class Read:
    """The number in each file (/v1/read)."""

    path: ClassVar[str] = "/v1/read/batch"
    answers: ClassVar[str] = "readings"
    columns: ClassVar[Columns] = READINGS
    params: dict[str, str] = field(default_factory=dict)


Job = Predict | Read
