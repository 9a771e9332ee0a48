"""Train a preset on MNIST and save the model, its metadata and plots: `python -m training --preset default`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.data import NUM_CLASSES, DataError, Mnist, array_sha256, flatten_and_scale, load_mnist, sha256_file

DEFAULT_OUT = Path("models/mnist-mlp.keras")
VALIDATION_SIZE = 5000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from training.models import PRESETS  # cheap: keras imports lazily below only when building

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


def split_validation(data: Mnist, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a random validation set of `size` images out of the training set (never the test set)."""
    if not 0 < size < len(data.x_train):
        raise DataError(f"{data.source}: --validation-size {size} must be between 1 and {len(data.x_train) - 1}.")
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    val, train = order[:size], order[size:]
    return data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val]


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


def train(args: argparse.Namespace, data: Mnist, tmp_paths: list[Path]) -> dict[str, Any]:
    """Train, evaluate and write the artifacts (through temporary files); return the metadata."""
    import keras
    import tensorflow as tf

    from training.evaluate import predict_probabilities, report_from_probabilities
    from training.models import PRESETS
    from training.plots import plot_confusion, plot_curves

    preset = PRESETS[args.preset]
    epochs = args.epochs or preset.epochs
    batch_size = args.batch_size or preset.batch_size
    bold = preset.bold if args.bold is None else args.bold
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    x_train, y_train, x_val, y_val = split_validation(data, args.validation_size, args.seed)
    train_ds = make_dataset(x_train, y_train, batch_size, args.seed, preset.augment, bold)
    x_val_in, y_val_hot = flatten_and_scale(x_val), np.eye(NUM_CLASSES, dtype=np.float32)[y_val]

    model = preset.build()
    steps = int(np.ceil(len(x_train) / batch_size))
    model.compile(
        optimizer=preset.optimizer(epochs, steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=preset.label_smoothing),
        metrics=["accuracy"],
    )
    callbacks: list[keras.callbacks.Callback] = []
    if preset.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=preset.early_stopping_patience, restore_best_weights=True
            )
        )
    started = time.monotonic()
    history = model.fit(
        train_ds,
        validation_data=(x_val_in, y_val_hot),
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline shuffles, from the seed
        callbacks=callbacks,
        verbose=0 if args.quiet else 1,
    )
    train_seconds = time.monotonic() - started
    epochs_run = len(history.history["loss"])

    reports = {
        name: report_from_probabilities(predict_probabilities(model, flatten_and_scale(x)), y)
        for name, x, y in (
            ("train", x_train, y_train),
            ("validation", x_val, y_val),
            ("test", data.x_test, data.y_test),
        )
    }

    # Save a fresh, uncompiled copy: no optimizer state and no training-only configuration in the file.
    serving = preset.build()
    serving.set_weights(model.get_weights())
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_model = out.with_name(f".{out.stem}.{os.getpid()}.tmp.keras")
    tmp_paths.append(tmp_model)
    serving.save(tmp_model)

    test = reports["test"]
    metadata: dict[str, Any] = {
        "name": "mnist-mlp",
        "preset": args.preset,
        "description": preset.description,
        "architecture": serving.name,
        "input": {"name": serving.inputs[0].name, "shape": [-1, 784], "dtype": "float32", "range": [0.0, 1.0]},
        "output": {
            "name": serving.output_names[0],  # the output layer's; the tensor's name changes with every build
            "shape": [-1, 10],
            "dtype": "float32",
            "meaning": "softmax probabilities, index = digit",
        },
        "parameters": int(serving.count_params()),
        "hyperparameters": {
            "epochs_max": epochs,
            "batch_size": batch_size,
            "validation_size": args.validation_size,
            "augment": preset.augment,
            "bold": bold,
            "early_stopping_patience": preset.early_stopping_patience,
            "label_smoothing": preset.label_smoothing,
            **preset.hyperparameters,
        },
        "seed": args.seed,
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmax(history.history["val_accuracy"])) + 1,
        "train_seconds": round(train_seconds, 1),
        "metrics": {
            split: {"accuracy": round(r["accuracy"], 6), "loss": round(r["loss"], 6), "count": r["count"]}
            for split, r in reports.items()
        },
        "test_per_class_accuracy": test["per_class_accuracy"],
        "test_confusion_matrix": test["confusion_matrix"],
        "history": {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items() if k != "learning_rate"},
        "data": {
            "source": data.source,
            "sha256": {k: array_sha256(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")},
        },
        "sha256": sha256_file(tmp_model),
        "file": out.name,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    title = f"{args.preset}: test accuracy {test['accuracy']:.2%}"
    tmp_curves = out.with_name(f".{out.stem}.{os.getpid()}.tmp.curves.png")
    tmp_confusion = out.with_name(f".{out.stem}.{os.getpid()}.tmp.confusion.png")
    tmp_json = out.with_name(f".{out.stem}.{os.getpid()}.tmp.json")
    tmp_paths += [tmp_curves, tmp_confusion, tmp_json]
    plot_curves(history.history, tmp_curves, title)
    plot_confusion(test["confusion_matrix"], tmp_confusion, f"{args.preset}: MNIST test confusion matrix")
    tmp_json.write_text(json.dumps(metadata, indent=2) + "\n")

    # Publish: each os.replace is atomic, the model last so a reader never sees a model without metadata.
    os.replace(tmp_curves, artifact_paths(out)["curves"])
    os.replace(tmp_confusion, artifact_paths(out)["confusion"])
    os.replace(tmp_json, artifact_paths(out)["metadata"])
    os.replace(tmp_model, out)
    return metadata


def artifact_paths(out: Path) -> dict[str, Path]:
    """Where the metadata and plots of a model file go."""
    return {
        "model": out,
        "metadata": out.with_suffix(".json"),
        "curves": out.with_name(f"{out.stem}.curves.png"),
        "confusion": out.with_name(f"{out.stem}.confusion.png"),
    }


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
