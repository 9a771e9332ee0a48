"""Accuracy on realistic uploads, on many more digits than the tests use: each kind of upload in
tools/uploads.py made from MNIST test digits, preprocessed as the service does, against the same
digits as raw 28x28 arrays (issue 3's target: within 1 point). Also, per kind, the expected calibration
error (15 bins; issue 14's target: at most 1.5% on uploads) and, for a model with a digit scorer, the
share of these real digits that `is_digit` calls non-digits (issue 14's target: at most 1%).

    python -m bench.uploads_accuracy --n 10000                 # every kind, all 10,000 test digits
    python -m bench.uploads_accuracy --kind thick_small --model models/mnist-mlp.keras --model OTHER.keras

Digits come from $MNIST_NPZ (or --data); without it, from the committed 1,000-digit sample. The
preprocessed digits are cached under artifacts/uploads-cache/ (keyed by kind, digits, seed and the
source of app's preprocessing and tools/uploads.py), so comparing models costs seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from app.contract import flatten_and_scale
from app.model.calibration import expected_calibration_error
from app.model.classifier import Classifier
from app.preprocessing import ImageError, preprocess
from tools.uploads import KINDS, SAMPLE, make_upload
from training.data import load_mnist

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "artifacts" / "uploads-cache"


def load_digits(data: Path | None, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    if data is not None or os.environ.get("MNIST_NPZ"):
        mnist = load_mnist(data)
        return mnist.x_test[:n], mnist.y_test[:n], f"{mnist.source} (test split)"
    with np.load(SAMPLE) as sample:
        return sample["x"][:n], sample["y"][:n], f"{SAMPLE.relative_to(ROOT)}"


def _chunk(args: tuple[str, np.ndarray, int, int]) -> np.ndarray:
    """Preprocessed (n, 28, 28) uint8 digits for one chunk; an upload refused is an all-zero digit
    (which preprocessing never returns: it refuses a blank image)."""
    kind, digits, seed, start = args
    out = np.zeros((len(digits), 28, 28), dtype=np.uint8)
    for i, digit in enumerate(digits):
        rng = np.random.default_rng([seed, list(KINDS).index(kind), start + i])
        with contextlib.suppress(ImageError):
            out[i] = preprocess(make_upload(kind, digit, rng)).model_input.reshape(28, 28) * 255 + 0.5
    return out


def sources(module: Path) -> list[Path]:
    """The source files of a module: `module.py`, or every .py of the package `module/`."""
    single = module.with_suffix(".py")
    return [single] if single.is_file() else sorted(module.rglob("*.py"))


def preprocessed(kind: str, digits: np.ndarray, seed: int, workers: int) -> np.ndarray:
    source = b"".join(p.read_bytes() for p in [*sources(ROOT / "app" / "preprocessing"), ROOT / "tools" / "uploads.py"])
    key = hashlib.sha256(source + digits.tobytes() + f"{kind}/{seed}".encode()).hexdigest()[:16]
    path = CACHE / f"{kind}-{len(digits)}-{key}.npy"
    if path.is_file():
        return np.load(path)
    step = max(1, -(-len(digits) // (workers * 8)))
    jobs = [(kind, digits[i : i + step], seed, i) for i in range(0, len(digits), step)]
    with ProcessPoolExecutor(workers) as pool:
        result = np.concatenate(list(pool.map(_chunk, jobs)))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, result)
    return result


def measure(classifier: Classifier, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy of `x` against `y` (an all-zero digit, an upload refused, counts as wrong), and over the
    uploads answered: the ECE and the share that `is_digit` flags (NaN without a digit scorer)."""
    parts = [classifier.predict(flatten_and_scale(x[i : i + 2048])) for i in range(0, len(x), 2048)]
    probabilities = np.concatenate([p for p, _ in parts])
    answered = x.any(axis=(1, 2))
    flags = [classifier.is_digit(s) for _, s in parts]
    flagged = float("nan") if any(f is None for f in flags) else float(1 - np.concatenate(flags)[answered].mean())
    return {
        "accuracy": float(np.mean((probabilities.argmax(axis=1) == y) & answered)),
        "ece": expected_calibration_error(probabilities[answered], y[answered]),
        "flagged": flagged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.uploads_accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="test digits per kind (default: %(default)s)")
    parser.add_argument("--kind", action="append", choices=sorted(KINDS), help="only this kind (repeatable)")
    parser.add_argument("--model", action="append", type=Path, help="a .keras file (repeatable; default: committed)")
    parser.add_argument("--data", type=Path, default=None, help="MNIST .npz (default: $MNIST_NPZ, else the sample)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the uploads (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    x, y, source = load_digits(args.data, args.n)
    print(f"digits: {len(x)} from {source}; upload seed {args.seed}")
    for model in args.model or [ROOT / "models" / "mnist-mlp.keras"]:
        classifier = Classifier.load(model, verify_sha256=False)
        raw = measure(classifier, x, y)
        print(f"\nmodel: {model}")
        print(f"{'kind':<20} {'accuracy':>8} {'gap':>7}  {'within 1 point':<14} {'ECE':>6} {'not a digit':>11}")
        print(
            f"{'raw 28x28 arrays':<20} {raw['accuracy']:>8.2%} {'':>7}  {'':<14} {raw['ece']:>6.2%} {raw['flagged']:>11.2%}"
        )
        every = []
        for kind in args.kind or KINDS:
            ours = measure(classifier, preprocessed(kind, x, args.seed, args.workers), y)
            every.append(ours)
            gap = 100 * (raw["accuracy"] - ours["accuracy"])
            print(
                f"{kind:<20} {ours['accuracy']:>8.2%} {gap:>6.2f}p  {'yes' if gap <= 1 else 'NO':<14} "
                f"{ours['ece']:>6.2%} {ours['flagged']:>11.2%}"
            )
        mean = {k: float(np.mean([m[k] for m in every])) for k in ("accuracy", "ece", "flagged")}
        print(
            f"{'every kind (mean)':<20} {mean['accuracy']:>8.2%} {'':>7}  {'':<14} {mean['ece']:>6.2%} {mean['flagged']:>11.2%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
