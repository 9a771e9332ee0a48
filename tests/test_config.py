"""Settings from the environment, and the URL policy table that the middleware reads."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from app.api.policy import RoutePolicy, body_cap, policy_for
from app.config import Settings
from app.main import create_app


def test_comma_separated_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_CORS_ORIGINS", " https://a.example, https://b.example ,")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("MNIST_CORS_ORIGINS", "")
    assert Settings().cors_origins == []


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/healthz", RoutePolicy(probe=True)),
        ("/readyz", RoutePolicy(probe=True)),
        ("/v2/health/live", RoutePolicy(probe=True, shape="v2")),
        ("/v2/health/ready", RoutePolicy(probe=True, shape="v2")),
        ("/v1/predict", RoutePolicy(inference=True)),
        ("/v1/predict/batch", RoutePolicy(batch=True, inference=True)),
        ("/v1/model", RoutePolicy(inference=True)),
        ("/v2/models/mnist-mlp/infer", RoutePolicy(batch=True, inference=True, shape="v2")),
        ("/v2/models/mnist-mlp/versions/abc/infer", RoutePolicy(batch=True, inference=True, shape="v2")),
        ("/v2/models/mnist-mlp", RoutePolicy(inference=True, shape="v2")),
        ("/v2/models/mnist-mlp/ready", RoutePolicy(inference=True, shape="v2")),
        ("/v2", RoutePolicy(shape="v2")),
        ("/v2/nowhere", RoutePolicy(shape="v2")),
        ("/v2health/live", RoutePolicy()),  # whole segments only
        ("/v1", RoutePolicy()),
        ("/metrics", RoutePolicy()),
        ("/docs", RoutePolicy()),
        ("/", RoutePolicy()),
        ("/healthz/extra", RoutePolicy()),
    ],
)
def test_each_path_gets_its_policy(path: str, policy: RoutePolicy) -> None:
    assert policy_for(path) == policy


def test_every_route_of_the_app_is_in_the_policy_it_should_be() -> None:
    """A new route can't silently fall under another protocol's rules: its path tells its policy."""
    for route in create_app(Settings()).routes:
        if not isinstance(route, APIRoute):
            continue
        path = route.path.replace("{model_name}", "m").replace("{version}", "1")
        policy = policy_for(path)
        assert policy.shape == ("v2" if path.startswith("/v2") else "v1"), path
        assert policy.inference == path.startswith(("/v1/", "/v2/models/")), path
        assert policy.probe == (path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready")), path
        assert policy.batch == path.endswith(("/batch", "/infer")), path


def test_the_body_cap_of_a_policy() -> None:
    settings = Settings(max_body_bytes=10, max_batch_body_bytes=20)
    assert body_cap(RoutePolicy(), settings) == 10 and body_cap(RoutePolicy(batch=True), settings) == 20
