"""The .keras reader: a model's Dense layers read from the archive itself (its config.json and
model.weights.h5), no TensorFlow; the start-up checks of the model files; the optional Keras load for
the cross-check (MNIST_CHECK_WITH_KERAS)."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import INPUT_SIZE, NUM_CLASSES, sha256_file
from app.model.network import DenseLayer


class ModelLoadError(Exception):
    """The model cannot be served; the message says which file and why, in one sentence."""


def check_model_files(path: Path, verify_sha256: bool = True) -> tuple[dict[str, Any], str]:
    """The model's metadata and sha256, once the file and its .json exist and (optionally) agree."""
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist; train one with `make train` or set MNIST_MODEL_PATH.")
    metadata_path = path.with_suffix(".json")
    try:
        metadata = json.loads(metadata_path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(
            f"model metadata {metadata_path} does not exist; the training CLI writes it beside the model."
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model metadata {metadata_path} is not readable JSON ({exc}).") from None
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"model metadata {metadata_path} is not a JSON object.")
    sha256 = sha256_file(path)
    if verify_sha256 and metadata.get("sha256") != sha256:
        raise ModelLoadError(
            f"model file {path} has sha256 {sha256}, but {metadata_path.name} records {metadata.get('sha256')}; "
            "the file was changed or corrupted (set MNIST_VERIFY_MODEL_SHA256=false to skip this check)."
        )
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(
            f"model file {path} is not a .keras archive (a zip file): it is corrupt or not a Keras 3 model."
        )
    return metadata, sha256


def load_keras_model(path: Path) -> Any:
    # TensorFlow only loads the model and checks it once: small thread pools, quiet C++ logs
    for var, value in (("TF_NUM_INTRAOP_THREADS", "1"), ("TF_NUM_INTEROP_THREADS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")):
        os.environ.setdefault(var, value)
    try:
        import keras  # heavy (TensorFlow): only for the optional cross-check and the tests
    except ImportError:
        raise ModelLoadError(
            "MNIST_CHECK_WITH_KERAS needs Keras and TensorFlow, which are not installed here (the Docker image "
            "serves without them): pip install keras tensorflow-cpu, or leave the check off."
        ) from None

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise ModelLoadError(f"model file {path} could not be loaded by Keras ({type(exc).__name__}: {exc}).") from None


def read_dense_layers(path: Path, outputs: int = NUM_CLASSES, last: str = "softmax") -> list[DenseLayer]:
    """The Dense layers of a Keras 3 MLP, in order, from the .keras archive: its config.json says which
    layers there are, model.weights.h5 holds their weights under the names Keras gives them when
    saving (the snake-cased class name, numbered from the second one on: dense, dense_1, ...).
    Input and Dropout layers do nothing at inference; any other layer is refused. The input is (N, 784)
    and the last layer gives (N, `outputs`) with the activation `last`: the classifier's softmax over 10,
    or the digit scorer's sigmoid over 1."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
        specs = config["config"]["layers"] if config.get("class_name") in ("Functional", "Sequential") else None
    except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(
            f"model file {path} is not a readable Keras 3 model ({type(exc).__name__}: {exc})."
        ) from None
    if not isinstance(specs, list):
        raise ModelLoadError(f"model file {path}: not a Sequential or Functional Keras model.")
    import h5py

    layers: list[DenseLayer] = []
    seen: Counter[str] = Counter()
    try:
        with h5py.File(io.BytesIO(weights), "r") as store:
            for spec in specs:
                kind, options = spec["class_name"], spec.get("config", {})
                base = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
                stored = f"{base}_{seen[base]}" if seen[base] else base
                seen[base] += 1
                if kind in ("InputLayer", "Dropout"):
                    continue
                activation = options.get("activation")
                if kind != "Dense" or activation not in ("relu", "softmax", "sigmoid", "linear"):
                    raise ModelLoadError(
                        f"model file {path}: layer {options.get('name')} ({kind}, {activation}) is not a Dense "
                        "relu/softmax/sigmoid/linear layer."
                    )
                variables = store[f"layers/{stored}/vars"]
                kernel = np.asarray(variables["0"], dtype=np.float32)
                bias = np.asarray(variables["1"], dtype=np.float32) if options.get("use_bias", True) else None
                layers.append(
                    DenseLayer(kernel, np.zeros(kernel.shape[1], np.float32) if bias is None else bias, activation)
                )
    except (KeyError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"model file {path}: its weights don't match its layers ({type(exc).__name__}: {exc})."
        ) from None
    shapes_ok = bool(layers) and layers[0].kernel.shape[0] == INPUT_SIZE and layers[-1].kernel.shape[1] == outputs
    chained = all(a.kernel.shape[1] == b.kernel.shape[0] for a, b in itertools.pairwise(layers)) and all(
        layer.bias.shape == layer.kernel.shape[1:] for layer in layers
    )
    if not shapes_ok or not chained or layers[-1].activation != last:
        raise ModelLoadError(f"model file {path}: expected input (N, 784) and a {last} output (N, {outputs}).")
    return layers


def read_scorer(
    path: Path, metadata: dict[str, Any], verify_sha256: bool = True
) -> tuple[list[DenseLayer] | None, float | None]:
    """The digit scorer that the model's metadata names (`digit_score`: its file beside the model, its
    sha256 and its threshold), as Dense layers, and that threshold; (None, None) for a model without one."""
    spec = metadata.get("digit_score")
    if not isinstance(spec, dict) or "file" not in spec:
        return None, None
    file = path.with_name(str(spec["file"]))
    if not file.is_file():
        raise ModelLoadError(f"digit scorer {file} does not exist; {path.with_suffix('.json').name} names it.")
    if verify_sha256 and spec.get("sha256") != sha256_file(file):
        raise ModelLoadError(
            f"digit scorer {file} does not match the sha256 that {path.with_suffix('.json').name} records; "
            "the file was changed or corrupted."
        )
    threshold = spec.get("threshold")
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ModelLoadError(f"model metadata {path.with_suffix('.json')}: digit_score.threshold must be in [0, 1].")
    return read_dense_layers(file, outputs=1, last="sigmoid"), float(threshold)
