"""The model's contract, defined once on the serving side (training imports it, never the reverse):
its name, a 28x28 grayscale digit flattened to 784 values in [0, 1], ten softmax probabilities out,
and the file hash that identifies a model."""

from __future__ import annotations

import hashlib
import os

import numpy as np

MODEL_NAME = "mnist-mlp"
IMAGE_SHAPE = (28, 28)
INPUT_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
NUM_CLASSES = 10
DEFAULT_MAX_PIXELS = 40_000_000  # the largest image (width x height) decoded: MNIST_MAX_PIXELS's default


def flatten_and_scale(pixels: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 784) float32 in [0, 1]; the model's input, for training and serving."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected an (N, 28, 28) array, got shape {pixels.shape}")
    flat = pixels.reshape(len(pixels), INPUT_SIZE).astype(np.float32)
    flat /= np.float32(255.0)
    return flat


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: what a model's metadata records."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
