"""How well the service reads whole numbers (POST /v1/read, issue 34), against the exact truth of generated
number images: tools/numbers.py (MNIST test digits and fonts; canvas, scan, photo, HEIC, print) and
tools/handwriting.py (an independent generator: pen-stroke digits and MNIST training digits, a continuous
spacing model, lined, grid, sticky-note, pencil and whiteboard pages). Every image goes through the
service's own path in-process: DataPlane.read_files, its batcher and engine processes, then Reading.

    python -m bench.reading_accuracy [--n 400] [--seed 0] [--generator both] [--lengths 1 12] [--json]
    python -m bench.reading_accuracy --failures 20 --save readings.json   # also list / keep the readings

Printed, per generator: exact match by number of digits, by gap kind and by style; digit accuracy
(1 - edit distance / digits, over all digits); readings with too many and too few digits; marks right;
the reading confidence's ECE (15 bins) and its mean against the accuracy; the issue's goals, pass or fail.
A file the reader refuses (422: no ink, too many digits) is a reading of no digits. Digits come from
$MNIST_NPZ (or --npz); without it, from the committed sample. Nothing is cached: every run reads anew.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.dataplane import DataPlane, Upload
from app.errors import ServiceError
from app.model.calibration import auroc, confidence_ece, ece_floor
from tools import handwriting, numbers
from tools.numbers import NumberImage

GENERATORS = ("numbers", "handwriting")
LENGTHS = {"1": (1, 1), "2-3": (2, 3), "4-6": (4, 6), "7-12": (7, 12), "13+": (13, 10**6)}
GAP_KINDS = ("spaced", "tight", "touching", "overlapping")
ECE_BINS = 15
SURE = 0.9  # a confidence a client might accept a reading at without a look


@dataclass
class Outcome:
    """One number image: its truth and what the service read (`text` None: refused, with `refusal`)."""

    generator: str
    style: str
    gap: str
    truth: str
    marks: list[tuple[int, str]]  # (line, char), in reading order
    text: str | None
    confidence: float
    found_marks: list[tuple[int, str]]
    refusal: str = ""

    @property
    def n_digits(self) -> int:
        return len(self.truth.replace("\n", ""))

    @property
    def read_digits(self) -> str:
        return (self.text or "").replace("\n", "")

    @property
    def exact(self) -> bool:
        return self.text == self.truth

    @property
    def edits(self) -> int:
        return edit_distance(self.read_digits, self.truth.replace("\n", ""))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# ---- the images: generated in a process pool, number i depending on (seed, i) only ----


def _numbers_chunk(args: tuple[int, list[int], tuple[int, int], str | None]) -> list[NumberImage]:
    """The numbers `indexes` of tools.numbers' sample_numbers(seed)."""
    seed, indexes, lengths, npz = args
    source = numbers.DigitSource.load(npz)
    return [numbers.number_at(i, seed, source, lengths=lengths) for i in indexes]


def _handwriting_chunk(args: tuple[int, list[int], tuple[int, int], str | None]) -> list[NumberImage]:
    seed, indexes, lengths, npz = args
    source = handwriting.HandSource.load(npz)
    return [handwriting.make_hand_number(np.random.default_rng([seed, i]), source, lengths=lengths) for i in indexes]


CHUNKS: dict[str, Callable[[tuple[int, list[int], tuple[int, int], str | None]], list[NumberImage]]] = {
    "numbers": _numbers_chunk,
    "handwriting": _handwriting_chunk,
}


