"""The loaded model behind one small class: Classifier.load(path), classifier.predict(batch).

The classifier and its digit scorer are a `Network` (app/model/network.py), evaluated in numpy: a
784-800-800-10 MLP is three matrix products, far cheaper than a call into Keras, whose `model.predict`
is built for big batches. Serving evaluates it in the engines (app/engines/); this class loads it,
names its version and checks it against Keras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.model.keras_file import ModelLoadError, check_model_files, load_keras_model, read_dense_layers, read_scorer
from app.model.network import DenseLayer, Network, forward
from app.model.reading_calibration import ReadingCalibration, load_reading_calibration

PROBE_TOLERANCE = 1e-5


class Classifier:
    """A model read from its files: its `network` (what the engines evaluate), metadata, sha256 and version."""

    def __init__(
        self,
        layers: list[DenseLayer],
        metadata: dict[str, Any],
        path: Path,
        sha256: str,
        scorer: list[DenseLayer] | None = None,
        digit_threshold: float | None = None,
        reading_calibration: ReadingCalibration | None = None,
    ) -> None:
        self.layers = layers
        # is_digit = digit_score >= the threshold: the metadata's, or MNIST_DIGIT_THRESHOLD; None without a scorer
        self.network = Network(layers, scorer, digit_threshold if scorer is not None else None, sha256[:12])
        self.metadata = metadata
        self.path = path
        self.sha256 = sha256
        self.reading_calibration = reading_calibration  # /v1/read's confidence; None: uncalibrated

    @classmethod
    def load(
        cls,
        path: str | Path,
        verify_sha256: bool = True,
        check_with_keras: bool = False,
        digit_threshold: float | None = None,
    ) -> Classifier:
        """Load the .keras file, its .json metadata, the digit scorer it names and the reading
        calibration beside it; raise ModelLoadError with a clear message.

        The weights are read from the archive itself (no TensorFlow: a fast start-up in a fraction of
        the memory). `check_with_keras` also loads the model with Keras (safe mode) and refuses to
        serve if its answers differ from the numpy path's. `digit_threshold` overrides the metadata's
        (MNIST_DIGIT_THRESHOLD).
        """
        path = Path(path)
        metadata, sha256 = check_model_files(path, verify_sha256)
        scorer, threshold = read_scorer(path, metadata, verify_sha256)
        classifier = cls(
            read_dense_layers(path), metadata, path, sha256, scorer,
            threshold if digit_threshold is None else digit_threshold, load_reading_calibration(path, sha256),
        )  # fmt: skip
        if check_with_keras:
            classifier.check_against(load_keras_model(path))
        return classifier

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 784) float32 in [0, 1] -> (N, 10) float32 softmax probabilities, and (N,) digit scores
        (None: the model has no digit scorer)."""
        return self.network(batch)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """(N, 784) float32 in [0, 1] -> (N, 10) float32 softmax probabilities."""
        return self.predict(batch)[0]

    def is_digit(self, scores: np.ndarray | None) -> np.ndarray | None:
        """(N,) digit scores -> (N,) bool, at the model's threshold (None: no scorer)."""
        return self.network.is_digit(scores)

    @property
    def digit_threshold(self) -> float | None:
        return self.network.digit_threshold

    @property
    def version(self) -> str:
        """The model's version: the first 12 hex digits of the file's sha256 (content-addressed, URL-safe)."""
        return self.network.version

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


def load_classifier(settings: Settings, check_with_keras: bool | None = None) -> Classifier:
    """The model at MNIST_MODEL_PATH, loaded and checked as the settings say (raises ModelLoadError)."""
    return Classifier.load(
        settings.model_path,
        settings.verify_model_sha256,
        settings.check_with_keras if check_with_keras is None else check_with_keras,
        settings.digit_threshold,
    )
