"""`make soak`: the long hostile soak, against 127.0.0.1 only.

    SOAK_SECONDS=600 python -m bench.soak                # the default: 10 minutes, the first 60 s warm-up
    python -m bench.soak --seconds 180 --clients 16 --out artifacts/soak/rss.png

For `--seconds` (default $SOAK_SECONDS, else 600) of wall time in all, `--clients` concurrent clients
(default 16) send a mix of ~60% well-formed requests (28x28 digit PNGs, ~400x300 photo-like JPEGs,
280x280 canvas PNGs, 8-file batches, /v2 pixel tensors, slow uploads) and ~40% hostile ones: PNG
decompression bombs (one claiming 60000x60000, one really inflating to 36 MP), 4 MiB random-noise PNGs,
a 12 MP phone-like JPEG, truncated and corrupt files, oversized bodies (413), endless chunked bodies,
stalled uploads (the server's idle timeout is lowered to 2 s for the run), clients that hang up
mid-upload, and hostile JSON on /v2 (50,000 nested objects, `data` nested 5,000 deep, a 400-digit
integer and `true` as FP32 values). The first `--warmup` seconds (default min(60, seconds / 5)) are
warm-up under the same load.

The resident memory of the server process and of each of its engine children (`python -m app.engines.worker`,
found through /proc) is sampled every `--interval` s (default 0.5) from start to end; a replaced engine
(new PID) is a new series. Checks, exit status 1 when one fails:
- zero 5xx answers, over the whole run;
- zero failed well-formed requests: each gets 200 with a valid prediction (no connection errors either);
- the server alive at the end;
- for each process alive from the end of warm-up to the end: the RSS it keeps at the end at most 10% over
  what it kept just after warm-up. What a process keeps is the floor of its RSS over a window (the 10th
  percentile of the samples in the first, and the last, 10% of the run after warm-up): an engine's RSS
  jumps by hundreds of MiB for one big decode and falls back when it is done, so a window's median says
  what was in flight when it was sampled; a leak, or fragmentation, raises the floor.
The RSS curve is drawn to `--out` (default artifacts/soak/rss.png).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import procs
from bench.procs import ROOT, Server
from tools.uploads import (
    MIB,
    MULTIPART_TYPE,
    bomb_claiming,
    bomb_inflating,
    canvas_png,
    digit_png,
    multipart,
    noise_png,
    phone_12mp_jpeg,
    photo_jpeg,
    sample_digits,
)

V2_INFER = "/v2/models/mnist-mlp/infer"
MULTIPART = {"Content-Type": MULTIPART_TYPE}
JSON = {"Content-Type": "application/json"}


# ---- the /v2 JSON bodies (the files come from tools/uploads.py) ------------------------------------


def deep_json(depth: int = 50_000) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def v2_body(data: str, datatype: str = "FP32") -> bytes:
    return f'{{"inputs":[{{"name":"pixels","datatype":"{datatype}","shape":[1,784],"data":{data}}}]}}'.encode()


# ---- the answers ----------------------------------------------------------------------------------


def valid_prediction(answer: Any) -> bool:
    """A /v1 prediction: a digit 0-9, ten probabilities summing to 1 whose largest is the digit's."""
    if not isinstance(answer, dict):
        return False
    digit, probabilities = answer.get("digit"), answer.get("probabilities")
    if type(digit) is not int or not 0 <= digit <= 9:
        return False
    if not isinstance(probabilities, list) or len(probabilities) != 10:
        return False
    if not all(isinstance(p, float | int) and math.isfinite(p) and 0 <= p <= 1 for p in probabilities):
        return False
    return (
        abs(sum(probabilities) - 1) < 1e-3
        and max(probabilities) == probabilities[digit]
        and abs(answer.get("confidence", -1) - probabilities[digit]) < 1e-6
    )


def valid_v2(answer: Any) -> bool:
    if not isinstance(answer, dict) or not isinstance(answer.get("outputs"), list):
        return False
    outputs = {o.get("name"): o for o in answer["outputs"] if isinstance(o, dict)}
    probabilities, digit = outputs.get("probabilities", {}).get("data"), outputs.get("digit", {}).get("data")
    if not isinstance(probabilities, list) or len(probabilities) != 10 or not isinstance(digit, list):
        return False
    return valid_prediction({"digit": digit[0], "probabilities": probabilities, "confidence": probabilities[digit[0]]})