def generate(generator: str, n: int, seed: int, lengths: tuple[int, int], npz: str | None, workers: int) -> list:
    """`n` number images of `generator`, made in `workers` processes."""
    step = max(1, -(-n // (workers * 4)))
    jobs = [(seed, list(range(i, min(n, i + step))), lengths, npz) for i in range(0, n, step)]
    with ProcessPoolExecutor(workers) as pool:
        return [number for chunk in pool.map(CHUNKS[generator], jobs) for number in chunk]


# ---- reading them, as the service does ----


async def read_all(images: Sequence[NumberImage], generator: str, engines: int) -> list[Outcome]:
    """Each image read by the data plane (one request per image, as a client sends them)."""
    settings = Settings(engine_processes=engines, batch_max_wait_ms=0.0)
    dataplane = await DataPlane.load(settings, check_with_keras=False)
    window = asyncio.Semaphore(4 * engines)

    async def one(number: NumberImage) -> Outcome:
        truth_marks = [(m.line, m.char) for m in number.marks]
        outcome = Outcome(generator, number.style, number.gap, number.text, truth_marks, None, 0.0, [])
        async with window:
            try:
                reading = (await dataplane.read_files([Upload(number.data, "number")]))[0]
            except ServiceError as exc:
                outcome.refusal = exc.code
                return outcome
            except Exception as exc:  # the reader failed: the service answers 500; count it, keep measuring
                outcome.refusal = f"internal_error: {exc}"
                return outcome
        outcome.text, outcome.confidence = reading.text, reading.confidence
        outcome.found_marks = [(m.line, m.char) for m in reading.marks]
        return outcome

    try:
        return list(await asyncio.gather(*(one(number) for number in images)))
    finally:
        await dataplane.close()


# ---- the figures ----


def digit_accuracy(outcomes: Sequence[Outcome]) -> float:
    """1 - edit distance / digits, summed over the readings (a character error rate's complement)."""
    digits = sum(o.n_digits for o in outcomes)
    return 1 - sum(o.edits for o in outcomes) / digits if digits else float("nan")


def exact(outcomes: Sequence[Outcome]) -> float:
    return float(np.mean([o.exact for o in outcomes])) if outcomes else float("nan")


def length_bucket(n: int) -> str:
    return next(name for name, (low, high) in LENGTHS.items() if low <= n <= high)


def summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Every figure of the tables, JSON-ready."""

    def by(key: Callable[[Outcome], str], order: Sequence[str]) -> dict[str, dict[str, float]]:
        groups = {k: [o for o in outcomes if key(o) == k] for k in order}
        return {
            k: {"n": len(g), "exact": exact(g), "digit_accuracy": digit_accuracy(g)} for k, g in groups.items() if g
        }

    styles = list(dict.fromkeys(o.style for o in outcomes))
    confidence = np.array([o.confidence for o in outcomes])
    correct = np.array([o.exact for o in outcomes], dtype=float)
    with_marks = [o for o in outcomes if o.marks]
    without = [o for o in outcomes if not o.marks]
    goal_set = [o for o in outcomes if o.gap in ("spaced", "tight") and 2 <= o.n_digits <= 6]
    touching = [o for o in outcomes if o.gap == "touching"]
    figures: dict[str, Any] = {
        "n": len(outcomes),
        "exact": exact(outcomes),
        "digit_accuracy": digit_accuracy(outcomes),
        "by_length": by(lambda o: length_bucket(o.n_digits), list(LENGTHS)),
        "by_gap": by(lambda o: o.gap, GAP_KINDS),
        "by_style": by(lambda o: o.style, styles),
        "too_many": float(np.mean([len(o.read_digits) > o.n_digits for o in outcomes])),
        "too_few": float(np.mean([len(o.read_digits) < o.n_digits for o in outcomes])),
        "refused": sum(1 for o in outcomes if o.text is None),
        "internal_errors": sum(1 for o in outcomes if o.refusal.startswith("internal_error")),
        "marks_right": float(np.mean([o.found_marks == o.marks for o in with_marks])) if with_marks else float("nan"),
        "marks_count_right": float(np.mean([len(o.found_marks) == len(o.marks) for o in with_marks]))
        if with_marks
        else float("nan"),
        "marks_none_false": float(np.mean([not o.found_marks for o in without])) if without else float("nan"),
        "numbers_with_marks": len(with_marks),
        "ece": confidence_ece(confidence, correct, ECE_BINS),
        "ece_floor": ece_floor(confidence, ECE_BINS),
        "auroc": auroc(confidence, correct),
        "sure": float(np.mean(confidence >= SURE)) if len(confidence) else float("nan"),
        "sure_exact": float(correct[confidence >= SURE].mean()) if (confidence >= SURE).any() else float("nan"),
        "mean_confidence": float(confidence.mean()) if len(confidence) else float("nan"),
        "goals": {},
    }
    figures["goals"] = {
        "exact >= 98.5% on 2-6 digits, spaced or tight": (exact(goal_set), 0.985, len(goal_set)),
        "exact >= 90% touching": (exact(touching), 0.90, len(touching)),
        "exact >= 97% over all kinds": (exact(outcomes), 0.97, len(outcomes)),
        "digit accuracy >= 99.5%": (digit_accuracy(outcomes), 0.995, sum(o.n_digits for o in outcomes)),
    }
    return figures


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"


def tables(title: str, f: dict[str, Any]) -> str:
    """The figures of one generator (or all together) as Markdown."""
    out = [f"### {title}: {f['n']} numbers", ""]
    for name, key in (("digits", "by_length"), ("gap", "by_gap"), ("style", "by_style")):
        out += [f"| {name} | n | exact | digit accuracy |", "|---|--:|--:|--:|"]
        out += [f"| {k} | {v['n']} | {_pct(v['exact'])} | {_pct(v['digit_accuracy'])} |" for k, v in f[key].items()]
        out += [f"| **all** | {f['n']} | {_pct(f['exact'])} | {_pct(f['digit_accuracy'])} |", ""]
    out += [
        "| reading | |",
        "|---|--:|",
        f"| too many digits | {_pct(f['too_many'])} |",
        f"| too few digits | {_pct(f['too_few'])} (refused: {f['refused']}, of which internal errors: "
        f"{f['internal_errors']}) |",
        f"| marks right, char and place ({f['numbers_with_marks']} numbers with marks) | {_pct(f['marks_right'])} |",
        f"| marks counted right | {_pct(f['marks_count_right'])} |",
        f"| no mark found where there is none | {_pct(f['marks_none_false'])} |",
        f"| confidence: mean / exact | {_pct(f['mean_confidence'])} / {_pct(f['exact'])} |",
        f"| confidence: ECE ({ECE_BINS} bins) | {_pct(f['ece'])} |",
        f"| ECE a perfectly calibrated confidence would show on {f['n']} readings | {_pct(f['ece_floor'])} |",
        f"| confidence: AUROC, right readings against wrong | {f['auroc']:.3f} |",
        f"| readings at confidence >= {SURE:.0%}: share / exact | {_pct(f['sure'])} / {_pct(f['sure_exact'])} |",
        "",
        "| goal | measured | n | |",
        "|---|--:|--:|---|",
    ]
    for goal, (value, target, n) in f["goals"].items():
        out.append(f"| {goal} | {_pct(value)} | {n} | {'pass' if value >= target else 'FAIL'} |")
    passed = f["ece"] <= 0.02
    out += [f"| ECE <= 2% | {_pct(f['ece'])} | {f['n']} | {'pass' if passed else 'FAIL'} |", ""]
    return "\n".join(out)


def failures(outcomes: Sequence[Outcome], limit: int) -> str:
    """A few wrong readings, for a human to see what goes wrong."""
    wrong = [o for o in outcomes if not o.exact][:limit]
    lines = ["| generator | style | gap | truth | read | confidence |", "|---|---|---|---|---|--:|"]
    for o in wrong:
        read = o.text.replace("\n", "⏎") if o.text is not None else f"(refused: {o.refusal})"
        lines.append(
            f"| {o.generator} | {o.style} | {o.gap} | {o.truth.replace(chr(10), '⏎')} | {read} | {o.confidence:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reading_accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400, help="numbers per generator (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--generator", choices=(*GENERATORS, "both"), default="both")
    parser.add_argument("--lengths", type=int, nargs=2, default=(1, 12), metavar=("LOW", "HIGH"), help="digits a line")
    parser.add_argument("--npz", default=os.environ.get("MNIST_NPZ") or None, help="MNIST .npz (default: $MNIST_NPZ)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="generating processes")
    parser.add_argument("--engines", type=int, default=min(2, os.cpu_count() or 1), help="the data plane's engines")
    parser.add_argument("--failures", type=int, default=0, help="also list this many wrong readings")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    parser.add_argument("--save", type=Path, help="also write the figures and every reading as JSON to this file")
    args = parser.parse_args(argv)
    if args.n < 1 or not 1 <= args.lengths[0] <= args.lengths[1]:
        parser.error("--n must be at least 1 and --lengths LOW HIGH with 1 <= LOW <= HIGH")
    generators = GENERATORS if args.generator == "both" else (args.generator,)
    every: list[Outcome] = []
    report: dict[str, Any] = {"seed": args.seed, "n": args.n, "lengths": list(args.lengths), "npz": args.npz}
    for generator in generators:
        started = time.perf_counter()
        images = generate(generator, args.n, args.seed, tuple(args.lengths), args.npz, args.workers)
        made = time.perf_counter() - started
        outcomes = asyncio.run(read_all(images, generator, args.engines))
        every += outcomes
        figures = summary(outcomes)
        report[generator] = figures
        if not args.json:
            print(tables(f"{generator} (seed {args.seed}; made in {made:.0f} s, read in "
                         f"{time.perf_counter() - started - made:.0f} s)", figures))  # fmt: skip
    if len(generators) > 1:
        report["all"] = summary(every)
        if not args.json:
            print(tables("all generators together", report["all"]))
    report["outcomes"] = [asdict(o) for o in every]
    if args.save:
        args.save.write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report, indent=1))
    elif args.failures:
        print(failures(every, args.failures))
    if not args.json:
        print(f"digits from {args.npz or 'the committed sample (set MNIST_NPZ for MNIST)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
