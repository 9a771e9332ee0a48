"""`make bench`: the service against the HTTP floor and the tutorial code, side by side on this machine.

Starts each server (one uvicorn worker each, on 127.0.0.1), drives it with wrk (or a Python load
generator when wrk is missing) and prints req/s, p50 and p99, the ratios the targets are stated in,
the batch endpoint's images/s, start-up time to /readyz and memory against a bare Keras process.
The floor and the service run side by side and are loaded in turn: the 28x28 upload in `--rounds`
pairs (the median pair's ratio counts), then each upload that takes every preprocessing step (a 280x280
canvas PNG, a scan-like JPEG, a phone photo and a 12 MP phone JPEG) once on each.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tools import uploads

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MODEL = ROOT / "models" / "mnist-mlp.keras"
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def digit_png(index: int = 0) -> bytes:
    """A 28x28 PNG of an MNIST test digit (the committed sample)."""
    with np.load(ROOT / "app" / "data" / "mnist-sample.npz") as data:
        pixels = data["x"][index]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_png(index: int = 0) -> bytes:
    """The same digit as a 280x280 canvas drawing: black ink on a transparent background. Not in MNIST's
    form, so it takes every preprocessing step (a 28x28 MNIST digit is recognised as one and used as is)."""
    with np.load(ROOT / "app" / "data" / "mnist-sample.npz") as data:
        pixels = data["x"][index]
    alpha = Image.fromarray(pixels).resize((280, 280), Image.Resampling.LANCZOS)
    drawing = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    drawing.putalpha(alpha)
    buffer = io.BytesIO()
    drawing.save(buffer, format="PNG")
    return buffer.getvalue()


def scan_jpeg(index: int = 0) -> bytes:
    """The same digit as tools/uploads.py's flatbed scan (a JPEG of a few hundred px, dark ink on paper)."""
    with np.load(ROOT / "app" / "data" / "mnist-sample.npz") as data:
        pixels = data["x"][index]
    return uploads.scan_jpeg(pixels, np.random.default_rng([0, index]))


def phone_photo(index: int = 0) -> bytes:
    """The same digit as tools/uploads.py's phone photo (JPEG, EXIF-rotated, uneven light)."""
    with np.load(ROOT / "app" / "data" / "mnist-sample.npz") as data:
        pixels = data["x"][index]
    return uploads.phone_photo(pixels, np.random.default_rng([1, index]))


def phone_12mp(index: int = 0) -> bytes:
    """The same digit in a 12 MP phone-camera JPEG (4000x3000; bench/soak.py's, under the body cap)."""
    from bench import soak  # soak imports this module

    with np.load(ROOT / "app" / "data" / "mnist-sample.npz") as data:
        pixels = data["x"][index]
    return soak.phone_jpeg(pixels, np.random.default_rng([2, index]))


def multipart(field: str, files: list[bytes], media_type: str = "image/png") -> bytes:
    suffix = media_type.split("/")[-1]
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="d{i}.{suffix}"\r\n'
        f"Content-Type: {media_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


