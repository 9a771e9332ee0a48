"""`make chaos`: valid uploads under load while engine processes are killed and frozen, against 127.0.0.1.

    CHAOS_SECONDS=60 python -m bench.chaos             # both runs, 60 s each (the default)
    python -m bench.chaos --seconds 20 --runs single    # one run, one worker

Each run starts `python -m app` and drives it from `--clients` (16) concurrent clients with
well-formed requests only: 28x28 digit PNGs, photo-like JPEGs and 8-file batches, on /v1/predict and
/v1/predict/batch; and alongside them from `--grpc-clients` (4) tritonclient.grpc clients (one channel
each) calling ModelInfer on the gRPC port with digit PNGs as BYTES (one, or a batch of 8) and FP32 pixels
[8, 784]. Every answer is checked against the probabilities the same server gave the same request before
the chaos began, so a killed or frozen engine must change nothing in any answer (that those first
answers are right is the test suite's business). Meanwhile:
- every 2 s an engine process (`python -m app.engines.worker`) gets SIGKILL;
- every 10 s another one is frozen with SIGSTOP for 5 s, then continued (SIGCONT);
- in the `workers` run (WEB_CONCURRENCY=2), one of the two uvicorn workers also gets SIGKILL halfway.

Pass, for each run: no 5xx; zero failed well-formed requests and RPCs, except those lost with the
killed uvicorn worker (a connection error ending within 2 s of the kill: in flight on it, or sent on a
kept-alive connection to it; for gRPC, an UNAVAILABLE that the server did not send, i.e. without its
x-request-id in the trailing metadata), which are reported separately; the server ready at the end with
as many engines as it started with.
p50/p99 latency and the number of kills are printed. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from bench import procs
from bench.procs import Server, free_port
from tools.uploads import MULTIPART_TYPE, digit_png, multipart, photo_jpeg, sample_digits

MULTIPART = {"Content-Type": MULTIPART_TYPE}
KILL_EVERY_S = 2.0
ENGINES = 2  # engine processes per worker (MNIST_ENGINE_PROCESSES)
FREEZE_EVERY_S = 10.0
FREEZE_FOR_S = 5.0
# a connection error ending this soon after the worker kill: in flight on it, or sent on a kept-alive
# connection to it before the client could know it was gone
LOST_WINDOW_S = 2.0


@dataclass
class Sample:
    name: str
    path: str
    body: bytes
    expected: np.ndarray | None = None  # (files, 10): the server's answer before the chaos


@dataclass
class GrpcSample:
    """A ModelInfer request of mnist-mlp: images as BYTES, or pixel rows as FP32."""

    name: str
    files: list[bytes] | None = None
    pixels: np.ndarray | None = None  # (N, 784) float32 in [0, 1]
    expected: np.ndarray | None = None  # (N, 10): the server's answer before the chaos

    def inputs(self) -> list[InferInput]:
        if self.files is not None:
            tensor = InferInput("image", [len(self.files)], "BYTES")
            return [tensor.set_data_from_numpy(np.array(self.files, dtype=np.object_))]
        assert self.pixels is not None
        return [InferInput("pixels", list(self.pixels.shape), "FP32").set_data_from_numpy(self.pixels)]


@dataclass
class Tally:
    statuses: Counter[Any] = field(default_factory=Counter)  # HTTP statuses, or gRPC status code names
    failures: Counter[str] = field(default_factory=Counter)  # well-formed requests not answered correctly
    lost: list[str] = field(default_factory=list)  # in flight on the killed worker
    latencies: list[float] = field(default_factory=list)
    errors: list[tuple[float, float, str]] = field(default_factory=list)  # (sent, ended, what): sorted out later


def samples(seed: int) -> list[Sample]:
    """The requests: 24 digit PNGs, 16 photos, 8 batches of 8 digit PNGs."""
    rng = np.random.default_rng(seed)
    digits = sample_digits()[:48]
    made = [digit_png(d) for d in digits[:24]]
    photos = [photo_jpeg(d, rng) for d in digits[24:40]]
    out = [Sample("digit", "/v1/predict", multipart("file", [f])) for f in made]
    out += [Sample("photo", "/v1/predict", multipart("file", [f])) for f in photos]
    for i in range(8):
        files = [made[(i * 8 + j) % len(made)] for j in range(8)]
        out.append(Sample("batch", "/v1/predict/batch", multipart("files", files)))
    return out


def grpc_samples() -> list[GrpcSample]:
    """The gRPC requests: 12 digit PNGs one per call, 4 batches of 8 as BYTES, 4 of 8 pixel rows."""
    digits = sample_digits()[48:96]
    made = [digit_png(d) for d in digits[:32]]
    out = [GrpcSample("grpc digit", [f]) for f in made[:12]]
    out += [GrpcSample("grpc batch", made[i * 8 : i * 8 + 8]) for i in range(4)]
    rows = (digits[32:48] / 255.0).astype(np.float32).reshape(-1, 784)
    return out + [GrpcSample("grpc pixels", pixels=rows[i * 4 : i * 4 + 8]) for i in range(2)] * 2


async def grpc_infer(client: triton_aio.InferenceServerClient, sample: GrpcSample) -> np.ndarray:
    result = await client.infer(
        "mnist-mlp", sample.inputs(), outputs=[InferRequestedOutput("probabilities")], client_timeout=60
    )
    return result.as_numpy("probabilities").astype(np.float64)


def sent_by_server(exc: InferenceServerException) -> bool:
    """Whether the server answered the RPC with this status (its interceptor puts x-request-id in every
    call's trailing metadata), rather than the transport failing (a killed worker, a reset connection)."""
    error = exc.__context__  # tritonclient raises `from None`: the grpc error is still here
    trailing = getattr(error, "trailing_metadata", lambda: None)() or ()
    return any(key == "x-request-id" for key, _ in trailing)


async def grpc_client(address: str, pool: list[GrpcSample], deadline: float, tally: Tally, rng: random.Random) -> None:
    async with triton_aio.InferenceServerClient(address) as client:
        while time.monotonic() < deadline:
            sample = rng.choice(pool)
            sent = time.monotonic()
            try:
                got = await grpc_infer(client, sample)
            except InferenceServerException as exc:
                what = f"{sample.name}: {exc.status()} {exc.message()}"[:160]
                if sent_by_server(exc):
                    tally.statuses[str(exc.status()).removeprefix("StatusCode.")] += 1
                    tally.failures[what] += 1
                else:
                    tally.errors.append((sent, time.monotonic(), what))
                continue
            tally.statuses["OK"] += 1
            assert sample.expected is not None
            if got.shape != sample.expected.shape or not np.allclose(got, sample.expected, atol=1e-4):
                tally.failures[f"{sample.name}: a different answer"] += 1
            else:
                tally.latencies.append(time.monotonic() - sent)


async def grpc_reference(address: str, pool: list[GrpcSample]) -> None:
    async with triton_aio.InferenceServerClient(address) as client:
        for sample in pool:
            sample.expected = await grpc_infer(client, sample)


def probabilities(answer: Any) -> np.ndarray:
    """(files, 10) from a /v1 answer, one prediction or a batch's; (0, 10) when it is not one."""
    predictions = answer.get("predictions", [answer]) if isinstance(answer, dict) else []
    try:
        return np.array([p["probabilities"] for p in predictions], dtype=np.float64).reshape(-1, 10)
    except (KeyError, TypeError, ValueError):
        return np.zeros((0, 10))


def reference(base: str, pool: list[Sample]) -> None:
    """Each request once, one at a time, before the chaos: its answer is what every later one must equal."""
    with httpx.Client(base_url=base, timeout=60) as http:
        for sample in pool:
            response = http.post(sample.path, content=sample.body, headers=MULTIPART)
            if response.status_code != 200:
                raise RuntimeError(f"{sample.name} refused before the chaos: {response.status_code} {response.text}")
            sample.expected = probabilities(response.json())


def correct(sample: Sample, answer: Any) -> bool:
    got = probabilities(answer)
    assert sample.expected is not None
    return got.shape == sample.expected.shape and bool(np.allclose(got, sample.expected, atol=1e-4))


async def client(
    base: str, pool: list[Sample], weights: list[float], deadline: float, tally: Tally, rng: random.Random
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while time.monotonic() < deadline:
            sample = rng.choices(pool, weights)[0]
            sent = time.monotonic()
            try:
                response = await http.post(sample.path, content=sample.body, headers=MULTIPART)
            except httpx.HTTPError as exc:
                tally.errors.append((sent, time.monotonic(), f"{sample.name}: {type(exc).__name__} {exc}"[:160]))
                continue
            tally.statuses[response.status_code] += 1
            if response.status_code != 200 or not correct(sample, response.json()):
                tally.failures[f"{sample.name}: {response.status_code} {response.text[:120]}"] += 1
            else:
                tally.latencies.append(time.monotonic() - sent)


class Chaos(threading.Thread):
    """Kills and freezes engines of the server's process tree; kills a worker once if asked."""

    def __init__(self, master: int, kill_worker_at: float | None, seed: int) -> None:
        super().__init__(daemon=True)
        self.master, self.kill_worker_at = master, kill_worker_at
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.kills = self.freezes = 0
        self.worker_killed_at: float | None = None
        self.frozen: set[int] = set()

    def workers(self) -> list[int]:
        """The uvicorn workers (or the single server process): the processes whose children are engines."""
        direct = [pid for pid in procs.children(self.master) if not procs.is_engine(pid)]
        workers = [pid for pid in direct if any(procs.is_engine(c) for c in procs.children(pid))]
        return workers or [self.master]

    def engines(self) -> list[int]:
        return [pid for worker in self.workers() for pid in procs.engines(worker)]

    def run(self) -> None:
        started = time.monotonic()
        next_kill, next_freeze = started + KILL_EVERY_S, started + 3.0
        while not self.stop.wait(0.05):
            now = time.monotonic()
            if self.kill_worker_at is not None and self.worker_killed_at is None and now >= self.kill_worker_at:
                workers = self.workers()
                if len(workers) > 1 or workers[0] != self.master:
                    os.kill(self.rng.choice(workers), signal.SIGKILL)
                    self.worker_killed_at = time.monotonic()
            if now >= next_kill:
                next_kill += KILL_EVERY_S
                candidates = [pid for pid in self.engines() if pid not in self.frozen]
                if candidates:
                    send(self.rng.choice(candidates), signal.SIGKILL)
                    self.kills += 1
            if now >= next_freeze:
                next_freeze += FREEZE_EVERY_S
                candidates = [pid for pid in self.engines() if pid not in self.frozen]
                if candidates:
                    victim = self.rng.choice(candidates)
                    send(victim, signal.SIGSTOP)
                    self.frozen.add(victim)
                    self.freezes += 1
                    threading.Timer(FREEZE_FOR_S, self.thaw, (victim,)).start()

    def thaw(self, pid: int) -> None:
        send(pid, signal.SIGCONT)
        self.frozen.discard(pid)


def send(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died meanwhile (killed, or replaced)
        os.kill(pid, sig)


def run(
    name: str,
    seconds: float,
    clients: int,
    workers: int,
    kill_worker: bool,
    pool: list[Sample],
    seed: int,
    grpc_clients: int = 4,
) -> bool:
    grpc_port = free_port()
    env = {"MNIST_LOG_LEVEL": "warning", "WEB_CONCURRENCY": str(workers), "MNIST_ENGINE_PROCESSES": str(ENGINES),
           "MNIST_GRPC_PORT": str(grpc_port), "MNIST_GRPC_HOST": "127.0.0.1"}  # fmt: skip
    address = f"127.0.0.1:{grpc_port}"
    print(f"\nchaos [{name}]: {workers} worker(s), {clients} REST and {grpc_clients} gRPC clients, {seconds:g} s",
          flush=True)  # fmt: skip
    server = Server.service(f"service [{name}]", env)
    tally, grpc_tally, grpc_pool = Tally(), Tally(), grpc_samples()
    try:
        master = server.process.pid
        chaos = Chaos(master, None, seed)
        # /readyz answers once one worker is ready; the others may still be starting their engines
        engines_at_start = workers * ENGINES
        if not settle(server.url, chaos, engines_at_start, timeout=120)[0]:
            raise RuntimeError(f"the server did not start its {engines_at_start} engines within 120 s")
        reference(server.url, pool)
        asyncio.run(grpc_reference(address, grpc_pool))
        started = time.monotonic()
        chaos.kill_worker_at = started + seconds / 2 if kill_worker else None
        chaos.start()
        weights = [{"digit": 5.0, "photo": 2.0, "batch": 2.0}[s.name] for s in pool]
        rng = random.Random(seed)

        async def drive() -> None:
            deadline = started + seconds
            await asyncio.gather(
                *(
                    client(server.url, pool, weights, deadline, tally, random.Random(rng.random()))
                    for _ in range(clients)
                ),
                *(
                    grpc_client(address, grpc_pool, deadline, grpc_tally, random.Random(rng.random()))
                    for _ in range(grpc_clients)
                ),
            )

        asyncio.run(drive())
        chaos.stop.set()
        chaos.join(5)
        for pid in list(chaos.frozen):
            chaos.thaw(pid)
        ready, engines_at_end = settle(server.url, chaos, engines_at_start)
    finally:
        server.stop()
    print(f"  engine SIGKILLs {chaos.kills}, SIGSTOPs of {FREEZE_FOR_S:g} s {chaos.freezes}"
          + (f", uvicorn worker SIGKILL at {chaos.worker_killed_at - started:.1f} s" if chaos.worker_killed_at else ""))  # fmt: skip
    server_errors = report("REST", tally, chaos.worker_killed_at, seconds)
    report("gRPC", grpc_tally, chaos.worker_killed_at, seconds)
    checks = {
        f"zero 5xx ({server_errors})": server_errors == 0,
        f"zero failed well-formed requests ({sum(tally.failures.values())})": not tally.failures,
        f"zero failed RPCs ({sum(grpc_tally.failures.values())}), and some answered": not grpc_tally.failures
        and grpc_tally.statuses["OK"] > 0,
        f"engines were killed ({chaos.kills}) and frozen ({chaos.freezes})": chaos.kills > 0 and chaos.freezes > 0,
        f"ready at the end with {engines_at_end} of {engines_at_start} engines": ready
        and engines_at_end == engines_at_start,
    }
    if kill_worker:
        checks["a uvicorn worker was killed"] = chaos.worker_killed_at is not None
    for label, ok in checks.items():
        print(f"  {'ok    ' if ok else 'FAILED'} {label}")
    return all(checks.values())


def report(transport: str, tally: Tally, killed: float | None, seconds: float) -> int:
    """Sort out the connection errors (lost with the killed worker, or failures), print the transport's
    figures and failures; the number of 5xx."""
    for sent, ended, what in tally.errors:
        if killed is not None and killed <= ended <= killed + LOST_WINDOW_S and sent <= killed + LOST_WINDOW_S:
            tally.lost.append(what)
        else:
            tally.failures[what] += 1
    answered = sum(tally.statuses.values())
    latencies = np.array(tally.latencies) * 1000
    statuses = ", ".join(f"{s}: {c}" for s, c in sorted(tally.statuses.items(), key=str))
    print(f"  {transport}: requests {answered + len(tally.errors)}, answered {answered} ({statuses}), "
          f"{answered / seconds:.0f}/s")  # fmt: skip
    if len(latencies):
        print(f"  {transport}: latency of correct answers: p50 {np.percentile(latencies, 50):.1f} ms, "
              f"p99 {np.percentile(latencies, 99):.1f} ms, max {latencies.max():.0f} ms")  # fmt: skip
    print(f"  {transport}: in flight on the killed worker (reported apart): {len(tally.lost)}")
    for what in tally.lost[:5]:
        print(f"    {what}")
    for failure, count in tally.failures.most_common(10):
        print(f"  FAILED {count:>5} x {transport} {failure}")
    return sum(c for s, c in tally.statuses.items() if isinstance(s, int) and s >= 500)


def settle(base: str, chaos: Chaos, engines: int, timeout: float = 20.0) -> tuple[bool, int]:
    """Wait for the server to be ready with its engines back (each replaces a dead child by itself)."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        count = len(chaos.engines())
        if ready and count == engines:
            return True, count
        time.sleep(0.25)
    return False, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 60)),
                        help="length of each run (default $CHAOS_SECONDS, else 60)")  # fmt: skip
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--grpc-clients", type=int, default=4, help="tritonclient.grpc clients beside the REST ones")
    parser.add_argument("--runs", choices=["both", "single", "workers"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pool = samples(args.seed)
    results = []
    if args.runs in ("both", "single"):
        results.append(run("single", args.seconds, args.clients, 1, False, pool, args.seed, args.grpc_clients))
    if args.runs in ("both", "workers"):
        results.append(run("workers", args.seconds, args.clients, 2, True, pool, args.seed, args.grpc_clients))
    print("\nchaos: " + ("ok" if all(results) else "FAILED"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
