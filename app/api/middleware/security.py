"""Optional API keys: when keys are configured, inference (or everything but the probes) needs
`Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are compared in constant time, never logged."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.middleware.limits import send_error
from app.api.policy import policy_for
from app.config import Settings
from app.errors import Unauthorized


def read_keys(inline: str, file_text: str | None) -> list[bytes]:
    """Keys from a comma-separated setting and/or a file with one key per line (blank lines, # comments)."""
    keys = [k.strip() for k in inline.split(",")]
    if file_text:
        keys += [line.strip() for line in file_text.splitlines() if not line.strip().startswith("#")]
    return [k.encode() for k in keys if k]


class ConfigError(Exception):
    """A setting that makes serving impossible; the message names it."""


def load_api_keys(settings: Settings) -> list[bytes]:
    """The configured API keys; an unreadable keys file stops the service with a clear message."""
    text = None
    if settings.api_keys_file is not None:
        try:
            text = settings.api_keys_file.read_text()
        except OSError as exc:
            raise ConfigError(f"API keys file {settings.api_keys_file} is not readable ({exc.strerror}).") from None
    return read_keys(settings.api_keys.get_secret_value(), text)


def key_allowed(keys: list[bytes], given: bytes) -> bool:
    """Whether `given` is one of `keys`, compared with every key without stopping early, so that timing
    tells nothing about which matched (REST's middleware and gRPC's interceptor both ask here)."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    return bool(given) and matched


def presented_key(authorization: bytes, x_api_key: bytes) -> bytes:
    """The key a request presents: `Authorization: Bearer <key>`, else `X-API-Key: <key>`."""
    if authorization[:7].lower() == b"bearer ":
        return authorization[7:].strip()
    return x_api_key


class ApiKeyMiddleware:
    """401 + WWW-Authenticate for protected paths without a valid key.

    scope="inference": the routes app/api/policy.py marks as inference (/v1 and /v2 models); health,
    metrics, docs and the page stay open. scope="all": everything except the probes.
    """

    def __init__(self, app: ASGIApp, keys: list[bytes], scope: str = "inference") -> None:
        self.app = app
        self.keys = keys
        self.everything = scope == "all"

    def protected(self, path: str) -> bool:
        policy = policy_for(path)
        return not policy.probe and (self.everything or policy.inference)

    def allowed(self, given: bytes) -> bool:
        return key_allowed(self.keys, given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = presented_key(headers.get(b"authorization", b""), headers.get(b"x-api-key", b""))
        if self.allowed(given):
            await self.app(scope, receive, send)
            return
        detail = "A valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        challenge = 'Bearer realm="mnist-service"' + (', error="invalid_token"' if given else "")
        await send_error(scope, receive, send, Unauthorized(detail), {"WWW-Authenticate": challenge})
