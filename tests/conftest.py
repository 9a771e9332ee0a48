"""Shared test helpers: a real server process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str] | None = None, ready_timeout: float = 90.0) -> Iterator[str]:
    """`python -m app` on 127.0.0.1:<free port>; yields its base URL once /readyz answers 200."""
    port = free_port()
    environment = {**os.environ, "PORT": str(port), "MNIST_LOG_LEVEL": "warning", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=environment, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode} before it was ready")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_timeout:.0f} s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
