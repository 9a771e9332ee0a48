"""The HTTP comparisons, on 127.0.0.1 only: the service against the floor and the tutorial code, one
server alone, or two checkouts or settings of the service A/B.

    python -m bench.compare all [--seconds 10 --connections 8 --rounds 3 --json FILE]   # make bench
    python -m bench.compare service [--body KIND] [--repo DIR] [--env NAME=value ...] [--check-decode]
    python -m bench.compare floor [--body KIND]
    python -m bench.compare tutorial
    python -m bench.compare ab [--a DIR] [--b DIR] [--env-a NAME=value ...] [--env-b NAME=value ...] [--rounds 5]

`all` (what `make bench` runs) starts the floor (bench/floor.py: a FastAPI endpoint that reads the upload
and answers a constant, what the web stack alone costs), the service and the tutorial code
(bench/tutorial.py: PIL, then `model.predict` per request), one uvicorn worker each, and prints req/s,
p50 and p99 and the ratios the targets are stated in: throughput and p99 against the floor, throughput
against the tutorial, the batch endpoint's images/s against single requests, start-up time to /readyz
and memory against a bare Keras process. The floor and the service run side by side and are loaded in
turn, because the CPU a shared machine gives drifts over minutes by more than the differences measured:
the 28x28 upload in `--rounds` pairs (the median pair's ratio counts), then each upload that takes every
preprocessing step once on each. Exit status 1 when a target is missed.

`floor`, `service` and `tutorial` load one server alone for `--rounds` runs; `service` also prints the
CPU time per request of the server process and of its engines (from /proc), steadier than req/s on a
shared machine, and with `--check-decode` exits 1 unless the engines used more CPU than the server
process (the server must never decode an upload) or when a request got a 5xx or a connection error.

`ab` loads the floor, service A and service B in turn, round after round (interleaved for the same
reason as `all`): each round's req/s, their share of the floor's, B/A, and the CPU per request of each
side's server process and engines. A and B are checkouts (`--a`, `--b`: run with this venv's Python
from that directory; default this checkout) and/or settings (`--env-a`, `--env-b`).

The uploads (`--body`), all from tools/uploads.py, the committed sample's first digit(s): `digit` (a
28x28 PNG, MNIST's form), `canvas` (a 280x280 canvas drawing), `scan` (a scan-like JPEG), `photo` (a
phone photo JPEG), `12mp` (a 12 MP phone JPEG), `noise` (a ~4 MiB random-noise PNG: decoding only) and
`batch` (64 digit PNGs to /v1/predict/batch; the floor and the tutorial have no batch route).
The load is wrk (2 threads, bench/post.lua) when it is installed, else a Python load generator
(`--loader python` forces it; it also counts the statuses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from bench.procs import MODEL, PYTHON, ROOT, CpuMeter, Server
from tools.uploads import (
    MULTIPART_TYPE,
    canvas_png,
    digit_png,
    multipart,
    noise_png,
    phone_12mp_jpeg,
    phone_photo,
    sample_digits,
    scan_jpeg,
)

PREDICT, BATCH = "/v1/predict", "/v1/predict/batch"
UVICORN = [PYTHON, "-m", "uvicorn", "--port", "{port}", "--workers", "1", "--no-access-log", "--log-level", "warning"]


# ---- the uploads ----------------------------------------------------------------------------------


def _digit(index: int = 0) -> np.ndarray:
    return sample_digits()[index]


# name -> (route, a function making the multipart body); the seeds are fixed so every run posts the same bytes
BODIES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "digit": (PREDICT, lambda: multipart("file", [digit_png(_digit())])),
    "canvas": (PREDICT, lambda: multipart("file", [canvas_png(_digit())])),
    "scan": (PREDICT, lambda: multipart("file", [scan_jpeg(_digit(), np.random.default_rng([0, 0]))], "image/jpeg")),
    "photo": (
        PREDICT,
        lambda: multipart("file", [phone_photo(_digit(), np.random.default_rng([1, 0]))], "image/jpeg"),
    ),
    "12mp": (
        PREDICT,
        lambda: multipart("file", [phone_12mp_jpeg(_digit(), np.random.default_rng([2, 0]))], "image/jpeg"),
    ),
    "noise": (PREDICT, lambda: multipart("file", [noise_png(np.random.default_rng(0))])),
    "batch": (BATCH, lambda: multipart("files", [digit_png(d) for d in sample_digits()[:64]])),
}


# ---- the load -------------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    connection_errors: int
    statuses: dict[int, int] = field(default_factory=dict)  # the Python load generator's only

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def server_errors(self) -> int:
        return sum(c for s, c in self.statuses.items() if s >= 500)

    def figures(self) -> dict[str, object]:
        return {"requests_per_s": self.requests_per_s, **self.__dict__}

    def line(self) -> str:
        return (
            f"{self.requests_per_s:>9.1f} req/s   p50 {self.p50_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms   "
            f"non-2xx {self.non_2xx}"
            + (f"   connection errors {self.connection_errors}" if self.connection_errors else "")
        )


def run_wrk(url: str, body: bytes, seconds: float, connections: int, threads: int = 2) -> Load:
    with tempfile.NamedTemporaryFile(suffix=".body") as f:
        f.write(body)
        f.flush()
        env = {**os.environ, "BENCH_BODY": f.name, "BENCH_CONTENT_TYPE": MULTIPART_TYPE}
        argv = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds:g}s",
                "--latency", "-s", str(ROOT / "bench" / "post.lua"), url]  # fmt: skip
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    requests, elapsed, unit = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out).groups()  # type: ignore[union-attr]
    elapsed_s = float(elapsed) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Load(
        int(requests),
        elapsed_s,
        latency("50"),
        latency("99"),
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(map(int, socket.groups())) if socket else 0,
    )


def run_python_load(url: str, body: bytes, seconds: float, connections: int, threads: int = 0) -> Load:
    """`connections` keep-alive clients posting in a loop; slower than wrk, but it sees every status."""
    headers = {"Content-Type": MULTIPART_TYPE}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0

    async def client(http: httpx.AsyncClient, deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await http.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    async def main() -> float:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=connections)) as http:
            started = time.perf_counter()
            await asyncio.gather(*(client(http, started + seconds) for _ in range(connections)))
            return time.perf_counter() - started

    elapsed = asyncio.run(main())
    ms = np.array(latencies or [float("nan")]) * 1000
    non_2xx = sum(c for s, c in statuses.items() if not 200 <= s < 300)
    return Load(
        len(latencies),
        elapsed,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        non_2xx,
        errors,
        dict(statuses),
    )


class Loader:
    """wrk when it is installed (or asked for), else the Python load generator; a 1 s warm-up per URL and body."""

    def __init__(self, kind: str, connections: int, threads: int) -> None:
        use_wrk = kind == "wrk" or (kind == "auto" and shutil.which("wrk") is not None)
        if use_wrk and not shutil.which("wrk"):
            raise SystemExit("wrk not found (apt-get install wrk)")
        if kind == "auto" and not use_wrk:
            print("wrk not found (apt-get install wrk); using the slower Python load generator", file=sys.stderr)
        self.name = "wrk" if use_wrk else "python"
        self.run = run_wrk if use_wrk else run_python_load
        self.connections, self.threads = connections, threads
        self.warm: set[tuple[str, int]] = set()

    def __call__(self, url: str, body: bytes, seconds: float) -> Load:
        if (url, id(body)) not in self.warm:
            self.run(url, body, 1, self.connections, self.threads)
            self.warm.add((url, id(body)))
        return self.run(url, body, seconds, self.connections, self.threads)


def floor_server() -> Server:
    return Server("floor (bench/floor.py)", [*UVICORN, "bench.floor:app"], "/docs")


def tutorial_server() -> Server:
    return Server("tutorial (bench/tutorial.py)", [*UVICORN, "bench.tutorial:app"], "/docs")


def settings(pairs: list[str]) -> dict[str, str]:
    """NAME=value words -> an environment."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"not NAME=value: {pair!r}")
        env[name] = value
    return env


