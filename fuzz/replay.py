"""Replay a corpus through its tasks (preprocess, and read: fuzz/inputs.py) without instrumentation, and
measure memory.

libFuzzer's own RSS grows with atheris's coverage instrumentation and its in-memory corpus (replaying
the same inputs, an instrumented process grew by ~48 MiB per pass over 522 inputs; an uninstrumented
one by 0), so its -rss_limit_mb guards the fuzzing process, not the service. This is the check of the
service's memory and time: every input of the corpus (and libFuzzer's findings), `--rounds` times, in
a plain process. It prints the RSS after each round, the peak and the slowest input, and fails when a
later round grows the RSS (a leak), the peak passes `--peak-limit-mb` (one input's decode too big) or
an input takes over `--max-seconds` (2 s). Instrumented Python runs several times slower, which is why
the time limit is checked here and libFuzzer's own -timeout is a looser guard.

It runs with the engines' allocator settings (app.engines.environment.ALLOCATOR_ENV; it restarts itself with them if
they are not set), since the engines are where uploads are decoded. Under glibc's defaults the mmap
threshold rises after the first big free, and the RSS steps up once, in round 2, by 10-20 MiB on a
fresh corpus: a change of allocator policy that the engines don't have, not a leak (the same corpus is
flat from round 1 under the engines' settings; a leak grows every round).

    python -m fuzz.replay artifacts/fuzz/corpus
    python -m fuzz.replay --harness grpc artifacts/fuzz/grpc/corpus    # the gRPC converter's (fuzz/grpc_inputs.py)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from app.engines.environment import ALLOCATOR_ENV
from app.engines.worker import Resident
from fuzz.inputs import load_network, run  # not fuzz.harness: that would instrument these modules


def runner(harness: str) -> Callable[[bytes], None]:
    """One input through the harness's task, uninstrumented."""
    if harness == "grpc":
        from fuzz import grpc_inputs  # the server's protobuf stubs: only in a process that needs them

        return grpc_inputs.run
    network = load_network()
    return lambda data: run(data, network)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--harness", choices=["uploads", "grpc"], default="uploads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--growth-limit-mb", type=float, default=16.0, help="RSS growth allowed after round 1")
    parser.add_argument("--peak-limit-mb", type=float, default=1024.0)
    parser.add_argument("--max-seconds", type=float, default=2.0, help="the most one input may take, uninstrumented")
    parser.add_argument("extra", type=Path, nargs="*", help="more inputs (libFuzzer's findings)")
    args = parser.parse_args(argv)
    if any(os.environ.get(name) != value for name, value in ALLOCATOR_ENV.items()):  # read by glibc at start
        command = [sys.executable, "-m", "fuzz.replay", *(sys.argv[1:] if argv is None else argv)]
        os.execve(sys.executable, command, {**os.environ, **ALLOCATOR_ENV})
    warnings.simplefilter("ignore")  # Pillow's warnings about corrupt metadata: expected here
    paths = [p for p in sorted(args.corpus.iterdir()) if p.is_file()] + args.extra
    files = [p.read_bytes() for p in paths]
    one = runner(args.harness)
    resident = Resident()
    after, slowest = [], (0.0, Path())
    for _ in range(args.rounds):
        for path, data in zip(paths, files, strict=True):
            started = time.perf_counter()
            one(data)
            slowest = max(slowest, (time.perf_counter() - started, path))
        after.append(resident() / 2**20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    growth = after[-1] - after[0]
    print(f"  replay            {len(files)} inputs x {args.rounds}: RSS after each round "
          f"{', '.join(f'{a:.0f}' for a in after)} MiB (growth after round 1: {growth:+.1f} MiB), peak {peak:.0f} MiB")  # fmt: skip
    print(f"  slowest input     {slowest[0]:.2f} s ({slowest[1].name}; limit {args.max_seconds:g} s)")
    ok = growth <= args.growth_limit_mb and peak <= args.peak_limit_mb and slowest[0] <= args.max_seconds
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
