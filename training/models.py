"""Model presets: each builds a keras.Model with input (N, 784) float32 in [0, 1], output (N, 10) softmax.

A preset is one declarative definition (`Preset`): its model, optimizer and recipe are stated once, and
`build()`, the optimizer, the `description` and the recorded `hyperparameters()` are all derived from it,
so the metadata says what the code does. Keras is imported only when a model or an optimizer is built:
importing this module (as `python -m training --help` does) loads no TensorFlow and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from app.contract import INPUT_SIZE, NUM_CLASSES
from training.distill import Distillation

if TYPE_CHECKING:
    import keras

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


def _number(value: float) -> str:
    """A number as the descriptions write it: 0.2, 0.05, 1e-4."""
    if 0 < abs(value) < 1e-3:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{value:g}"


class OptimizerRecipe(Protocol):
    """How a preset's optimizer is made, described and recorded."""

    def __call__(self, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer: ...

    def describe(self, epochs: int, batch_size: int) -> str: ...

    def hyperparameters(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Adam:
    """Adam at Keras's default learning rate, constant."""

    LEARNING_RATE: ClassVar[float] = 1e-3

    def __call__(self, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        import keras

        return keras.optimizers.Adam(self.LEARNING_RATE)

    def describe(self, epochs: int, batch_size: int) -> str:
        return f"Adam, {epochs} epochs, batch {batch_size}"

    def hyperparameters(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class CosineAdamW:
    """AdamW whose learning rate warms up linearly from a tenth of the peak over the first epochs, then
    follows a cosine down to 1% of the peak at the last step (the description's "to zero")."""

    peak_learning_rate: float
    weight_decay: float
    WARMUP_EPOCHS: ClassVar[int] = 2  # fewer when the run is shorter: at least one epoch of decay
    FLOOR: ClassVar[float] = 0.01  # of the peak, at the last step

    def __call__(self, epochs: int, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        import keras

        warmup_epochs = min(self.WARMUP_EPOCHS, max(epochs - 1, 0))
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=self.peak_learning_rate / 10,
            decay_steps=max(epochs - warmup_epochs, 1) * steps_per_epoch,
            alpha=self.FLOOR,
            warmup_target=self.peak_learning_rate,
            warmup_steps=warmup_epochs * steps_per_epoch,
        )
        return keras.optimizers.AdamW(schedule, weight_decay=self.weight_decay)

    def describe(self, epochs: int, batch_size: int) -> str:
        return (
            f"AdamW (weight decay {_number(self.weight_decay)}) with warm-up and cosine decay to zero "
            f"over all {epochs} epochs"
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {"peak_learning_rate": self.peak_learning_rate, "weight_decay": self.weight_decay}


@dataclass(frozen=True)
class Preset:
    """A model (a ReLU MLP with a softmax output) and the recipe that trains it, stated once."""

    architecture: str  # the keras.Model's name, which the metadata records as "architecture"
    hidden: tuple[int, ...]  # units of each hidden ReLU layer; none: logistic regression
    optimizer: OptimizerRecipe  # called as optimizer(epochs, steps per epoch) -> a Keras optimizer
    epochs: int
    batch_size: int = 128
    dropout: float = 0.0  # after each hidden layer
    label_smoothing: float = 0.0
    augment: bool = False  # random affine augmentation in the input pipeline (training/augment.py)
    bold: float = 0.0  # share of training digits shown drawn with a bold pen, each epoch (training/bold.py)
    early_stopping_patience: int | None = None  # epochs without a better validation accuracy
    elastic: float = 0.0  # alpha of the elastic distortions (training/augment.py); 0: none
    distill: Distillation | None = None  # knowledge distillation from a CNN teacher (training/distill.py)
    outliers: float = 0.0  # negatives (training/negatives.py) added to each batch, as a share of its digits
    note: str = ""  # what the parameters do not say, e.g. a published figure; ends the description

    def build(self, logits: bool = False) -> keras.Model:
        """A fresh, untrained model: pixels (N, 784) -> dense ReLU (+ dropout) ... -> probabilities (N, 10),
        or with `logits`, the same layers with a linear last layer (what training optimises)."""
        import keras
        from keras import layers

        inputs = keras.Input(shape=(INPUT_SIZE,), name=INPUT_NAME)
        x = inputs
        for i, units in enumerate(self.hidden):
            x = layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
            if self.dropout:
                x = layers.Dropout(self.dropout, name=f"dropout_{i + 1}")(x)
        outputs = layers.Dense(NUM_CLASSES, activation="linear" if logits else "softmax", name=OUTPUT_NAME)(x)
        return keras.Model(inputs, outputs, name=self.architecture)

    @property
    def description(self) -> str:
        """One line saying what the preset is, from its definition."""
        if self.hidden:
            layers = "-".join(str(n) for n in (INPUT_SIZE, *self.hidden, NUM_CLASSES))
            dropout = f", dropout {_number(self.dropout)}" if self.dropout else ""
            parts = [f"{layers} ReLU{dropout}, softmax"]
        else:
            parts = [f"multinomial logistic regression, {INPUT_SIZE}-{NUM_CLASSES} softmax"]
        parts.append(self.optimizer.describe(self.epochs, self.batch_size))
        if self.label_smoothing:
            parts.append(f"label smoothing {_number(self.label_smoothing)}")
        if self.augment:
            parts.append("random affine augmentation (rotation, scale, shift, shear)")
        if self.bold:
            share = {0.5: "half the", 1.0: "all the"}.get(self.bold, f"{self.bold:.0%} of the")
            parts.append(
                f"{share} digits each epoch drawn with a bold pen and brought back to MNIST's form "
                "by the service's own steps"
            )
        if self.elastic:
            parts.append(f"elastic distortions (alpha {_number(self.elastic)})")
        if self.distill:
            parts.append(
                f"distilled from a CNN teacher (temperature {_number(self.distill.temperature)}, "
                f"alpha {_number(self.distill.alpha)})"
            )
        if self.outliers:
            parts.append(f"outlier exposure (non-digits made from MNIST, {self.outliers:.0%} of each batch)")
        if self.early_stopping_patience:
            parts.append(f"early stopping on validation accuracy (patience {self.early_stopping_patience})")
        return "; ".join(parts) + (f" ({self.note})" if self.note else "")

    def hyperparameters(
        self,
        *,
        validation_size: int,
        epochs: int | None = None,
        batch_size: int | None = None,
        bold: float | None = None,
        elastic: float | None = None,
        distill: Distillation | bool | None = True,
        outliers: float | None = None,
    ) -> dict[str, Any]:
        """What a training run's metadata records as "hyperparameters"; a run may override the preset's
        epochs, batch size, bold share, elastic alpha, distillation and outliers, and chooses the validation
        size. The three newer ingredients are recorded only when they are on."""
        elastic = self.elastic if elastic is None else elastic
        distill = self.distill if distill is True else (distill or None)
        outliers = self.outliers if outliers is None else outliers
        return {
            "epochs_max": self.epochs if epochs is None else epochs,
            "batch_size": self.batch_size if batch_size is None else batch_size,
            "validation_size": validation_size,
            "augment": self.augment,
            "bold": self.bold if bold is None else bold,
            "early_stopping_patience": self.early_stopping_patience,
            "label_smoothing": self.label_smoothing,
            **({"dropout": self.dropout} if self.dropout else {}),
            **self.optimizer.hyperparameters(),
            **({"elastic_alpha": elastic} if elastic else {}),
            **({"distillation": distill.hyperparameters()} if distill else {}),
            **({"outliers": outliers} if outliers else {}),
        }


PRESETS: dict[str, Preset] = {
    # the classic Keras MNIST example (669,706 parameters)
    "mlp-512": Preset("mlp_512", hidden=(512, 512), optimizer=Adam(), epochs=20),
    # 269,322 parameters
    "mlp-256-dropout": Preset(
        "mlp_256_dropout", hidden=(256, 256), dropout=0.45, optimizer=Adam(), epochs=20, note="published: 98.4%"
    ),
    # 7,850 parameters
    "logreg": Preset("logreg", hidden=(), optimizer=Adam(), epochs=20),
    # our best MLP (1,276,810 parameters, issue 14): 784-800-800-10 distilled from a CNN teacher, with
    # elastic distortions as well as the affine transforms and the bold pens
    "default": Preset(
        "mlp_distilled",
        hidden=(800, 800),
        dropout=0.0,
        optimizer=CosineAdamW(peak_learning_rate=1e-3, weight_decay=1e-4),
        epochs=60,
        batch_size=128,
        label_smoothing=0.0,
        augment=True,
        bold=0.5,
        elastic=16.0,
        distill=Distillation(temperature=4.0, alpha=0.7),
    ),
    # the default before issue 14 (99.29%): label smoothing, no teacher
    "smoothed": Preset(
        "mlp_smoothed",
        hidden=(800, 800),
        dropout=0.2,
        optimizer=CosineAdamW(peak_learning_rate=1e-3, weight_decay=1e-4),
        epochs=50,
        batch_size=128,
        label_smoothing=0.05,
        augment=True,
        bold=0.5,
    ),
}
