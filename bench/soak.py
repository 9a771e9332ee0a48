"""`make soak`: a bounded soak test against 127.0.0.1 only.

16 clients for 60 s (by default) mix valid uploads and batches with corrupt files, oversized bodies,
decompression bombs, slow uploads, stalled uploads and clients that disconnect mid-upload. Checks:
zero 5xx, zero failed connections for well-formed requests, the server alive at the end, and memory
growth from warm-up to the end under 10%. Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

from bench.run import BOUNDARY, PYTHON, Server, digit_png, multipart


def bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


class Soak:
    def __init__(self, base: str, port: int, seed: int) -> None:
        self.base, self.port = base, port
        self.rng = random.Random(seed)
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: Counter[str] = Counter()  # connection errors on well-formed requests
        self.digits = [digit_png(i) for i in range(32)]
        self.single_headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

    async def valid(self, http: httpx.AsyncClient) -> None:
        body = multipart("file", [self.rng.choice(self.digits)])
        await self.post(http, "valid", "/v1/predict", body, self.single_headers)

    async def batch(self, http: httpx.AsyncClient) -> None:
        files = [("files", (f"{i}.png", self.rng.choice(self.digits), "image/png")) for i in range(8)]
        await self.post(http, "batch", "/v1/predict/batch", files=files)

    async def corrupt(self, http: httpx.AsyncClient) -> None:
        data = bytearray(self.rng.choice(self.digits))
        data[self.rng.randrange(8, len(data))] ^= 0xFF
        await self.post(
            http,
            "corrupt",
            "/v1/predict",
            bytes(data[: self.rng.randrange(20, len(data))]),
            {"Content-Type": "image/png"},
        )

    async def bomb(self, http: httpx.AsyncClient) -> None:
        await self.post(http, "bomb", "/v1/predict", bomb(), {"Content-Type": "image/png"})

    async def oversized(self, http: httpx.AsyncClient) -> None:
        try:  # the server answers 413 at once and may close before the whole body is sent: both are fine
            response = await http.post(
                f"{self.base}/v1/predict", content=b"\0" * (6 << 20), headers={"Content-Type": "image/png"}
            )
            self.statuses["oversized", response.status_code] += 1
        except httpx.HTTPError:
            self.statuses["oversized", 0] += 1

    async def raw(self, name: str, body: bytes, declared: int, pause: float, close_early: bool) -> None:
        """A hand-driven client: headers, then the body in pieces with pauses; maybe hang up half-way."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            head = f"POST /v1/predict HTTP/1.1\r\nHost: soak\r\nContent-Type: image/png\r\nContent-Length: {declared}\r\n\r\n"
            writer.write(head.encode())
            pieces = [body[i : i + max(1, len(body) // 4)] for i in range(0, len(body), max(1, len(body) // 4))]
            for i, piece in enumerate(pieces):
                writer.write(piece)
                await writer.drain()
                if close_early and i == 1:
                    self.statuses[name, 0] += 1
                    return
                await asyncio.sleep(pause)
            status_line = await asyncio.wait_for(reader.readline(), 30)
            self.statuses[name, int(status_line.split()[1]) if status_line else 0] += 1
        finally:
            writer.close()

    async def slow(self, http: httpx.AsyncClient) -> None:
        data = self.rng.choice(self.digits)
        await self.raw("slow", data, len(data), pause=0.3, close_early=False)

    async def disconnect(self, http: httpx.AsyncClient) -> None:
        data = self.rng.choice(self.digits) * 50
        await self.raw("disconnect", data, len(data), pause=0.05, close_early=True)

    async def stalled(self, http: httpx.AsyncClient) -> None:
        data = self.rng.choice(self.digits)
        await self.raw("stalled", data[:50], len(data), pause=3.0, close_early=False)  # promises more, never sends it

    async def post(self, http: httpx.AsyncClient, name: str, path: str, content: bytes | None = None,
                   headers: dict[str, str] | None = None, files: list | None = None) -> None:  # type: ignore[type-arg]  # fmt: skip
        try:
            response = await http.post(f"{self.base}{path}", content=content, headers=headers, files=files)
            self.statuses[name, response.status_code] += 1
        except httpx.HTTPError as exc:
            self.failures[f"{name}: {type(exc).__name__}"] += 1

    async def client(self, deadline: float) -> None:
        scenarios: list[tuple[Callable[[httpx.AsyncClient], Awaitable[None]], int]] = [
            (self.valid, 50), (self.batch, 10), (self.corrupt, 10), (self.bomb, 5), (self.oversized, 3),
            (self.slow, 5), (self.disconnect, 5), (self.stalled, 2),
        ]  # fmt: skip
        actions, weights = zip(*scenarios, strict=True)
        async with httpx.AsyncClient(timeout=60) as http:
            while time.monotonic() < deadline:
                await self.rng.choices(actions, weights)[0](http)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # a short body timeout so stalled uploads are cut within the run
    server = Server(
        "service", [PYTHON, "-m", "app"], "/readyz", {"MNIST_LOG_LEVEL": "warning", "MNIST_BODY_TIMEOUT_S": "2"}
    )
    try:
        soak = Soak(server.url, server.port, args.seed)
        asyncio.run(run_for(soak, 1, 5))  # warm-up
        warm_rss = server.rss_mib()
        started = time.monotonic()
        asyncio.run(run_for(soak, args.clients, args.seconds))
        elapsed = time.monotonic() - started
        alive = httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        end_rss = server.rss_mib()
    finally:
        server.stop()
    total = sum(soak.statuses.values())
    print(f"soak: {args.clients} clients, {elapsed:.0f} s, {total} requests ({total / elapsed:.0f}/s)")
    for (name, status), count in sorted(soak.statuses.items()):
        print(f"  {name:<11} {status if status else 'no answer':>9}  {count:>6}")
    server_errors = sum(c for (_, s), c in soak.statuses.items() if s >= 500)
    growth = (end_rss - warm_rss) / warm_rss
    checks = {
        "zero 5xx": server_errors == 0,
        "zero failed connections for well-formed requests": not soak.failures,
        "server alive at the end": alive,
        f"memory growth {growth:+.1%} ({warm_rss:.0f} -> {end_rss:.0f} MiB) under 10%": growth < 0.10,
    }
    for failure, count in soak.failures.items():
        print(f"  FAILED CONNECTION {failure}: {count}")
    for name, ok in checks.items():
        print(f"{'ok    ' if ok else 'FAILED'} {name}")
    return 0 if all(checks.values()) else 1


async def run_for(soak: Soak, clients: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(soak.client(deadline) for _ in range(clients)))


if __name__ == "__main__":
    raise SystemExit(main())
