"""Outlier-exposure negatives made from MNIST itself: images that are not digits, which the student is
trained towards a uniform output (Hendrycks et al. 2019), so that "no digit in particular" is something
it can say.

The kinds, each (N, 28, 28) uint8 white on black like MNIST:
- `halves`: the top (or left) half of one digit joined to the other half of a digit of another class;
- `scrambled`: a digit cut into a 4x4 grid of 7x7 patches, shuffled;
- `strokes`: random curved strokes with MNIST's pen, centred like MNIST;
- `occluded`: a digit with most of its ink rubbed out by rectangles;
- `mirrored`: a digit of a class whose mirror image is no digit (2 3 4 7 9), flipped left to right;
- `turned`: a digit turned a quarter (not 0s, which stay 0s, nor 1s, which stay slanted 1s), or upside
  down (3s, 4s and 7s only);
- `overlaid`: two digits of different classes on top of each other, shifted;
- `pairs`: two digits side by side, as one image;
- `marked`: a digit, or a mirrored one, with a mark that makes it something else: a dot below or beside
  it, or a bar through it; or the top of a digit with a dot below;
- `shapes`: one to four random pen primitives (polygons, arcs, segments, crossings, parallels, polylines,
  zigzags, spirals, hatching, dots);
- pieces from wrong cuts of a number (issue 34), the digits placed by their ink (`side_by_side`):
  `cut_halves`, the left or right part of a digit cut through its middle; `touching`, two neighbouring
  digits at once, touching or overlapping; `digit_and_part`, a digit and a large part of its neighbour.
All but the first four, like the service's uploads, are brought to MNIST's form by the service's own steps
(`to_mnist_form`: cropped, fitted to 20 px, centred by mass), so their framing says nothing.

The held-out non-digits that measure the score (tools/nondigits.py) are made another way, on purpose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from app.preprocessing import ImageError, to_mnist_form
from training.positives import ink_span, side_by_side

KINDS = (
    "halves", "scrambled", "strokes", "occluded", "mirrored", "turned", "overlaid", "pairs", "marked", "shapes",
    "cut_halves", "touching", "digit_and_part",
)  # fmt: skip
MARKED_CLASSES = (0, 2, 3, 5, 6, 8, 9)  # a bar through a 1, 4 or 7 can leave one (a crossed 7 is a 7)
TOPPED_CLASSES = (2, 3, 7, 9)  # their top with a dot below: no digit ends that way
MIRROR_CLASSES = (2, 3, 4, 7, 9)  # mirrored, these are no digit (a mirrored 0, 1 or 8 is one; 5 and 6 are close)
Maker = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]


def halves(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images, each one digit's half beside another class's other half (top/bottom or left/right)."""
    a = rng.integers(len(x), size=n)
    b = rng.integers(len(x), size=n)
    same = y[a] == y[b]
    while same.any():  # redraw the partners of the same class
        b[same] = rng.integers(len(x), size=int(same.sum()))
        same = y[a] == y[b]
    out = x[a].copy()
    cut = rng.integers(11, 18, size=n)
    vertical = rng.random(n) < 0.5
    below = np.arange(28)[None, :] >= cut[:, None]  # (n, 28): past the cut
    take = np.where(vertical[:, None, None], below[:, :, None], below[:, None, :])  # rows, or columns
    take = np.broadcast_to(take, out.shape)
    out[take] = x[b][take]
    return out


