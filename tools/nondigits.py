"""Held-out non-digits, drawn and typed the way people make them, in MNIST's form: the test set of the
"not a digit" score. Nothing here comes from MNIST nor shares code with training/negatives.py (which
makes the training negatives out of MNIST digits), so the figures measure generalisation.

Three families, each drawn on a canvas of random size with a random pen, position, slant and wobble,
then brought to MNIST's form by the service's own steps (`to_mnist_form`):
- letters that no one reads as digits, A E K M W x h: handwritten (strokes) or typed (a TrueType font);
- symbols # % & @ ? + = $ *: typed, and the simple ones handwritten too;
- doodles: smiley, star, heart, house, spiral, arrow, triangle, sun, stick figure.

    python -m tools.nondigits --out DIR --n 4      # PNG sheets of examples of each kind, for humans
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.preprocessing import ImageError, to_mnist_form

Stroke = list[tuple[float, float]]  # points in the unit square, x right, y down
Figure = Callable[[np.random.Generator], list[Stroke]]

LETTERS = "AEKMWxh"
SYMBOLS = "#%&@?+=$*"
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/Library/Fonts"))


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 24) -> Stroke:
    """Points on an ellipse from angle `start` to `end` (radians, clockwise on screen)."""
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(start, end, n)]


# ---- handwritten letters and symbols: strokes in the unit square ----
HANDWRITTEN: dict[str, list[Stroke]] = {
    "A": [[(0.1, 1.0), (0.5, 0.0), (0.9, 1.0)], [(0.28, 0.6), (0.72, 0.6)]],
    "E": [[(0.85, 0.0), (0.15, 0.0), (0.15, 1.0), (0.85, 1.0)], [(0.15, 0.5), (0.7, 0.5)]],
    "K": [[(0.2, 0.0), (0.2, 1.0)], [(0.85, 0.0), (0.2, 0.55)], [(0.38, 0.4), (0.85, 1.0)]],
    "M": [[(0.05, 1.0), (0.15, 0.0), (0.5, 0.7), (0.85, 0.0), (0.95, 1.0)]],
    "W": [[(0.0, 0.0), (0.25, 1.0), (0.5, 0.35), (0.75, 1.0), (1.0, 0.0)]],
    "x": [[(0.15, 0.35), (0.85, 1.0)], [(0.85, 0.35), (0.15, 1.0)]],
    "h": [[(0.2, 0.0), (0.2, 1.0)], [*_arc(0.5, 0.72, 0.3, 0.28, math.pi, 2 * math.pi, 12), (0.8, 1.0)]],
    "#": [
        [(0.35, 0.0), (0.25, 1.0)],
        [(0.75, 0.0), (0.65, 1.0)],
        [(0.05, 0.33), (0.95, 0.33)],
        [(0.0, 0.67), (0.9, 0.67)],
    ],
    "+": [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]],
    "=": [[(0.05, 0.35), (0.95, 0.35)], [(0.05, 0.65), (0.95, 0.65)]],
    "*": [[(0.5, 0.0), (0.5, 1.0)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
}


# ---- doodles ----
def smiley(rng: np.random.Generator) -> list[Stroke]:
    eye = rng.uniform(0.04, 0.07)
    return [
        _arc(0.5, 0.5, 0.48, 0.48, 0, 2 * math.pi, 40),
        _arc(0.33, 0.38, eye, eye, 0, 2 * math.pi, 10),
        _arc(0.67, 0.38, eye, eye, 0, 2 * math.pi, 10),
        _arc(0.5, 0.55, 0.25, rng.uniform(0.12, 0.22), 0.15 * math.pi, 0.85 * math.pi, 16),
    ]


def star(rng: np.random.Generator) -> list[Stroke]:
    points = [(0.5 + 0.5 * math.sin(4 * math.pi * k / 5), 0.55 - 0.5 * math.cos(4 * math.pi * k / 5)) for k in range(6)]
    return [points]


def heart(rng: np.random.Generator) -> list[Stroke]:
    t = np.linspace(0, 2 * math.pi, 48)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [list(zip((x + 17) / 34, (y + 17) / 34, strict=True))]


def house(rng: np.random.Generator) -> list[Stroke]:
    return [
        [(0.1, 0.45), (0.1, 1.0), (0.9, 1.0), (0.9, 0.45)],
        [(0.0, 0.5), (0.5, 0.0), (1.0, 0.5), (0.0, 0.5)],
        [(0.4, 1.0), (0.4, 0.7), (0.6, 0.7), (0.6, 1.0)],
    ]


def spiral(rng: np.random.Generator) -> list[Stroke]:
    turns = rng.uniform(2.0, 3.5)
    t = np.linspace(0, turns * 2 * math.pi, 80)
    r = 0.5 * t / t[-1]
    return [list(zip(0.5 + r * np.cos(t), 0.5 + r * np.sin(t), strict=True))]


def arrow(rng: np.random.Generator) -> list[Stroke]:
    return [[(0.0, 0.5), (1.0, 0.5)], [(0.7, 0.25), (1.0, 0.5), (0.7, 0.75)]]


def triangle(rng: np.random.Generator) -> list[Stroke]:
    return [[(0.5, 0.05), (0.95, 0.95), (0.05, 0.95), (0.5, 0.05)]]


def sun(rng: np.random.Generator) -> list[Stroke]:
    rays = int(rng.integers(6, 11))
    strokes = [_arc(0.5, 0.5, 0.22, 0.22, 0, 2 * math.pi, 28)]
    for k in range(rays):
        a = 2 * math.pi * k / rays
        strokes.append(
            [(0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a)), (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))]
        )
    return strokes


def stick_figure(rng: np.random.Generator) -> list[Stroke]:
    return [
        _arc(0.5, 0.13, 0.12, 0.12, 0, 2 * math.pi, 16),
        [(0.5, 0.25), (0.5, 0.65)],
        [(0.15, 0.4), (0.5, 0.35), (0.85, 0.4)],
        [(0.25, 1.0), (0.5, 0.65), (0.75, 1.0)],
    ]


DOODLES: dict[str, Figure] = {
    "smiley": smiley,
    "star": star,
    "heart": heart,
    "house": house,
    "spiral": spiral,
    "arrow": arrow,
    "triangle": triangle,
    "sun": sun,
    "stick-figure": stick_figure,
}


def fonts() -> list[Path]:
    """TrueType fonts on this machine (DejaVu, Liberation...), sorted, for the typed kinds."""
    found: set[Path] = set()
    for directory in FONT_DIRS:
        if directory.is_dir():
            found.update(directory.rglob("*.ttf"))
    return sorted(found)


def _wobble(strokes: list[Stroke], rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes as a hand draws them: resampled densely, slanted, squashed, each point jittered smoothly."""
    angle = rng.normal(0, 0.15)
    shear = rng.normal(0, 0.15)
    sx, sy = rng.uniform(0.75, 1.0, size=2)
    m = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) @ np.array(
        [[sx, shear], [0, sy]]
    )
    out = []
    for stroke in strokes:
        p = np.asarray(stroke, dtype=np.float64)
        seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
        t = np.concatenate([[0], np.cumsum(seg)])
        dense_t = np.linspace(0, t[-1], max(2, int(t[-1] * 60)))
        dense = np.stack([np.interp(dense_t, t, p[:, 0]), np.interp(dense_t, t, p[:, 1])], axis=1)
        noise = np.cumsum(rng.normal(0, 0.006, size=dense.shape), axis=0)
        out.append((dense - 0.5 + noise) @ m.T + 0.5)
    return out


