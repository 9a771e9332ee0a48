"""Train a preset on MNIST and save the model, its metadata and plots: `python -m training --preset default`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from app.contract import INPUT_SIZE, MODEL_NAME, NUM_CLASSES, flatten_and_scale, sha256_file
from training.data import DataError, Mnist, array_sha256, load_mnist
from training.evaluate import predict_probabilities, report_from_probabilities
from training.models import PRESETS, Preset

DEFAULT_OUT = Path("models/mnist-mlp.keras")
VALIDATION_SIZE = 5000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="default", help="model and recipe (default: %(default)s)"
    )
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the preset's)")
    parser.add_argument(
        "--bold", type=float, help="share of training digits drawn with a bold pen, 0-1 (default: the preset's)"
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="random seed; a run is reproducible from it (default: %(default)s)"
    )
    parser.add_argument(
        "--data", type=Path, help="MNIST .npz with Keras's keys (default: $MNIST_NPZ, else Keras's download)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="the .keras file to write; metadata and plots go beside it (default: %(default)s)",
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        default=VALIDATION_SIZE,
        help="training images held out for validation (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.out.suffix != ".keras":
        parser.error(f"--out must end in .keras, got {args.out}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.bold is not None and not 0 <= args.bold <= 1:
        parser.error(f"--bold must be between 0 and 1, got {args.bold}")
    return args


class Split(NamedTuple):
    """The training set, less the validation images, and the validation set carved out of it."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class Run:
    """What one run trains: its preset, with the command line's overrides and the run's own settings."""

    preset_name: str
    preset: Preset
    epochs: int
    batch_size: int
    bold: float
    validation_size: int
    seed: int
    quiet: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Run:
        preset = PRESETS[args.preset]
        return cls(
            preset_name=args.preset,
            preset=preset,
            epochs=args.epochs or preset.epochs,
            batch_size=args.batch_size or preset.batch_size,
            bold=preset.bold if args.bold is None else args.bold,
            validation_size=args.validation_size,
            seed=args.seed,
            quiet=args.quiet,
        )

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return self.preset.hyperparameters(
            validation_size=self.validation_size, epochs=self.epochs, batch_size=self.batch_size, bold=self.bold
        )


class Datasets(NamedTuple):
    train: Any  # tf.data.Dataset of ((B, 784), (B, 10)) batches
    steps_per_epoch: int
    validation: tuple[np.ndarray, np.ndarray]  # (N, 784) float32 in [0, 1], (N, 10) one-hot


class Fitted(NamedTuple):
    model: Any  # keras.Model, compiled and trained
    history: dict[str, list[float]]  # per-epoch loss, accuracy, val_loss, val_accuracy (and learning_rate)
    seconds: float


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and TensorFlow's generators and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def split_validation(data: Mnist, size: int, seed: int) -> Split:
    """Carve a random validation set of `size` images out of the training set (never the test set)."""
    if not 0 < size < len(data.x_train):
        raise DataError(f"{data.source}: --validation-size {size} must be between 1 and {len(data.x_train) - 1}.")
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    val, train = order[:size], order[size:]
    return Split(data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val])


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, augment: bool, bold: float = 0.0) -> Any:
    """tf.data pipeline yielding ((B, 784) float32 in [0, 1], (B, 10) one-hot) batches.

    With `bold` > 0, that share of each batch (drawn afresh every epoch) is the digits' bold-pen copies.
    """
    import tensorflow as tf

    from training.augment import random_affine, use_some

    images = x.astype(np.float32) / 255.0
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[y]
    if bold > 0:
        from training.bold import bold_copies

        others = bold_copies(x, seed, workers=os.cpu_count() or 1).astype(np.float32) / 255.0
        ds = tf.data.Dataset.from_tensor_slices((images, others, onehot))
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, onehot))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if bold > 0:
        seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(lambda batch, s: (use_some(batch[0], batch[1], bold, s), batch[2]))
    if augment:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (random_affine(batch[0], s), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
        )
    ds = ds.map(lambda images, labels: (tf.reshape(images, (-1, 784)), labels))
    return ds.prefetch(tf.data.AUTOTUNE)


def build_datasets(split: Split, run: Run) -> Datasets:
    """The training pipeline (shuffled, augmented, bold copies mixed in, as the preset says) and the validation arrays."""
    train = make_dataset(split.x_train, split.y_train, run.batch_size, run.seed, run.preset.augment, run.bold)
    validation = flatten_and_scale(split.x_val), np.eye(NUM_CLASSES, dtype=np.float32)[split.y_val]
    return Datasets(train, int(np.ceil(len(split.x_train) / run.batch_size)), validation)


def fit(run: Run, datasets: Datasets) -> Fitted:
    """Build the preset's model, compile it with its optimizer and loss, and train it."""
    import keras

    model = run.preset.build()
    model.compile(
        optimizer=run.preset.optimizer(run.epochs, datasets.steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=run.preset.label_smoothing),
        metrics=["accuracy"],
    )
    callbacks: list[keras.callbacks.Callback] = []
    if run.preset.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=run.preset.early_stopping_patience, restore_best_weights=True
            )
        )
    started = time.monotonic()
    history = model.fit(
        datasets.train,
        validation_data=datasets.validation,
        epochs=run.epochs,
        shuffle=False,  # the tf.data pipeline shuffles, from the seed
        callbacks=callbacks,
        verbose=0 if run.quiet else 1,
    )
    return Fitted(model, history.history, time.monotonic() - started)


