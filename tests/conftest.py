"""Shared test fixtures and helpers: the repository's paths, the committed model and data, image encoding,
and a real server process on a free loopback port.

Fixtures here are found by pytest; the constants and plain functions are imported by the modules that need
them (`from tests.conftest import ROOT, SEVEN, encode`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.model.classifier import Classifier

# The apps and servers the tests start serve no gRPC unless a test gives them a port (MNIST_GRPC_PORT):
# otherwise each would bind the default port.
os.environ.setdefault("MNIST_GRPC_PORT", "0")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MODEL = ROOT / "models" / "mnist-mlp.keras"  # the committed model
SAMPLE = (
    ROOT / "app" / "data" / "mnist-sample.npz"
)  # the first 1,000 MNIST test digits: x (1000, 28, 28) uint8, y (1000,)
SEVEN_PNG = DATA / "seven.png"  # a hand-drawn 7
SEVEN = SEVEN_PNG.read_bytes()


def copy_model(dst: Path, src: Path = MODEL) -> Path:
    """Copy a model's files to `dst` (a .keras path): the digit scorer its metadata names, its reading
    calibration, the .json and the .keras, in the order a rollout copies them."""
    scorer = json.loads(src.with_suffix(".json").read_text()).get("digit_score", {}).get("file")
    if scorer:
        shutil.copy(src.with_name(scorer), dst.with_name(scorer))
    if (reading := src.with_suffix(".reading.json")).exists():
        shutil.copy(reading, dst.with_suffix(".reading.json"))
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    shutil.copy(src, dst)
    return dst


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """The bytes of `image` saved as `fmt` (a Pillow format name), with Pillow's save `options`."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(pixels: np.ndarray, mode: str = "L") -> bytes:
    """An array of pixels as a PNG file."""
    return encode(Image.fromarray(pixels, mode))


@cache
def load_sample() -> tuple[np.ndarray, np.ndarray]:
    """The committed sample's digits and labels, loaded once and read-only (every test module shares them)."""
    with np.load(SAMPLE) as data:
        x, y = data["x"], data["y"]
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@pytest.fixture(scope="session")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """The committed sample: (1000, 28, 28) uint8 digits and their labels, read-only."""
    return load_sample()


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The committed model, loaded once for the whole run."""
    return Classifier.load(MODEL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerURL(str):
    """A running server's base URL, which also knows the server's process ID."""

    pid: int


def wait_ready(process: subprocess.Popen[Any], url: str, timeout: float = 90.0) -> None:
    """Return once `url`/readyz answers 200; RuntimeError if `process` exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not ready within {timeout:.0f} s")
        time.sleep(0.1)


@contextmanager
def running_server(env: dict[str, str] | None = None, ready_timeout: float = 90.0) -> Iterator[ServerURL]:
    """`python -m app` on 127.0.0.1:<free port>; yields its base URL (with `.pid`) once /readyz answers 200."""
    port = free_port()
    environment = {**os.environ, "PORT": str(port), "MNIST_LOG_LEVEL": "warning", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=environment, stderr=subprocess.DEVNULL)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = process.pid
    try:
        wait_ready(process, url, ready_timeout)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def child_pids(client: TestClient) -> list[int]:
    """The PIDs of the engine processes of an app running in `client` (its lifespan state's data plane)."""
    return [engine.pid for engine in client.app_state["dataplane"].current.batcher._engines]  # type: ignore[attr-defined]


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # not a zombie: reaped or running
