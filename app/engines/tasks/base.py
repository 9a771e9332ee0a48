"""What a task kind is: the inputs of one request, which an engine prepares for the model; the engine
then evaluates the model once on the prepared images of every task in its batch."""

from __future__ import annotations

from typing import ClassVar, Protocol

from app.engines.messages import Failed, Prepared
from app.model.network import Network


class Task(Protocol):
    kind: ClassVar[str]
    decodes: ClassVar[bool]  # its inputs go through a decoder: one that crashes or stalls an engine is refused

    @property
    def size(self) -> int:
        """Inputs it brings to a batch (the batch's budget of images and time counts them)."""
        ...

    @property
    def nbytes(self) -> int:
        """Bytes of encoded input: a task with many is a batch of its own (decoding it is slow)."""
        ...

    def prepare(self, network: Network) -> Prepared | Failed:
        """In the engine: its inputs as the model's rows, or the first one that cannot be. `network` is
        there for a task that asks the model while preparing (cutting a number into digits)."""
        ...

    def split(self) -> list[Task]:
        """One task per input, to find the one that crashes or stalls an engine ([self]: cannot be split)."""
        ...
