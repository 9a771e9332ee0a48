"""Where the reader's errors come from (issue 34): the cuts it chooses or the classifier on well-cut digits.
The reader's own steps (app/reading/: find_lines, atoms, candidates, best_path) run in-process on generated
number images, and each over-cut piece is given to the truth digit whose box holds most of its ink. A
candidate is an exact cut when it holds all of one digit's pieces and no other digit's (ink of no digit,
a cursive join or a speck, may come with it): a box-overlap test is not enough, since a piece split off
along a curved cut path can have nearly the whole digit's box.

    python -m bench.reading_cuts [--n 200] [--seed 0] [--generator both] [--lengths 1 12] [--json]

Printed per generator and gap kind: the truth digits; the share that have an exact cut among the
candidates; the classifier's accuracy on those exact cuts; the share of lines whose chosen cuts are
exactly the truth's, and of lines read right (their digits, however cut); and how the lines not cut
right are wrong: a piece of no digit read as one, pieces of two digits merged, or a digit split. Digits
come from $MNIST_NPZ (or --npz), as in bench.reading_accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.config import Settings
from app.contract import flatten_and_scale
from app.errors import ImageError
from app.model.classifier import load_classifier
from app.model.network import Network
from app.preprocessing import open_page
from app.preprocessing.decode import decode
from app.preprocessing.region import Region
from app.reading import find_lines, reading_region
from app.reading.cuts import Ink, atoms, best_path, candidate_values, candidates
from bench.reading_accuracy import GAP_KINDS, GENERATORS, generate
from tools.numbers import NumberImage

MAX_PIXELS = 40_000_000
OWNED = 0.5  # a piece belongs to the truth digit whose box holds at least this share of its ink


@dataclass
class LineCount:
    """One line of one number image, against its truth."""

    digits: int = 0  # truth digits with ink in this line
    exact_available: int = 0  # of them, with an exact cut among the candidates
    exact_read: int = 0  # of those exact cuts, read as the right digit by the classifier
    cut_right: bool = False  # the chosen cuts are the truth's, one per digit, nothing else
    read_right: bool = False  # the chosen cuts read as the line's digits (whether or not cut right)
    wrong: str = ""  # for a line not cut right: how (WRONG_KINDS)


WRONG_KINDS = {
    "ghost": "a piece of no digit (a slash, a speck) read as a digit",
    "merged": "pieces of two digits in one chosen digit (a neighbour's stroke, or two digits at once)",
    "split": "one digit's pieces in two chosen digits, or some of them left out",
}


def owner(piece: Ink, region: Region, number: NumberImage) -> int:
    """The index of the truth digit whose box holds most of the piece's ink (at least OWNED), else -1."""
    left, top, right, bottom = region.box
    sx, sy = (right - left) / region.size[0], (bottom - top) / region.size[1]
    xs, ys = left + (piece.xs + 0.5) * sx, top + (piece.ys + 0.5) * sy
    total = max(float(piece.values.sum()), 1e-6)
    shares = [
        float(piece.values[(xs >= x) & (xs < x + w) & (ys >= y) & (ys < y + h)].sum()) / total
        for x, y, w, h in (glyph.box for glyph in number.digits)
    ]
    if not shares or max(shares) < OWNED:
        return -1
    return int(np.argmax(shares))


