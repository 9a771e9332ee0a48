"""Hot model reload: swaps under load, the quality gate, the triggers (polling, SIGHUP, the load call)
and the repository index. Candidate models are variants of the committed one, written here."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.contract import sha256_file
from app.main import create_app
from app.model import gate
from app.model.classifier import Classifier
from app.model.reload import Reloader
from app.preprocessing import preprocess
from tests.conftest import MODEL, SEVEN, copy_model, running_server

BOUNDARY = "reloadboundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(field: str, files: list[bytes]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="f{i}.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


# candidate models -------------------------------------------------------------------------------


def write_variant(
    dst: Path,
    weights: Callable[[list[tuple[np.ndarray, np.ndarray]]], None] | None = None,
    config: Callable[[dict[str, Any]], None] | None = None,
    sha256: str | None = None,
) -> Path:
    """A copy of the committed model at `dst` (and its .json), with its Dense weights and/or its Keras
    config changed in place by the callbacks; the metadata records the new file's sha256 (or `sha256`).
    Written beside `dst` and renamed into place, as the training CLI publishes."""
    with zipfile.ZipFile(MODEL) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if weights is not None:
        with tempfile.TemporaryDirectory() as tmp:
            h5 = Path(tmp) / "w.h5"
            h5.write_bytes(members["model.weights.h5"])
            with h5py.File(h5, "r+") as store:
                names = sorted((n for n in store["layers"] if n.startswith("dense")), key=lambda n: (len(n), n))
                layers = [(store[f"layers/{n}/vars/0"][()], store[f"layers/{n}/vars/1"][()]) for n in names]
                weights(layers)
                for name, (kernel, bias) in zip(names, layers, strict=True):
                    store[f"layers/{name}/vars/0"][...] = kernel
                    store[f"layers/{name}/vars/1"][...] = bias
            members["model.weights.h5"] = h5.read_bytes()
    if config is not None:
        spec = json.loads(members["config.json"])
        config(spec)
        members["config.json"] = json.dumps(spec).encode()
    staging = dst.with_name(dst.name + ".tmp")
    with zipfile.ZipFile(staging, "w") as archive:
        for name, data in members.items():  # a fixed date: the same changes give the same file, and version
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    metadata["sha256"] = sha256 or sha256_file(staging)
    scorer = metadata.get("digit_score", {}).get("file")
    if scorer and not dst.with_name(scorer).exists():  # the committed scorer, beside the variant
        shutil.copy(MODEL.with_name(scorer), dst.with_name(scorer))
    meta_staging = dst.with_suffix(".json.tmp")
    meta_staging.write_text(json.dumps(metadata))
    os.replace(meta_staging, dst.with_suffix(".json"))
    os.replace(staging, dst)
    return dst


def nudged(layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """A model as good as the committed one, with other probabilities (and so another sha256)."""
    layers[-1][1][:] += np.linspace(-0.3, 0.3, layers[-1][1].size, dtype=np.float32)


def scrambled(layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """A model that answers the wrong digit: its output units rotated by one."""
    kernel, bias = layers[-1]
    kernel[:] = np.roll(kernel, 1, axis=1)
    bias[:] = np.roll(bias, 1)


def foreign_layer(spec: dict[str, Any]) -> None:
    dense = spec["config"]["layers"][-1]
    dense["class_name"] = "Conv1D"


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A copy of the committed model, to be replaced by the tests."""
    return copy_model(tmp_path / "mnist-mlp.keras")


def expected(path: Path) -> tuple[str, np.ndarray]:
    """The version of the model at `path` and its probabilities for SEVEN, computed here."""
    classifier = Classifier.load(path)
    return classifier.version, classifier.predict_proba(preprocess(SEVEN).model_input)[0]


# in-process ---------------------------------------------------------------------------------------


@pytest.fixture
def app_client(served: Path) -> Iterator[TestClient]:
    settings = Settings(model_path=served, model_poll_s=0, engine_processes=1)
    with TestClient(create_app(settings)) as client:
        yield client


def version_of(client: TestClient) -> str:
    version: str = client.get("/v1/model").json()["version"]
    return version


