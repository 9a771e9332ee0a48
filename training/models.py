"""Model presets: each builds a keras.Model with input (N, 784) float32 in [0, 1], output (N, 10) softmax."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import layers

from training.data import INPUT_SIZE, NUM_CLASSES

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class Preset:
    """How a preset is built and trained; the defaults reproduce its reference recipe."""

    build: Callable[[], keras.Model]
    epochs: int
    batch_size: int
    optimizer: Callable[[int, int], keras.optimizers.Optimizer]  # (epochs, steps per epoch) -> optimizer
    description: str
    augment: bool = False
    bold: float = 0.0  # share of training digits shown drawn with a bold pen, each epoch (training/bold.py)
    early_stopping_patience: int | None = None
    label_smoothing: float = 0.0
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def _mlp(name: str, hidden: list[int], dropout: float = 0.0) -> keras.Model:
    inputs = keras.Input(shape=(INPUT_SIZE,), name=INPUT_NAME)
    x = inputs
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name=name)


def build_mlp_512() -> keras.Model:
    """784-512-512-10 ReLU MLP, the classic Keras MNIST example (669,706 parameters)."""
    return _mlp("mlp_512", [512, 512])


def build_mlp_256_dropout() -> keras.Model:
    """784-256-256-10 ReLU MLP with dropout 0.45 (269,322 parameters)."""
    return _mlp("mlp_256_dropout", [256, 256], dropout=0.45)


def build_logreg() -> keras.Model:
    """Multinomial logistic regression: 784-10 softmax (7,850 parameters)."""
    return _mlp("logreg", [])


def build_default() -> keras.Model:
    """Our best MLP: 784-800-800-10 ReLU with dropout 0.2, trained on augmented digits."""
    return _mlp("mlp_default", [800, 800], dropout=0.2)


def _adam(learning_rate: float = 1e-3) -> Callable[[int, int], keras.optimizers.Optimizer]:
    return lambda epochs, steps_per_epoch: keras.optimizers.Adam(learning_rate)


def _cosine_adamw(peak: float, warmup_epochs: int = 2) -> Callable[[int, int], keras.optimizers.Optimizer]:
    def make(epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        warmup_epochs_ = min(warmup_epochs, max(epochs - 1, 0))
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak / 10,
            decay_steps=max(epochs - warmup_epochs_, 1) * steps_per_epoch,
            alpha=0.01,
            warmup_target=peak,
            warmup_steps=warmup_epochs_ * steps_per_epoch,
        )
        return keras.optimizers.AdamW(schedule, weight_decay=1e-4)

    return make


DEFAULT_EPOCHS = 50

PRESETS: dict[str, Preset] = {
    "mlp-512": Preset(
        build_mlp_512,
        epochs=20,
        batch_size=128,
        optimizer=_adam(),
        description="784-512-512-10 ReLU, softmax; Adam, categorical cross-entropy",
    ),
    "mlp-256-dropout": Preset(
        build_mlp_256_dropout,
        epochs=20,
        batch_size=128,
        optimizer=_adam(),
        description="784-256-256-10 ReLU, dropout 0.45, softmax; Adam, 20 epochs, batch 128 (published: 98.4%)",
    ),
    "logreg": Preset(
        build_logreg,
        epochs=20,
        batch_size=128,
        optimizer=_adam(),
        description="multinomial logistic regression, 784-10 softmax",
    ),
    "default": Preset(
        build_default,
        epochs=DEFAULT_EPOCHS,
        batch_size=128,
        optimizer=_cosine_adamw(peak=1e-3),
        description=(
            "784-800-800-10 ReLU, dropout 0.2, softmax; AdamW (weight decay 1e-4) with warm-up and "
            "cosine decay to zero over all 50 epochs; label smoothing 0.05; random affine augmentation (rotation, "
            "scale, shift, shear); half the digits each epoch drawn with a bold pen and brought back to MNIST's "
            "form by the service's own steps"
        ),
        augment=True,
        bold=0.5,
        label_smoothing=0.05,
        hyperparameters={"dropout": 0.2, "peak_learning_rate": 1e-3, "weight_decay": 1e-4},
    ),
}
