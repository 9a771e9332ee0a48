"""Request IDs, one structured log line per request, and the HTTP metrics: pure ASGI."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import HTTP_LATENCY, HTTP_REQUESTS, IN_FLIGHT

access_log = logging.getLogger("app.access")
REST_IN_FLIGHT = IN_FLIGHT.labels("rest")
REQUEST_ID_HEADER = "x-request-id"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # anything else is replaced, never logged raw


class RequestContextMiddleware:
    """Give every request an ID (the client's X-Request-ID if sane, else a new one), echo it in the
    response, count and time the request by route template, and log one JSON line for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if given and VALID_REQUEST_ID.match(given) else os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        REST_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REST_IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"  # bounded label values
            key = (method, route, status)
            if (children := self._children.get(key)) is None:  # labels() is slow-ish: resolve each once
                children = self._children[key] = (
                    HTTP_REQUESTS.labels("rest", key[0], route, str(status)),
                    HTTP_LATENCY.labels("rest", key[0], route),
                )
            children[0].inc()
            children[1].observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                fields = {
                    "request_id": request_id,
                    "protocol": "rest",
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    **state.get("log_fields", {}),
                }
                access_log.info("request", extra={"fields": fields})
