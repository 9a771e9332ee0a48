"""The loaded model behind one small class: Classifier.load(path), classifier.predict_proba(batch).

A model is its classifier, `mnist-mlp.keras` ((N, 784) -> (N, 10) softmax), and, when its metadata's
`digit_score` names one, the digit scorer beside it (`mnist-mlp.digit.keras`, (N, 784) -> (N, 1)
sigmoid: how digit-like each input is). Both are stacks of Dense layers, evaluated in numpy: a
`Network`, which is what the engines hold.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import INPUT_SIZE, NUM_CLASSES, sha256_file

PROBE_TOLERANCE = 1e-5


class ModelLoadError(Exception):
    """The model cannot be served; the message says which file and why, in one sentence."""


@dataclass
class DenseLayer:
    kernel: np.ndarray  # (in, out) float32
    bias: np.ndarray  # (out,) float32
    activation: str  # "relu", "softmax", "sigmoid" or "linear"


SPARSE_SHARE = 0.35  # see forward()
SPARSE_MIN_WEIGHTS = 100_000  # smaller kernels (the 800x10 output layer) are cheaper in full than gathered
ROW_BY_ROW = range(2, 4)  # batch sizes evaluated one image at a time: see forward() (bench/forward.py measures it)
BLAS_ROWS = 4  # other batches are padded to a multiple of this many rows: see forward()


def forward(layers: list[DenseLayer], batch: np.ndarray) -> np.ndarray:
    """An MLP's forward pass: (N, in) float32 -> (N, out) float32, e.g. the classifier's (N, 784) pixels
    in [0, 1] -> (N, 10) softmax probabilities.

    A digit is mostly background, and ReLU zeroes many hidden units: when few of a layer's inputs are
    non-zero anywhere in the batch, only their rows of the kernel are multiplied: at batch 1 that reads
    a tenth of the weights. A product of a few rows with a whole kernel costs BLAS about as much as one
    of 4 (it repacks the kernel every call), so batches of ROW_BY_ROW's sizes are evaluated one image at
    a time, each on its own non-zero rows. From 4 up the inputs' union is too dense for the sparse
    product to pay (about half of the pixels at batch 8) and the full product is used, on a batch padded
    with zero rows to a multiple of BLAS_ROWS: OpenBLAS's sgemm kernels compute blocks of 4 of our rows
    (numpy's row-major product is its column-major one transposed, the batch its N), and the 1-3 rows
    left over take slower paths: 5, 6 or 7 rows cost more than 8, 11 more than 12 (bench/forward.py).
    Same sums, in another order (checked against Keras to 1e-5 in tests/test_models.py).
    """
    x = np.asarray(batch, dtype=np.float32)
    rows = x.shape[0]
    if rows in ROW_BY_ROW:
        return np.concatenate([_forward(layers, x[row : row + 1]) for row in range(rows)])
    if rows < ROW_BY_ROW.start:
        return _forward(layers, x)
    return _forward(layers, padded(x), sparse=False)[:rows]


def padded(x: np.ndarray) -> np.ndarray:
    """(N, in) -> the same rows, then zero rows up to a multiple of BLAS_ROWS (x itself when it is one)."""
    if not (extra := -x.shape[0] % BLAS_ROWS):
        return x
    out = np.zeros((x.shape[0] + extra, x.shape[1]), np.float32)
    out[: x.shape[0]] = x
    return out


def _forward(layers: list[DenseLayer], x: np.ndarray, sparse: bool = True) -> np.ndarray:
    for layer in layers:
        used = np.flatnonzero(x.any(axis=0)) if sparse and layer.kernel.size >= SPARSE_MIN_WEIGHTS else None
        if used is not None and used.size < SPARSE_SHARE * x.shape[1]:
            x = x[:, used] @ layer.kernel[used]
        else:
            x = x @ layer.kernel
        x += layer.bias
        _activate(x, layer.activation)
    return x


def _activate(x: np.ndarray, activation: str) -> None:
    """Apply `activation` to (N, units) float32 `x`, in place."""
    if activation == "relu":
        np.maximum(x, 0.0, out=x)
    elif activation == "softmax":
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=1, keepdims=True)
    elif activation == "sigmoid":
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1.0
        np.reciprocal(x, out=x)


@dataclass
class Network:
    """What an engine evaluates: the classifier's Dense layers and the digit scorer's, if the model has one.

    The scorer may start with the classifier's own first layers (the same weights: a standalone file for
    Keras, a shared trunk here): those are evaluated once, for both. When it shares every hidden layer,
    the classifier's output layer and the scorer's next layer read the same activations: they are one
    product with the two kernels side by side (`head`), split after it.
    """

    classifier: list[DenseLayer]
    scorer: list[DenseLayer] | None = None
    shared: int = field(init=False, default=0)  # leading layers the two have in common
    head: DenseLayer | None = field(init=False, default=None)  # the fused output layers, when all are shared

    def __post_init__(self) -> None:
        if self.scorer is None:
            return
        while self.shared < min(len(self.classifier), len(self.scorer)) - 1 and _same(
            self.classifier[self.shared], self.scorer[self.shared]
        ):
            self.scorer[self.shared] = self.classifier[self.shared]  # one copy in memory and in the pickle
            self.shared += 1
        if self.shared == len(self.classifier) - 1:
            out, next_ = self.classifier[-1], self.scorer[self.shared]
            kernel = np.ascontiguousarray(np.concatenate([out.kernel, next_.kernel], axis=1))
            self.head = DenseLayer(kernel, np.concatenate([out.bias, next_.bias]), "linear")

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 784) float32 in [0, 1] -> (N, 10) probabilities, and (N,) float64 digit scores (None: no scorer)."""
        x = np.asarray(batch, dtype=np.float32)
        if self.scorer is None:
            return forward(self.classifier, x), None
        trunk = forward(self.classifier[: self.shared], x) if self.shared else x
        if self.head is None:
            return forward(self.classifier[self.shared :], trunk), _scores(self.scorer[self.shared :], trunk)
        both = forward([self.head], trunk)  # as forward() does: sparse for a big kernel (cold by now)
        classes = self.classifier[-1].kernel.shape[1]
        probabilities, hidden = both[:, :classes], both[:, classes:]  # views: activated in place
        _activate(probabilities, self.classifier[-1].activation)
        _activate(hidden, self.scorer[self.shared].activation)
        return np.ascontiguousarray(probabilities), _scores(self.scorer[self.shared + 1 :], hidden)


