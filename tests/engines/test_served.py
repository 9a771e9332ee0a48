"""The engines under the app: same answers as the thread engine, a killed or frozen child replaced without a failed request (/v1 files and /v2 pixel rows alike), nothing evaluated in the server process, nothing left running after shutdown."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.contract import flatten_and_scale
from app.engines import batcher as batcher_module
from app.engines.environment import SPIN_ENV
from app.main import create_app
from app.model.classifier import Classifier
from app.model.network import Network
from app.preprocessing import preprocess
from tests.conftest import SEVEN, alive, child_pids, encode


@pytest.fixture
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(engine_processes=2), classifier)) as c:
        yield c


def test_child_processes_answer_as_the_thread_does(classifier: Classifier, client: TestClient) -> None:
    files = [("files", (f"{i}.png", SEVEN, "image/png")) for i in range(5)] + [
        ("files", ("x.txt", b"nope", "text/plain"))
    ]
    with TestClient(create_app(Settings(engine_processes=0), classifier)) as threaded:
        for path, kwargs in (("/v1/predict", {"files": {"file": SEVEN}}), ("/v1/predict/batch", {"files": files[:5]})):
            a, b = client.post(path, **kwargs), threaded.post(path, **kwargs)  # type: ignore[arg-type]
            assert a.status_code == b.status_code == 200 and a.json() == b.json()
        a, b = client.post("/v1/predict/batch", files=files), threaded.post("/v1/predict/batch", files=files)
        assert a.status_code == b.status_code == 415 and a.json() == b.json() and "File 5" in a.json()["detail"]


def test_a_killed_child_is_replaced_and_no_request_fails(client: TestClient) -> None:
    batcher = client.app_state["dataplane"].current.batcher
    victim = batcher._idle[-1].pid  # the engine the next request goes to
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    for _ in range(3):
        response = client.post("/v1/predict", files={"file": SEVEN})
        assert response.status_code == 200 and response.json()["digit"] == 7
    now = child_pids(client)
    assert victim not in now and len(now) == 2 and all(alive(pid) for pid in now)


def test_shutdown_leaves_no_child_running(classifier: Classifier) -> None:
    with TestClient(create_app(Settings(engine_processes=2), classifier)) as c:
        assert c.post("/v1/predict", files={"file": SEVEN}).status_code == 200
        pids = child_pids(c)
        assert all(alive(pid) for pid in pids)
    assert not any(alive(pid) for pid in pids)


def test_probabilities_cross_the_pipe_exactly(
    classifier: Classifier, client: TestClient, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    digit = sample[0][3]
    got = client.post("/v1/predict", files={"file": encode(Image.fromarray(digit))}).json()["probabilities"]
    expected = classifier.predict_proba(digit.reshape(1, 784).astype(np.float32) / 255)[0]
    np.testing.assert_array_equal(np.float32(got), expected)


def test_no_upload_is_decoded_in_the_server_process(classifier: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever its size, an upload is preprocessed in an engine process, never in the server's."""

    def in_the_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload was decoded in the server process")

    monkeypatch.setattr("app.engines.tasks.classify.preprocess", in_the_server)
    rng = np.random.default_rng(0)
    big = encode(Image.fromarray(rng.integers(0, 256, (800, 800), dtype=np.uint8)))  # noise: ~640 KB
    assert len(big) > batcher_module.BIG_JOB_BYTES
    seven = Image.open(io.BytesIO(SEVEN)).convert("L").resize((600, 600))
    with TestClient(create_app(Settings(engine_processes=1), classifier)) as client:
        for data in (SEVEN, big, encode(seven)):
            response = client.post("/v1/predict", files={"file": ("x.png", data, "image/png")})
            assert response.status_code in (200, 422), response.text
        batch = client.post("/v1/predict/batch", files=[("files", ("a.png", SEVEN)), ("files", ("b.png", big))])
        assert batch.status_code in (200, 422), batch.text


def test_the_engine_spin_setting_reaches_the_children(classifier: Classifier) -> None:
    with TestClient(create_app(Settings(engine_processes=1, engine_spin_ms=2.5), classifier)) as c:
        (pid,) = child_pids(c)
        environ = dict(
            entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry
        )
        assert environ[SPIN_ENV] == "2.5"
        assert c.post("/v1/predict", files={"file": SEVEN}).json()["digit"] == 7
        assert c.post("/v1/predict", files={"file": SEVEN}).json()["digit"] == 7  # the next batch, after polling


def post_seven(client: TestClient, kind: str) -> int:
    """The digit answered for the hand-drawn 7, sent as a file to /v1 or as MNIST-form pixels to /v2."""
    if kind == "file":
        response = client.post("/v1/predict", files={"file": SEVEN})
        assert response.status_code == 200, response.text
        return int(response.json()["digit"])
    rows = flatten_and_scale(preprocess(SEVEN).pixels[None])
    body = {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": rows.ravel().tolist()}]}
    response = client.post("/v2/models/mnist-mlp/infer", json=body)
    assert response.status_code == 200, response.text
    (digit,) = [output["data"] for output in response.json()["outputs"] if output["name"] == "digit"]
    return int(digit[0])


@pytest.mark.parametrize("kind", ["file", "pixels"])
def test_no_evaluation_runs_in_the_server_process(
    classifier: Classifier, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/v2's pixel rows are evaluated in an engine, as files are: the server's own copy of the network is never called."""

    def in_the_server(*args: object) -> None:
        raise AssertionError("the model was evaluated in the server process")

    with TestClient(create_app(Settings(engine_processes=1), classifier)) as client:
        monkeypatch.setattr(Network, "__call__", in_the_server)
        assert post_seven(client, kind) == 7


@pytest.mark.parametrize("kind", ["file", "pixels"])
def test_a_request_waits_on_and_recovers_from_a_stopped_engine(classifier: Classifier, kind: str) -> None:
    """A request whose engine is frozen (SIGSTOP) waits for the engine timeout, then is answered by the
    engine that replaces it: /v2 pixel rows as /v1 files."""
    with TestClient(create_app(Settings(engine_processes=1, engine_timeout_s=1.0), classifier)) as client:
        assert post_seven(client, kind) == 7
        (victim,) = child_pids(client)
        os.kill(victim, signal.SIGSTOP)
        started = time.perf_counter()
        assert post_seven(client, kind) == 7
        assert time.perf_counter() - started >= 1.0  # it waited for the timeout, not for a thread in the server
        (replacement,) = child_pids(client)
        assert replacement != victim and alive(replacement) and not alive(victim)
