"""`make bench-grpc`: the Open Inference Protocol over gRPC against REST /v2, on one server, in the same run.

    python -m bench.grpc [--seconds 10 --rounds 3 --streams 8 --workloads digit,batch --json FILE]

Starts one `python -m app` (one uvicorn worker, its engines, gRPC on a free port of 127.0.0.1) and loads
mnist-mlp's ModelInfer from `--streams` (8) concurrent streams per transport, with tritonclient on both:
REST /v2 through tritonclient.http.aio (aiohttp, 8 connections, Triton's binary tensor extension, as the
client sends by default) and gRPC through tritonclient.grpc.aio (one channel, 8 concurrent calls on it).
Two workloads, the same bytes on both transports: `digit`, one 28x28 PNG as BYTES per request, and
`batch`, 64 of them per request. Output: `probabilities` only.

The machine's few cores are shared and their speed drifts over minutes, so the transports run in turn,
REST then gRPC, `--rounds` times per workload, each after a warm-up, and the medians count (the ratio is
the median of each round's gRPC/REST). For each: req/s, p50 and p99 latency, and the CPU time per request
of the server process and of its engines (from /proc, bench/procs.py's CpuMeter), steadier than req/s.
The issue's goal: gRPC's throughput at least REST's on the same inputs. Exit status 1 when a request fails
or the goal is missed (`--no-goal`: report only).

Runs in its own process: tritonclient.grpc's protobuf package `inference` would clash with the server's
stubs (app.api.grpc.proto), so nothing here imports `app`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as triton_grpc
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http as triton_http
import tritonclient.http.aio as http_aio

from bench.procs import CpuMeter, Server, free_port
from tools.uploads import digit_png, sample_digits

MODEL = "mnist-mlp"
TRANSPORTS = ("rest", "grpc")
WORKLOADS = {"digit": 1, "batch": 64}  # images (28x28 PNGs) per request
Call = Callable[[], Awaitable[np.ndarray]]


@dataclass
class Load:
    """One transport on one workload for one round."""

    transport: str
    workload: str
    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    errors: dict[str, int]
    server_cpu_s: float
    engines_cpu_s: float
    client_cpu_s: float  # this process's: the load generator's own cost, on the same cores

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def cpu_ms_per_request(self) -> tuple[float, float]:
        """(server process, engines) CPU milliseconds per request."""
        n = max(self.requests, 1)
        return self.server_cpu_s * 1000 / n, self.engines_cpu_s * 1000 / n

    def line(self) -> str:
        server, engines = self.cpu_ms_per_request
        return (
            f"{self.requests_per_s:>8.1f} req/s  p50 {self.percentile(50):7.2f} ms  p99 {self.percentile(99):7.2f} ms  "
            f"CPU/req {server + engines:6.2f} ms (server {server:5.2f} + engines {engines:5.2f}; "
            f"client {self.client_cpu_s * 1000 / max(self.requests, 1):5.2f})"
            + (f"  ERRORS {self.errors}" if self.errors else "")
        )

    def figures(self) -> dict[str, Any]:
        server, engines = self.cpu_ms_per_request
        return {
            "transport": self.transport, "workload": self.workload, "requests": self.requests,
            "seconds": self.seconds, "requests_per_s": self.requests_per_s, "p50_ms": self.percentile(50),
            "p99_ms": self.percentile(99), "server_cpu_ms_per_request": server,
            "engines_cpu_ms_per_request": engines, "client_cpu_ms_per_request": self.client_cpu_s * 1000 / max(self.requests, 1),
            "errors": self.errors,
        }  # fmt: skip


def files(count: int) -> np.ndarray:
    """`count` 28x28 PNGs of the committed sample's digits, as a BYTES tensor's object array."""
    return np.array([digit_png(d) for d in sample_digits()[:count]], dtype=np.object_)


async def rest_call(client: http_aio.InferenceServerClient, images: np.ndarray) -> Call:
    tensor = triton_http.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=True)
    outputs = [triton_http.InferRequestedOutput("probabilities", binary_data=True)]

    async def call() -> np.ndarray:
        result = await client.infer(MODEL, [tensor], outputs=outputs)
        return result.as_numpy("probabilities")

    return call


async def grpc_call(client: grpc_aio.InferenceServerClient, images: np.ndarray) -> Call:
    tensor = triton_grpc.InferInput("image", [len(images)], "BYTES").set_data_from_numpy(images)
    outputs = [triton_grpc.InferRequestedOutput("probabilities")]

    async def call() -> np.ndarray:
        result = await client.infer(MODEL, [tensor], outputs=outputs, client_timeout=60)
        return result.as_numpy("probabilities")

    return call


async def load(call: Call, seconds: float, streams: int, rows: int) -> tuple[int, float, list[float], Counter[str]]:
    """`streams` concurrent callers for `seconds`: answered calls, elapsed seconds, latencies, errors."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def stream(deadline: float) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                answer = await call()
            except Exception as exc:  # tritonclient's InferenceServerException, aiohttp's and grpc's errors
                errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            if answer is None or answer.shape != (rows, 10):
                errors["a wrong answer"] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(stream(started + seconds) for _ in range(streams)))
    return len(latencies), time.perf_counter() - started, latencies, errors


