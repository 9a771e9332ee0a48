"""Held-out non-digits, drawn and typed the way people make them, in MNIST's form: the test set of the
"not a digit" score. Nothing here comes from MNIST nor shares code with training/negatives.py (which
makes the training negatives out of MNIST digits), so the figures measure generalisation.

Three families, each drawn on a canvas of random size with a random pen, position, slant and wobble,
then brought to MNIST's form by the service's own steps (`to_mnist_form`):
- letters that no one reads as digits, A E K M W x h: handwritten (strokes) or typed (a TrueType font);
- symbols # % & @ ? + = $ *: typed, and the simple ones handwritten too;
- doodles: smiley, star, heart, house, spiral, arrow, triangle, sun, stick figure.

That is set "a". Set "b" is a second, disjoint set of the same three families, for measuring how the
score generalises to shapes nobody tuned it against (keep it unseen while tuning):
- letters F H N R T U V Y m n r: handwritten or typed;
- symbols ! ~ < > ^ { } typed or handwritten, and ¶ § € £ ¥ typed, in the fonts that have the glyph;
- doodles: moon, cloud, flower, fish, tree, envelope, lightning, cat face, umbrella, key, checkmark, eye.

    python -m tools.nondigits --out DIR --n 4 [--set b]   # PNG sheets of examples of each kind, for humans
"""

from __future__ import annotations

import argparse
import functools
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
LETTERS_B = "FHNRTUVYmnr"  # no case twins of set a's (k, w) and nothing that reads as a digit
SYMBOLS_B = "!~<>^{}\u00b6\u00a7\u20ac\u00a3\u00a5"  # ! ~ < > ^ { } ¶ § € £ ¥
KIND_SETS = ("a", "b")
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/Library/Fonts"))
MISSING = "\U0010fffd"  # a private-use code point no font here has: what a font draws for a glyph it lacks


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


