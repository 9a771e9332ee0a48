"""The served forward pass in-process, per batch size: `forward` (app/model/) against the plain
dense product `x @ kernel` per layer, on MNIST digits (a different batch of them each call, up to 200
batches, from the committed 1,000-digit sample), one BLAS thread, best of 5 passes.

    python -m bench.forward [--model models/mnist-mlp.keras] [--idle-ms 1]

What it shows: the sparse products, ROW_BY_ROW and the padding to BLAS_ROWS (why they are there,
and what they buy: the sizes include 7, 11 and 31, which are padded), and the cost
of a batch of 1 and of 64 (issue 14's limit on a wider net). For a model with a digit scorer, `served us`
is what an engine runs, the classifier and the scorer (app/model/network.py's Network); run it on the model
before and after a retraining to compare (issue 14: at most 1.5x at batch 1 and 64).

`--idle-ms` sleeps that long between calls (not timed), as an engine waits for its next batch: on this
VM a call after a sleep costs far more than one right after another (the caches and the core are cold
again), which is what the engines of a lightly loaded server pay.
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
from app.model.classifier import Classifier
from app.model.network import DenseLayer, forward
from tools.uploads import SAMPLE

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 16, 31, 32, 64)
BATCHES = 200  # different batches of digits timed in turn, at most (the sample has 1,000 digits)


def dense(layers: list[DenseLayer], x: np.ndarray) -> np.ndarray:
    """The textbook forward pass: every kernel in full."""
    for layer in layers:
        x = x @ layer.kernel + layer.bias
        if layer.activation == "relu":
            x = np.maximum(x, 0.0)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def best_us(
    call: Callable[[np.ndarray], object], batches: list[np.ndarray], seconds: float = 0.2, idle_s: float = 0.0
) -> float:
    """Microseconds per call, on each batch in turn (best of 5 passes): the rows a sparse product reads,
    and what the caches hold, change from one image to the next, as in an engine. `idle_s`: a sleep
    before each call, not counted."""
    call(batches[0])
    if idle_s:
        batches = batches[: max(1, int(seconds / idle_s))]  # the sleeps dominate the run's length
        return min(_timed_after_sleeps(call, batches, idle_s) for _ in range(5)) * 1e6
    passes = max(1, int(seconds / max(_timed(call, batches), 1e-6) / len(batches)))
    return min(_timed(call, batches * passes) for _ in range(5)) * 1e6


def _timed(call: Callable[[np.ndarray], object], batches: list[np.ndarray]) -> float:
    started = time.perf_counter()
    for batch in batches:
        call(batch)
    return (time.perf_counter() - started) / len(batches)


def _timed_after_sleeps(call: Callable[[np.ndarray], object], batches: list[np.ndarray], idle_s: float) -> float:
    total = 0.0
    for batch in batches:
        time.sleep(idle_s)
        started = time.perf_counter()
        call(batch)
        total += time.perf_counter() - started
    return total / len(batches)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mnist-mlp.keras")
    parser.add_argument("--idle-ms", type=float, default=0.0, help="sleep before each call, not timed")
    args = parser.parse_args(argv)
    idle_s = args.idle_ms / 1000
    classifier = Classifier.load(args.model)
    layers, network = classifier.layers, classifier.network
    with np.load(SAMPLE) as sample:
        digits = flatten_and_scale(sample["x"])
    print(f"{args.model.name}: {' x '.join(str(layer.kernel.shape) for layer in layers)}", end="")
    print(f"; digit scorer {' x '.join(str(layer.kernel.shape) for layer in network.scorer)}" if network.scorer else "")
    print(f"{'batch':>5} {'forward us':>11} {'per image':>10} {'dense us':>9} {'dense/forward':>14} {'served us':>10}")
    for size in SIZES:
        batches = [digits[i : i + size] for i in range(0, min(len(digits), BATCHES * size) - size + 1, size)]
        np.testing.assert_allclose(forward(layers, batches[0]), dense(layers, batches[0]), atol=1e-5)
        ours = best_us(lambda x: forward(layers, x), batches, idle_s=idle_s)
        plain = best_us(lambda x: dense(layers, x), batches, idle_s=idle_s)
        served = best_us(network, batches, idle_s=idle_s) if network.scorer else ours
        print(f"{size:>5} {ours:>11.0f} {ours / size:>10.1f} {plain:>9.0f} {plain / ours:>13.2f}x {served:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