async def bench(server: Server, grpc_address: str, args: argparse.Namespace) -> list[Load]:
    loads: list[Load] = []
    http = http_aio.InferenceServerClient(server.url.removeprefix("http://"), conn_limit=args.streams)
    grpc = grpc_aio.InferenceServerClient(grpc_address)
    try:
        for workload in args.workloads:
            images = files(WORKLOADS[workload])
            calls = {"rest": await rest_call(http, images), "grpc": await grpc_call(grpc, images)}
            same = np.allclose(await calls["rest"](), await calls["grpc"](), atol=1e-6)
            print(f"\n{workload}: {len(images)} PNG(s) per request; the transports' answers equal: {same}", flush=True)
            for transport in TRANSPORTS:  # warm-up: connections, the engines' caches
                await load(calls[transport], args.warmup, args.streams, len(images))
            for round_ in range(args.rounds):
                for transport in TRANSPORTS:
                    meter = CpuMeter(server.pid)
                    meter.start()
                    client_cpu = time.process_time()
                    requests, seconds, latencies, errors = await load(
                        calls[transport], args.seconds, args.streams, len(images)
                    )
                    client_cpu = time.process_time() - client_cpu
                    meter.stop()
                    errors.update({} if same else {"the transports' answers differ": 1})
                    done = Load(
                        transport, workload, requests, seconds, latencies, dict(errors), meter.server, meter.engines,
                        client_cpu,
                    )  # fmt: skip
                    loads.append(done)
                    print(f"  round {round_ + 1} {transport:<4} {done.line()}", flush=True)
    finally:
        await http.close()
        await grpc.close()
    return loads


def summary(loads: list[Load], workloads: list[str]) -> tuple[list[str], dict[str, float]]:
    """The table's lines (medians over the rounds) and each workload's median gRPC/REST req/s ratio."""
    lines = [
        f"{'workload':<8} {'transport':<9} {'req/s':>8} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'(server':>8} {'+ engines)':>10} {'client ms/req':>13}"
    ]
    ratios: dict[str, float] = {}
    for workload in workloads:
        for transport in TRANSPORTS:
            runs = [load for load in loads if load.workload == workload and load.transport == transport]
            rate = statistics.median(load.requests_per_s for load in runs)
            server = statistics.median(load.cpu_ms_per_request[0] for load in runs)
            engines = statistics.median(load.cpu_ms_per_request[1] for load in runs)
            client = statistics.median(load.client_cpu_s * 1000 / max(load.requests, 1) for load in runs)
            lines.append(
                f"{workload:<8} {transport:<9} {rate:>8.1f} {rate * WORKLOADS[workload]:>9.0f} "
                f"{statistics.median(load.percentile(50) for load in runs):>8.2f} "
                f"{statistics.median(load.percentile(99) for load in runs):>8.2f} "
                f"{server + engines:>10.2f} {server:>8.2f} {engines:>10.2f} {client:>13.2f}"
            )
        rest = [load for load in loads if load.workload == workload and load.transport == "rest"]
        grpc = [load for load in loads if load.workload == workload and load.transport == "grpc"]
        ratios[workload] = statistics.median(
            g.requests_per_s / max(r.requests_per_s, 1e-9) for r, g in zip(rest, grpc, strict=True)
        )
    return lines, ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per transport, workload and round (default 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per transport and workload")
    parser.add_argument("--streams", type=int, default=8, help="concurrent requests per transport (default 8)")
    parser.add_argument("--workloads", type=lambda text: text.split(","), default=list(WORKLOADS),
                        help=f"comma-separated, of {', '.join(WORKLOADS)} (default all)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every round's figures and the summary here")
    parser.add_argument("--no-goal", action="store_true", help="report only: exit 0 unless a request failed")
    args = parser.parse_args(argv)
    if unknown := set(args.workloads) - set(WORKLOADS):
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    grpc_port = free_port()
    env = {"MNIST_GRPC_PORT": str(grpc_port), "MNIST_GRPC_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
    print(f"bench-grpc: one server (python -m app, 1 worker), {args.streams} streams per transport, "
          f"{args.rounds} rounds of {args.seconds:g} s per transport and workload, REST then gRPC; {os.cpu_count()} CPUs")  # fmt: skip
    server = Server.service("service", env)
    try:
        loads = asyncio.run(bench(server, f"127.0.0.1:{grpc_port}", args))
    finally:
        server.stop()
    lines, ratios = summary(loads, args.workloads)
    print("\nmedians over the rounds (CPU: the server process and its engines, per request)")
    print("\n".join(lines))
    failed = sum(sum(load.errors.values()) for load in loads)
    checks = {f"zero failed requests ({failed})": failed == 0}
    for workload, ratio in ratios.items():
        checks[f"{workload}: gRPC throughput >= REST /v2's (median ratio {ratio:.2f})"] = ratio >= 1.0 or args.no_goal
    for label, ok in checks.items():
        print(f"  {'ok    ' if ok else 'FAILED'} {label}")
    if args.json:
        args.json.write_text(json.dumps({"loads": [load.figures() for load in loads], "ratios": ratios}, indent=1))
    print("bench-grpc: " + ("ok" if all(checks.values()) else "FAILED"))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
