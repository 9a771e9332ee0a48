"""The model's math in numpy: Dense layers, the forward pass, and `Network`, the classifier and its digit
scorer as one object that an engine holds and evaluates.

A model is its classifier ((N, 784) -> (N, 10) softmax) and, when its metadata names one, the digit
scorer beside it ((N, 784) -> (N, 1) sigmoid: how digit-like each input is). Both are stacks of Dense
layers; app/model/keras_file.py reads them from the .keras files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    a small share of the weights. A product of a few rows with a whole kernel costs BLAS about as much
    as one of 4 (it repacks the kernel every call), so batches of ROW_BY_ROW's sizes are evaluated one
    image at a time, each on its own non-zero rows. From 4 up the inputs' union is too dense for the
    sparse product to pay and the full product is used, on a batch padded with zero rows to a multiple
    of BLAS_ROWS: OpenBLAS's sgemm kernels compute blocks of 4 of our rows (numpy's row-major product is
    its column-major one transposed, the batch its N), and the 1-3 rows left over take slower paths
    (docs/performance.md has the figures, from bench/forward.py). Same sums, in another order (checked
    against Keras to 1e-5 in tests/model/test_models.py).
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
    digit_threshold: float | None = None  # is_digit is digit_score >= this (None: no scorer)
    version: str = ""  # of the model: every answer computed with this network names it
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

    def is_digit(self, scores: np.ndarray | None) -> np.ndarray | None:
        """(N,) digit scores -> (N,) bool, at the model's threshold (None: no scorer)."""
        return None if scores is None or self.digit_threshold is None else scores >= self.digit_threshold


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
