"""Hard limits as pure ASGI middleware: a body cap enforced while the body streams in, an idle timeout
for slow uploads, and a cap on requests in flight (503 + Retry-After rather than an unbounded queue).
Which cap applies, and which routes are probes exempt from the in-flight cap, is app/api/policy.py's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.api.policy import RoutePolicy, policy_for
from app.errors import Overloaded, PayloadTooLarge, RequestTimeout, ServiceError


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is over the {limit:,}-byte limit.")


async def send_error(
    scope: Scope, receive: Receive, send: Send, error: ServiceError, headers: dict[str, str] | None = None
) -> None:
    """The error's response, closing the connection (the unread body may still be arriving)."""
    response = error_response(scope["path"], error, {**(headers or {}), "Connection": "close"})
    await response(scope, receive, send)


class BodyLimitMiddleware:
    """413 when Content-Length is over the limit, or as soon as more bytes arrive than the limit allows;
    408 when the client sends nothing for `idle_timeout` seconds mid-body, or takes longer than
    `total_timeout` for the whole body (a client trickling a byte now and then).

    `limit_for(policy)` gives the cap of a route (batch uploads may carry more than single images).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[RoutePolicy], int],
        idle_timeout: float = 30.0,
        total_timeout: float = 120.0,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.idle_timeout = idle_timeout
        self.total_timeout = total_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(policy_for(scope["path"]))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(scope, receive, send, too_large(limit))
            return
        received = 0
        deadline = asyncio.get_running_loop().time() + self.total_timeout

        async def limited_receive() -> Message:
            nonlocal received
            left = deadline - asyncio.get_running_loop().time()
            try:
                async with asyncio.timeout(max(0.0, min(self.idle_timeout, left))):  # cheaper than wait_for
                    message = await receive()
            except TimeoutError:
                if left <= self.idle_timeout:
                    raise RequestTimeout(f"The request body took over {self.total_timeout:g} s to arrive.") from None
                raise RequestTimeout(f"The request body stalled: no data for {self.idle_timeout:g} s.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a client that lied about Content-Length, or sent chunked
                    raise too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


class InFlight:
    """The requests being served and their cap, one per process: REST and gRPC count against the same one."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.count = 0

    def enter(self) -> bool:
        """Count one more request, if under the cap; False (and nothing counted) at the cap."""
        if self.count >= self.max_in_flight:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1

    def refusal(self) -> Overloaded:
        return Overloaded(f"The server is at its limit of {self.max_in_flight} requests in flight; retry shortly.")


class ConcurrencyLimitMiddleware:
    """Answer 503 with Retry-After when `max_in_flight` requests are already being served (probes exempt);
    `in_flight`: a counter shared with other transports (else one of its own)."""

    def __init__(self, app: ASGIApp, max_in_flight: int = 1, in_flight: InFlight | None = None) -> None:
        self.app = app
        self.in_flight = in_flight or InFlight(max_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or policy_for(scope["path"]).probe:
            await self.app(scope, receive, send)
            return
        if not self.in_flight.enter():
            await send_error(scope, receive, send, self.in_flight.refusal())
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.leave()