class Server:
    """A server process on a free port; `ready_seconds` is the time from spawn to the first 200 on `probe`."""

    def __init__(self, name: str, argv: list[str], probe: str, env: dict[str, str] | None = None) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **(env or {})}
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = started + 120
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {self.process.returncode}")
            try:
                if httpx.get(self.url + probe, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        else:
            raise RuntimeError(f"{name} did not answer {probe} within 120 s")
        self.ready_seconds = time.perf_counter() - started

    def rss_mib(self) -> float:
        """Resident memory of the server and its child processes (the engine), in MiB."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for process in [str(pid), *children]:
            status = Path(f"/proc/{process}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
        return total / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_wrk(url: str, body: bytes, seconds: int, connections: int) -> Load:
    with tempfile.NamedTemporaryFile(suffix=".body") as f:
        f.write(body)
        f.flush()
        env = {**os.environ, "BENCH_BODY": f.name, "BENCH_CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}"}
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(ROOT / "bench" / "post.lua"), url],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(rate, latency("50"), latency("99"), int(errors.group(1)) if errors else 0)


def run_python_load(url: str, body: bytes, seconds: int, connections: int) -> Load:
    """A fallback load generator: `connections` keep-alive clients posting in a loop."""
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    latencies: list[float] = []
    errors = 0

    async def client(http: httpx.AsyncClient, deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await http.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            errors += response.status_code != 200

    async def main() -> None:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=connections)) as http:
            deadline = time.perf_counter() + seconds
            await asyncio.gather(*(client(http, deadline) for _ in range(connections)))

    asyncio.run(main())
    ms = np.array(latencies) * 1000
    return Load(len(ms) / seconds, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), errors)


def load(url: str, body: bytes, seconds: int, connections: int) -> Load:
    runner = run_wrk if shutil.which("wrk") else run_python_load
    runner(url, body, 1, connections)  # warm-up
    return runner(url, body, seconds, connections)


def restart(python: str) -> float:
    """Seconds from spawning `python -m app` to its first 200 on /readyz."""
    server = Server("service", [python, "-m", "app"], "/readyz", {"MNIST_LOG_LEVEL": "warning"})
    server.stop()
    return server.ready_seconds


def bare_keras() -> tuple[float, float]:
    """Seconds from spawn until a bare process has imported Keras and loaded the model; its RSS in MiB."""
    code = (
        "import keras, re, sys\n"
        f"keras.saving.load_model({str(MODEL)!r}, compile=False)\n"
        "rss = int(re.search(r'VmRSS:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
        "print(rss / 1024)\n"
    )
    started = time.perf_counter()
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return time.perf_counter() - started, float(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run (default %(default)s)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="floor/service pairs of the 28x28 runs (default %(default)s)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk); using the slower Python load generator", file=sys.stderr)
    single = multipart("file", [digit_png()])
    batch = multipart("files", [digit_png(i) for i in range(64)])
    uvicorn = [
        PYTHON,
        "-m",
        "uvicorn",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    results: dict[str, object] = {}

    def measure(server: Server, path: str, body: bytes) -> Load:
        result = load(server.url + path, body, args.seconds, args.connections)
        print(f"  {server.name:<28} {result.requests_per_s:>9.1f} req/s   p50 {result.p50_ms:7.2f} ms   "
              f"p99 {result.p99_ms:7.2f} ms   non-2xx {result.errors}", flush=True)  # fmt: skip
        return result

    # uploads that take every preprocessing step (not MNIST's form), each also sent to the floor
    uploads_bodies = {
        "280x280 canvas PNG": multipart("file", [canvas_png()]),
        "scan-like JPEG": multipart("file", [scan_jpeg()], "image/jpeg"),
        "phone photo JPEG": multipart("file", [phone_photo()], "image/jpeg"),
        "12 MP phone JPEG": multipart("file", [phone_12mp()], "image/jpeg"),
    }
    print(f"load: {args.connections} connections, {args.seconds} s each, {'wrk' if shutil.which('wrk') else 'python'}")
    # Both servers run side by side (the idle one costs nothing) and are loaded in turn, the floor then the
    # service, so each ratio compares two runs a few seconds apart: on a shared machine, the CPU one gets
    # drifts over minutes by more than the differences measured here.
    floor = Server("floor (bench/floor.py)", [*uvicorn, "bench.floor:app"], "/docs")
    service = Server("service /v1/predict", [PYTHON, "-m", "app"], "/readyz", {"MNIST_LOG_LEVEL": "warning"})
    pairs = [
        (measure(floor, "/v1/predict", single), measure(service, "/v1/predict", single)) for _ in range(args.rounds)
    ]
    ratios = [ours.requests_per_s / theirs.requests_per_s for theirs, ours in pairs]
    floor_load, service_load = pairs[int(np.argsort(ratios)[len(ratios) // 2])]  # the median pair
    print(f"  service/floor per pair: {', '.join(f'{r:.2f}' for r in ratios)}; the median pair counts")
    floor_uploads: dict[str, Load] = {}
    service_uploads: dict[str, Load] = {}
    for name, body in uploads_bodies.items():
        floor.name, service.name = f"floor, {name}", f"service, {name}"
        floor_uploads[name] = measure(floor, "/v1/predict", body)
        service_uploads[name] = measure(service, "/v1/predict", body)
    floor.stop()
    canvas_load = service_uploads["280x280 canvas PNG"]
    service.name = "service /v1/predict/batch"
    batch_load = measure(service, "/v1/predict/batch", batch)
    service_rss = service.rss_mib()
    service.stop()

    tutorial = Server("tutorial (bench/tutorial.py)", [*uvicorn, "bench.tutorial:app"], "/docs")
    tutorial_load = measure(tutorial, "/v1/predict", single)
    tutorial.stop()

    # start-up: the median of 3 fresh starts of each, measured after the load runs, on a quiet machine
    service_ready = float(np.median([restart(PYTHON) for _ in range(3)]))
    bare_runs = [bare_keras() for _ in range(3)]
    bare_seconds, bare_rss = float(np.median([r[0] for r in bare_runs])), float(np.median([r[1] for r in bare_runs]))
    figures = {
        "throughput vs floor": (service_load.requests_per_s / floor_load.requests_per_s, ">= 0.6"),
        "p99 latency vs floor": (service_load.p99_ms / floor_load.p99_ms, "<= 2"),
        "throughput vs tutorial": (service_load.requests_per_s / max(tutorial_load.requests_per_s, 1e-9), ">= 100"),
        "batch images/s vs single req/s": (batch_load.requests_per_s * 64 / service_load.requests_per_s, ">= 4"),
        "start-up to /readyz vs bare Keras load": (service_ready / bare_seconds, "<= 1.5"),
        "memory vs bare Keras process": (service_rss / bare_rss, "<= 1.2"),
    }
    print(f"\nbatch: {batch_load.requests_per_s * 64:,.0f} images/s (64 images a request)")
    print(
        f"start-up (median of 3): service {service_ready:.2f} s to /readyz, bare Keras import + load {bare_seconds:.2f} s"
    )
    print(f"memory: service {service_rss:.0f} MiB RSS after load, bare Keras process {bare_rss:.0f} MiB")
    print("\nuploads taking every preprocessing step: service req/s against the floor's for the same body")
    for name in uploads_bodies:
        ours, theirs = service_uploads[name].requests_per_s, floor_uploads[name].requests_per_s
        size = len(uploads_bodies[name]) / 1024
        print(f"  {name:<20} {size:>7.0f} KiB   service {ours:>8.1f}   floor {theirs:>8.1f}   {ours / theirs:5.3f}x")
    print("\nratio                                   measured   target")
    failed = 0
    for name, (value, target) in figures.items():
        op, bound = target.split()
        ok = value >= float(bound) if op == ">=" else value <= float(bound)
        failed += not ok
        print(f"  {name:<38} {value:8.2f}   {target:<8} {'ok' if ok else 'MISSED'}")
    if args.json:
        results = {
            "floor": floor_load.__dict__, "service": service_load.__dict__, "batch": batch_load.__dict__,
            "tutorial": tutorial_load.__dict__, "canvas": canvas_load.__dict__,
            "uploads": {name: {"service": service_uploads[name].__dict__, "floor": floor_uploads[name].__dict__} for name in uploads_bodies},
            "service_ready_s": service_ready, "bare_keras_s": bare_seconds,
            "service_rss_mib": service_rss, "bare_rss_mib": bare_rss,
            "ratios": {k: v[0] for k, v in figures.items()},
        }  # fmt: skip
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
