"""Compare "not a digit" scores of a saved model on held-out non-digits (tools/nondigits.py), MNIST test
digits and realistic uploads (tools/uploads.py), all through the numpy forward pass, as served.

`digit_scorer` is the one the service answers (`digit_score`, `is_digit`): the model's own scorer
(training/scorer.py), at the threshold in its metadata; the others are alternatives computed from the
classifier alone, each at its own threshold chosen on the validation digits.

Two sets of non-digits: set a (letters A E K M W x h, # % & @ ? + = $ *, nine doodles) and set b (other
letters, symbols and doodles), the latter kept unseen while the scorer's negatives were designed: its
figure is the one that says how the scorer generalises. Each score's threshold is chosen on the validation digits (the training run's own split, from its seed)
so that at most `--flag` of them are called non-digits; the report gives, per score, the share of
non-digits flagged, the share of test digits and of uploads (per kind) flagged, and the AUROC of
test digits against non-digits. Also the ECE (15 bins) on the test digits and the uploads (`--json`).

By default it prints a table for the served scorer alone: the share of the held-out digits of each kind
flagged as non-digits (MNIST test digits; bold copies of them; printed digits in the font families held
out of training, and in the training fonts at sizes training never used; sklearn-style 8x8 scans of the
test digits, upscaled), and the share of each set of non-digits caught (`digit_kinds`, issue 34).

    python -m tools.digit_scores --model models/mnist-mlp.keras --data ../shared/data/mnist.npz
    python -m tools.digit_scores --model models/mnist-mlp.keras --data ../shared/data/mnist.npz --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import flatten_and_scale
from app.model.calibration import expected_calibration_error, softmax
from app.model.classifier import Classifier
from app.model.network import DenseLayer, forward
from app.preprocessing import ImageError, preprocess
from tools import score_methods
from tools.nondigits import make_nondigits
from tools.uploads import KINDS, make_upload


def hidden_and_logits(layers: list[DenseLayer], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 784) float32 -> the last hidden layer's activations (N, H) and the logits (N, 10)."""
    h = np.asarray(x, dtype=np.float32)
    for layer in layers[:-1]:
        h = np.maximum(h @ layer.kernel + layer.bias, 0.0)
    return h, h @ layers[-1].kernel + layers[-1].bias


