"""When a request's conversion leaves the event loop: big bodies are decoded and big answers encoded in
the thread pool (REST /v2 and gRPC alike). A hop to a thread costs more than small work, so small work
stays on the loop; big work there would stall every other request for as long as it takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

INLINE_BYTES = 64 * 1024  # bigger requests are decoded (inflated, cast, checked) in the thread pool
INLINE_ROWS = 64  # bigger answers are encoded in the thread pool
T = TypeVar("T")


async def maybe_off_loop(off: bool, function: Callable[..., T], *args: Any) -> T:
    """Run `function` in the thread pool when `off`, else right here."""
    return await run_in_threadpool(function, *args) if off else function(*args)
