"""What every gRPC call goes through, as REST's requests go through the middleware (app/api/middleware/):
a request ID (metadata `x-request-id`, echoed in the trailing metadata), the in-flight cap shared with
REST, the API keys, the request's parsing (a malformed message is INVALID_ARGUMENT, not grpc's own
INTERNAL), ServiceErrors rendered as status codes, and the metrics and the JSON log line, with
`protocol` "grpc". Unary calls only: the health service's Watch stream passes through as it is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError

from app.api.grpc.errors import status_code
from app.api.middleware.limits import InFlight
from app.api.middleware.observability import VALID_REQUEST_ID
from app.api.middleware.security import key_allowed, presented_key
from app.errors import BadRequest, ServiceError, Unauthorized
from app.metrics import HTTP_LATENCY, HTTP_REQUESTS, IN_FLIGHT

log = logging.getLogger("app")
access_log = logging.getLogger("app.access")
SERVICE = "/inference.GRPCInferenceService/"
HEALTH = "/grpc.health.v1.Health/"
PROBES = frozenset({SERVICE + "ServerLive", SERVICE + "ServerReady", HEALTH + "Check", HEALTH + "Watch"})
INFERENCE = frozenset(
    SERVICE + name for name in ("ModelReady", "ModelMetadata", "ModelInfer", "RepositoryIndex", "RepositoryModelLoad")
)  # what the keys guard in auth scope "inference", as REST's /v2/models and /v2/repository
GRPC_IN_FLIGHT = IN_FLIGHT.labels("grpc")
# Fields for the call's log line, set by the servicer (as REST's routes set request.state.log_fields).
LOG_FIELDS: ContextVar[dict[str, Any]] = ContextVar("grpc_log_fields")
Context: TypeAlias = grpc.aio.ServicerContext  # grpc ships no type hints: Any to mypy
Behaviour = Callable[[Any, Context], Awaitable[Any]]


def log_fields(fields: dict[str, Any]) -> None:
    """Add `fields` to the log line of the call in progress."""
    if (current := LOG_FIELDS.get(None)) is not None:
        current.update(fields)


def forget(exc: BaseException) -> None:
    """Drop what an exception about to be rendered keeps alive: its traceback (the frames of the call,
    with the request parsed in them) and the exceptions it was raised from (a DecodeError's frame holds
    the message). grpc.aio keeps the AbortError that context.abort raises, chained to `exc`, in a
    reference cycle: without this, every refused call held its message and parsed request (a 10^6-tensor
    one: ~180 MiB) until a gen-2 collection, and the RSS climbed call after call."""
    exc.__traceback__ = exc.__context__ = exc.__cause__ = None


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary call's behaviour: the access checks, the error rendering, the metrics and the log."""

    def __init__(self, in_flight: InFlight, keys: list[bytes], auth_scope: str = "inference") -> None:
        self.in_flight = in_flight
        self.keys = keys
        self.everything = auth_scope == "all"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # an unknown method (UNIMPLEMENTED), or a stream
        route: str = handler_call_details.method
        probe = route in PROBES
        protected = bool(self.keys) and not probe and (self.everything or route in INFERENCE)
        call = Call(self, route, handler.unary_unary, handler.request_deserializer, probe, protected)
        # the message arrives as bytes (no deserializer): Call parses it, so a malformed one is INVALID_ARGUMENT
        # a bound coroutine method: grpc.aio tells coroutine behaviours from plain ones by inspection
        return grpc.unary_unary_rpc_method_handler(call.handle, response_serializer=handler.response_serializer)


class Call:
    """One method's behaviour, wrapped; children of the metrics resolved once, labels() costs more than inc()."""

    def __init__(
        self,
        interceptor: CallInterceptor,
        route: str,
        behaviour: Behaviour,
        parse: Callable[[bytes], Any] | None,
        probe: bool,
        protected: bool,
    ) -> None:
        self.interceptor, self.route, self.behaviour, self.parse = interceptor, route, behaviour, parse
        self.probe, self.protected = probe, protected
        self.latency = HTTP_LATENCY.labels("grpc", "POST", route)
        self._counters: dict[str, Any] = {}

    async def handle(self, message: bytes, context: Context) -> Any:
        started = time.perf_counter()
        metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        given = metadata.get("x-request-id", "")
        request_id = given if given and VALID_REQUEST_ID.match(given) else os.urandom(16).hex()
        trailing = (("x-request-id", request_id),)
        context.set_trailing_metadata(trailing)
        fields: dict[str, Any] = {}
        token = LOG_FIELDS.set(fields)
        code, counted = grpc.StatusCode.OK, False
        request: Any = None
        GRPC_IN_FLIGHT.inc()
        try:
            if not self.probe:
                if not self.interceptor.in_flight.enter():
                    raise self.interceptor.in_flight.refusal()
                counted = True
            if self.protected:
                self.authenticate(metadata)
            request = self.parse_message(message)
            return await self.behaviour(request, context)
        except ServiceError as exc:
            code = status_code(exc)
            forget(exc)
            await context.abort(code, exc.detail, trailing)
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:  # the client went, or its deadline passed: grpc cancels the call
            remaining = context.time_remaining()
            code = (
                grpc.StatusCode.DEADLINE_EXCEEDED
                if remaining is not None and remaining <= 0
                else grpc.StatusCode.CANCELLED
            )
            raise
        except Exception as exc:
            log.exception("unhandled error in gRPC call %s", self.route)
            code = grpc.StatusCode.INTERNAL
            forget(exc)
            await context.abort(code, "Internal server error; the request was logged.", trailing)
        finally:
            # the AbortError raised above keeps this frame (its traceback) in a reference cycle with
            # grpc's task until the cyclic GC runs, which few allocations trigger: not the message with it
            del message, request
            if counted:
                self.interceptor.in_flight.leave()
            GRPC_IN_FLIGHT.dec()
            LOG_FIELDS.reset(token)
            self.record(code, request_id, time.perf_counter() - started, fields)

    def authenticate(self, metadata: dict[str, str]) -> None:
        """Unauthorized unless the call's metadata carries a valid key (`authorization: Bearer`, `x-api-key`)."""
        given = presented_key(metadata.get("authorization", "").encode(), metadata.get("x-api-key", "").encode())
        if not key_allowed(self.interceptor.keys, given):
            raise Unauthorized(
                "A valid API key is required: send metadata 'authorization: Bearer <key>' or 'x-api-key: <key>'."
            )

    def parse_message(self, message: bytes) -> Any:
        if self.parse is None:
            return message
        try:
            return self.parse(message)
        except DecodeError:
            raise BadRequest(f"The request is not a valid protobuf message for {self.route}.") from None

    def record(self, code: grpc.StatusCode, request_id: str, seconds: float, fields: dict[str, Any]) -> None:
        """Count and time the call, and log its line, as REST's RequestContextMiddleware does a request's."""
        status = code.name
        if (counter := self._counters.get(status)) is None:
            counter = self._counters[status] = HTTP_REQUESTS.labels("grpc", "POST", self.route, status)
        counter.inc()
        self.latency.observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            line = {
                "request_id": request_id,
                "protocol": "grpc",
                "method": "POST",
                "route": self.route,
                "path": self.route,
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
                **fields,
            }
            access_log.info("request", extra={"fields": line})