# ---- memory sampling ------------------------------------------------------------------------------


@dataclass
class Series:
    label: str
    pid: int
    times: list[float] = field(default_factory=list)  # seconds since the run started
    rss: list[float] = field(default_factory=list)  # MiB


class Sampler(threading.Thread):
    """The RSS of the server and of each engine child every `interval` s; a new PID is a new series."""

    def __init__(self, server_pid: int, interval: float, started: float) -> None:
        super().__init__(daemon=True)
        self.server_pid, self.interval, self.started = server_pid, interval, started
        self.series: dict[int, Series] = {server_pid: Series(f"server pid {server_pid}", server_pid)}
        self.engines_seen = 0
        self.halt = threading.Event()
        self.last_sample = 0.0

    def sample(self) -> None:
        now = time.monotonic() - self.started
        for pid in [self.server_pid, *procs.engines(self.server_pid)]:
            rss = procs.rss_mib(pid)
            if rss is None:
                continue
            if pid not in self.series:
                self.engines_seen += 1
                self.series[pid] = Series(f"engine #{self.engines_seen} pid {pid}", pid)
            self.series[pid].times.append(now)
            self.series[pid].rss.append(rss)
        self.last_sample = now

    def run(self) -> None:
        self.sample()
        while not self.halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        self.sample()  # one last sample at the very end


@dataclass
class Memory:
    label: str
    after_warmup: float | None  # floor of the first 10% of the samples after warm-up (None: not alive then)
    end: float | None  # floor of the last 10% of the samples (None: gone before the end)
    peak: float
    checked: bool  # alive from the end of warm-up to the end

    @property
    def growth(self) -> float | None:
        if self.after_warmup is None or self.end is None:
            return None
        return (self.end - self.after_warmup) / self.after_warmup


def floor(rss: np.ndarray) -> float:
    """The RSS a process keeps between requests: the 10th percentile of its samples."""
    return float(np.percentile(rss, 10))


def memory_figures(sampler: Sampler, warmup_end: float, end: float) -> list[Memory]:
    window = max(0.1 * (end - warmup_end), 5 * sampler.interval)
    figures = []
    for series in sampler.series.values():
        times, rss = np.array(series.times), np.array(series.rss)
        early = rss[(times >= warmup_end) & (times <= warmup_end + window)]
        late = rss[times >= end - window]
        alive_through = times[0] <= warmup_end + sampler.interval * 2 and times[-1] >= end - sampler.interval * 2
        figures.append(
            Memory(
                series.label,
                floor(early) if early.size and times[0] <= warmup_end + window else None,
                floor(late) if late.size and times[-1] >= end - sampler.interval * 2 else None,
                float(rss.max()),
                bool(alive_through),
            )
        )
    return figures


