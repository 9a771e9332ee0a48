"""Many idle and slow connections at once: the probes and a prediction still answer within 1 s.

A real server (`python -m app`) holds 1,000 idle keep-alive connections (connected, a first request
answered, then silent) and 200 slow-loris connections (a request's headers trickling in a byte at a
time) while the test times /readyz, /healthz and /v1/predict on fresh connections. The event loop
serves every socket without a thread per connection, so nothing queues behind them (see
docs/deployment.md for the limits that bound them).
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time

import httpx

from tests.conftest import SEVEN, running_server

IDLE, SLOW = 1000, 200


def test_idle_and_slow_connections_leave_probes_and_predictions_fast() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * (IDLE + SLOW) + 256  # the test's sockets and the server's, which inherits the limit
    assert hard >= needed, f"this test needs {needed} open files; the hard limit is {hard}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        with running_server() as base:
            port = int(base.rsplit(":", 1)[1])
            request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            idle, slow = [], []
            for _ in range(IDLE):
                connection = socket.create_connection(("127.0.0.1", port))
                connection.sendall(request)  # one request answered: a keep-alive connection, now idle
                idle.append(connection)
            for connection in idle:
                connection.settimeout(5)
                assert connection.recv(4096).startswith(b"HTTP/1.1 200")
            for _ in range(SLOW):
                connection = socket.create_connection(("127.0.0.1", port))
                connection.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                slow.append(connection)
            stop = threading.Event()

            def trickle() -> None:
                while not stop.wait(0.2):
                    for connection in slow:
                        with contextlib.suppress(OSError):  # closed by the server: counted below
                            connection.send(b"a")

            trickler = threading.Thread(target=trickle, daemon=True)
            trickler.start()
            times: dict[str, list[float]] = {"readyz": [], "healthz": [], "predict": []}
            try:
                for _ in range(10):
                    for name, call in (
                        ("readyz", lambda: httpx.get(f"{base}/readyz", timeout=5)),
                        ("healthz", lambda: httpx.get(f"{base}/healthz", timeout=5)),
                        ("predict", lambda: httpx.post(f"{base}/v1/predict", files={"file": SEVEN}, timeout=5)),
                    ):
                        started = time.monotonic()
                        assert call().status_code == 200
                        times[name].append(time.monotonic() - started)
                open_idle = sum(still_open(c) for c in idle)
                open_slow = sum(still_open(c) for c in slow)
            finally:
                stop.set()
                trickler.join(5)
                for connection in idle + slow:
                    connection.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert open_slow == SLOW, f"only {open_slow} of the slow connections were held open"
    assert open_idle == IDLE, f"only {open_idle} of the idle connections were held open"
    worst = {name: max(values) for name, values in times.items()}
    assert all(value < 1.0 for value in worst.values()), worst  # every call, not the best of them


def still_open(connection: socket.socket) -> bool:
    """The server has not closed it (no EOF waiting to be read)."""
    connection.setblocking(False)
    try:
        return connection.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        connection.setblocking(True)
