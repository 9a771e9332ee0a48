"""The real server process: start-up failures exit non-zero with one clear line; health answers while
predictions run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SEVEN, free_port, load_sample, running_server, wait_ready


def run_app(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    command = list(argv) or [sys.executable, "-m", "app"]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_model_exits_with_one_line(tmp_path: Path) -> None:
    result = run_app({"MNIST_MODEL_PATH": str(tmp_path / "absent.keras")})
    assert result.returncode != 0
    assert (
        result.stderr.strip().count("\n") == 0 and "absent.keras" in result.stderr and "does not exist" in result.stderr
    )


def test_modified_model_exits_with_one_line(tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes((ROOT / "models" / "mnist-mlp.keras").read_bytes() + b"tampered")
    (tmp_path / "m.json").write_text((ROOT / "models" / "mnist-mlp.json").read_text())
    result = run_app({"MNIST_MODEL_PATH": str(model)})
    assert result.returncode != 0 and "sha256" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_model_fails_startup_under_uvicorn_too(tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"this is not a keras file")
    (tmp_path / "m.json").write_text("{}")
    env = {"MNIST_MODEL_PATH": str(model), "MNIST_VERIFY_MODEL_SHA256": "false"}
    result = run_app(env, sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(free_port()))
    assert result.returncode != 0
    assert "is not a .keras archive" in result.stderr and "m.keras" in result.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url


def test_health_answers_while_big_predictions_run(server: str) -> None:
    """A batch of big photos keeps the workers busy for a while; /healthz must answer meanwhile."""
    import numpy as np

    from tools.uploads import make_upload

    digits = load_sample()[0][:16]
    rng = np.random.default_rng(0)
    files = [("files", (f"{i}.jpg", make_upload("phone_photo", d, rng), "image/jpeg")) for i, d in enumerate(digits)]
    finished: list[float] = []

    def post_batch() -> None:
        response = httpx.post(f"{server}/v1/predict/batch", files=files, timeout=120)
        assert response.status_code == 200
        finished.append(time.perf_counter())

    worker = threading.Thread(target=post_batch)
    worker.start()
    time.sleep(0.05)
    health_times = []
    while worker.is_alive() and len(health_times) < 20:
        started = time.perf_counter()
        assert httpx.get(f"{server}/healthz", timeout=10).status_code == 200
        health_times.append(time.perf_counter() - started)
    worker.join()
    assert finished, "the batch request failed"
    assert health_times, "the batch finished before any health check could be made"
    assert max(health_times) < 1.0, health_times  # every probe, not just the fastest


def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ROOT, env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    wait_ready(process, f"http://127.0.0.1:{port}")
    process.terminate()
    output, _ = process.communicate(timeout=30)
    # uvicorn finishes its graceful shutdown, then re-raises the signal it caught: exit 0 or -SIGTERM
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output and "Finished server process" in output


def test_metrics_add_up_across_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with running_server({"WEB_CONCURRENCY": "2"}) as url:
        time.sleep(3)  # let the second worker finish loading too
        for _ in range(12):  # new connections: the kernel spreads them over both workers
            assert (
                httpx.post(f"{url}/v1/predict", content=SEVEN, headers={"Content-Type": "image/png"}).status_code == 200
            )
        text = httpx.get(f"{url}/metrics").text
    counted = [line for line in text.splitlines() if line.startswith('mnist_predictions_total{digit="7"}')]
    assert counted and float(counted[0].split()[-1]) == 12.0, counted


def test_unreadable_api_keys_file_exits_with_one_line(tmp_path: Path) -> None:
    result = run_app({"MNIST_API_KEYS_FILE": str(tmp_path / "absent-keys")})
    assert result.returncode != 0 and "absent-keys" in result.stderr and "Traceback" not in result.stderr
