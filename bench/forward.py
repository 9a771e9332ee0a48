"""The served forward pass in-process, per batch size: `forward` (app/inference.py) against the plain
dense product `x @ kernel` per layer, on MNIST digits, one BLAS thread, best of 5 repeats.

    python -m bench.forward [--model models/mnist-mlp.keras]

What it shows: the sparse products and ROW_BY_ROW (why they are there, and what they buy), and the cost
of a batch of 1 and of 64 (issue 14's limit on a wider net). For a model with a digit scorer, `served us`
is what an engine runs, the classifier and the scorer (app/inference.py's Network); run it on the model
before and after a retraining to compare (issue 14: at most 1.5x at batch 1 and 64).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the engines run it; before numpy loads

import numpy as np

from app.contract import flatten_and_scale
from app.inference import Classifier, DenseLayer, forward
from tools.uploads import SAMPLE

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 2, 3, 4, 6, 8, 16, 32, 64)


def dense(layers: list[DenseLayer], x: np.ndarray) -> np.ndarray:
    """The textbook forward pass: every kernel in full."""
    for layer in layers:
        x = x @ layer.kernel + layer.bias
        if layer.activation == "relu":
            x = np.maximum(x, 0.0)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def best_us(call: Callable[[], object], seconds: float = 0.2) -> float:
    call()
    runs = max(1, int(seconds / max(_once(call), 1e-6)))
    return min(_timed(call, runs) for _ in range(5)) * 1e6


def _once(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _timed(call: Callable[[], object], runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        call()
    return (time.perf_counter() - started) / runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mnist-mlp.keras")
    args = parser.parse_args(argv)
    classifier = Classifier.load(args.model)
    layers, network = classifier.layers, classifier.network
    with np.load(SAMPLE) as sample:
        digits = flatten_and_scale(sample["x"][:64])
    print(f"{args.model.name}: {' x '.join(str(layer.kernel.shape) for layer in layers)}", end="")
    print(f"; digit scorer {' x '.join(str(layer.kernel.shape) for layer in network.scorer)}" if network.scorer else "")
    print(f"{'batch':>5} {'forward us':>11} {'per image':>10} {'dense us':>9} {'dense/forward':>14} {'served us':>10}")
    for size in SIZES:
        x = digits[:size]
        np.testing.assert_allclose(forward(layers, x), dense(layers, x), atol=1e-5)
        ours, plain = best_us(lambda x=x: forward(layers, x)), best_us(lambda x=x: dense(layers, x))
        served = best_us(lambda x=x: network(x)) if network.scorer else ours
        print(f"{size:>5} {ours:>11.0f} {ours / size:>10.1f} {plain:>9.0f} {plain / ours:>13.2f}x {served:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