def refusals(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('mnist_model_reloads_total{result="refused"}'):
            return float(line.split()[-1])
    raise AssertionError("mnist_model_reloads_total is not exported")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize(
    ("kind", "write", "reason"),
    [
        ("below the gate", lambda p: write_variant(p, weights=scrambled), "gate sample"),
        ("wrong sha256", lambda p: write_variant(p, weights=nudged, sha256="0" * 64), "sha256"),
        ("foreign layer", lambda p: write_variant(p, config=foreign_layer), "Conv1D"),
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "changed or corrupted"),
    ],
)
def test_a_refused_candidate_leaves_the_old_model_serving(
    app_client: TestClient, served: Path, kind: str, write: Callable[[Path], Any], reason: str
) -> None:
    before, probabilities = expected(served)
    refused_before = refusals(app_client)
    log = Captured()
    logging.getLogger("app").addHandler(log)
    try:
        write(served)
        answer = app_client.post("/v2/repository/models/mnist-mlp/load")
    finally:
        logging.getLogger("app").removeHandler(log)
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["error"]
    assert version_of(app_client) == before
    prediction = app_client.post("/v1/predict", content=multipart("file", [SEVEN]), headers=MULTIPART).json()
    assert prediction["model_version"] == before
    assert np.allclose(prediction["probabilities"], probabilities, atol=1e-5)
    assert refusals(app_client) == refused_before + 1
    assert any("refused" in m and reason in m for m in log.messages), log.messages
    index = app_client.post("/v2/repository/index").json()
    assert {"name": "mnist-mlp", "version": before, "state": "READY", "reason": ""} in index
    assert any(e["state"] == "UNAVAILABLE" and reason in e["reason"] for e in index), index


