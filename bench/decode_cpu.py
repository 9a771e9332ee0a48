"""Which process decodes big uploads: CPU time of the server process and of each engine child while
fifty 4 MiB random-noise PNGs are posted to /v1/predict (127.0.0.1 only).

    python -m bench.decode_cpu                     # 50 files, 4 clients at a time
    python -m bench.decode_cpu --files 50 --concurrency 4 --side 1200

Each file is a valid side x side RGB PNG of random pixels (1200: ~4.1 MiB, under the 5 MiB body cap);
the service answers 200 or 422 (blank_image); a 5xx or a connection error fails the run. CPU time is
utime + stime from /proc/<pid>/stat of the server and of each `python -m app.engine` child, measured
just before the first post and just after the last answer. The verdict is "server < engines" when the
server process used less CPU than the engines together; exit status 1 when it did not (the decoding
was done in the server's thread pool, next to the event loop, rather than in the engines).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter

import httpx
import numpy as np

from bench import procs
from bench.run import BOUNDARY, PYTHON, Server, multipart
from bench.soak import MIB, noise_png

MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def post_all(url: str, bodies: list[bytes], concurrency: int) -> tuple[Counter[int], list[str]]:
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    queue = list(enumerate(bodies))

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            index, body = queue.pop()
            try:
                response = await http.post(url, content=body, headers=MULTIPART)
            except httpx.HTTPError as exc:
                errors.append(f"file {index}: {type(exc).__name__} {exc}")
                continue
            statuses[response.status_code] += 1
            if response.status_code not in (200, 422):
                errors.append(f"file {index}: {response.status_code} {response.text[:120]}")

    async with httpx.AsyncClient(timeout=120) as http:
        await asyncio.wait_for(asyncio.gather(*(client(http) for _ in range(concurrency))), 600)
    return statuses, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="uploads in flight at once (default 4)")
    parser.add_argument("--side", type=int, default=1200, help="PNG width and height (default 1200: ~4.1 MiB)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    bodies = [multipart("file", [noise_png(rng, args.side)]) for _ in range(args.files)]
    sizes = [len(b) for b in bodies]
    print(
        f"decode_cpu: {args.files} random-noise PNGs of {args.side}x{args.side} RGB, "
        f"{min(sizes) / MIB:.2f}-{max(sizes) / MIB:.2f} MiB each (made in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    server = Server("service", [PYTHON, "-m", "app"], "/readyz", {"MNIST_LOG_LEVEL": "warning"})
    try:
        pid = server.process.pid
        engines_before = procs.engines(pid)
        before = {p: procs.cpu_seconds(p) for p in [pid, *engines_before]}
        wall = time.perf_counter()
        statuses, errors = asyncio.run(post_all(f"{server.url}/v1/predict", bodies, args.concurrency))
        wall = time.perf_counter() - wall
        engines_after = procs.engines(pid)
        after = {p: procs.cpu_seconds(p) for p in [pid, *engines_after]}
    finally:
        server.stop()

    def used(p: int) -> float:
        return (after.get(p) or 0.0) - (before.get(p) or 0.0)

    server_cpu = used(pid)
    engine_pids = sorted(set(engines_before) | set(engines_after))
    engine_cpu = sum(used(p) for p in engine_pids)
    print(f"posted {args.files} files, {args.concurrency} at a time, in {wall:.2f} s wall time: "
          + ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items())))  # fmt: skip
    print("CPU time (utime + stime) during the posting:")
    print(f"  server      pid {pid:<7} {server_cpu:7.2f} s  ({server_cpu / wall:.0%} of one core)")
    for p in engine_pids:
        note = "" if p in engines_before and p in engines_after else "  (started or gone during the run: partial)"
        print(f"  engine      pid {p:<7} {used(p):7.2f} s  ({used(p) / wall:.0%} of one core){note}")
    print(f"  engines together      {engine_cpu:7.2f} s")
    for error in errors[:10]:
        print(f"  FAILED {error}")
    verdict = server_cpu < engine_cpu
    print(f"verdict: {'server < engines' if verdict else 'NOT server < engines'} "
          f"(server {server_cpu:.2f} s, engines {engine_cpu:.2f} s)")  # fmt: skip
    if errors:
        print(f"FAILED: {len(errors)} uploads got a 5xx, another unexpected status or a connection error")
    return 0 if verdict and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
