"""The URL policy in one table: for each kind of route, its body cap, whether API keys guard it,
whether it is a probe (never refused for load), and the error shape its clients expect.

Middleware runs before routing, so it reads this table by path; nothing else in the app looks at
path prefixes. A route that matches no row gets the last one: the small body cap, open, /v1 errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from app.config import Settings

ErrorShape = Literal["v1", "v2"]  # {"detail", "code"}, or the Open Inference Protocol's {"error"}


@dataclass(frozen=True)
class RoutePolicy:
    batch: bool = False  # the body may carry many images: MNIST_MAX_BATCH_BODY_BYTES, else MNIST_MAX_BODY_BYTES
    inference: bool = False  # API keys guard it in auth scope "inference" (scope "all" guards every non-probe)
    probe: bool = False  # liveness/readiness: no API key, no in-flight cap
    shape: ErrorShape = "v1"


TABLE: list[tuple[re.Pattern[str], RoutePolicy]] = [
    (re.compile(r"/(healthz|readyz)"), RoutePolicy(probe=True)),
    (re.compile(r"/v2/health/(live|ready)"), RoutePolicy(probe=True, shape="v2")),
    (re.compile(r"/v1/(predict|read)/batch"), RoutePolicy(batch=True, inference=True)),
    (re.compile(r"/v1/.*"), RoutePolicy(inference=True)),
    (re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?/infer"), RoutePolicy(batch=True, inference=True, shape="v2")),
    (re.compile(r"/v2/models/.*"), RoutePolicy(inference=True, shape="v2")),
    (re.compile(r"/v2/repository/.*"), RoutePolicy(inference=True, shape="v2")),  # loading models: keys guard it
    (re.compile(r"/v2(/.*)?"), RoutePolicy(shape="v2")),
]
DEFAULT = RoutePolicy()


@lru_cache(maxsize=1024)  # bounded: paths come from clients
def policy_for(path: str) -> RoutePolicy:
    """The policy of the route at `path` (the first row of TABLE that matches it whole)."""
    for pattern, policy in TABLE:
        if pattern.fullmatch(path):
            return policy
    return DEFAULT


def body_cap(policy: RoutePolicy, settings: Settings) -> int:
    """The most bytes a request body may have on a route of this policy."""
    return settings.max_batch_body_bytes if policy.batch else settings.max_body_bytes
