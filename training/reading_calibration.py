"""Fit /v1/read's confidence for a model: `python -m training.reading_calibration` (`make train` runs it
after training; run it alone to refit the committed model's).

Numbers of both generators (tools/numbers.py and tools/handwriting.py) are made from MNIST training digits
that the reading figures never use (the first 50,000: tools/numbers.py measures on the test set and
tools/handwriting.py on the last 10,000), read by the service's own data plane and engines, and a logistic
model of "the whole reading is right" is fitted on app/model/reading_calibration.py's features of the
readings of two digits or more (one digit keeps its own probability). A fifth of the numbers is held out:
the ECE and AUROC printed are theirs, before (the product of the digits' probabilities and the cuts'
certainty) and after. It writes `<model>.reading.json`, for that model's sha256.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.config import Settings
from app.contract import sha256_file
from app.dataplane import DataPlane, Upload
from app.errors import ServiceError
from app.model.calibration import auroc, confidence_ece, ece_floor
from app.model.keras_file import ModelLoadError
from app.model.reading_calibration import FEATURES, ReadingCalibration, calibration_path, features
from tools import handwriting, numbers
from tools.numbers import NumberImage

TRAINING_DIGITS = 50_000  # MNIST's first training digits: the reading figures use none of them
HOLD_OUT = 5  # every HOLD_OUT-th number is held out of the fit
L2 = 1e-3
STEPS = 4000


def make_numbers(job: tuple[str, int, list[int], str | None]) -> list[NumberImage]:
    """Numbers `indexes` of one generator, from MNIST's first training digits (the committed sample's
    digits, and pen-stroke digits only, without an .npz)."""
    generator, seed, indexes, npz = job
    if npz is None:
        source, hands = numbers.DigitSource.load(), handwriting.HandSource(None, None)
    else:
        with np.load(npz) as data:
            images, labels = data["x_train"][:TRAINING_DIGITS], data["y_train"][:TRAINING_DIGITS].astype(np.int64)
        source, hands = (
            numbers.DigitSource(images, labels, numbers.find_fonts()),
            handwriting.HandSource(images, labels),
        )
    if generator == "numbers":
        return [numbers.number_at(i, seed, source) for i in indexes]
    return [handwriting.make_hand_number(np.random.default_rng([seed, i]), hands, lengths=(1, 12)) for i in indexes]


class Read(NamedTuple):
    """Numbers read as the service reads them (refused ones left out: their confidence is no reading's)."""

    features: np.ndarray  # (N, len(FEATURES))
    right: np.ndarray  # (N,) bool: the whole text is the truth
    product: np.ndarray  # (N,) the confidence before calibration: the digits' probabilities x the cuts' certainty
    digits: np.ndarray  # (N,) how many digits were read

    def calibrated(self, calibration: ReadingCalibration) -> np.ndarray:
        """(N,) the confidence the service gives with `calibration` (one digit keeps its product)."""
        return np.where(self.digits >= 2, calibration.of_features(self.features), self.product)


async def read(images: list[NumberImage], settings: Settings) -> Read:
    """Each number read by the data plane, as a client's request is."""
    dataplane = await DataPlane.load(settings, check_with_keras=False)
    window = asyncio.Semaphore(4 * settings.engine_processes)

    async def one(number: NumberImage) -> tuple[np.ndarray, bool, float, int] | None:
        async with window:
            try:
                reading = (await dataplane.read_files([Upload(number.data, "number")]))[0]
            except ServiceError:
                return None
        product = reading.certainty * float(np.prod([d.confidence for d in reading.digits]))
        return features(reading), reading.text == number.text, product, len(reading.digits)

    try:
        found = [r for r in await asyncio.gather(*(one(n) for n in images)) if r is not None]
    finally:
        await dataplane.close()
    x, right, product, digits = zip(*found, strict=True)
    return Read(np.array(x), np.array(right), np.array(product), np.array(digits))


def fit(x: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic regression (full-batch gradient descent on standardised features, a little L2), its
    weights and bias given back for the raw features."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    w = np.zeros(z.shape[1])
    y = right.astype(np.float64)
    for _ in range(STEPS):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        w -= z.T @ (p - y) / len(y) + L2 * np.r_[w[:-1], 0.0]
    weights = w[:-1] / scale
    return weights, float(w[-1] - weights @ mean)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.reading_calibration", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/mnist-mlp.keras"), help="(default: %(default)s)")
    parser.add_argument("--data", type=Path, help="MNIST .npz (default: $MNIST_NPZ; without one: the committed sample)")
    parser.add_argument("--n", type=int, default=1000, help="numbers per generator (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="generating processes")
    parser.add_argument("--engines", type=int, default=2, help="the data plane's engines (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.n < 2 * HOLD_OUT:
        parser.error(f"--n must be at least {2 * HOLD_OUT}")
    if not args.model.is_file():
        print(f"error: model file {args.model} does not exist", file=sys.stderr)
        return 2
    data = args.data or (Path(os.environ["MNIST_NPZ"]) if os.environ.get("MNIST_NPZ") else None)
    logging.getLogger("app").setLevel(logging.ERROR)  # the model's present calibration, or none, is no news here
    started = time.perf_counter()
    step = max(1, -(-args.n // (4 * args.workers)))
    jobs = [
        (generator, args.seed, list(range(i, min(args.n, i + step))), str(data) if data else None)
        for generator in ("numbers", "handwriting")
        for i in range(0, args.n, step)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        images = [number for chunk in pool.map(make_numbers, jobs) for number in chunk]
    settings = Settings(model_path=args.model, engine_processes=args.engines, batch_max_wait_ms=0.0)
    try:
        found = asyncio.run(read(images, settings))
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x, right = found.features, found.right
    held = np.arange(len(x)) % HOLD_OUT == 0
    fitted_on = ~held & (found.digits >= 2)  # one digit keeps its own probability
    if right[fitted_on].all() or not right[fitted_on].any():
        print("every reading of two digits or more was right, or none: nothing to fit a calibration on")
        return 1
    weights, bias = fit(x[fitted_on], right[fitted_on])
    sha256 = sha256_file(args.model)
    fitted = {
        "command": " ".join(["python -m training.reading_calibration", *(sys.argv[1:] if argv is None else argv)]),
        "numbers": len(x),
        "fitted_on": int(fitted_on.sum()),
        "held_out": int(held.sum()),
        "seed": args.seed,
        "digits": f"MNIST x_train[:{TRAINING_DIGITS}]" if data else "the committed sample",
        "accuracy_held_out": round(float(right[held].mean()), 4),
    }
    calibration = ReadingCalibration(tuple(map(float, weights)), bias, sha256, fitted)
    for name, confidence in (("before", found.product[held]), ("after", found.calibrated(calibration)[held])):
        figures = {
            "ece": confidence_ece(confidence, right[held]),
            "ece_floor": ece_floor(confidence),
            "auroc": auroc(confidence, right[held]),
        }
        fitted[name] = {k: round(v, 4) for k, v in figures.items()}
    path = calibration_path(args.model)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(calibration.to_json(), indent=1) + "\n")
    os.replace(staging, path)  # atomic: a server polling the model never reads half a file
    print(report(calibration, time.perf_counter() - started, path))
    return 0


def report(calibration: ReadingCalibration, seconds: float, path: Path) -> str:
    f = calibration.fitted
    lines = [
        f"reading calibration for model {calibration.model_sha256[:12]}: {f['numbers']} numbers read in {seconds:.0f} s, "
        f"fitted on the {f['fitted_on']} others of two digits or more; {f['held_out']} held out "
        f"({f['accuracy_held_out']:.1%} of them read exactly)",
        "",
        "| held out | ECE | ECE of a perfectly calibrated confidence | AUROC |",
        "|---|--:|--:|--:|",
    ]
    for name in ("before", "after"):
        g = f[name]
        lines.append(f"| {name} | {g['ece']:.1%} | {g['ece_floor']:.1%} | {g['auroc']:.3f} |")
    lines += ["", "weights: " + ", ".join(f"{n} {w:+.3f}" for n, w in zip(FEATURES, calibration.weights, strict=True))]
    lines.append(f"bias {calibration.bias:+.3f}; written to {path}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