def plot(sampler: Sampler, warmup_end: float, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(11, 5.5), dpi=110)
    for series in sampler.series.values():
        axes.plot(series.times, series.rss, label=series.label, linewidth=1.2)
    axes.axvline(warmup_end, color="grey", linestyle="--", linewidth=1)
    axes.annotate("end of warm-up", (warmup_end, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                  ha="right", va="bottom", color="grey", fontsize=8)  # fmt: skip
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("RSS (MiB)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)


# ---- the clients ----------------------------------------------------------------------------------

Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


class Soak:
    def __init__(self, base: str, port: int, seed: int) -> None:
        self.base, self.port = base, port
        self.rng = random.Random(seed)
        generator = np.random.default_rng(seed)
        digits = sample_digits()[:64]
        self.digits = [digit_png(d) for d in digits[:32]]
        self.photos = [photo_jpeg(d, generator) for d in digits[:16]]
        self.canvases = [canvas_png(d) for d in digits[:16]]
        self.v2_pixels = [v2_body(json.dumps([round(float(v) / 255, 4) for v in d.ravel()])) for d in digits[:16]]
        self.noise = [noise_png(generator) for _ in range(3)]
        self.phone = phone_12mp_jpeg(digits[40], generator)
        self.bombs = [bomb_claiming(), bomb_inflating()]
        self.truncatable = self.digits[:8] + self.photos[:8]
        self.hostile_json = {
            "json_deep": deep_json(50_000),
            "json_data_deep": v2_body("[" * 5000 + "0" + "]" * 5000),
            "json_bigint": v2_body("[" + "0," * 783 + "9" * 400 + "]"),
            "json_true": v2_body("[true" + ",0" * 783 + "]"),
        }
        self.endless_chunk = os.urandom(64 * 1024)
        self.warmup_end = math.inf  # monotonic time; set by run()
        # (kind, status) -> count; status 0: no answer (connection closed), -1: client-side error
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: Counter[str] = Counter()  # well-formed requests that did not get a valid 200
        self.errors: Counter[str] = Counter()  # unexpected client-side exceptions on hostile requests
        self.latencies: defaultdict[str, list[float]] = defaultdict(list)  # well-formed kinds, after warm-up
        self.scenarios: list[tuple[str, Scenario, int, bool]] = [  # name, action, weight, well-formed
            ("digit28", self.digit28, 30, True),
            ("photo_jpeg", self.photo, 8, True),
            ("canvas_png", self.canvas, 8, True),
            ("batch", self.batch, 7, True),
            ("v2_pixels", self.v2_valid, 3, True),
            ("slow", self.slow, 4, True),
            ("bomb_claim", self.bomb_claim, 2, False),
            ("bomb_inflate", self.bomb_inflate, 2, False),
            ("noise_4mib", self.noise_png, 3, False),
            ("phone_12mp", self.phone_jpeg, 2, False),
            ("truncated", self.truncated, 3, False),
            ("corrupt", self.corrupt, 3, False),
            ("oversized", self.oversized, 3, False),
            ("endless", self.endless, 3, False),
            ("stalled", self.stalled, 3, False),
            ("disconnect", self.disconnect, 4, False),
            ("json_deep", self.json_deep, 3, False),
            ("json_data_deep", self.json_data_deep, 3, False),
            ("json_bigint", self.json_bigint, 3, False),
            ("json_true", self.json_true, 3, False),
        ]
        self.well_formed = {name for name, _, _, ok in self.scenarios if ok}

    # well-formed ------------------------------------------------------------------------------------

    async def upload(self, http: httpx.AsyncClient, kind: str, data: bytes) -> None:
        await self.expect(http, kind, "/v1/predict", multipart("file", [data]), MULTIPART, valid_prediction)

    async def digit28(self, http: httpx.AsyncClient) -> None:
        await self.upload(http, "digit28", self.rng.choice(self.digits))

    async def photo(self, http: httpx.AsyncClient) -> None:
        await self.upload(http, "photo_jpeg", self.rng.choice(self.photos))

    async def canvas(self, http: httpx.AsyncClient) -> None:
        await self.upload(http, "canvas_png", self.rng.choice(self.canvases))

    async def batch(self, http: httpx.AsyncClient) -> None:
        files = [self.rng.choice(self.digits + self.photos + self.canvases) for _ in range(8)]

        def ok(answer: Any) -> bool:
            predictions = answer.get("predictions") if isinstance(answer, dict) else None
            return isinstance(predictions, list) and len(predictions) == 8 and all(map(valid_prediction, predictions))

        await self.expect(http, "batch", "/v1/predict/batch", multipart("files", files), MULTIPART, ok)

    async def v2_valid(self, http: httpx.AsyncClient) -> None:
        await self.expect(http, "v2_pixels", V2_INFER, self.rng.choice(self.v2_pixels), JSON, valid_v2)

    async def expect(self, http: httpx.AsyncClient, kind: str, path: str, body: bytes, headers: dict[str, str],
                     ok: Callable[[Any], bool]) -> None:  # fmt: skip
        """A well-formed request: it must get 200 and an answer `ok` accepts."""
        started = time.monotonic()
        try:
            response = await http.post(f"{self.base}{path}", content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.statuses[kind, 0] += 1
            previous = getattr(http, "previous_kind", "none")
            self.failures[f"{kind}: {type(exc).__name__} {exc} (this client's previous request: {previous})"] += 1
            return
        self.statuses[kind, response.status_code] += 1
        if response.status_code != 200:
            self.failures[f"{kind}: status {response.status_code} {response.text[:120]}"] += 1
            return
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not ok(answer):
            self.failures[f"{kind}: invalid answer {response.text[:120]}"] += 1
            return
        if started >= self.warmup_end:
            self.latencies[kind].append(time.monotonic() - started)

    async def slow(self, http: httpx.AsyncClient) -> None:
        """A well-formed upload trickled in 4 pieces 0.3 s apart (well within the idle timeout): must get 200."""
        body = multipart("file", [self.rng.choice(self.digits + self.photos)])
        started = time.monotonic()
        status = await self.raw(body, len(body), pause=0.3, content_type=MULTIPART["Content-Type"])
        self.statuses["slow", status] += 1
        if status != 200:
            self.failures[f"slow: status {status}"] += 1
        elif started >= self.warmup_end:
            self.latencies["slow"].append(time.monotonic() - started)

    # hostile ----------------------------------------------------------------------------------------

    async def hostile(self, http: httpx.AsyncClient, kind: str, body: bytes, path: str = "/v1/predict",
                      headers: dict[str, str] | None = None) -> None:  # fmt: skip
        """Any answer but a 5xx is fine; the server may also close early (counted as status 0)."""
        try:
            response = await http.post(f"{self.base}{path}", content=body, headers=headers or MULTIPART)
            self.statuses[kind, response.status_code] += 1
        except httpx.HTTPError:
            self.statuses[kind, 0] += 1

    async def bomb_claim(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "bomb_claim", self.bombs[0], headers={"Content-Type": "image/png"})

    async def bomb_inflate(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "bomb_inflate", multipart("file", [self.bombs[1]]))

    async def noise_png(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "noise_4mib", multipart("file", [self.rng.choice(self.noise)]))

    async def phone_jpeg(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "phone_12mp", multipart("file", [self.phone]))

    async def truncated(self, http: httpx.AsyncClient) -> None:
        data = self.rng.choice(self.truncatable)
        await self.hostile(http, "truncated", multipart("file", [data[: self.rng.randrange(20, len(data) - 10)]]))

    async def corrupt(self, http: httpx.AsyncClient) -> None:
        data = bytearray(self.rng.choice(self.truncatable))
        for _ in range(self.rng.randint(1, 8)):
            data[self.rng.randrange(8, len(data))] ^= self.rng.randrange(1, 256)
        await self.hostile(http, "corrupt", bytes(data), headers={"Content-Type": "image/png"})

    async def oversized(self, http: httpx.AsyncClient) -> None:
        """6 MiB with an honest Content-Length: 413 at once (the server may close before it is all sent)."""
        await self.hostile(http, "oversized", b"\0" * (6 * MIB), headers={"Content-Type": "image/png"})

    async def json_deep(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "json_deep", self.hostile_json["json_deep"], V2_INFER, JSON)

    async def json_data_deep(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "json_data_deep", self.hostile_json["json_data_deep"], V2_INFER, JSON)

    async def json_bigint(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "json_bigint", self.hostile_json["json_bigint"], V2_INFER, JSON)

    async def json_true(self, http: httpx.AsyncClient) -> None:
        await self.hostile(http, "json_true", self.hostile_json["json_true"], V2_INFER, JSON)

    async def stalled(self, http: httpx.AsyncClient) -> None:
        """50 bytes of a body that promises more, then silence: the server's idle timeout (2 s) answers 408."""
        data = multipart("file", [self.rng.choice(self.digits)])
        self.statuses["stalled", await self.raw(data[:50], len(data), pause=0.0)] += 1

    async def disconnect(self, http: httpx.AsyncClient) -> None:
        """Half of a ~40 KB body, then the client hangs up."""
        data = multipart("file", [self.rng.choice(self.photos)])
        self.statuses["disconnect", await self.raw(data, len(data), pause=0.05, hang_up_after=2)] += 1

    async def raw(self, body: bytes, declared: int, pause: float, hang_up_after: int | None = None,
                  content_type: str = "image/png") -> int:  # fmt: skip
        """A hand-driven client: headers, then the body in 4 pieces `pause` s apart (or hanging up after
        `hang_up_after` pieces); the answer's status, 0 if none within 30 s or the connection closed."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            head = (
                f"POST /v1/predict HTTP/1.1\r\nHost: soak\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            )
            writer.write(head.encode())
            size = max(1, math.ceil(len(body) / 4))
            for i, at in enumerate(range(0, len(body), size)):
                writer.write(body[at : at + size])
                await asyncio.wait_for(writer.drain(), 30)
                if hang_up_after is not None and i + 1 == hang_up_after:
                    writer.transport.abort()
                    return 0
                await asyncio.sleep(pause)
            return status_of(await asyncio.wait_for(reader.readline(), 30))
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return 0
        finally:
            writer.close()

    async def endless(self, http: httpx.AsyncClient) -> None:
        """A chunked body with no end (no Content-Length): 64 KiB chunks until the server answers (413 once
        over the cap) or closes; at most 16 MiB or 15 s."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        answer = asyncio.ensure_future(reader.readline())
        status = 0
        try:
            writer.write(
                b"POST /v1/predict HTTP/1.1\r\nHost: soak\r\nContent-Type: image/png\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"%x\r\n" % len(self.endless_chunk) + self.endless_chunk + b"\r\n"
            deadline, sent = time.monotonic() + 15, 0
            while not answer.done() and time.monotonic() < deadline and sent < 16 * MIB:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 5)
                sent += len(self.endless_chunk)
        except (OSError, TimeoutError):
            pass  # the server stopped reading or closed: its answer, if any, is already on its way
        try:
            status = status_of(await asyncio.wait_for(answer, 10))
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            status = 0
        finally:
            answer.cancel()
            writer.close()
        self.statuses["endless", status] += 1

    # driving ----------------------------------------------------------------------------------------

    async def client(self, deadline: float) -> None:
        names, actions, weights, _ = zip(*self.scenarios, strict=True)
        async with httpx.AsyncClient(timeout=60) as http:
            while time.monotonic() < deadline:
                index = self.rng.choices(range(len(actions)), weights)[0]
                try:
                    await asyncio.wait_for(actions[index](http), 90)
                except Exception as exc:  # a bug or a hang on our side: record it, keep going
                    self.statuses[names[index], -1] += 1
                    message = f"{names[index]}: {type(exc).__name__} {exc}"[:160]
                    (self.failures if names[index] in self.well_formed else self.errors)[message] += 1
                http.previous_kind = names[index]  # type: ignore[attr-defined]  # named in connection failures

    async def run(self, clients: int, warmup_end: float, deadline: float) -> None:
        self.warmup_end = warmup_end
        await asyncio.gather(*(self.client(deadline) for _ in range(clients)))

    async def preflight(self) -> list[str]:
        """Each well-formed sample once, before the run: a sample the service refuses is the soak's bug."""
        problems = []
        async with httpx.AsyncClient(timeout=60) as http:
            for kind, samples in (("digit28", self.digits), ("photo_jpeg", self.photos), ("canvas_png", self.canvases)):
                for i, data in enumerate(samples):
                    response = await http.post(
                        f"{self.base}/v1/predict", content=multipart("file", [data]), headers=MULTIPART
                    )
                    if response.status_code != 200 or not valid_prediction(response.json()):
                        problems.append(f"{kind} sample {i}: {response.status_code} {response.text[:100]}")
        return problems


def status_of(line: bytes) -> int:
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


# ---- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)),
                        help="wall time of the whole run, warm-up included (default $SOAK_SECONDS, else 600)")  # fmt: skip
    parser.add_argument("--warmup", type=float, help="warm-up seconds (default min(60, seconds / 5))")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling interval, s (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "soak" / "rss.png")
    args = parser.parse_args(argv)
    warmup = min(60.0, args.seconds / 5) if args.warmup is None else args.warmup
    if not 0 <= warmup < args.seconds:
        parser.error("--warmup must be shorter than --seconds")

    print("soak: starting the server and generating files ...", flush=True)
    env = {"MNIST_LOG_LEVEL": "warning", "MNIST_BODY_TIMEOUT_S": "2"}  # stalled uploads are cut within the run
    server = Server.service(env=env)
    try:
        soak = Soak(server.url, server.port, args.seed)
        problems = asyncio.run(soak.preflight())
        if problems:
            print("soak: the service refuses well-formed samples; fix the soak's files first:")
            print("\n".join(f"  {p}" for p in problems))
            return 1
        print(
            f"soak: {args.clients} clients for {args.seconds:g} s ({warmup:g} s warm-up) against {server.url}; "
            f"12 MP JPEG {len(soak.phone) / MIB:.2f} MiB, noise PNG {len(soak.noise[0]) / MIB:.2f} MiB, "
            f"inflating bomb {len(soak.bombs[1]) / 1024:.0f} KiB",
            flush=True,
        )
        started = time.monotonic()
        sampler = Sampler(server.process.pid, args.interval, started)
        sampler.start()
        try:
            asyncio.run(soak.run(args.clients, started + warmup, started + args.seconds))
        finally:
            sampler.stop()
        elapsed = time.monotonic() - started
        try:
            alive = httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            alive = False
        exited = server.process.poll()
    finally:
        server.stop()

    end = sampler.last_sample
    memory = memory_figures(sampler, warmup, end)
    plot(sampler, warmup, args.out, f"bench.soak: RSS of the server and its engines, {args.clients} clients, "
         f"{args.seconds:g} s, warm-up {warmup:g} s")  # fmt: skip
    report(soak, args, elapsed, warmup)
    print("\nRSS (MiB): kept after warm-up = floor (10th percentile) of the first 10% of samples after warm-up;")
    print("           kept at the end = floor of the last 10%; max = the highest sample of the whole run")
    print(f"  {'process':<22} {'samples':>7} {'after warm-up':>14} {'end':>8} {'max':>8} {'growth':>8}  checked")
    for m, series in zip(memory, sampler.series.values(), strict=True):
        print(
            f"  {m.label:<22} {len(series.rss):>7} {fmt(m.after_warmup):>14} {fmt(m.end):>8} {m.peak:>8.1f} "
            f"{'' if m.growth is None else f'{m.growth:+.1%}':>8}  {'yes' if m.checked else 'no (not alive throughout)'}"
        )
    print(f"RSS curve: {args.out}")

    server_errors = sum(c for (_, s), c in soak.statuses.items() if s >= 500)
    checks = {
        f"zero 5xx ({server_errors})": server_errors == 0,
        f"zero failed well-formed requests ({sum(soak.failures.values())})": not soak.failures,
        f"server alive at the end (healthz {'200' if alive else 'failed'}, exit status {exited})": alive,
    }
    for m in memory:
        if m.checked:
            checks[
                f"RSS of {m.label}: {fmt(m.after_warmup)} -> {fmt(m.end)} MiB ({m.growth:+.1%}) grew at most 10%"
            ] = m.growth is not None and m.growth <= 0.10
    for failure, count in soak.failures.most_common(20):
        print(f"  FAILED {count:>5} x {failure}")
    for error, count in soak.errors.most_common(10):
        print(f"  client-side error {count:>5} x {error}")
    print()
    for name, ok in checks.items():
        print(f"{'ok    ' if ok else 'FAILED'} {name}")
    return 0 if all(checks.values()) else 1


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(soak: Soak, args: argparse.Namespace, elapsed: float, warmup: float) -> None:
    total = sum(soak.statuses.values())
    print(
        f"\nsoak: {args.clients} clients, {elapsed:.0f} s ({warmup:g} s warm-up), {total} requests ({total / elapsed:.0f}/s)"
    )
    print("requests by kind and status, whole run (0: no answer / connection closed; -1: client-side error)")
    statuses = sorted({s for _, s in soak.statuses})
    print(f"  {'kind':<15} {'':>2}" + "".join(f"{s:>7}" for s in statuses) + f"{'total':>8}")
    for name, _, _weight, well_formed in soak.scenarios:
        counts = [soak.statuses.get((name, s), 0) for s in statuses]
        print(
            f"  {name:<15} {'ok' if well_formed else 'h!':>2}"
            + "".join(f"{c if c else '.':>7}" for c in counts)
            + f"{sum(counts):>8}"
        )
    valid = sum(c for (k, _), c in soak.statuses.items() if k in soak.well_formed)
    print(f"  well-formed {valid / max(total, 1):.0%}, hostile {1 - valid / max(total, 1):.0%}")
    print("latency of well-formed requests after warm-up (ms)")
    everything = [v for name, values in soak.latencies.items() if name != "slow" for v in values]
    for name in [*(n for n, *_ in soak.scenarios if n in soak.latencies), "all"]:  # all but slow (it waits on purpose)
        values = everything if name == "all" else soak.latencies[name]
        print(f"  {name:<15} n={len(values):<6} p50 {percentile(values, 50):8.1f}   p99 {percentile(values, 99):8.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