def draw_strokes(strokes: list[Stroke], rng: np.random.Generator) -> np.ndarray:
    """Strokes drawn with a random pen at a random place and size on a canvas: (H, W) float32 ink 0-255."""
    side = int(rng.integers(64, 300))
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    size = side * rng.uniform(0.45, 0.85)
    left, top = rng.uniform(0.05 * side, side - size - 0.05 * side, size=2)
    width = max(1, round(size * rng.uniform(0.04, 0.11)))
    for stroke in _wobble(strokes, rng):
        points = [(left + x * size, top + y * size) for x, y in stroke]
        draw.line(points, fill=255, width=width, joint="curve")
        r = width / 2  # round pen ends
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(canvas, dtype=np.float32)


def draw_typed(char: str, font: Path, rng: np.random.Generator) -> np.ndarray:
    """`char` typed in `font` at a random size and place on a canvas: (H, W) float32 ink 0-255."""
    side = int(rng.integers(64, 300))
    canvas = Image.new("L", (side, side), 0)
    face = ImageFont.truetype(str(font), size=max(12, int(side * rng.uniform(0.4, 0.8))))
    draw = ImageDraw.Draw(canvas)
    box = draw.textbbox((0, 0), char, font=face)
    x = rng.uniform(0, max(1, side - (box[2] - box[0]))) - box[0]
    y = rng.uniform(0, max(1, side - (box[3] - box[1]))) - box[1]
    draw.text((x, y), char, fill=255, font=face)
    angle = rng.normal(0, 8)
    return np.asarray(canvas.rotate(angle, resample=Image.Resampling.BILINEAR), dtype=np.float32)


def kinds() -> list[str]:
    """Every kind: 'letter:A' (handwritten or typed), 'symbol:#', 'doodle:smiley', ..."""
    return [f"letter:{c}" for c in LETTERS] + [f"symbol:{c}" for c in SYMBOLS] + [f"doodle:{d}" for d in DOODLES]


def draw_kind(kind: str, rng: np.random.Generator, typefaces: Sequence[Path]) -> np.ndarray:
    """One drawing of `kind`, on its canvas: (H, W) float32 ink 0-255."""
    family, name = kind.split(":", 1)
    if family == "doodle":
        return draw_strokes(DOODLES[name](rng), rng)
    handwritten = name in HANDWRITTEN and (not typefaces or rng.random() < 0.5)
    if handwritten:
        return draw_strokes(HANDWRITTEN[name], rng)
    if not typefaces:
        raise RuntimeError(f"no TrueType font found to type {name!r}")
    return draw_typed(name, typefaces[int(rng.integers(len(typefaces)))], rng)


def make_nondigits(n_per_kind: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`n_per_kind` of each kind, in MNIST's form: (N, 28, 28) uint8 and each one's kind, from `seed`."""
    typefaces = fonts()
    images, names = [], []
    for k, kind in enumerate(kinds()):
        rng = np.random.default_rng([seed, k])
        made = 0
        while made < n_per_kind:
            try:
                images.append(to_mnist_form(draw_kind(kind, rng, typefaces), []))
            except ImageError:  # too faint to find: draw it again
                continue
            names.append(kind)
            made += 1
    return np.stack(images), names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nondigits", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the PNG sheet")
    parser.add_argument("--n", type=int, default=4, help="examples of each kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images, names = make_nondigits(args.n, args.seed)
    rows = [np.concatenate(list(images[i : i + args.n]), axis=1) for i in range(0, len(images), args.n)]
    args.out.mkdir(parents=True, exist_ok=True)
    sheet = np.concatenate([np.concatenate(rows[i : i + 5], axis=1) for i in range(0, len(rows) - 4, 5)], axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2)).save(args.out / "nondigits.png")
    print(f"{len(images)} non-digits of {len(set(names))} kinds: {args.out / 'nondigits.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