def scrambled(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n digits, each cut into 16 patches of 7x7 that are shuffled."""
    digits = x[rng.integers(len(x), size=n)]
    patches = digits.reshape(n, 4, 7, 4, 7).transpose(0, 1, 3, 2, 4).reshape(n, 16, 7, 7)
    order = np.argsort(rng.random((n, 16)), axis=1)
    shuffled = np.take_along_axis(patches, order[:, :, None, None], axis=1)
    return shuffled.reshape(n, 4, 4, 7, 7).transpose(0, 1, 3, 2, 4).reshape(n, 28, 28)


def strokes(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images of 1-4 random smooth strokes, drawn at 4x with a round pen and downsampled like MNIST."""
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        image = Image.new("L", (112, 112), 0)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 5))):
            # a random walk with momentum: curved, like a pen
            point = rng.uniform(20, 92, size=2)
            heading = rng.uniform(0, 2 * np.pi)
            points = [tuple(point)]
            for _ in range(int(rng.integers(3, 12))):
                heading += rng.normal(0, 0.8)
                point = np.clip(point + 10 * np.array([np.cos(heading), np.sin(heading)]), 10, 102)
                points.append(tuple(point))
            draw.line(points, fill=255, width=int(rng.integers(7, 12)), joint="curve")
        small = image.filter(ImageFilter.GaussianBlur(1.5)).resize((28, 28), Image.Resampling.BILINEAR)
        out[i] = np.asarray(small)
    return out