def _scores(layers: list[DenseLayer], x: np.ndarray) -> np.ndarray:
    """The scorer's remaining layers on `x` -> (N,) float64 digit scores: the last one's sigmoid in
    float64, which stays under 1.0 up to a logit of 36 (float32's reaches 1.0 from 17, and then no
    threshold could tell the most digit-like images apart)."""
    last = layers[-1]
    hidden = forward(layers[:-1], x) if len(layers) > 1 else x  # the fused head leaves the last layer alone
    logits = hidden @ last.kernel[:, 0] + last.bias[0]
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def _same(a: DenseLayer, b: DenseLayer) -> bool:
    return a.activation == b.activation and np.array_equal(a.kernel, b.kernel) and np.array_equal(a.bias, b.bias)


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


class Classifier:
    """The Keras MLP, evaluated as numpy matrix products of its Dense weights.

    A 784-800-800-10 MLP is three matrix products, far cheaper in numpy than a call into Keras
    (`model.predict` is built for big batches; docs/performance.md).
    """

    def __init__(
        self,
        layers: list[DenseLayer],
        metadata: dict[str, Any],
        path: Path,
        sha256: str,
        scorer: list[DenseLayer] | None = None,
        digit_threshold: float | None = None,
    ) -> None:
        self.layers = layers
        self.network = Network(layers, scorer)
        # is_digit = digit_score >= this: the metadata's, or MNIST_DIGIT_THRESHOLD; None without a scorer
        self.digit_threshold = digit_threshold if scorer is not None else None
        self.metadata = metadata
        self.path = path
        self.sha256 = sha256
        # called after each model call with (batch size, seconds, probabilities, is_digit): the metrics hook
        self.observer: Callable[[int, float, np.ndarray, np.ndarray | None], None] | None = None

    @classmethod
    def load(
        cls,
        path: str | Path,
        verify_sha256: bool = True,
        check_with_keras: bool = False,
        digit_threshold: float | None = None,
    ) -> Classifier:
        """Load the .keras file, its .json metadata and the digit scorer it names; raise ModelLoadError
        with a clear message.

        The weights are read from the archive itself (no TensorFlow: start-up in a second and a tenth
        of the memory). `check_with_keras` also loads the model with Keras (safe mode) and refuses to
        serve if its answers differ from the numpy path's. `digit_threshold` overrides the metadata's
        (MNIST_DIGIT_THRESHOLD).
        """
        path = Path(path)
        metadata, sha256 = check_model_files(path, verify_sha256)
        scorer, threshold = read_scorer(path, metadata, verify_sha256)
        classifier = cls(
            read_dense_layers(path), metadata, path, sha256, scorer,
            threshold if digit_threshold is None else digit_threshold,
        )  # fmt: skip
        if check_with_keras:
            classifier.check_against(load_keras_model(path))
        return classifier

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 784) float32 in [0, 1] -> (N, 10) float32 softmax probabilities, and (N,) digit scores
        (None: the model has no digit scorer)."""
        started = time.perf_counter()
        probabilities, scores = self.network(batch)
        if self.observer is not None:
            self.observer(len(probabilities), time.perf_counter() - started, probabilities, self.is_digit(scores))
        return probabilities, scores

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """(N, 784) float32 in [0, 1] -> (N, 10) float32 softmax probabilities."""
        return self.predict(batch)[0]

    def is_digit(self, scores: np.ndarray | None) -> np.ndarray | None:
        """(N,) digit scores -> (N,) bool, at the model's threshold (None: no scorer)."""
        return None if scores is None or self.digit_threshold is None else scores >= self.digit_threshold

    @property
    def version(self) -> str:
        """The model's version: the first 12 hex digits of the file's sha256 (content-addressed, URL-safe)."""
        return self.sha256[:12]

    def check_against(self, model: Any) -> None:
        """Prove the numpy path equals Keras's own answer on probe inputs, or raise ModelLoadError."""
        rng = np.random.default_rng(0)
        probe = rng.random((16, 784), dtype=np.float32)
        probe[:8] *= probe[:8] > 0.7  # sparse, digit-like inputs as well as dense ones
        expected = np.asarray(model(probe, training=False))
        got = forward(self.layers, probe)
        if got.shape != expected.shape or not np.allclose(got, expected, atol=PROBE_TOLERANCE, rtol=0):
            raise ModelLoadError(
                f"model file {self.path}: the fast inference path disagrees with Keras; refusing to serve."
            )


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
