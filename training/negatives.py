"""Outlier-exposure negatives made from MNIST itself: images that are not digits, which the student is
trained towards a uniform output (Hendrycks et al. 2019), so that "no digit in particular" is something
it can say.

Four kinds, each (N, 28, 28) uint8 white on black like MNIST:
- `halves`: the top (or left) half of one digit joined to the other half of a digit of another class;
- `scrambled`: a digit cut into a 4x4 grid of 7x7 patches, shuffled;
- `strokes`: random curved strokes with MNIST's pen, centred like MNIST;
- `occluded`: a digit with most of its ink rubbed out by rectangles.

The held-out non-digits that measure the score (tools/nondigits.py) are made another way, on purpose.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("halves", "scrambled", "strokes", "occluded")
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


MAKERS: dict[str, Maker] = {"halves": halves, "scrambled": scrambled, "strokes": strokes, "occluded": occluded}


def make_negatives(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(N, 28, 28) uint8 digits and (N,) labels -> (n, 28, 28) uint8 non-digits, the four kinds in equal
    shares (images with almost no ink left dropped and redrawn), reproducible from `seed`."""
    rng = np.random.default_rng([seed, 14])
    parts = []
    for i, kind in enumerate(KINDS):
        want = n // len(KINDS) + (1 if i < n % len(KINDS) else 0)
        made = np.empty((0, 28, 28), dtype=np.uint8)
        while len(made) < want:
            batch = MAKERS[kind](x, y, want - len(made), rng)
            made = np.concatenate([made, batch[(batch > 127).sum(axis=(1, 2)) >= 15]])
        parts.append(made)
    return np.concatenate(parts)[rng.permutation(n)]