def fit_mahalanobis(hidden: np.ndarray, labels: np.ndarray, shrinkage: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Class means (10, H) and the shared precision (H, H) of training activations (H, float64)."""
    h = hidden.astype(np.float64)
    means = np.stack([h[labels == c].mean(axis=0) for c in range(10)])
    centred = h - means[labels]
    cov = centred.T @ centred / len(h)
    cov += shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov))
    return means, np.linalg.inv(cov)


def fit_pca(pixels: np.ndarray, k: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """The mean (784,) and the first k principal components (k, 784) of (N, 784) training pixels."""
    mean = pixels.mean(axis=0, dtype=np.float64)
    sample = pixels[:: max(1, len(pixels) // 20000)].astype(np.float64) - mean
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    return mean, vt[:k]


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U / n1 n0)."""
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores[np.diff(np.sort(scores), prepend=np.nan) == 0]):  # average tied ranks
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n1, n0 = len(positive), len(negative)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def uploads(x: np.ndarray, y: np.ndarray, per_kind: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`per_kind` realistic uploads of each kind, through the service's preprocessing: (N, 28, 28) uint8."""
    images, labels, kinds = [], [], []
    for k, kind in enumerate(KINDS):
        rng = np.random.default_rng([seed, 7, k])
        for i in rng.choice(len(x), per_kind, replace=False):
            try:
                images.append(preprocess(make_upload(kind, x[i], rng)).pixels)
            except ImageError:
                continue
            labels.append(int(y[i]))
            kinds.append(kind)
    return np.stack(images), np.asarray(labels), kinds


EVAL_SIZES = (16, 20, 24, 100, 128)  # font sizes in px, none of training's (training/positives.py)


def printed_test_digits(fonts: tuple[Path, ...], per_font: int, seed: int) -> np.ndarray:
    """`per_font` digits typed in each font (0-9 in turn), upright and sharp, at sizes of EVAL_SIZES and
    random margins (unlike training's), in MNIST's form: (N, 28, 28) uint8."""
    from training.positives import in_mnist_form, type_digit

    rng = np.random.default_rng([seed, 34, 13])
    images = [type_digit(i % 10, font, int(rng.choice(EVAL_SIZES)), rng) for font in fonts for i in range(per_font)]
    return in_mnist_form(images)


def sklearn_style(digits: np.ndarray, seed: int) -> np.ndarray:
    """Digits as scikit-learn's load_digits has them (UCI optdigits): the digit's ink fitted into a 32x32
    bitmap (at 128), counted in 4x4 blocks, so 8x8 with 17 grey levels; then upscaled as a user would show
    it (8x: nearest or bilinear, alternately) and brought to MNIST's form: (N, 28, 28) uint8."""
    from PIL import Image

    from training.positives import in_mnist_form

    rng = np.random.default_rng([seed, 34, 14])
    images = []
    for i, digit in enumerate(digits):
        rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
        ink = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, w = ink.shape
        scale = 32 / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        fitted = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR))
        bitmap = np.zeros((32, 32), dtype=np.uint8)
        top, left = (32 - size[1]) // 2, (32 - size[0]) // 2
        bitmap[top : top + size[1], left : left + size[0]] = fitted >= 128
        eight = bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3))  # 0-16, as load_digits
        side = int(rng.integers(32, 97))
        resample = Image.Resampling.NEAREST if i % 2 else Image.Resampling.BILINEAR
        shown = Image.fromarray((eight * 255 // 16).astype(np.uint8)).resize((side, side), resample)
        images.append(np.pad(np.asarray(shown), side // 8))
    return in_mnist_form(images)


def digit_kinds(x_test: np.ndarray, n: int, per_font: int, seed: int) -> dict[str, np.ndarray]:
    """The held-out digits of each kind, in MNIST's form: MNIST's test digits; bold copies of them
    (training/bold.py's pen, another seed); digits typed in the font families held out of training, and in
    the training fonts at other sizes; sklearn-style 8x8 scans of the test digits, upscaled. `n` test
    digits for the bold and sklearn-style kinds."""
    import os

    from training.bold import bold_copies
    from training.positives import find_fonts, split_fonts

    training_fonts, held_out = split_fonts(find_fonts())
    pick = np.random.default_rng([seed, 34, 15]).choice(len(x_test), min(n, len(x_test)), replace=False)
    return {
        "MNIST test": x_test,
        "bold (MNIST test, a marker)": bold_copies(x_test[pick], seed + 1000, workers=os.cpu_count() or 1),
        f"printed, {len(held_out)} held-out fonts": printed_test_digits(held_out, per_font, seed),
        f"printed, {len(training_fonts)} training fonts, other sizes": printed_test_digits(
            training_fonts, per_font, seed + 1
        ),
        "sklearn-style (8x8, 17 greys, upscaled)": sklearn_style(x_test[pick], seed),
    }


def kind_table(
    score: Any, threshold: float, kinds: dict[str, np.ndarray], nondigits: dict[str, np.ndarray]
) -> list[tuple[str, int, float]]:
    """(set, count, share under the threshold) for each digit kind, then each non-digit set;
    `score`: (N, 784) float32 pixels -> (N,) scores."""
    out = []
    for name, images in {**kinds, **nondigits}.items():
        out.append((name, len(images), float((score(flatten_and_scale(images)) < threshold).mean())))
    return out


def format_table(rows: list[tuple[str, int, float]], digit_kinds: int) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'digits':<{width}} | {'n':>6} | flagged |", f"|{'-' * (width + 2)}|-------:|--------:|"]
    for i, (name, count, share) in enumerate(rows):
        if i == digit_kinds:
            lines += [f"| {'non-digits':<{width}} | {'n':>6} |  caught |", f"|{'-' * (width + 2)}|-------:|--------:|"]
        lines.append(f"| {name:<{width}} | {count:>6,} | {100 * share:6.2f}% |")
    return "\n".join(lines)


def table(args: argparse.Namespace) -> str:
    """The served scorer's table: the share of each digit kind flagged, and of each non-digit set caught."""
    from training.data import load_mnist

    classifier = Classifier.load(args.model)
    served = classifier.network.scorer
    if served is None:
        raise SystemExit(f"{args.model} has no digit scorer")
    data = load_mnist(args.data)
    kinds = digit_kinds(data.x_test, args.n, args.per_font, args.seed)
    nondigits = {
        f"set {s}: letters, symbols, doodles": make_nondigits(args.per_kind, args.nondigit_seed, kind_set=s)[0]
        for s in ("a", "b")
    }
    rows = kind_table(
        lambda x: forward(served, x)[:, 0].astype(np.float64),
        float(classifier.digit_threshold or 0.5),
        kinds,
        nondigits,
    )
    return format_table(rows, len(kinds))


def report(args: argparse.Namespace) -> dict[str, Any]:
    from training.data import load_mnist
    from training.train import split_validation

    classifier = Classifier.load(args.model)
    layers = classifier.layers
    data = load_mnist(args.data)
    split = split_validation(data, args.validation_size, args.seed)
    nondigits, nd_kinds = make_nondigits(args.per_kind, args.nondigit_seed)
    nondigits_b, nd_kinds_b = make_nondigits(args.per_kind, args.nondigit_seed, kind_set="b")
    up_x, up_y, up_kinds = uploads(data.x_test, data.y_test, args.uploads_per_kind, args.seed)
    sets = {
        "train": flatten_and_scale(split.x_train),
        "validation": flatten_and_scale(split.x_val),
        "test": flatten_and_scale(data.x_test),
        "uploads": flatten_and_scale(up_x),
        "nondigits": flatten_and_scale(nondigits),
        "nondigits_b": flatten_and_scale(nondigits_b),
    }
    acts = {name: hidden_and_logits(layers, x) for name, x in sets.items()}
    means, precision = fit_mahalanobis(acts["train"][0], split.y_train.astype(np.int64))
    pca_mean, components = fit_pca(sets["train"])
    pixels = {name: x for name, x in sets.items()}
    raw = {
        "max_probability": lambda name: score_methods.max_probability(softmax(acts[name][1])),
        "energy": lambda name: score_methods.energy(acts[name][1]),
        "mahalanobis": lambda name: score_methods.mahalanobis(acts[name][0], means, precision),
        "reconstruction": lambda name: score_methods.reconstruction(pixels[name], pca_mean, components),
    }

    def standardised(kind: str) -> Any:
        v = raw[kind]("validation")
        return lambda name: (raw[kind](name) - v.mean()) / v.std()

    if classifier.network.scorer is not None:
        served = classifier.network.scorer
        raw["digit_scorer"] = lambda name: forward(served, sets[name])[:, 0].astype(np.float64)
    scorers = {
        **raw,
        "energy+reconstruction": lambda name: score_methods.combined(
            standardised("energy")(name), standardised("reconstruction")(name)
        ),
        "energy+reconstruction+mahalanobis": lambda name: score_methods.combined(
            standardised("energy")(name), standardised("reconstruction")(name), standardised("mahalanobis")(name)
        ),
    }
    out: dict[str, Any] = {
        "model": str(args.model),
        "counts": {k: len(v) for k, v in sets.items() if k != "train"},
        "test_accuracy": float((acts["test"][1].argmax(1) == data.y_test).mean()),
        "uploads_accuracy": float((acts["uploads"][1].argmax(1) == up_y).mean()),
        "ece": {
            "validation": expected_calibration_error(softmax(acts["validation"][1]), split.y_val),
            "test": expected_calibration_error(softmax(acts["test"][1]), data.y_test),
            "uploads": expected_calibration_error(softmax(acts["uploads"][1]), up_y),
        },
        "scores": {},
    }
    if "digit_scorer" in raw:
        scorers["digit_scorer+energy"] = lambda name: score_methods.combined(
            standardised("digit_scorer")(name), standardised("energy")(name)
        )
    for name, scorer in scorers.items():
        s = {k: scorer(k) for k in ("validation", "test", "uploads", "nondigits", "nondigits_b")}
        threshold = float(np.quantile(s["validation"], args.flag))
        if name == "digit_scorer":  # as served: at the model's own threshold
            threshold = float(classifier.digit_threshold)  # type: ignore[arg-type]
        flagged_up = s["uploads"] < threshold
        out["scores"][name] = {
            "threshold": threshold,
            "nondigits_flagged": float((s["nondigits"] < threshold).mean()),
            "nondigits_b_flagged": float((s["nondigits_b"] < threshold).mean()),
            "test_digits_flagged": float((s["test"] < threshold).mean()),
            "uploads_flagged": float(flagged_up.mean()),
            "uploads_flagged_worst_kind": max(
                (float(flagged_up[[k == kind for k in up_kinds]].mean()), kind) for kind in sorted(set(up_kinds))
            ),
            "auroc_test_vs_nondigits": auroc(s["test"], s["nondigits"]),
            "auroc_test_vs_nondigits_b": auroc(s["test"], s["nondigits_b"]),
            "nondigits_flagged_per_kind": {
                kind: float((s["nondigits"] < threshold)[[k == kind for k in nd_kinds]].mean())
                for kind in dict.fromkeys(nd_kinds)
            },
            "nondigits_b_flagged_per_kind": {
                kind: float((s["nondigits_b"] < threshold)[[k == kind for k in nd_kinds_b]].mean())
                for kind in dict.fromkeys(nd_kinds_b)
            },
            "uploads_flagged_per_kind": {
                kind: float(flagged_up[[k == kind for k in up_kinds]].mean()) for kind in sorted(set(up_kinds))
            },
            "nondigits_flagged_per_family": {
                family: float((s["nondigits"] < threshold)[[k.startswith(family) for k in nd_kinds]].mean())
                for family in ("letter", "symbol", "doodle")
            },
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.digit_scores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, help="MNIST .npz (default: $MNIST_NPZ)")
    parser.add_argument("--seed", type=int, default=42, help="the training run's seed: its validation split")
    parser.add_argument("--validation-size", type=int, default=5000)
    parser.add_argument("--flag", type=float, default=0.01, help="share of validation digits flagged")
    parser.add_argument("--per-kind", type=int, default=40, help="non-digits of each kind")
    parser.add_argument("--nondigit-seed", type=int, default=2026)
    parser.add_argument("--uploads-per-kind", type=int, default=100)
    parser.add_argument("--n", type=int, default=5000, help="test digits made bold and sklearn-style")
    parser.add_argument("--per-font", type=int, default=200, help="printed digits per font")
    parser.add_argument(
        "--json", action="store_true", help="the full report (every alternative score, uploads, AUROC) as JSON"
    )
    args = parser.parse_args(argv)
    print(json.dumps(report(args), indent=2) if args.json else table(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
