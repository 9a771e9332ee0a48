"""Access and hard limits: optional API keys, CORS, the in-flight cap, stalled uploads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.middleware.limits import BodyLimitMiddleware, ConcurrencyLimitMiddleware
from app.api.middleware.security import ConfigError, load_api_keys
from app.config import Settings
from app.main import create_app
from app.model.classifier import Classifier
from tests.conftest import SEVEN

KEY = "s3cret-key-0123456789"


@pytest.fixture()
def keyed(classifier: Classifier) -> Iterator[TestClient]:
    settings = Settings(api_keys=SecretStr(f"other-key,{KEY}"))
    with TestClient(create_app(settings, classifier)) as client:
        yield client


def predict(client: TestClient, **headers: str) -> httpx.Response:
    return client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "image/png", **headers})


def test_no_keys_configured_means_open(classifier: Classifier) -> None:
    with TestClient(create_app(Settings(), classifier)) as client:
        assert predict(client).status_code == 200


def test_keys_are_required_for_inference(keyed: TestClient) -> None:
    missing = predict(keyed)
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = predict(keyed, Authorization="Bearer nope")
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert predict(keyed, Authorization=f"Bearer {KEY}").status_code == 200
    assert predict(keyed, **{"X-API-Key": KEY}).status_code == 200
    assert keyed.get("/v1/model").status_code == 401
    v2 = keyed.post("/v2/models/mnist-mlp/infer", json={"inputs": []})
    assert v2.status_code == 401 and set(v2.json()) == {"error"}


def test_health_metrics_docs_and_page_stay_open(keyed: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/", "/v2/health/ready"):
        assert keyed.get(path).status_code == 200, path


def test_scope_all_protects_all_but_the_probes(classifier: Classifier) -> None:
    settings = Settings(api_keys=SecretStr(KEY), auth_scope="all")
    with TestClient(create_app(settings, classifier)) as client:
        assert client.get("/metrics").status_code == 401 and client.get("/docs").status_code == 401
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_keys_file_and_unreadable_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# mounted secret\nfirst-key\n\nsecond-key\n")
    assert load_api_keys(Settings(api_keys_file=keys)) == [b"first-key", b"second-key"]
    with pytest.raises(ConfigError, match="not readable"):
        load_api_keys(Settings(api_keys_file=tmp_path / "absent"))


def test_keys_never_reach_the_logs(classifier: Classifier, capsys: pytest.CaptureFixture[str]) -> None:
    with TestClient(create_app(Settings(api_keys=SecretStr(KEY)), classifier)) as client:
        predict(client, Authorization=f"Bearer {KEY}")
        predict(client, Authorization="Bearer wrong-key")
    logged = capsys.readouterr().err
    assert "serving model" in logged and KEY not in logged and "wrong-key" not in logged


def test_cors_is_off_by_default_and_configurable(classifier: Classifier) -> None:
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(Settings(), classifier)) as client:
        assert "access-control-allow-origin" not in client.options("/v1/predict", headers=preflight).headers
    with TestClient(create_app(Settings(cors_origins="https://example.org"), classifier)) as client:
        response = client.options("/v1/predict", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://example.org"


async def call(app: object, path: str = "/v1/predict", body: bytes = b"x") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, content=body)


def test_in_flight_cap_answers_503_with_retry_after() -> None:
    release = asyncio.Event()

    async def slow_app(scope: dict[str, object], receive: object, send: object) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    app = ConcurrencyLimitMiddleware(slow_app, max_in_flight=2)

    async def scenario() -> list[httpx.Response]:
        first = [asyncio.create_task(call(app)) for _ in range(2)]
        await asyncio.sleep(0.05)
        third = await call(app)
        probe = asyncio.create_task(call(app, "/healthz"))
        await asyncio.sleep(0.05)
        release.set()
        return [third, *await asyncio.gather(*first), await probe]

    third, one, two, probe = asyncio.run(scenario())
    assert third.status_code == 503 and third.headers["retry-after"] == "1" and third.json()["code"] == "overloaded"
    assert one.status_code == two.status_code == probe.status_code == 200


def test_a_stalled_upload_gets_408() -> None:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        from starlette.requests import Request

        from app.errors import ServiceError

        try:
            await Request(scope, receive).body()  # type: ignore[arg-type]
        except ServiceError as exc:
            body = json.dumps({"detail": exc.detail, "code": exc.code}).encode()
            await send({"type": "http.response.start", "status": exc.status, "headers": []})  # type: ignore[operator]
            await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    async def trickle() -> object:
        yield b"\x89PNG"
        await asyncio.sleep(5)  # then nothing: a client that stopped sending
        yield b"rest"

    limited = BodyLimitMiddleware(app, limit_for=lambda policy: 1_000_000, idle_timeout=0.2)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/predict", content=trickle())

    response = asyncio.run(scenario())
    assert response.status_code == 408 and response.json()["code"] == "request_timeout"
    assert "stalled" in response.json()["detail"]


def test_a_trickling_upload_hits_the_deadline() -> None:
    from starlette.requests import Request

    from app.errors import ServiceError

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        try:
            await Request(scope, receive).body()  # type: ignore[arg-type]
        except ServiceError as exc:
            body = json.dumps({"detail": exc.detail, "code": exc.code}).encode()
            await send({"type": "http.response.start", "status": exc.status, "headers": []})  # type: ignore[operator]
            await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    async def trickle() -> object:
        for _ in range(40):  # a byte every 0.1 s: never idle for long, never done
            yield b"x"
            await asyncio.sleep(0.1)

    limited = BodyLimitMiddleware(app, limit_for=lambda policy: 1_000_000, idle_timeout=1.0, total_timeout=0.5)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/predict", content=trickle())

    response = asyncio.run(scenario())
    assert response.status_code == 408 and "took over 0.5 s" in response.json()["detail"]