def occluded(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n digits with two to four random rectangles rubbed out, covering most of the 20x20 box."""
    out = x[rng.integers(len(x), size=n)].copy()
    for _ in range(3):
        top, left = rng.integers(2, 18, size=(2, n))
        height, width = rng.integers(8, 16, size=(2, n))
        rows = np.arange(28)[None, :, None]
        cols = np.arange(28)[None, None, :]
        box = (
            (rows >= top[:, None, None])
            & (rows < (top + height)[:, None, None])
            & (cols >= left[:, None, None])
            & (cols < (left + width)[:, None, None])
        )
        out[box] = 0
    return out


def in_mnist_form(images: list[np.ndarray]) -> np.ndarray:
    """Light-on-black images of any size -> (N, 28, 28) uint8 in MNIST's form; those with no strokes
    come out blank (make_negatives drops them)."""
    out = np.zeros((len(images), 28, 28), dtype=np.uint8)
    for i, image in enumerate(images):
        with contextlib.suppress(ImageError):
            out[i] = to_mnist_form(np.asarray(image, dtype=np.float32), [])
    return out


def _upscaled(digit: np.ndarray, side: int, height: int | None = None) -> np.ndarray:
    """Resized to `side` wide and `height` (default `side`) high, bilinear."""
    return np.asarray(Image.fromarray(digit).resize((side, height or side), Image.Resampling.BILINEAR))


def mirrored(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n digits of MIRROR_CLASSES, flipped left to right."""
    pool = np.flatnonzero(np.isin(y, MIRROR_CLASSES))
    return in_mnist_form([_upscaled(d, 56)[:, ::-1] for d in x[rng.choice(pool, n)]])


HALF_TURN_CLASSES = (3, 4, 7)  # upside down, these are no digit (a 6 is a 9; a 0, 1, 2, 5 or 8 stays itself)


def turned(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n digits turned: a quarter either way (no 0s or 1s), or a half turn (HALF_TURN_CLASSES only)."""
    quarter = np.flatnonzero(y >= 2)
    half = np.flatnonzero(np.isin(y, HALF_TURN_CLASSES))
    out = []
    for _ in range(n):
        turns = int(rng.choice([1, 2, 3]))
        digit = x[rng.choice(half if turns == 2 else quarter)]
        out.append(np.rot90(_upscaled(digit, 56), turns))
    return in_mnist_form(out)


def _two_of_a_kind(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a, b = rng.integers(len(x), size=n), rng.integers(len(x), size=n)
    same = y[a] == y[b]
    while same.any():
        b[same] = rng.integers(len(x), size=int(same.sum()))
        same = y[a] == y[b]
    return x[a], x[b]


def overlaid(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images of two digits of different classes on top of each other, the second shifted by up to 8 px."""
    first, second = _two_of_a_kind(x, y, n, rng)
    out = []
    for a, b in zip(first, second, strict=True):
        canvas = np.zeros((44, 44), dtype=np.uint8)
        canvas[8:36, 8:36] = a
        dy, dx = rng.integers(-8, 9, size=2)
        region = canvas[8 + dy : 36 + dy, 8 + dx : 36 + dx]
        np.maximum(region, b, out=region)
        out.append(canvas)
    return in_mnist_form(out)


def pairs(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images of two digits side by side, 0-6 px apart."""
    first, second = _two_of_a_kind(x, y, n, rng)
    out = []
    for a, b in zip(first, second, strict=True):
        gap = int(rng.integers(0, 7))
        canvas = np.zeros((28, 56 + gap - 8), dtype=np.uint8)  # the digits' own margins overlap a little
        canvas[:, :28] = a
        np.maximum(canvas[:, 20 + gap :], b, out=canvas[:, 20 + gap :])
        out.append(canvas)
    return in_mnist_form(out)


def marked(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n marked digits at 56 px: a digit of MARKED_CLASSES, or a mirrored one of MIRROR_CLASSES, with a
    dot below or beside it or a bar through it; or the top of a digit of TOPPED_CLASSES, a dot below."""
    marked_pool = np.flatnonzero(np.isin(y, MARKED_CLASSES))
    mirror_pool = np.flatnonzero(np.isin(y, MIRROR_CLASSES))
    topped_pool = np.flatnonzero(np.isin(y, TOPPED_CLASSES))
    out = []
    for _ in range(n):
        base = rng.integers(3)
        digit = _upscaled(x[rng.choice((marked_pool, mirror_pool, topped_pool)[base])], 56)
        if base == 1:
            digit = digit[:, ::-1]
        elif base == 2:  # keep the top 55-75%: a hook
            digit = digit.copy()
            digit[int(rng.uniform(0.55, 0.75) * 56) :] = 0
        canvas = Image.new("L", (96, 96), 0)
        canvas.paste(Image.fromarray(np.ascontiguousarray(digit)), (20, 12))
        draw = ImageDraw.Draw(canvas)
        pen = int(rng.integers(4, 9))
        mark = 0 if base == 2 else rng.integers(3)
        if mark == 0:  # a dot below
            cx, cy = rng.uniform(35, 60), rng.uniform(72, 84) if base != 2 else rng.uniform(54, 74)
            draw.ellipse((cx - pen, cy - pen, cx + pen, cy + pen), fill=255)
        elif mark == 1:  # a dot beside
            cx, cy = rng.choice([rng.uniform(6, 14), rng.uniform(80, 90)]), rng.uniform(30, 70)
            draw.ellipse((cx - pen, cy - pen, cx + pen, cy + pen), fill=255)
        else:  # a bar through, roughly upright, from just past the digit's ends to well beyond them
            cx, lean, over = rng.uniform(38, 58), rng.uniform(-10, 10), rng.uniform(2, 16, 2)
            draw.line([(cx - lean, 14 - over[0]), (cx + lean, 66 + over[1])], fill=255, width=pen)
        out.append(np.asarray(canvas))
    return in_mnist_form(out)


def _primitive(
    kind: str, rng: np.random.Generator, box: tuple[float, float, float, float]
) -> list[list[tuple[float, float]]]:
    """Polylines of one pen primitive inside `box` (left, top, width, height), in canvas pixels."""
    left, top, width, height = box

    def at(u: float, v: float) -> tuple[float, float]:
        return left + u * width, top + v * height

    if kind == "polygon":
        k = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = rng.uniform(0.25, 0.5, k)
        points = [at(0.5 + r * np.cos(t), 0.5 + r * np.sin(t)) for r, t in zip(radii, angles, strict=True)]
        return [points + points[:1] if rng.random() < 0.7 else points]
    if kind == "arc":
        start = rng.uniform(0, 2 * np.pi)
        t = np.linspace(start, start + rng.uniform(0.5, 1.6) * np.pi, 16)
        return [[at(0.5 + 0.5 * np.cos(a), 0.5 + 0.5 * np.sin(a)) for a in t]]
    if kind == "segment":
        return [[at(*rng.uniform(0, 1, 2)), at(*rng.uniform(0, 1, 2))]]
    if kind == "crossing":  # two segments crossing near their middles: an x, a +, a t
        cx, cy, a = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0, np.pi)
        b = a + rng.uniform(0.35, 0.65) * np.pi
        return [
            [at(cx - r * np.cos(t), cy - r * np.sin(t)), at(cx + q * np.cos(t), cy + q * np.sin(t))]
            for t in (a, b)
            for r, q in [rng.uniform(0.25, 0.5, 2)]
        ]
    if kind == "parallels":  # two or three roughly parallel segments: an =, a ||
        k, angle = int(rng.integers(2, 4)), float(rng.uniform(0, np.pi))
        dx, dy = 0.5 * np.cos(angle), 0.5 * np.sin(angle)
        return [
            [at(0.5 - dx + o * dy, 0.5 - dy - o * dx), at(0.5 + dx + o * dy, 0.5 + dy - o * dx)]
            for o in np.linspace(-0.3, 0.3, k) + rng.uniform(-0.05, 0.05, k)
        ]
    if kind == "polyline":  # two to four straight strokes joined at sharp corners: a V, an N, a Z, an L
        return [[at(*rng.uniform(0, 1, 2)) for _ in range(int(rng.integers(3, 6)))]]
    if kind == "zigzag":
        k = int(rng.integers(4, 8))
        vertical = rng.random() < 0.5
        points = [(i / (k - 1), float(i % 2)) for i in range(k)]
        return [[at(v, u) if vertical else at(u, v) for u, v in points]]
    if kind == "spiral":
        turns = rng.uniform(1.3, 3.0)
        t = np.linspace(0, turns * 2 * np.pi, int(24 * turns))
        r = 0.5 * t / t[-1]
        return [[at(0.5 + ri * np.cos(ti), 0.5 + ri * np.sin(ti)) for ri, ti in zip(r, t, strict=True)]]
    if kind == "hatch":
        lines = []
        for _ in range(int(rng.integers(2, 4))):
            u = rng.uniform(0, 1)
            lines.append([at(u, 0), at(u + rng.uniform(-0.2, 0.2), 1)])
        for _ in range(int(rng.integers(1, 4))):
            v = rng.uniform(0, 1)
            lines.append([at(0, v), at(1, v + rng.uniform(-0.2, 0.2))])
        return lines
    # dots
    return [[at(u, v), at(u + 0.02, v)] for u, v in rng.uniform(0, 1, (int(rng.integers(2, 6)), 2))]


PRIMITIVES = ("polygon", "arc", "segment", "crossing", "parallels", "polyline", "zigzag", "spiral", "hatch", "dots")
# alone, an arc or a segment could be a 0, a 1 or a 7; a polyline gets a second primitive too
ALONE = ("polygon", "crossing", "parallels", "zigzag", "spiral", "hatch")


def shapes(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n drawings of one to four pen primitives, at random places and sizes, with one random pen each."""
    out = []
    for _ in range(n):
        image = Image.new("L", (112, 112), 0)
        draw = ImageDraw.Draw(image)
        count = int(rng.integers(1, 5))
        pen = int(rng.integers(5, 13))
        for _ in range(count):
            kind = str(rng.choice(ALONE if count == 1 else PRIMITIVES))
            w, h = rng.uniform(30, 100, 2)
            box = (rng.uniform(0, 112 - w), rng.uniform(0, 112 - h), w, h)
            for line in _primitive(kind, rng, box):
                draw.line(line, fill=255, width=pen, joint="curve")
        out.append(np.asarray(image.filter(ImageFilter.GaussianBlur(1.0))))
    return in_mnist_form(out)


HALF_LEFT_CLASSES = (0, 2, 4, 5, 7, 8, 9)  # their left part is no digit (a 1 has no halves, a 6's is a 6)
HALF_RIGHT_CLASSES = (0, 6)  # a 2's, 3's, 4's, 5's, 7's, 8's or 9's right part can still read as a digit


def cut_halves(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n halves of a digit, as a wrong cut leaves them: the columns left (or right) of a cut through the
    digit's ink at 35-60% of its width from that side; the sides that still read as a digit left out."""
    left_pool = np.flatnonzero(np.isin(y, HALF_LEFT_CLASSES))
    right_pool = np.flatnonzero(np.isin(y, HALF_RIGHT_CLASSES))
    out = []
    for _ in range(n):
        keep_left = rng.random() < 0.5
        digit = x[rng.choice(left_pool if keep_left else right_pool)]
        start, end = ink_span(digit)
        share = rng.uniform(0.35, 0.6)
        if keep_left:
            piece = digit[:, : start + max(2, round(share * (end - start)))]
        else:
            piece = digit[:, end + 1 - max(2, round(share * (end - start))) :]
        out.append(_upscaled(np.ascontiguousarray(piece), 56 * piece.shape[1] // 28, 56))
    return in_mnist_form(out)


def _neighbours(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, overlap: int
) -> tuple[np.ndarray, int, int, int]:
    """Two digits of x side by side (not both 1s), by side_by_side: (image, right's ink start, left's ink
    end, right's ink end)."""
    while True:
        a, b = rng.integers(len(x), size=2)
        if not (y[a] == 1 and y[b] == 1):
            break
    canvas, start, end = side_by_side(x[a], x[b], overlap, int(rng.integers(-3, 4)))
    return canvas, start, end, ink_span(canvas)[1]


def touching(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images of two neighbouring digits at once, their ink 1 column apart to overlapping by 4 (never
    two 1s, which could pass for one bold 1), as a missed cut leaves them."""
    out = []
    for _ in range(n):
        canvas, _, _, _ = _neighbours(x, y, rng, int(rng.integers(-1, 5)))
        out.append(_upscaled(canvas, 2 * canvas.shape[1], 72))
    return in_mnist_form(out)


PART_CLASSES = tuple(c for c in range(10) if c != 1)  # a part of a 1 is a thin stub: a digit piece has those


def digit_and_part(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images of a digit and 40-75% (at least 5 columns) of its neighbour's width past the overlap (not
    a 1), on either side, as a cut too far into the neighbour leaves them."""
    pool = np.flatnonzero(np.isin(y, PART_CLASSES))
    out = []
    for _ in range(n):
        own, other = rng.integers(len(x)), rng.choice(pool)
        overlap, dy = int(rng.integers(0, 4)), int(rng.integers(-3, 4))
        share = rng.uniform(0.4, 0.75)
        if rng.random() < 0.5:  # the neighbour on the right
            canvas, start, _ = side_by_side(x[own], x[other], overlap, dy)
            other_start, other_end = ink_span(x[other])
            cut = start + max(5, round(share * (other_end - other_start)))
            piece = canvas[:, : cut + 1]
        else:
            canvas, _, end = side_by_side(x[other], x[own], overlap, dy)
            other_start, other_end = ink_span(x[other])
            cut = end - max(5, round(share * (other_end - other_start)))
            piece = canvas[:, max(0, cut) :]
        out.append(_upscaled(np.ascontiguousarray(piece), 2 * piece.shape[1], 72))
    return in_mnist_form(out)


FRAMED_BY_MNIST = ("halves", "scrambled", "strokes", "occluded")  # made at 28x28 in MNIST's frame: refit

MAKERS: dict[str, Maker] = {
    "halves": halves,
    "scrambled": scrambled,
    "strokes": strokes,
    "occluded": occluded,
    "mirrored": mirrored,
    "turned": turned,
    "overlaid": overlaid,
    "pairs": pairs,
    "marked": marked,
    "shapes": shapes,
    "cut_halves": cut_halves,
    "touching": touching,
    "digit_and_part": digit_and_part,
}


def make_negatives(x: np.ndarray, y: np.ndarray, n: int, seed: int, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """(N, 28, 28) uint8 digits and (N,) labels -> (n, 28, 28) uint8 non-digits in MNIST's form, `kinds`
    in equal shares (images with almost no ink left dropped and redrawn), reproducible from `seed`."""
    rng = np.random.default_rng([seed, 14])
    parts = []
    for i, kind in enumerate(kinds):
        want = n // len(kinds) + (1 if i < n % len(kinds) else 0)
        made = np.empty((0, 28, 28), dtype=np.uint8)
        while len(made) < want:
            batch = MAKERS[kind](x, y, want - len(made), rng)
            if kind in FRAMED_BY_MNIST:
                batch = in_mnist_form(list(batch))
            made = np.concatenate([made, batch[(batch > 127).sum(axis=(1, 2)) >= 15]])
        parts.append(made)
    return np.concatenate(parts)[rng.permutation(n)]
