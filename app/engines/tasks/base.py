"""What a task kind is: the inputs of one request, which an engine prepares for the model; the engine
then evaluates the model once on the prepared images of every task in its batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

from app.engines.messages import Failed, Prepared
from app.errors import ImageError
from app.model.network import Network

T = TypeVar("T")


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


def each_file(files: list[bytes], work: Callable[[bytes], T], doing: str) -> list[T] | Failed:
    """`work` on each file in turn, or the first file's failure: its ImageError, or an unexpected error
    summed up in a plain RuntimeError (it has to cross the pipe)."""
    done = []
    for index, data in enumerate(files):
        try:
            done.append(work(data))
        except ImageError as exc:
            return Failed(index, detached(exc))
        except Exception as exc:
            return Failed(index, RuntimeError(f"{doing} failed: {type(exc).__name__}: {exc}"))
    return done


def detached(error: ImageError) -> ImageError:
    """The error without its traceback or the errors it was raised from: their frames hold the failed
    decode's arrays (tens of MiB for a big photo) in a reference cycle with the handler's frame, which
    only the garbage collector frees, and it runs on object counts, not bytes: the engine's memory
    climbs under hostile uploads before it does."""
    error.__traceback__ = error.__cause__ = error.__context__ = None
    return error