def per_request_us(cpu_s: float, load: Load) -> float:
    return cpu_s * 1e6 / max(load.requests, 1)


# ---- all: make bench ------------------------------------------------------------------------------


def restart() -> float:
    """Seconds from spawning `python -m app` to its first 200 on /readyz."""
    server = Server.service()
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


def compare_all(args: argparse.Namespace) -> int:
    load = Loader(args.loader, args.connections, args.threads)
    single, batch = BODIES["digit"][1](), BODIES["batch"][1]()
    uploads_bodies = {  # uploads that take every preprocessing step, each also sent to the floor
        "280x280 canvas PNG": BODIES["canvas"][1](),
        "scan-like JPEG": BODIES["scan"][1](),
        "phone photo JPEG": BODIES["photo"][1](),
        "12 MP phone JPEG": BODIES["12mp"][1](),
    }

    def measure(server: Server, label: str, path: str, body: bytes) -> Load:
        result = load(server.url + path, body, args.seconds)
        print(f"  {label:<28} {result.line()}", flush=True)
        return result

    print(f"load: {args.connections} connections, {args.seconds:g} s each, {load.name}")
    floor = floor_server()
    service = Server.service("service /v1/predict")
    try:
        pairs = [
            (measure(floor, floor.name, PREDICT, single), measure(service, service.name, PREDICT, single))
            for _ in range(args.rounds)
        ]
        ratios = [ours.requests_per_s / theirs.requests_per_s for theirs, ours in pairs]
        floor_load, service_load = pairs[int(np.argsort(ratios)[len(ratios) // 2])]  # the median pair
        print(f"  service/floor per pair: {', '.join(f'{r:.2f}' for r in ratios)}; the median pair counts")
        floor_uploads: dict[str, Load] = {}
        service_uploads: dict[str, Load] = {}
        for name, body in uploads_bodies.items():
            floor_uploads[name] = measure(floor, f"floor, {name}", PREDICT, body)
            service_uploads[name] = measure(service, f"service, {name}", PREDICT, body)
        floor.stop()
        batch_load = measure(service, "service /v1/predict/batch", BATCH, batch)
        service_rss = service.rss_mib()
    finally:
        floor.stop()
        service.stop()
    tutorial = tutorial_server()
    try:
        tutorial_load = measure(tutorial, tutorial.name, PREDICT, single)
    finally:
        tutorial.stop()

    # start-up: the median of 3 fresh starts of each, after the load runs, on a quiet machine
    service_ready = float(np.median([restart() for _ in range(3)]))
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
    for name, body in uploads_bodies.items():
        ours, theirs = service_uploads[name].requests_per_s, floor_uploads[name].requests_per_s
        print(
            f"  {name:<20} {len(body) / 1024:>7.0f} KiB   service {ours:>8.1f}   floor {theirs:>8.1f}   {ours / theirs:5.3f}x"
        )
    print("\nratio                                   measured   target")
    failed = 0
    for name, (value, target) in figures.items():
        op, bound = target.split()
        ok = value >= float(bound) if op == ">=" else value <= float(bound)
        failed += not ok
        print(f"  {name:<38} {value:8.2f}   {target:<8} {'ok' if ok else 'MISSED'}")
    if args.json:
        figures_json = {
            "floor": floor_load.figures(), "service": service_load.figures(), "batch": batch_load.figures(),
            "tutorial": tutorial_load.figures(), "canvas": service_uploads["280x280 canvas PNG"].figures(),
            "uploads": {name: {"service": service_uploads[name].figures(), "floor": floor_uploads[name].figures()} for name in uploads_bodies},
            "service_ready_s": service_ready, "bare_keras_s": bare_seconds,
            "service_rss_mib": service_rss, "bare_rss_mib": bare_rss,
            "ratios": {k: v[0] for k, v in figures.items()},
        }  # fmt: skip
        args.json.write_text(json.dumps(figures_json, indent=2, default=str))
    return 1 if failed else 0


# ---- one server alone -----------------------------------------------------------------------------


def compare_one(args: argparse.Namespace) -> int:
    route, make = BODIES[args.body]
    if args.command != "service" and route != PREDICT:
        raise SystemExit(f"the {args.command} has no {route}: --body {args.body} is for the service only")
    loader = "python" if args.check_decode else args.loader
    load = Loader(loader, args.connections, args.threads)
    body = make()
    if args.command == "floor":
        server = floor_server()
    elif args.command == "tutorial":
        server = tutorial_server()
    else:
        env = settings(args.env)
        server = Server.service(f"service ({args.repo} {' '.join(args.env)})".replace(" )", ")"), env, args.repo)
    print(f"{server.name}: --body {args.body} ({len(body) / 1024:.0f} KiB) to {route}, {args.connections} "
          f"connections, {args.rounds} run(s) of {args.seconds:g} s, {load.name}", flush=True)  # fmt: skip
    server_cpu = engines_cpu = 0.0
    failures = 0
    try:
        for _ in range(args.rounds):
            meter = CpuMeter(server.pid)
            meter.start()
            result = load(server.url + route, body, args.seconds)
            meter.stop()
            failures += result.server_errors + result.connection_errors
            line = f"  {result.line()}"
            if args.command == "service":
                server_cpu, engines_cpu = server_cpu + meter.server, engines_cpu + meter.engines
                line += (f"   server CPU {per_request_us(meter.server, result):,.0f} us/request   engines "
                         f"{per_request_us(meter.engines, result):,.0f} us/request")  # fmt: skip
                line += "   (an engine was replaced: partial)" if meter.partial else ""
            if result.statuses:
                line += f"   statuses {dict(sorted(result.statuses.items()))}"
            print(line, flush=True)
    finally:
        server.stop()
    if not args.check_decode:
        return 0
    ok = server_cpu < engines_cpu and not failures
    print(f"verdict: {'server < engines' if server_cpu < engines_cpu else 'NOT server < engines'} "
          f"(server {server_cpu:.2f} s, engines {engines_cpu:.2f} s of CPU); 5xx or connection errors: {failures}")  # fmt: skip
    return 0 if ok else 1


# ---- A/B ------------------------------------------------------------------------------------------


def compare_ab(args: argparse.Namespace) -> int:
    route, make = BODIES[args.body]
    load = Loader(args.loader, args.connections, args.threads)
    body = make()
    env_a, env_b = settings(args.env_a), settings(args.env_b)
    floor = floor_server() if route == PREDICT else None  # the floor reads one file: no batch route
    sides: dict[str, Server] = {}
    try:
        sides["A"] = Server.service("A", env_a, args.a)
        sides["B"] = Server.service("B", env_b, args.b)
        print(f"--body {args.body}, {args.connections} connections, {args.seconds:g} s each, {load.name}")
        print(f"A: {args.a} {' '.join(args.env_a)}\nB: {args.b} {' '.join(args.env_b)}", flush=True)
        ratios = []
        for _ in range(args.rounds):
            parts = []
            floor_rate = load(floor.url + route, body, args.seconds).requests_per_s if floor else 0.0
            if floor:
                parts.append(f"floor {floor_rate:6.0f}")
            rates = {}
            for name, server in sides.items():
                meter = CpuMeter(server.pid)
                meter.start()
                result = load(server.url + route, body, args.seconds)
                meter.stop()
                rates[name] = result.requests_per_s
                share = f" ({result.requests_per_s / floor_rate:.2f}x)" if floor else ""
                parts.append(
                    f"{name} {result.requests_per_s:6.0f}{share} cpu {per_request_us(meter.server, result):4.0f}"
                    f"+{per_request_us(meter.engines, result):4.0f} us" + ("*" if meter.partial else "")
                )
            ratios.append(rates["B"] / rates["A"])
            print("   ".join([*parts, f"B/A {ratios[-1]:.2f}"]), flush=True)
    finally:
        for server in [floor, *sides.values()]:
            if server is not None:
                server.stop()
    print(f"B/A per round: {', '.join(f'{r:.2f}' for r in ratios)}; median {np.median(ratios):.2f}")
    print("cpu: the server process + its engines, per request (*: an engine was replaced in that run)")
    return 0


# ---- the command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str, seconds: float, rounds: int, body: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--seconds", type=float, default=seconds, help="each load run (default %(default)s)")
        sub.add_argument("--connections", type=int, default=8, help="concurrent connections (default %(default)s)")
        sub.add_argument("--threads", type=int, default=2, help="wrk threads (default %(default)s)")
        sub.add_argument("--rounds", type=int, default=rounds, help="runs of each server (default %(default)s)")
        sub.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto", help="load generator")
        if body:
            sub.add_argument("--body", choices=list(BODIES), default="digit", help="the upload (default digit)")
        return sub

    everything = command("all", "make bench: the service vs the floor and the tutorial, the targets", 10, 3, False)
    everything.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    everything.set_defaults(run=compare_all)
    command("floor", "the floor alone", 5, 3).set_defaults(run=compare_one)
    command("tutorial", "the tutorial code alone", 5, 3).set_defaults(run=compare_one)
    service = command("service", "the service alone, with its CPU per request", 5, 3)
    service.add_argument("--repo", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    service.add_argument("--env", action="append", default=[], metavar="NAME=value", help="a setting (repeatable)")
    service.add_argument(
        "--check-decode", action="store_true", help="exit 1 unless the engines use more CPU than the server process"
    )
    service.set_defaults(run=compare_one)
    ab = command("ab", "the floor, service A and service B in turn, round by round", 5, 5)
    ab.add_argument("--a", type=Path, default=ROOT, help="checkout A (default: this one)")
    ab.add_argument("--b", type=Path, default=ROOT, help="checkout B (default: this one)")
    ab.add_argument("--env-a", action="append", default=[], metavar="NAME=value", help="a setting of A (repeatable)")
    ab.add_argument("--env-b", action="append", default=[], metavar="NAME=value", help="a setting of B (repeatable)")
    ab.set_defaults(run=compare_ab)
    args = parser.parse_args(argv)
    if args.command != "service":
        args.check_decode = False
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
