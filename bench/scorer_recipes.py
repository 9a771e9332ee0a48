"""A/B runs of digit scorer recipes (training/scorer.py's ScorerRecipe) on the committed classifier's
features, measured per digit kind as `python -m tools.digit_scores` measures a saved scorer (issue 34).

For each `--recipe` (ScorerRecipe fields over the defaults, e.g. `printed=0.3,pieces=0.3,negatives=3`,
`kinds=+touching` for the default negatives and `touching`),
this builds the scorer's training set as `make train` does (training_set, from `--seed`: its split, bold
copies, negatives, affine copies), computes the frozen trunk's activations (the classifier's hidden
layers) once, trains the recipe's `members` heads on them (seeds `--head-seed` onwards), averages their
logits as merge_members does, puts the threshold where `flagged` of the validation digits score under it,
and prints one table: the share of each held-out digit kind flagged (tools.digit_scores.digit_kinds) and
of each non-digit set caught (tools/nondigits.py, sets a and b). The full `make train` takes ~30 min;
this takes a few minutes per recipe.

    python -m bench.scorer_recipes --data ../shared/data/mnist.npz --cache /tmp/scorer-ab --flag 0.007 0.01 \
        --recipe "printed=0.3,pieces=0.3,coarse=0.3,negatives=3.5,kinds=+cut_halves+touching+digit_and_part"
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import flatten_and_scale
from app.model.keras_file import read_dense_layers
from bench.scorer_heads import features, logit_scorer, train_head
from tools.digit_scores import digit_kinds, format_table
from tools.nondigits import make_nondigits
from training.bold import bold_copies
from training.data import load_mnist
from training.scorer import ScorerRecipe, training_set
from training.train import split_validation

ROOT = Path(__file__).resolve().parent.parent


def parse_recipe(text: str) -> ScorerRecipe:
    """ "printed=0.3,pieces=0.3,kinds=halves+touching" -> ScorerRecipe with those fields."""
    fields = {f.name: f for f in dataclasses.fields(ScorerRecipe)}
    changes: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        default = getattr(ScorerRecipe(), key)
        if isinstance(default, tuple):  # "a+b": those; "+a+b": the default's and those
            items = tuple(type(default[0])(v) for v in value.split("+") if v)
            changes[key] = default + items if value.startswith("+") else items
        else:
            changes[key] = type(default)(value)
        assert key in fields
    return ScorerRecipe(**changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mnist-mlp.keras")
    parser.add_argument("--data", type=Path, help="MNIST .npz (default: $MNIST_NPZ)")
    parser.add_argument("--recipe", nargs="+", default=[""], help="ScorerRecipe changes, e.g. printed=0.3,pieces=0.3")
    parser.add_argument("--seed", type=int, default=42, help="the training run's seed (its split and set)")
    parser.add_argument("--head-seed", type=int, default=42, help="the first head's initialisation")
    parser.add_argument("--members", type=int, help="heads per recipe (default: the recipe's)")
    parser.add_argument(
        "--flag", nargs="+", type=float, help="shares of validation digits flagged (default: the recipe's)"
    )
    parser.add_argument("--eval-seed", type=int, default=42, help="seed of the held-out digit kinds")
    parser.add_argument("--n", type=int, default=5000, help="test digits made bold and sklearn-style")
    parser.add_argument("--per-font", type=int, default=200)
    parser.add_argument("--nondigits", type=int, default=40, help="non-digits of each kind")
    parser.add_argument("--nondigit-seed", type=int, default=2026)
    parser.add_argument("--cache", type=Path, help="a directory to keep the training digits' bold copies in")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data = load_mnist(args.data)
    split = split_validation(data, 5000, args.seed)
    cached = args.cache / f"bold-{args.seed}.npy" if args.cache else None
    if cached and cached.exists():
        bold = np.load(cached)
    else:
        bold = bold_copies(split.x_train, args.seed, workers=os.cpu_count() or 1)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, bold)
    layers = read_dense_layers(args.model)
    kinds = digit_kinds(data.x_test, args.n, args.per_font, args.eval_seed)
    kinds.update({f"set {s}": make_nondigits(args.nondigits, args.nondigit_seed, s)[0] for s in ("a", "b")})
    sets = {name: features(layers, flatten_and_scale(images)) for name, images in kinds.items()}
    sets["validation"] = features(layers, flatten_and_scale(split.x_val))
    print(f"held-out sets ready in {time.monotonic() - started:.0f} s", flush=True)
    for text in args.recipe:
        recipe = parse_recipe(text)
        t = time.monotonic()
        x, y, w = training_set(split.x_train, split.y_train, bold, recipe, args.seed)
        h = features(layers, x)
        del x
        made = time.monotonic() - t
        logits = []
        for member in range(args.members or recipe.members):
            head = train_head(recipe.hidden, h, y, w, recipe.epochs, args.head_seed + member)
            score = logit_scorer(head)
            logits.append({name: score(a) for name, a in sets.items()})
        mean = {name: np.mean([m[name] for m in logits], axis=0) for name in sets}
        print(
            f"\nrecipe {text or '(default)'}: {len(y):,} training images ({int(y.sum()):,} digits), made in "
            f"{made:.0f} s, {len(logits)} heads trained in {time.monotonic() - t - made:.0f} s",
            flush=True,
        )
        for flag in args.flag or [recipe.flagged]:
            threshold = np.quantile(mean["validation"], flag)
            rows = [(name, len(kinds[name]), float((mean[name] < threshold).mean())) for name in kinds]
            print(f"\nthreshold flagging {flag:.2%} of the validation digits:", flush=True)
            print(format_table(rows, len(kinds) - 2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
