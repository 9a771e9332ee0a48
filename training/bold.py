"""Bold-pen copies of training digits: each digit redrawn with a marker, then brought back to MNIST's
form by the service's own steps (`to_mnist_form`), so the model learns the bold digits the service will show it.

A marker widens every stroke; once the digit is scaled into MNIST's 20 px box its holes shrink or
close (a 9's loop, a 4's gap), and the service's stroke thinning cannot reopen a hole that the ink
filled. MNIST has few such digits, so a model trained on it alone misreads them.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image, ImageFilter

from app.preprocessing import ImageError, to_mnist_form

SIDES = (56, 141)  # the digit is redrawn this many pixels high (as photos and scans show it) ...
PEN = (0.015, 0.06)  # ... with the pen widened on each side of the stroke by this share of that height


def bold_digit(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(28, 28) uint8 MNIST digit -> the same digit drawn with a bolder pen, in MNIST's form."""
    side = int(rng.integers(*SIDES))
    radius = max(1, round(rng.uniform(*PEN) * side))
    image = Image.fromarray(digit).resize((side, side), Image.Resampling.LANCZOS)
    image = image.filter(ImageFilter.MaxFilter(2 * radius + 1))
    try:
        return to_mnist_form(np.asarray(image, dtype=np.float32), [])
    except ImageError:  # no strong strokes: nothing to make bold
        return digit


def _bold_chunk(args: tuple[np.ndarray, int, int]) -> np.ndarray:
    digits, seed, start = args
    return np.stack([bold_digit(d, np.random.default_rng([seed, start + i])) for i, d in enumerate(digits)])


def bold_copies(digits: np.ndarray, seed: int, workers: int = 2) -> np.ndarray:
    """(N, 28, 28) uint8 -> a bold copy of each digit, reproducible from `seed` (whatever `workers`).

    The workers are spawned processes: a script that calls this needs the `if __name__ == "__main__":` guard.
    """
    step = max(1, -(-len(digits) // (workers * 8)))
    jobs = [(digits[i : i + step], seed, i) for i in range(0, len(digits), step)]
    if workers <= 1 or len(digits) < 256:
        return np.concatenate([_bold_chunk(job) for job in jobs])
    # spawn, not fork: training calls this with TensorFlow's thread pools already running
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return np.concatenate(list(pool.map(_bold_chunk, jobs)))