def evaluate_splits(model: Any, split: Split, data: Mnist) -> dict[str, dict[str, Any]]:
    """The trained model's report (accuracy, loss, per-class accuracy, confusion) on each split."""
    return {
        name: report_from_probabilities(predict_probabilities(model, flatten_and_scale(x)), y)
        for name, x, y in (
            ("train", split.x_train, split.y_train),
            ("validation", split.x_val, split.y_val),
            ("test", data.x_test, data.y_test),
        )
    }


def save_serving_copy(preset: Preset, model: Any, path: Path) -> Any:
    """Save a fresh, uncompiled copy of the trained model to `path`: no optimizer state and no
    training-only configuration in the file. Returns that copy."""
    serving = preset.build()
    serving.set_weights(model.get_weights())
    path.parent.mkdir(parents=True, exist_ok=True)
    serving.save(path)
    return serving


def build_metadata(
    run: Run, serving: Any, fitted: Fitted, reports: dict[str, dict[str, Any]], data: Mnist, model_file: Path, out: Path
) -> dict[str, Any]:
    """What models/<name>.json records: the model's contract, the recipe, the results, the data and versions."""
    import keras
    import tensorflow as tf

    test = reports["test"]
    return {
        "name": MODEL_NAME,
        "preset": run.preset_name,
        "description": run.preset.description,
        "architecture": serving.name,
        "input": {"name": serving.inputs[0].name, "shape": [-1, INPUT_SIZE], "dtype": "float32", "range": [0.0, 1.0]},
        "output": {
            "name": serving.output_names[0],  # the output layer's; the tensor's name changes with every build
            "shape": [-1, NUM_CLASSES],
            "dtype": "float32",
            "meaning": "softmax probabilities, index = digit",
        },
        "parameters": int(serving.count_params()),
        "hyperparameters": run.hyperparameters,
        "seed": run.seed,
        "epochs_run": len(fitted.history["loss"]),
        "best_epoch": int(np.argmax(fitted.history["val_accuracy"])) + 1,
        "train_seconds": round(fitted.seconds, 1),
        "metrics": {
            split: {"accuracy": round(r["accuracy"], 6), "loss": round(r["loss"], 6), "count": r["count"]}
            for split, r in reports.items()
        },
        "test_per_class_accuracy": test["per_class_accuracy"],
        "test_confusion_matrix": test["confusion_matrix"],
        "history": {k: [round(float(v), 6) for v in vs] for k, vs in fitted.history.items() if k != "learning_rate"},
        "data": {
            "source": data.source,
            "sha256": {k: array_sha256(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")},
        },
        "sha256": sha256_file(model_file),
        "file": out.name,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_plots(
    history: dict[str, list[float]], test: dict[str, Any], preset_name: str, paths: dict[str, Path]
) -> None:
    """The learning curves and the test confusion matrix, as PNGs at paths["curves"] and paths["confusion"]."""
    from training import plots  # matplotlib: only once there is something to plot

    plots.plot_curves(history, paths["curves"], f"{preset_name}: test accuracy {test['accuracy']:.2%}")
    plots.plot_confusion(test["confusion_matrix"], paths["confusion"], f"{preset_name}: MNIST test confusion matrix")


def artifact_paths(out: Path) -> dict[str, Path]:
    """Where the metadata and plots of a model file go."""
    return {
        "model": out,
        "metadata": out.with_suffix(".json"),
        "curves": out.with_name(f"{out.stem}.curves.png"),
        "confusion": out.with_name(f"{out.stem}.confusion.png"),
    }


def temporary_paths(out: Path) -> dict[str, Path]:
    """Hidden files beside `out`, one for each artifact, private to this process, to write before publishing."""
    prefix = f".{out.stem}.{os.getpid()}.tmp"
    return {
        "model": out.with_name(f"{prefix}.keras"),
        "metadata": out.with_name(f"{prefix}.json"),
        "curves": out.with_name(f"{prefix}.curves.png"),
        "confusion": out.with_name(f"{prefix}.confusion.png"),
    }


def publish(temporary: dict[str, Path], out: Path) -> None:
    """Move the written files into place. Each os.replace is atomic, and the model goes last, so a reader
    never sees a model without its metadata (nor new metadata beside an old model for long)."""
    final = artifact_paths(out)
    for kind in ("curves", "confusion", "metadata", "model"):
        os.replace(temporary[kind], final[kind])


def train(args: argparse.Namespace, data: Mnist, tmp_paths: list[Path]) -> dict[str, Any]:
    """Train, evaluate and write the artifacts (through temporary files, listed in `tmp_paths` for the
    caller to remove if anything fails); return the metadata."""
    run = Run.from_args(args)
    seed_everything(run.seed)
    split = split_validation(data, run.validation_size, run.seed)
    fitted = fit(run, build_datasets(split, run))
    reports = evaluate_splits(fitted.model, split, data)

    temporary = temporary_paths(args.out)
    tmp_paths += temporary.values()
    serving = save_serving_copy(run.preset, fitted.model, temporary["model"])
    metadata = build_metadata(run, serving, fitted, reports, data, temporary["model"], args.out)
    write_plots(fitted.history, reports["test"], run.preset_name, temporary)
    temporary["metadata"].write_text(json.dumps(metadata, indent=2) + "\n")
    publish(temporary, args.out)
    return metadata


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp_paths: list[Path] = []
    try:
        data = load_mnist(args.data)
        metadata = train(args, data, tmp_paths)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written.", file=sys.stderr)
        return 130
    finally:
        for path in tmp_paths:
            path.unlink(missing_ok=True)
    m = metadata["metrics"]
    print(
        f"saved {args.out} ({metadata['parameters']:,} parameters, {metadata['epochs_run']} epochs, "
        f"{metadata['train_seconds']:.0f} s): test accuracy {m['test']['accuracy']:.4%}, "
        f"validation {m['validation']['accuracy']:.4%}, train {m['train']['accuracy']:.4%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
