"""A/B runs of the digit scorer's own layers on a trained classifier's features: how small the part of
the scorer that the service evaluates beyond the classifier can be, and where its threshold goes.

The scorer (training/scorer.py) starts with the classifier's hidden layers, frozen, so they are the same
for every candidate: this builds the scorer's training set as `make train` does (digits, bold copies,
negatives, affine copies, from `--seed`), computes those layers' activations once, and trains each
candidate's own layers on them (Adam, `--epochs`, as the recipe). For each candidate and each threshold
share of the validation digits (`--flag`), it prints the share of the MNIST test digits, of each set of
held-out non-digits (tools/nondigits.py) and of the realistic uploads (tools/uploads.py, every kind,
the cache of `make accuracy`) that `is_digit` would call non-digits, and the AUROC of the test digits
against each set. With `--members K`, each candidate is trained K times (seeds `--head-seed` onwards),
and the rows are each member alone and their ensemble (the mean of their logits, as the recipe's
`members` merges them).

    python -m bench.scorer_heads --data ../shared/data/mnist.npz --heads 256 64 32 --flag 0.01 0.007
    python -m bench.scorer_heads --data ../shared/data/mnist.npz --heads 32 --members 3 --flag 0.007
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from app.contract import flatten_and_scale
from app.model.keras_file import read_dense_layers
from app.model.network import DenseLayer
from bench.uploads_accuracy import load_digits, preprocessed
from tools.digit_scores import auroc, hidden_and_logits
from tools.nondigits import make_nondigits
from tools.uploads import KINDS
from training.bold import bold_copies
from training.data import load_mnist
from training.scorer import ScorerRecipe, training_set
from training.train import split_validation

ROOT = Path(__file__).resolve().parent.parent


def features(layers: list[DenseLayer], x: np.ndarray) -> np.ndarray:
    """(N, 784) float32 pixels -> the classifier's last hidden layer's activations, in chunks."""
    return np.concatenate([hidden_and_logits(layers, x[i : i + 8192])[0] for i in range(0, len(x), 8192)])


def train_head(units: tuple[int, ...], h: np.ndarray, y: np.ndarray, w: np.ndarray, epochs: int, seed: int):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(h.shape[1],))
    x = inputs
    for n in units:
        x = layers.Dense(n, activation="relu")(x)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    recipe = ScorerRecipe()
    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss="binary_crossentropy")
    model.fit(h, y, sample_weight=w, batch_size=recipe.batch_size, epochs=epochs, shuffle=True, verbose=0)
    return model


def logit_scorer(model):
    """A function: (N, H) features -> the head's output before its sigmoid, (N,) float64, what an ensemble
    averages (a monotone map of the score, so thresholds and AUROC are the same as on the score). The
    sub-model up to the last hidden layer is built once per head."""
    import keras

    hidden = keras.Model(model.inputs, model.layers[-2].output) if len(model.layers) > 2 else None
    kernel, bias = model.layers[-1].get_weights()
    weights, offset = kernel[:, 0].astype(np.float64), float(bias[0])

    def score(a: np.ndarray) -> np.ndarray:
        h = np.asarray(hidden.predict(a, batch_size=8192, verbose=0) if hidden else a, np.float64)
        return h @ weights + offset

    return score


def rows(name: str, scored: dict[str, np.ndarray], scored_uploads: dict[str, np.ndarray], flags: list[float]):
    for flag in flags:
        threshold = np.quantile(scored["validation"], flag)
        per_kind = {kind: float((s < threshold).mean()) for kind, s in scored_uploads.items()}
        worst = max(per_kind, key=per_kind.__getitem__)
        yield {
            "head": name,
            "flag": flag,
            "test flagged": round(float((scored["test"] < threshold).mean()), 4),
            **{f"{s} flagged": round(float((scored[s] < threshold).mean()), 3) for s in ("set a", "set b")},
            **{f"{s} AUROC": round(auroc(scored["test"], scored[s]), 4) for s in ("set a", "set b")},
            "uploads flagged, worst kind": [worst, round(per_kind[worst], 4)],
            "uploads flagged, mean": round(float(np.mean(list(per_kind.values()))), 4),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mnist-mlp.keras")
    parser.add_argument("--data", type=Path, help="MNIST .npz (default: $MNIST_NPZ)")
    parser.add_argument("--heads", nargs="+", default=["256", "64", "32"], help="hidden units, e.g. 32 or 128,32")
    parser.add_argument("--flag", nargs="+", type=float, default=[0.01, 0.007], help="shares of validation digits")
    parser.add_argument("--epochs", type=int, default=ScorerRecipe().epochs)
    parser.add_argument("--seed", type=int, default=42, help="the training run's seed (its split and set)")
    parser.add_argument("--head-seed", type=int, default=42, help="the heads' initialisation")
    parser.add_argument("--members", type=int, default=1, help="heads of each candidate, from successive seeds")
    parser.add_argument("--uploads", type=int, default=10000, help="test digits per upload kind")
    parser.add_argument("--nondigits", type=int, default=60, help="non-digits of each kind")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data = load_mnist(args.data)
    split = split_validation(data, 5000, args.seed)
    bold = bold_copies(split.x_train, args.seed, workers=os.cpu_count() or 1)
    x, y, w = training_set(split.x_train, split.y_train, bold, ScorerRecipe(), args.seed)
    layers = read_dense_layers(args.model)
    h = features(layers, x)
    del x
    sets = {
        "validation": features(layers, flatten_and_scale(split.x_val)),
        "test": features(layers, flatten_and_scale(data.x_test)),
    }
    for kind_set in ("a", "b"):
        sets[f"set {kind_set}"] = features(layers, flatten_and_scale(make_nondigits(args.nondigits, 2026, kind_set)[0]))
    digits, _, _ = load_digits(args.data, args.uploads)
    uploads = {}
    for kind in KINDS:
        u = preprocessed(kind, digits, 0, os.cpu_count() or 1)
        uploads[kind] = features(layers, flatten_and_scale(u[u.any(axis=(1, 2))]))  # refused uploads left out
    print(f"features of {len(h):,} training images and the test sets in {time.monotonic() - started:.0f} s", flush=True)
    for head in args.heads:
        units = tuple(int(n) for n in head.split(","))
        name = "-".join(map(str, units))
        members = []
        for member in range(args.members):
            model = train_head(units, h, y, w, args.epochs, args.head_seed + member)
            logits = logit_scorer(model)
            scored = {s: logits(a) for s, a in sets.items()}
            scored_uploads = {kind: logits(a) for kind, a in uploads.items()}
            members.append((scored, scored_uploads))
            label = name if args.members == 1 else f"{name}, seed {args.head_seed + member}"
            for row in rows(label, scored, scored_uploads, args.flag):
                print(json.dumps(row), flush=True)
        if args.members > 1:
            mean = {s: np.mean([m[0][s] for m in members], axis=0) for s in sets}
            mean_uploads = {kind: np.mean([m[1][kind] for m in members], axis=0) for kind in uploads}
            for row in rows(f"{name} x {args.members}", mean, mean_uploads, args.flag):
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
