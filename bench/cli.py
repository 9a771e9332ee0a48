"""`mnist-service predict` on a folder of realistic uploads, in-process against `--url` with a local
`python -m app` (what `make serve` runs) on the same cores: files/s of each, the ratio (issue 15's goal:
in-process at least 1.5x), the CPU per file of each (their ratio bounds what in-process can gain), and
a check that both gave the same digit for every file.

    python -m bench.cli                      # 10,000 uploads (every kind of tools/uploads.py, in turn)
    python -m bench.cli --n 2000 --keep DIR  # fewer; keep the folder

Digits come from $MNIST_NPZ's test split, else the committed 1,000-digit sample (repeated). Both modes
use every usable core: the in-process run as many engine processes, the server as many
(MNIST_ENGINE_PROCESSES) behind one uvicorn worker. Each time is the command's wall time, start-up
included: the in-process run pays for starting its engines, the server was started beforehand.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench.procs import ROOT, CpuMeter, Server
from tools.uploads import KINDS, SAMPLE, make_upload

GOAL = 1.5


def load_digits() -> tuple[np.ndarray, str]:
    """(n, 28, 28) uint8 MNIST test digits, and where they came from."""
    source = os.environ.get("MNIST_NPZ")
    if source:
        with np.load(source) as mnist:
            return mnist["x_test"], f"{source} (test split)"
    with np.load(SAMPLE) as sample:
        return sample["x"], str(SAMPLE.relative_to(ROOT))


def _write(args: tuple[Path, np.ndarray, int, int]) -> None:
    folder, digits, seed, start = args
    kinds = list(KINDS)
    for i in range(start, start + len(digits)):
        kind = kinds[i % len(kinds)]
        data = make_upload(kind, digits[i - start], np.random.default_rng([seed, i]))
        suffix = (Image.open(io.BytesIO(data)).format or "bin").lower().replace("jpeg", "jpg")
        (folder / f"{i:05d}-{kind}.{suffix}").write_bytes(data)


def write_uploads(folder: Path, n: int, seed: int, workers: int) -> None:
    """n upload files in `folder`, the kinds in turn, the i-th showing test digit i (mod the digits)."""
    digits, _ = load_digits()
    chosen = digits[np.arange(n) % len(digits)]
    step = -(-n // (workers * 8))
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write, [(folder, chosen[s : s + step], seed, s) for s in range(0, n, step)]))


def command() -> list[str]:
    """The installed console script beside this Python, else the module."""
    script = Path(sys.executable).with_name("mnist-service")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children and theirs (the CLI's engines)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_predict(folder: Path, *options: str) -> tuple[float, float, dict[str, int], int]:
    """Seconds, CPU seconds (the command's and its engines'), {file: digit} and the exit status of
    `mnist-service predict FOLDER --json OPTIONS`."""
    argv = [*command(), "predict", str(folder), "--json", "--no-progress", *options]
    cpu, started = children_cpu_s(), time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    seconds, cpu = time.perf_counter() - started, children_cpu_s() - cpu
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    digits = {row["file"]: row["digit"] for row in map(json.loads, result.stdout.splitlines())}
    return seconds, cpu, digits, result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="uploads in the folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the uploads here and keep them (default: a temp folder)")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="mnist-bench-cli-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        write_uploads(folder, args.n, args.seed, cores)
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(
            f"{args.n} uploads ({len(KINDS)} kinds in turn, {size / args.n / 1024:.1f} KiB each on average) "
            f"from {load_digits()[1]}, written in {time.perf_counter() - started:.0f} s; {cores} cores"
        )
        local_s, local_cpu, local, local_status = timed_predict(folder, "--processes", str(cores))
        server = Server.service(env={"MNIST_ENGINE_PROCESSES": str(cores)})
        try:
            meter = CpuMeter(server.pid)
            meter.start()
            http_s, client_cpu, remote, http_status = timed_predict(folder, "--url", server.url)
            meter.stop()
            if meter.partial:  # an engine was replaced during the run: its share is partly missing
                print(
                    "note: an engine process was replaced during the --url run; the CPU figures miss some of its share"
                )
            server_cpu, engines_cpu = meter.server, meter.engines
        finally:
            server.stop()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    local_rate, http_rate = args.n / local_s, args.n / http_s
    print(f"in-process:   {local_rate:7.0f} files/s  ({local_s:.1f} s, {len(local)} answered, exit {local_status})")
    print(f"--url (HTTP): {http_rate:7.0f} files/s  ({http_s:.1f} s, {len(remote)} answered, exit {http_status})")
    print(f"ratio:        {local_rate / http_rate:7.2f}x  (goal: at least {GOAL}x)")
    ms = 1000 / args.n
    http_cpu = client_cpu + server_cpu + engines_cpu
    print(
        f"CPU per file: in-process {local_cpu * ms:.2f} ms (the command and its engines); --url {http_cpu * ms:.2f} ms "
        f"(client {client_cpu * ms:.2f}, server {server_cpu * ms:.2f}, its engines {engines_cpu * ms:.2f})"
    )
    print(
        f"bound:        {http_cpu / local_cpu:7.2f}x  (the most in-process can gain while both keep every core busy: "
        "--url's CPU per file over in-process's)"
    )
    differ = sorted(name for name in local.keys() | remote.keys() if local.get(name) != remote.get(name))
    print(
        f"same digits:  {'yes' if not differ else 'NO'} ({len(differ)} files differ{': ' + ', '.join(differ[:5]) if differ else ''})"
    )
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
