"""What reading a number costs an engine against what /v1/predict costs it (issue 34's goal: a 4-digit
canvas at most 3x the engine CPU of /v1/predict on a one-digit canvas of the same size).

The canvases are what the demo page's number mode sends: 840x280, white, a #111 pen 18 px wide with
round caps (tools/handwriting.py's pen strokes, fixed seeds). A "read" request is one of four numbers of
four spaced digits (NUMBERS), a "predict" request the first digit of the same number alone; the cost
depends on the digits, so each figure is the mean over the four. Each request is one task evaluated by
the engine's own code, `app.engines.worker.evaluate([task], network)`: a read-files task (POST /v1/read)
or a classify-files task (POST /v1/predict), with the committed model and the default settings.

    python -m bench.reading_speed                  # CPU seconds per request (process time), the two kinds in
                                                   # turn in one process, round by round; the median ratio
    python -m bench.reading_speed --instructions   # and instructions per request under valgrind's callgrind

Both run in child processes with the engines' environment (one BLAS thread, their allocator settings).
CPU time on this shared machine moves by 20-40% from run to run; the instruction count does not (see
bench/instructions.sh): each figure is (instructions of a process that makes WARMUP + N rounds of the
four requests - one that makes WARMUP) / 4N, so start-up, imports and first uses cancel out. Needs
valgrind for --instructions (apt-get install valgrind). An instruction is not a cycle, so the two ratios
differ; the goal is stated in CPU. Exit status 1 when either ratio is over the goal.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from app.config import Settings
from app.engines.environment import CHILD_ENV
from app.engines.tasks import ClassifyFiles, ReadFiles, Task
from app.engines.worker import evaluate
from app.model.classifier import load_classifier
from app.model.network import Network
from tools.handwriting import stroke_digit

GOAL = 3.0
WIDTH, HEIGHT, PEN = 840, 280, 18.0  # app/static/app.js: the number mode's pad and pen
NUMBERS = ("4825", "7193", "3506", "6048")  # the cost depends on the digits: a request is each in turn
ROOT = Path(__file__).resolve().parent.parent
BOTH = "both in turn"  # a child that times the two kinds of request round by round


def canvas(text: str, seed: int = 0) -> bytes:
    """An 840x280 demo-page canvas PNG (RGBA, opaque white) of `text` written with the page's pen, spaced
    and centred."""
    rng = np.random.default_rng([seed, len(text)])
    drawn = [stroke_digit(int(c), 170.0, PEN, 0.1, rng).coverage for c in text]
    coverage = np.zeros((HEIGHT, WIDTH), np.float32)
    gap = 40
    x = (WIDTH - sum(d.shape[1] for d in drawn) - gap * (len(drawn) - 1)) // 2
    for d in drawn:
        top = (HEIGHT - d.shape[0]) // 2
        np.maximum(
            coverage[top : top + d.shape[0], x : x + d.shape[1]],
            d,
            out=coverage[top : top + d.shape[0], x : x + d.shape[1]],
        )
        x += d.shape[1] + gap
    grey = np.rint(255 - (255 - 0x11) * coverage).astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    return out.getvalue()


@cache
def tasks() -> dict[str, list[Task]]:
    """The two kinds of request as the engines get them, the data plane's tasks with the default settings:
    each number of NUMBERS read, and its first digit alone predicted, on canvases of the same size."""
    settings = Settings()
    return {
        "read 4 digits": [ReadFiles([canvas(n)], settings.max_pixels, settings.max_digits) for n in NUMBERS],
        "predict 1 digit": [ClassifyFiles([canvas(n[0])], "mnist", settings.max_pixels) for n in NUMBERS],
    }


def run(requests: list[Task], net: Network, times: int) -> None:
    """Each request evaluated alone, as an engine evaluates a batch of one task, `times` over."""
    for _ in range(times):
        for task in requests:
            evaluate([task], net)


def network() -> Network:
    return load_classifier(Settings(), check_with_keras=False).network


def answers(net: Network) -> dict[str, str]:
    """What each task answers (a sanity check: the canvases are read as drawn)."""
    out = {}
    for name, requests in tasks().items():
        digits = [evaluate([task], net).probabilities.argmax(axis=1) for task in requests]
        out[name] = " ".join("".join(str(d) for d in found) for found in digits)
    return out


def child(name: str, count: int, rounds: int) -> None:
    """In a child process with the engines' environment: make every request of the kind `count` times
    (under valgrind, the parent subtracts a run with fewer); or, for `name` BOTH and `rounds` after a
    warm-up, both kinds in turn, printing each round's CPU seconds per request of each, read then
    predict: the two share the machine's load of that moment, which drifts from minute to minute here."""
    net = network()
    if name != BOTH:
        run(tasks()[name], net, count)
        return
    kinds = list(tasks().values())
    for requests in kinds:
        run(requests, net, 1)
    for _ in range(rounds):
        seconds = []
        for requests in kinds:
            started = time.process_time()
            run(requests, net, count)
            seconds.append((time.process_time() - started) / (count * len(requests)))
        print(*seconds)