# ---- set b: handwritten letters and symbols ----
HANDWRITTEN_B: dict[str, list[Stroke]] = {
    "F": [[(0.85, 0.0), (0.2, 0.0), (0.2, 1.0)], [(0.2, 0.48), (0.68, 0.48)]],
    "H": [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.85, 1.0)], [(0.15, 0.5), (0.85, 0.5)]],
    "N": [[(0.15, 1.0), (0.15, 0.0), (0.85, 1.0), (0.85, 0.0)]],
    "R": [
        [(0.2, 1.0), (0.2, 0.0), (0.55, 0.0), *_arc(0.55, 0.25, 0.28, 0.25, -0.5 * math.pi, 0.5 * math.pi, 12)],
        [(0.55, 0.5), (0.2, 0.5)],
        [(0.45, 0.5), (0.85, 1.0)],
    ],
    "T": [[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
    "U": [[(0.15, 0.0), *_arc(0.5, 0.65, 0.35, 0.35, math.pi, 0, 16), (0.85, 0.0)]],
    "V": [[(0.1, 0.0), (0.5, 1.0), (0.9, 0.0)]],
    "Y": [[(0.1, 0.0), (0.5, 0.5), (0.9, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
    "m": [
        [(0.1, 0.4), (0.1, 1.0)],
        [*_arc(0.3, 0.62, 0.2, 0.22, math.pi, 2 * math.pi, 10), (0.5, 1.0)],
        [*_arc(0.7, 0.62, 0.2, 0.22, math.pi, 2 * math.pi, 10), (0.9, 1.0)],
    ],
    "n": [[(0.2, 0.35), (0.2, 1.0)], [*_arc(0.5, 0.62, 0.3, 0.27, math.pi, 2 * math.pi, 12), (0.8, 1.0)]],
    "r": [[(0.3, 0.35), (0.3, 1.0)], _arc(0.58, 0.65, 0.28, 0.25, math.pi, 1.8 * math.pi, 10)],
    "!": [[(0.5, 0.0), (0.5, 0.68)], _arc(0.5, 0.93, 0.04, 0.04, 0, 2 * math.pi, 8)],
    "~": [[(x, 0.5 - 0.18 * math.sin(2 * math.pi * x)) for x in np.linspace(0, 1, 24)]],
    "<": [[(0.8, 0.0), (0.15, 0.5), (0.8, 1.0)]],  # steep arms: a flat top arm on ">" would read as a 7
    ">": [[(0.2, 0.0), (0.85, 0.5), (0.2, 1.0)]],
    "^": [[(0.1, 0.75), (0.5, 0.25), (0.9, 0.75)]],
    "{": [
        [*_arc(0.65, 0.2, 0.15, 0.2, 1.5 * math.pi, math.pi, 6), *_arc(0.35, 0.3, 0.15, 0.2, 0, 0.5 * math.pi, 6)],
        [
            *_arc(0.35, 0.7, 0.15, 0.2, 1.5 * math.pi, 2 * math.pi, 6),
            *_arc(0.65, 0.8, 0.15, 0.2, math.pi, 0.5 * math.pi, 6),
        ],
    ],
    "}": [
        [
            *_arc(0.35, 0.2, 0.15, 0.2, 1.5 * math.pi, 2 * math.pi, 6),
            *_arc(0.65, 0.3, 0.15, 0.2, math.pi, 0.5 * math.pi, 6),
        ],
        [*_arc(0.65, 0.7, 0.15, 0.2, 1.5 * math.pi, math.pi, 6), *_arc(0.35, 0.8, 0.15, 0.2, 0, 0.5 * math.pi, 6)],
    ],
}


def _mirror(strokes: list[Stroke], rng: np.random.Generator) -> list[Stroke]:
    """The figure as drawn, or mirrored left to right, at random: doodles face either way."""
    if rng.random() < 0.5:
        return strokes
    return [[(1.0 - x, y) for x, y in stroke] for stroke in strokes]


def _lens(x0: float, x1: float, cy: float, up: float, down: float, n: int = 20) -> list[Stroke]:
    """An almond from (x0, cy) to (x1, cy), bulging `up` above and `down` below: its two arcs."""
    xs = np.linspace(x0, x1, n)
    bulge = np.sin(math.pi * (xs - x0) / (x1 - x0))
    return [list(zip(xs, cy - up * bulge, strict=True)), list(zip(xs, cy + down * bulge, strict=True))]


# ---- set b: doodles ----
def moon(rng: np.random.Generator) -> list[Stroke]:
    inner = rng.uniform(0.2, 0.38)  # how fat the crescent is: its inner edge's half-width
    return _mirror(
        [
            _arc(0.5, 0.5, 0.5, 0.5, 0.5 * math.pi, 1.5 * math.pi, 24)
            + _arc(0.5, 0.5, inner, 0.5, 1.5 * math.pi, 0.5 * math.pi, 24)
        ],
        rng,
    )


def cloud(rng: np.random.Generator) -> list[Stroke]:
    bumps, dent = int(rng.integers(3, 6)), rng.uniform(0.2, 0.35)
    ry = rng.uniform(0.45, 0.6)
    u = np.linspace(0, math.pi, 90)
    r = 1 - dent + dent * np.abs(np.sin(bumps * u))  # round bumps meeting in inward dents
    top = list(zip(0.5 - 0.5 * r * np.cos(u), 0.6 - ry * r * np.sin(u), strict=True))
    bottom = _arc(0.5, 0.6, 0.5 * (1 - dent), rng.uniform(0.05, 0.15), 0, math.pi, 16)
    return [top + bottom]


def flower(rng: np.random.Generator) -> list[Stroke]:
    petals = int(rng.integers(5, 8))
    heart, petal = rng.uniform(0.09, 0.12), rng.uniform(0.1, 0.13)
    cy = heart + 2 * petal
    strokes = [_arc(0.5, cy, heart, heart, 0, 2 * math.pi, 16)]
    turn = rng.uniform(0, 2 * math.pi)
    for i in range(petals):
        a = turn + 2 * math.pi * i / petals
        d = heart + petal
        strokes.append(_arc(0.5 + d * math.cos(a), cy + d * math.sin(a), petal, petal, 0, 2 * math.pi, 14))
    strokes.append([(0.5, 2 * cy), (0.48, 0.85), (0.5, 1.0)])  # the stem, from under the head
    side = rng.choice([-1.0, 1.0])
    leaf = _lens(0.49, 0.49 + side * 0.25, 0.9, 0.06, 0.06, 10)
    strokes += [[(x, y - 0.4 * abs(x - 0.49)) for x, y in half] for half in leaf]  # pointing up and out
    return strokes


def fish(rng: np.random.Generator) -> list[Stroke]:
    body = rng.uniform(0.62, 0.75)
    h = rng.uniform(0.2, 0.32)
    tail = rng.uniform(0.18, 0.3)
    strokes = _lens(0.0, body, 0.5, h, h)
    strokes.append([(body, 0.5), (1.0, 0.5 - tail), (1.0, 0.5 + tail), (body, 0.5)])
    strokes.append(_arc(0.17, 0.5 - 0.3 * h, 0.03, 0.03, 0, 2 * math.pi, 8))
    return _mirror(strokes, rng)


def tree(rng: np.random.Generator) -> list[Stroke]:
    tiers = int(rng.integers(2, 4))
    foot = rng.uniform(0.8, 0.88)
    step = foot / tiers
    right = [(0.5, 0.0)]
    for i in range(1, tiers + 1):
        w = 0.5 * i / tiers
        right.append((0.5 + w, i * step))
        if i < tiers:
            right.append((0.5 + 0.3 * w, i * step))
    outline = right + [(1.0 - x, y) for x, y in reversed(right)]
    trunk = rng.uniform(0.06, 0.1)
    return [outline, [(0.5 - trunk, foot), (0.5 - trunk, 1.0), (0.5 + trunk, 1.0), (0.5 + trunk, foot)]]


def envelope(rng: np.random.Generator) -> list[Stroke]:
    top, bottom = 0.5 - rng.uniform(0.28, 0.36), 0.5 + rng.uniform(0.28, 0.36)
    flap = rng.uniform(0.5, 0.65)
    return [
        [(0.0, top), (1.0, top), (1.0, bottom), (0.0, bottom), (0.0, top)],
        [(0.0, top), (0.5, flap), (1.0, top)],
    ]


def lightning(rng: np.random.Generator) -> list[Stroke]:
    a, b = rng.uniform(0.38, 0.48), rng.uniform(0.5, 0.6)  # heights of the two kinks
    return _mirror([[(0.45, 0.0), (0.9, 0.0), (0.6, a), (0.85, a), (0.2, 1.0), (0.4, b), (0.15, b), (0.45, 0.0)]], rng)


def cat_face(rng: np.random.Generator) -> list[Stroke]:
    ear = rng.uniform(0.0, 0.1)  # how high the ears' tips reach
    eye = rng.uniform(0.035, 0.055)
    strokes = [
        _arc(0.5, 0.6, 0.42, 0.38, 0, 2 * math.pi, 40),
        [(0.14, 0.42), (0.15 + ear / 2, ear), (0.4, 0.25)],
        [(0.86, 0.42), (0.85 - ear / 2, ear), (0.6, 0.25)],
        _arc(0.35, 0.52, eye, eye, 0, 2 * math.pi, 8),
        _arc(0.65, 0.52, eye, eye, 0, 2 * math.pi, 8),
        [(0.46, 0.66), (0.54, 0.66), (0.5, 0.72), (0.46, 0.66)],
    ]
    for dy in (-0.04, 0.04):
        strokes.append([(0.36, 0.7), (0.0, 0.7 + dy * 2)])
        strokes.append([(0.64, 0.7), (1.0, 0.7 + dy * 2)])
    return strokes


def umbrella(rng: np.random.Generator) -> list[Stroke]:
    rim, dome = 0.5, rng.uniform(0.35, 0.45)
    scallops = int(rng.integers(3, 5))
    strokes = [_arc(0.5, rim, 0.5, dome, math.pi, 2 * math.pi, 28)]
    w = 1.0 / scallops
    for i in range(scallops):
        strokes.append(_arc(w * (i + 0.5), rim, w / 2, rng.uniform(0.05, 0.08), 0, -math.pi, 8))
    hook = rng.uniform(0.08, 0.12)
    strokes.append([(0.5, rim - 0.02), *_arc(0.5 - hook, 1.0 - hook, hook, hook, 0, math.pi, 10)])
    return _mirror(strokes, rng)


def key(rng: np.random.Generator) -> list[Stroke]:
    bow = rng.uniform(0.15, 0.22)
    teeth = int(rng.integers(2, 4))
    strokes = [_arc(bow, 0.5, bow, bow, 0, 2 * math.pi, 24), [(2 * bow, 0.5), (1.0, 0.5)]]
    for i in range(teeth):
        x = 0.95 - 0.12 * i
        strokes.append([(x, 0.5), (x, 0.5 + rng.uniform(0.1, 0.2))])
    return _mirror(strokes, rng)


def checkmark(rng: np.random.Generator) -> list[Stroke]:
    knee = rng.uniform(0.3, 0.42)
    return [[(0.0, rng.uniform(0.45, 0.6)), (knee, 1.0), (1.0, rng.uniform(0.0, 0.1))]]


def eye(rng: np.random.Generator) -> list[Stroke]:
    up, down = rng.uniform(0.28, 0.36), rng.uniform(0.22, 0.3)
    iris = rng.uniform(0.16, 0.2)
    strokes = _lens(0.0, 1.0, 0.5, up, down, 24)
    strokes.append(_arc(0.5, 0.5, iris, iris, 0, 2 * math.pi, 20))
    strokes.append(_arc(0.5, 0.5, 0.04, 0.04, 0, 2 * math.pi, 8))
    return strokes


DOODLES_B: dict[str, Figure] = {
    "moon": moon,
    "cloud": cloud,
    "flower": flower,
    "fish": fish,
    "tree": tree,
    "envelope": envelope,
    "lightning": lightning,
    "cat-face": cat_face,
    "umbrella": umbrella,
    "key": key,
    "checkmark": checkmark,
    "eye": eye,
}
# each set's letters, symbols, handwritten strokes and doodles
_SETS: dict[str, tuple[str, str, dict[str, list[Stroke]], dict[str, Figure]]] = {
    "a": (LETTERS, SYMBOLS, HANDWRITTEN, DOODLES),
    "b": (LETTERS_B, SYMBOLS_B, HANDWRITTEN_B, DOODLES_B),
}


def fonts() -> list[Path]:
    """TrueType fonts on this machine (DejaVu, Liberation...), sorted, for the typed kinds."""
    found: set[Path] = set()
    for directory in FONT_DIRS:
        if directory.is_dir():
            found.update(directory.rglob("*.ttf"))
    return sorted(found)


def _render(char: str, font: Path) -> np.ndarray:
    """`char` in `font` at 48 px on a 128 px canvas, for comparing glyphs."""
    canvas = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(canvas).text((24, 24), char, fill=255, font=ImageFont.truetype(str(font), size=48))
    return np.asarray(canvas)


@functools.cache
def has_glyph(font: Path, char: str) -> bool:
    """Whether `font` really draws `char`: some ink, and not the box it draws for glyphs it lacks."""
    drawn = _render(char, font)
    return bool(drawn.any()) and not np.array_equal(drawn, _render(MISSING, font))


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


def _kind_set(kind_set: str) -> tuple[str, str, dict[str, list[Stroke]], dict[str, Figure]]:
    if kind_set not in _SETS:
        raise ValueError(f"kind_set must be one of {KIND_SETS}, not {kind_set!r}")
    return _SETS[kind_set]


def kinds(kind_set: str = "a") -> list[str]:
    """Every kind of a set: 'letter:A' (handwritten or typed), 'symbol:#', 'doodle:smiley', ..."""
    letters, symbols, _, doodles = _kind_set(kind_set)
    return [f"letter:{c}" for c in letters] + [f"symbol:{c}" for c in symbols] + [f"doodle:{d}" for d in doodles]


def typing_fonts(char: str, typefaces: Sequence[Path]) -> list[Path]:
    """Those of `typefaces` that have a glyph for `char`."""
    return [font for font in typefaces if has_glyph(font, char)]


def draw_kind(kind: str, rng: np.random.Generator, typefaces: Sequence[Path], kind_set: str = "a") -> np.ndarray:
    """One drawing of `kind`, on its canvas: (H, W) float32 ink 0-255. Typed in one of `typefaces`."""
    _, _, strokes, doodles = _kind_set(kind_set)
    family, name = kind.split(":", 1)
    if family == "doodle":
        return draw_strokes(doodles[name](rng), rng)
    handwritten = name in strokes and (not typefaces or rng.random() < 0.5)
    if handwritten:
        return draw_strokes(strokes[name], rng)
    if not typefaces:
        raise RuntimeError(f"no TrueType font found to type {name!r}")
    return draw_typed(name, typefaces[int(rng.integers(len(typefaces)))], rng)


def make_nondigits(n_per_kind: int, seed: int, kind_set: str = "a") -> tuple[np.ndarray, list[str]]:
    """`n_per_kind` of each kind of `kind_set` ("a" or the held-out "b"), in MNIST's form: (N, 28, 28)
    uint8 and each one's kind, from `seed`."""
    typefaces = fonts()
    images, names = [], []
    for k, kind in enumerate(kinds(kind_set)):
        if kind_set == "a":
            rng, faces = np.random.default_rng([seed, k]), typefaces
        else:  # set b: its own random streams, and only the fonts that have the glyph
            rng = np.random.default_rng([seed, k, 0xB])
            faces = typing_fonts(kind.split(":", 1)[1], typefaces) if not kind.startswith("doodle:") else []
        made = 0
        while made < n_per_kind:
            try:
                images.append(to_mnist_form(draw_kind(kind, rng, faces, kind_set), []))
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
    parser.add_argument("--set", dest="kind_set", choices=KIND_SETS, default="a", help="which set of kinds")
    args = parser.parse_args(argv)
    images, names = make_nondigits(args.n, args.seed, args.kind_set)
    rows = [np.concatenate(list(images[i : i + args.n]), axis=1) for i in range(0, len(images), args.n)]
    rows += [np.zeros_like(rows[0])] * (-len(rows) % 5)  # five kinds a line: fill the last one
    args.out.mkdir(parents=True, exist_ok=True)
    sheet = np.concatenate([np.concatenate(rows[i : i + 5], axis=1) for i in range(0, len(rows), 5)], axis=0)
    path = args.out / ("nondigits.png" if args.kind_set == "a" else f"nondigits-{args.kind_set}.png")
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2)).save(path)
    print(f"{len(images)} non-digits of {len(set(names))} kinds: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