def test_a_load_call_swaps_in_a_good_model_and_pinned_old_versions_get_404(
    app_client: TestClient, served: Path
) -> None:
    old = version_of(app_client)
    assert app_client.post("/v2/repository/index").json() == [
        {"name": name, "version": old, "state": "READY", "reason": ""} for name in ("mnist-mlp", "mnist-reader")
    ]
    new, probabilities = expected(write_variant(served, weights=nudged))
    assert new != old
    assert app_client.post("/v2/repository/models/mnist-mlp/load").status_code == 200
    info = app_client.get("/v1/model").json()
    assert info["version"] == new and info["loaded_at"]
    assert app_client.get("/v2/models/mnist-mlp").json()["versions"] == [new]
    prediction = app_client.post("/v1/predict", content=multipart("file", [SEVEN]), headers=MULTIPART).json()
    assert prediction["model_version"] == new and np.allclose(prediction["probabilities"], probabilities, atol=1e-5)
    batch = app_client.post("/v1/predict/batch", content=multipart("files", [SEVEN] * 2), headers=MULTIPART).json()
    assert batch["model_version"] == new and all(p["model_version"] == new for p in batch["predictions"])
    pixels = preprocess(SEVEN).model_input[0].tolist()
    body = {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": pixels}]}
    assert app_client.post("/v2/models/mnist-mlp/infer", json=body).json()["model_version"] == new
    pinned = app_client.post(f"/v2/models/mnist-mlp/versions/{old}/infer", json=body)
    assert pinned.status_code == 404 and new in pinned.json()["error"] and old in pinned.json()["error"]
    assert app_client.post(f"/v2/models/mnist-mlp/versions/{new}/infer", json=body).status_code == 200
    # the same files again: nothing to do, still 200
    assert app_client.post("/v2/repository/models/mnist-mlp/load").status_code == 200
    assert app_client.post("/v2/repository/models/other/load").status_code == 404


def test_with_polling_off_nothing_changes_until_asked(app_client: TestClient, served: Path) -> None:
    old = version_of(app_client)
    new, _ = expected(write_variant(served, weights=nudged))
    time.sleep(0.5)
    assert version_of(app_client) == old
    assert app_client.post("/v2/repository/models/mnist-mlp/load").status_code == 200
    assert version_of(app_client) == new


def test_the_load_call_needs_a_key_when_keys_are_set(served: Path) -> None:
    settings = Settings(model_path=served, model_poll_s=0, engine_processes=0, api_keys="sesame")  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        write_variant(served, weights=nudged)
        assert client.post("/v2/repository/models/mnist-mlp/load").status_code == 401
        assert client.post("/v2/repository/index").status_code == 401
        answer = client.post("/v2/repository/models/mnist-mlp/load", headers={"Authorization": "Bearer sesame"})
        assert answer.status_code == 200
        assert client.get("/v1/model", headers={"X-API-Key": "sesame"}).json()["version"] == expected(served)[0]


def test_the_index_shows_a_candidate_loading(
    app_client: TestClient, served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, entered = threading.Event(), threading.Event()
    load_and_gate = Reloader._load_and_gate

    def slow(self: Reloader, serving: Classifier) -> Classifier:
        entered.set()
        release.wait(10)
        return load_and_gate(self, serving)

    monkeypatch.setattr(Reloader, "_load_and_gate", slow)
    new, _ = expected(write_variant(served, weights=nudged))
    loading = threading.Thread(target=app_client.post, args=("/v2/repository/models/mnist-mlp/load",))
    loading.start()
    try:
        assert entered.wait(10)
        states = {(e["version"], e["state"]) for e in app_client.post("/v2/repository/index").json()}
        assert (new, "LOADING") in states and sum(state == "READY" for _, state in states) == 1
        ready_only = app_client.post("/v2/repository/index", json={"ready": True}).json()
        assert [(e["name"], e["state"]) for e in ready_only] == [("mnist-mlp", "READY"), ("mnist-reader", "READY")]
    finally:
        release.set()
        loading.join(20)
    assert app_client.post("/v2/repository/index").json() == [
        {"name": name, "version": new, "state": "READY", "reason": ""} for name in ("mnist-mlp", "mnist-reader")
    ]


# polling, without HTTP ----------------------------------------------------------------------------


def test_polling_waits_for_a_half_written_file_and_refuses_a_broken_one_once(served: Path) -> None:
    async def scenario() -> list[tuple[str, str]]:
        from app.dataplane import DataPlane

        settings = Settings(model_path=served, model_poll_s=0, engine_processes=0)
        service = await DataPlane.start(Classifier.load(served), settings)
        reloader = Reloader(service, settings)
        seen = []
        try:
            complete = write_variant(served.with_name("next.keras"), weights=nudged)
            data = complete.read_bytes()
            shutil.copy(complete.with_suffix(".json"), served.with_suffix(".json"))
            served.write_bytes(data[: len(data) // 3])  # `cp` caught mid-copy
            await reloader.poll()
            seen.append(
                (service.version, "half-written: not ready, not refused" if reloader.refused is None else "refused")
            )
            served.write_bytes(data)  # the copy completes
            await reloader.poll()
            seen.append((service.version, "complete"))
            served.write_bytes(b"PK\x03\x04 not a model")  # broken, and it stays so
            for _ in range(3):
                await reloader.poll()
            seen.append((service.version, reloader.refused.reason if reloader.refused else ""))
        finally:
            await service.close()
        return seen

    refused_before = gate_refusals()
    (v1, first), (v2, second), (v3, third) = asyncio.run(scenario())
    new = Classifier.load(served.with_name("next.keras")).version
    assert first == "half-written: not ready, not refused" and v1 != new
    assert v2 == new and second == "complete"
    assert v3 == new and third  # still served, with a reason for the broken one
    assert gate_refusals() == refused_before + 1  # refused once, not at every poll


def gate_refusals() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("mnist_model_reloads_total", {"result": "refused"}) or 0.0


def test_the_gate_bar_is_absolute_when_set_and_relative_to_the_serving_model_otherwise(served: Path) -> None:
    serving = Classifier.load(served)
    score = gate.accuracy(serving)
    assert 0.95 < score <= 1.0
    assert gate.check(serving, None, serving) == score
    assert gate.check(serving, score, None) == score
    with pytest.raises(gate.Refused, match="MNIST_GATE_MIN_ACCURACY"):
        gate.check(serving, min(1.0, score + 0.001), None)
    worse = Classifier.load(write_variant(served.with_name("worse.keras"), weights=scrambled))
    with pytest.raises(gate.Refused, match="the serving model's"):
        gate.check(worse, None, serving)


# real servers -------------------------------------------------------------------------------------


def post_seven(http: httpx.Client, base: str, batch: bool) -> tuple[str, list[list[float]]]:
    if batch:
        answer = http.post(f"{base}/v1/predict/batch", content=multipart("files", [SEVEN] * 3), headers=MULTIPART)
        answer.raise_for_status()
        body = answer.json()
        versions = {p["model_version"] for p in body["predictions"]} | {body["model_version"]}
        assert len(versions) == 1, body  # one batch, one version
        return body["model_version"], [p["probabilities"] for p in body["predictions"]]
    answer = http.post(f"{base}/v1/predict", content=multipart("file", [SEVEN]), headers=MULTIPART)
    answer.raise_for_status()
    return answer.json()["model_version"], [answer.json()["probabilities"]]


def test_a_model_copied_into_place_is_served_under_load_with_no_failed_request(served: Path) -> None:
    old, old_probabilities = expected(served)
    (served.parent / "staged").mkdir()
    staged = write_variant(served.parent / "staged" / "mnist-mlp.keras", weights=nudged)
    new, new_probabilities = expected(staged)
    answers: list[tuple[float, str, list[list[float]]]] = []  # (sent at, version, probabilities)
    failures: list[str] = []
    stop = threading.Event()
    with running_server({"MNIST_MODEL_PATH": str(served), "MNIST_MODEL_POLL_S": "0.2"}) as base:

        def client(batch: bool) -> None:
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        version, rows = post_seven(http, base, batch)
                    except Exception as exc:  # any failure is the test's finding
                        failures.append(f"{type(exc).__name__}: {exc}")
                        continue
                    answers.append((sent, version, rows))

        threads = [threading.Thread(target=client, args=(batch,)) for batch in (False, True, False)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        shutil.copy(staged.with_suffix(".json"), served.with_suffix(".json"))
        shutil.copy(staged, served)  # in place, as `cp` does: the poller may catch it half-written
        deadline, swapped_at = time.monotonic() + 30, None
        while time.monotonic() < deadline and swapped_at is None:
            if httpx.get(f"{base}/v1/model").json()["version"] == new:
                swapped_at = time.monotonic()
            time.sleep(0.05)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not failures, failures[:5]
    assert swapped_at is not None, "the new model was not served within 30 s"
    by_version = {old: old_probabilities, new: new_probabilities}
    assert {version for _, version, _ in answers} == {old, new}
    for _, version, rows in answers:
        assert all(np.allclose(row, by_version[version], atol=1e-5) for row in rows)
    after = [version for sent, version, _ in answers if sent > swapped_at]
    assert after and set(after) == {new}


def test_sighup_reloads_and_every_worker_polls(served: Path) -> None:
    new, _ = expected(write_variant(served.with_name("next.keras"), weights=nudged))
    with running_server({"MNIST_MODEL_PATH": str(served), "MNIST_MODEL_POLL_S": "0"}) as base:
        old = httpx.get(f"{base}/v1/model").json()["version"]
        write_variant(served, weights=nudged)
        time.sleep(0.3)
        assert httpx.get(f"{base}/v1/model").json()["version"] == old  # polling is off
        os.kill(base.pid, signal.SIGHUP)
        assert wait_for_version(base, new, fresh_connections=1)
    copy_model(served)
    env = {
        "MNIST_MODEL_PATH": str(served),
        "MNIST_MODEL_POLL_S": "0.2",
        "WEB_CONCURRENCY": "2",
        "MNIST_ENGINE_PROCESSES": "1",
    }
    with running_server(env) as base:
        write_variant(served, weights=nudged)
        assert wait_for_version(base, new, fresh_connections=40)  # new connections reach both workers


def wait_for_version(base: str, version: str, fresh_connections: int, timeout: float = 30) -> bool:
    """True once `fresh_connections` requests in a row, each on a new connection, are answered by `version`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(httpx.get(f"{base}/v1/model").json()["version"] == version for _ in range(fresh_connections)):
            return True
        time.sleep(0.1)
    return False


def test_a_bad_model_at_start_up_with_an_absolute_bar_is_refused(served: Path) -> None:
    settings = Settings(model_path=served, gate_min_accuracy=1.0, engine_processes=0)
    with pytest.raises(gate.Refused), TestClient(create_app(settings)):
        pass


def test_a_file_replaced_while_the_server_starts_is_noticed(served: Path) -> None:
    """The files' fingerprint is taken before the model is read from them: a model copied in between
    (another worker starting, say) is loaded at the next poll, not taken for the one being served."""
    from app.dataplane import DataPlane
    from app.model.reload import Fingerprint

    async def scenario() -> tuple[str, str]:
        settings = Settings(model_path=served, model_poll_s=0, engine_processes=0)
        before = Fingerprint.of(served)  # as the lifespan does, before loading
        service = await DataPlane.start(Classifier.load(served), settings)
        write_variant(served, weights=nudged)  # replaced after the load, before the reloader exists
        reloader = Reloader(service, settings, seen=before)
        try:
            await reloader.poll()
            return service.version, Classifier.load(served).version
        finally:
            await service.close()

    served_version, on_disk = asyncio.run(scenario())
    assert served_version == on_disk