def _child(name: str, count: int, rounds: int = 0, valgrind: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "bench.reading_speed",
        "--child",
        name,
        "--count",
        str(count),
        "--rounds",
        str(rounds),
    ]
    if valgrind:
        argv = [
            "setarch",
            os.uname().machine,
            "-R",
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            *argv,
        ]
    env = {**os.environ, **CHILD_ENV, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)


def cpu_rounds(n: int, rounds: int) -> np.ndarray:
    """(rounds, 2): per round, a child's CPU seconds per read request and per predict request, `n` a round."""
    lines = _child(BOTH, n, rounds).stdout.split("\n")
    return np.array([[float(v) for v in line.split()] for line in lines if line.strip()])


def instructions(name: str, count: int) -> int:
    """Instructions of a child process that evaluates the task `count` times, counted by callgrind."""
    done = _child(name, count, valgrind=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind count in: {done.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reading_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--n", type=int, default=None, help="rounds of the 4 requests (default: 12; 3 counted)")
    parser.add_argument("--rounds", type=int, default=5, help="CPU-time rounds (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds under valgrind (default: 1)")
    parser.add_argument("--child", choices=(*tasks(), BOTH), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.count, args.rounds)
        return 0
    net = network()
    print(f"engine cost per request, {WIDTH}x{HEIGHT} demo-page canvases; model {net.version}")
    print(f"answers: {answers(net)} (drawn: {' '.join(NUMBERS)}; their first digits alone)")
    ratios = {"CPU time": measure_cpu(args.n or 12, args.rounds)}
    if args.instructions:
        ratios["instructions"] = measure_instructions(args.n or 3, args.warmup)
    for unit, ratio in ratios.items():
        print(f"  ratio read/predict ({unit}): {ratio:.2f}x   goal <= {GOAL:g}x: {'pass' if ratio <= GOAL else 'FAIL'}")
    # the goal is stated in CPU time; the instruction count is its deterministic check: both must hold
    return 0 if all(ratio <= GOAL for ratio in ratios.values()) else 1


def measure_cpu(n: int, rounds: int) -> float:
    """Print each task's CPU time per request (median over rounds); the median of the rounds' ratios."""
    figures = cpu_rounds(n, rounds)
    for name, seconds in zip(tasks(), np.median(figures, axis=0), strict=True):
        print(
            f"  {name:<16} {seconds * 1e3:10.2f} ms CPU  (process time, median of {rounds} rounds of {n}x{len(NUMBERS)}, the two in turn)"
        )
    ratios = figures[:, 0] / figures[:, 1]
    print(f"  ratio per round (CPU time): {' '.join(f'{r:.2f}' for r in ratios)}")
    return float(np.median(ratios))


def measure_instructions(n: int, warmup: int) -> float:
    """Print each task's instructions per request; the ratio read / predict."""
    figures = {}
    for name in tasks():
        warm = instructions(name, warmup)
        figures[name] = (instructions(name, warmup + n) - warm) / (n * len(NUMBERS))
        print(
            f"  {name:<16} {figures[name] / 1e6:10.1f} M instructions  (callgrind, ({warmup}+{n}) - {warmup} rounds of {len(NUMBERS)})"
        )
    return figures["read 4 digits"] / figures["predict 1 digit"]


if __name__ == "__main__":
    raise SystemExit(main())
