"""MNIST loading: the one place that knows the .npz layout. The model's input format is app.contract's."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.contract import IMAGE_SHAPE, INPUT_SIZE, NUM_CLASSES, flatten_and_scale, sha256_file

__all__ = [
    "IMAGE_SHAPE",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "DataError",
    "Mnist",
    "array_sha256",
    "flatten_and_scale",
    "load_mnist",
    "sha256_file",
]

ENV_VAR = "MNIST_NPZ"
KEYS = ("x_train", "y_train", "x_test", "y_test")


class DataError(Exception):
    """The data could not be loaded; the message is one sentence naming the path and the problem."""


class Mnist(NamedTuple):
    x_train: np.ndarray  # (N, 28, 28) uint8, white digit on black
    y_train: np.ndarray  # (N,) uint8 in 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's bytes in C order (as ../shared/data/README.md lists them)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def load_mnist(path: str | os.PathLike[str] | None = None) -> Mnist:
    """Load MNIST from `path`, else $MNIST_NPZ, else Keras's cached download; validate it."""
    if path is None and os.environ.get(ENV_VAR):
        path = os.environ[ENV_VAR]
    if path is not None:
        return _load_npz(Path(path))
    return _load_keras_download()


def _load_npz(path: Path) -> Mnist:
    if not path.exists():
        raise DataError(f"{path}: no such file; pass --data PATH or set ${ENV_VAR} to an MNIST .npz.")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not an MNIST .npz file.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy file: one bare array
            raise DataError(f"{path}: is a single .npy array, not an .npz archive holding {', '.join(KEYS)}.")
        with loaded as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing key(s) {', '.join(missing)}; an MNIST .npz holds {', '.join(KEYS)}.")
            arrays = {k: npz[k] for k in KEYS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}).") from None
    return validate(arrays, source=str(path))


def _load_keras_download() -> Mnist:
    try:
        from keras.datasets import mnist

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as exc:
        raise DataError(
            f"no local MNIST given (--data or ${ENV_VAR}) and Keras could not download it "
            f"to ~/.keras/datasets/mnist.npz ({type(exc).__name__}: {exc}); are you offline?"
        ) from None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return validate(arrays, source="keras.datasets.mnist (~/.keras/datasets/mnist.npz)")


def validate(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    """Check dtypes, shapes and labels of the four arrays; raise DataError naming `source`."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} has dtype {x.dtype}, expected uint8.")
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE or len(x) == 0:
            raise DataError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28) with N > 0.")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{source}: y_{split} has dtype {y.dtype}, expected integer labels.")
        if y.shape != (len(x),):
            raise DataError(f"{source}: y_{split} has shape {y.shape}, expected ({len(x)},) to match x_{split}.")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{source}: y_{split} has labels from {y.min()} to {y.max()}, expected 0 to 9.")
    return Mnist(
        arrays["x_train"],
        arrays["y_train"].astype(np.uint8),
        arrays["x_test"],
        arrays["y_test"].astype(np.uint8),
        source,
    )