def count_lines(number: NumberImage, network: Network) -> list[LineCount]:
    """Each line of the image, as the reader cuts it, against the truth."""
    try:
        page = open_page(decode(number.data, MAX_PIXELS, []), [])
        region = reading_region(page)
        written, height = find_lines(page.ink(region), max_digits=10**6)
    except ImageError:
        return []
    counts = []
    for line in written:
        if not line.groups:
            continue
        pieces = atoms(line.groups, height)
        owners = [owner(piece, region, number) for piece in pieces]
        truth = {d for d in owners if d >= 0}
        count = LineCount(digits=len(truth))
        found = candidates(pieces, height)
        if not found.spans:
            counts.append(count)
            continue
        probabilities, scores = network(flatten_and_scale(np.stack(found.images)))
        exact = {}  # candidate -> the truth digit it is an exact cut of
        for k, (i, j) in enumerate(found.spans):
            digits = set(owners[i:j]) - {-1}
            if len(digits) == 1 and owners.count(d := digits.pop()) == owners[i:j].count(d):
                exact[k] = d
        purest = {}  # truth digit -> its exact cut of the fewest pieces (no stray ink)
        for k in sorted(exact, key=lambda k: (found.spans[k][1] - found.spans[k][0], k), reverse=True):
            purest[exact[k]] = k
        count.exact_available = len(purest)
        count.exact_read = sum(int(probabilities[k].argmax()) == number.digits[d].digit for d, k in purest.items())
        chosen, _ = best_path(len(pieces), found.spans, candidate_values(probabilities, scores))
        count.cut_right = all(k in exact for k in chosen) and sorted(exact[k] for k in chosen) == sorted(truth)
        text = "".join(str(int(probabilities[k].argmax())) for k in chosen)
        count.read_right = text == "".join(str(number.digits[d].digit) for d in sorted(truth))
        if not count.cut_right:
            count.wrong = wrong_kind([set(owners[i:j]) - {-1} for i, j in (found.spans[k] for k in chosen)])
        counts.append(count)
    return counts


def wrong_kind(chosen: list[set[int]]) -> str:
    """How a line's chosen digits (each the set of truth digits its pieces belong to) differ from the truth."""
    if any(not owners for owners in chosen):
        return "ghost"
    if any(len(owners) > 1 for owners in chosen):
        return "merged"
    return "split"


def summary(rows: Sequence[tuple[str, list[LineCount]]]) -> dict[str, dict[str, float]]:
    """Per gap kind (and all): digits, shares of exact cuts available and read right, lines cut and read right."""
    by: dict[str, list[LineCount]] = defaultdict(list)
    for gap, lines in rows:
        by[gap] += lines
        by["all"] += lines
    out = {}
    for gap in [*GAP_KINDS, "all"]:
        lines = by.get(gap, [])
        digits = sum(c.digits for c in lines)
        available = sum(c.exact_available for c in lines)
        if not lines or not digits:
            continue
        out[gap] = {
            "lines": len(lines),
            "digits": digits,
            "exact_cut_available": available / digits,
            "classifier_on_exact_cuts": sum(c.exact_read for c in lines) / max(available, 1),
            "lines_cut_right": float(np.mean([c.cut_right for c in lines])),
            "lines_read_right": float(np.mean([c.read_right for c in lines])),
            **{f"wrong_{kind}": float(np.mean([c.wrong == kind for c in lines])) for kind in WRONG_KINDS},
        }
    return out


def table(title: str, figures: dict[str, dict[str, float]]) -> str:
    head = (
        f"{'gap':12} {'lines':>6} {'digits':>7} {'exact cut there':>16} {'classifier on it':>17} "
        f"{'lines cut right':>16} {'lines read right':>17}   cut wrong: {' '.join(f'{k:>7}' for k in WRONG_KINDS)}"
    )
    out = [title, head]
    for gap, f in figures.items():
        out.append(
            f"{gap:12} {f['lines']:6.0f} {f['digits']:7.0f} {100 * f['exact_cut_available']:15.1f}% "
            f"{100 * f['classifier_on_exact_cuts']:16.2f}% {100 * f['lines_cut_right']:15.1f}% {100 * f['lines_read_right']:16.1f}%              "
            + " ".join(f"{100 * f[f'wrong_{k}']:6.1f}%" for k in WRONG_KINDS)
        )
    out += [f"  {kind}: {meaning}" for kind, meaning in WRONG_KINDS.items()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reading_cuts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number images per generator (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", choices=[*GENERATORS, "both"], default="both")
    parser.add_argument("--lengths", type=int, nargs=2, default=(1, 12), metavar=("MIN", "MAX"))
    parser.add_argument("--npz", default=os.environ.get("MNIST_NPZ"), help="MNIST (default: $MNIST_NPZ)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    network = load_classifier(Settings(), False).network
    report = {}
    for generator in GENERATORS if args.generator == "both" else [args.generator]:
        images = generate(generator, args.n, args.seed, tuple(args.lengths), args.npz, args.workers)
        report[generator] = summary([(number.gap, count_lines(number, network)) for number in images])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for generator, figures in report.items():
            print(table(f"{generator} (n={args.n}, seed {args.seed})", figures), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
