"""Train a preset on MNIST and save the model, its metadata and plots: `python -m training --preset default`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from app.contract import INPUT_SIZE, MODEL_NAME, NUM_CLASSES, flatten_and_scale, sha256_file
from training.data import DataError, Mnist, array_sha256, load_mnist
from training.distill import Distillation
from training.evaluate import predict_probabilities, report_from_probabilities
from training.models import PRESETS, Preset
from training.scorer import ScorerRecipe, scorer_path
from training.teacher import TeacherRecipe

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
        "--elastic",
        type=float,
        metavar="ALPHA",
        help="alpha of the elastic distortions, 0: none (default: the preset's)",
    )
    parser.add_argument(
        "--distill",
        action=argparse.BooleanOptionalAction,
        help="distil from a CNN teacher, or not (default: as the preset says)",
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        help="a saved teacher (.keras, with its .json) to distil from instead of training one",
    )
    parser.add_argument(
        "--teacher-out",
        type=Path,
        help="where a newly trained teacher is saved (default: mnist-teacher.keras beside --out)",
    )
    parser.add_argument("--teacher-epochs", type=int, help="epochs of a newly trained teacher (default: the recipe's)")
    parser.add_argument(
        "--outliers", type=float, help="negatives added to each batch, as a share of its digits (default: the preset's)"
    )
    parser.add_argument(
        "--scorer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the digit scorer (digit_score, is_digit) and save it beside the model (default: yes)",
    )
    parser.add_argument("--scorer-epochs", type=int, help="epochs of the digit scorer (default: its recipe's)")
    parser.add_argument(
        "--reading-calibration",
        type=int,
        default=1000,
        metavar="N",
        help="then fit /v1/read's confidence for the new model on N numbers of each generator "
        "(training/reading_calibration.py; 0: not; default: %(default)s)",
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
    if args.reading_calibration < 0:
        parser.error("--reading-calibration must be 0 or more")
    for name in ("epochs", "batch_size", "teacher_epochs", "scorer_epochs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.bold is not None and not 0 <= args.bold <= 1:
        parser.error(f"--bold must be between 0 and 1, got {args.bold}")
    if args.elastic is not None and args.elastic < 0:
        parser.error(f"--elastic must be at least 0, got {args.elastic}")
    if args.outliers is not None and not 0 <= args.outliers <= 1:
        parser.error(f"--outliers must be between 0 and 1, got {args.outliers}")
    if args.teacher is not None and not args.teacher.is_file():
        parser.error(f"--teacher {args.teacher}: no such file")
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
    elastic: float = 0.0
    distill: Distillation | None = None
    outliers: float = 0.0
    teacher: TeacherRecipe = field(default_factory=TeacherRecipe)
    teacher_path: Path | None = None  # a saved teacher to reuse
    teacher_out: Path | None = None  # where a newly trained one goes
    scorer: ScorerRecipe | None = field(default_factory=ScorerRecipe)  # None: no digit scorer

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Run:
        preset = PRESETS[args.preset]
        distill = preset.distill
        if getattr(args, "distill", None) is not None:
            distill = (preset.distill or Distillation()) if args.distill else None
        teacher = TeacherRecipe()
        if getattr(args, "teacher_epochs", None):
            teacher = TeacherRecipe(epochs=args.teacher_epochs)
        out = getattr(args, "out", DEFAULT_OUT)
        elastic, outliers = getattr(args, "elastic", None), getattr(args, "outliers", None)
        scorer = None
        if getattr(args, "scorer", True):
            epochs = getattr(args, "scorer_epochs", None)
            scorer = ScorerRecipe(epochs=epochs) if epochs else ScorerRecipe()
        return cls(
            preset_name=args.preset,
            preset=preset,
            epochs=args.epochs or preset.epochs,
            batch_size=args.batch_size or preset.batch_size,
            bold=preset.bold if args.bold is None else args.bold,
            validation_size=args.validation_size,
            seed=args.seed,
            quiet=args.quiet,
            elastic=preset.elastic if elastic is None else elastic,
            distill=distill,
            outliers=preset.outliers if outliers is None else outliers,
            teacher=teacher,
            teacher_path=getattr(args, "teacher", None),
            teacher_out=getattr(args, "teacher_out", None) or out.with_name("mnist-teacher.keras"),
            scorer=scorer,
        )

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return self.preset.hyperparameters(
            validation_size=self.validation_size,
            epochs=self.epochs,
            batch_size=self.batch_size,
            bold=self.bold,
            elastic=self.elastic,
            distill=self.distill or False,
            outliers=self.outliers,
        )


class Datasets(NamedTuple):
    train: Any  # tf.data.Dataset of ((B, 784), (B, 10)) batches
    steps_per_epoch: int
    validation: tuple[np.ndarray, np.ndarray]  # (N, 784) float32 in [0, 1], (N, 10) one-hot
    teacher_train: Any = None  # the pipeline a new teacher trains on: `train` without the negatives
    bold_images: np.ndarray | None = None  # the training digits' bold copies, when the run makes them


class Fitted(NamedTuple):
    model: Any  # keras.Model, trained: the student, with a linear last layer (logits)
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


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    augment: bool,
    bold: float = 0.0,
    elastic: float = 0.0,
    negatives: np.ndarray | None = None,
    bold_images: np.ndarray | None = None,
) -> Any:
    """tf.data pipeline yielding ((B, 784) float32 in [0, 1], (B, 10) one-hot) batches.

    With `bold` > 0, that share of each batch (drawn afresh every epoch) is the digits' bold-pen copies.
    With `elastic` > 0, every image is elastically distorted with that alpha after the affine transform.
    With `negatives` ((M, 28, 28) uint8 non-digits), each batch gets M/N as many of them again, with a
    uniform target (outlier exposure), augmented like the digits. `bold_images` are the bold copies
    when they are already made (bold_copies(x, seed)), for a second pipeline over the same digits.
    """
    import tensorflow as tf

    from training.augment import elastic_distort, random_affine, use_some

    images = x.astype(np.float32) / 255.0
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[y]
    if bold > 0:
        from training.bold import bold_copies

        if bold_images is None:
            bold_images = bold_copies(x, seed, workers=os.cpu_count() or 1)
        others = bold_images.astype(np.float32) / 255.0
        ds = tf.data.Dataset.from_tensor_slices((images, others, onehot))
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, onehot))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if negatives is not None and len(negatives):
        per_batch = max(1, round(batch_size * len(negatives) / len(x)))
        others = tf.data.Dataset.from_tensor_slices(negatives.astype(np.float32) / 255.0)
        others = others.shuffle(len(negatives), seed=seed + 2, reshuffle_each_iteration=True).repeat().batch(per_batch)
        uniform = tf.fill([per_batch, NUM_CLASSES], 1.0 / NUM_CLASSES)
        if bold > 0:  # negatives have no bold copies: they stand in for their own
            ds = tf.data.Dataset.zip((ds, others)).map(
                lambda b, o: (tf.concat([b[0], o], 0), tf.concat([b[1], o], 0), tf.concat([b[2], uniform], 0))
            )
        else:
            ds = tf.data.Dataset.zip((ds, others)).map(
                lambda b, o: (tf.concat([b[0], o], 0), tf.concat([b[1], uniform], 0))
            )
    if bold > 0:
        seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(lambda batch, s: (use_some(batch[0], batch[1], bold, s), batch[2]))
    if augment:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (random_affine(batch[0], s), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
        )
    if elastic > 0:
        seeds = tf.data.Dataset.random(seed=seed + 3).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (elastic_distort(batch[0], s, alpha=elastic), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    ds = ds.map(lambda images, labels: (tf.reshape(images, (-1, 784)), labels))
    return ds.prefetch(tf.data.AUTOTUNE)


def build_datasets(split: Split, run: Run) -> Datasets:
    """The training pipeline (shuffled, augmented, bold copies mixed in, as the preset says) and the validation arrays."""
    negatives = None
    if run.outliers > 0:
        from training.negatives import make_negatives

        negatives = make_negatives(split.x_train, split.y_train, round(run.outliers * len(split.x_train)), run.seed)
    bold_images = None
    if run.bold > 0:
        from training.bold import bold_copies

        bold_images = bold_copies(split.x_train, run.seed, workers=os.cpu_count() or 1)
    args = (split.x_train, split.y_train, run.batch_size, run.seed, run.preset.augment)
    train = make_dataset(*args, run.bold, run.elastic, negatives=negatives, bold_images=bold_images)
    # The teacher learns the digits alone (negatives in its batches skew its batch-norm statistics: a
    # 15-epoch teacher trained with them reached 97.5% on the test set), with its own augmentation.
    teacher = run.teacher
    teacher_train = make_dataset(
        *args, teacher.bold, teacher.elastic, bold_images=bold_images if teacher.bold else None
    )
    validation = flatten_and_scale(split.x_val), np.eye(NUM_CLASSES, dtype=np.float32)[split.y_val]
    steps = int(np.ceil(len(split.x_train) / run.batch_size))
    return Datasets(train, steps, validation, teacher_train, bold_images)


class Teacher(NamedTuple):
    model: Any  # keras.Model: pixels (N, 784) -> logits (N, 10)
    metadata: dict[str, Any]  # what its .json says: accuracy, epochs, seconds, sha256, path
    seconds: float  # spent on it in this run (training or loading)


def get_teacher(run: Run, datasets: Datasets, data: Mnist) -> Teacher:
    """The saved teacher of `--teacher`, or a new one trained on the student's own pipeline and saved
    (with its metadata) at the run's teacher path."""
    from training import teacher as teachers

    started = time.monotonic()
    if run.teacher_path is not None:
        model, metadata = teachers.load_teacher(run.teacher_path)
        return Teacher(model, {**metadata, "path": str(run.teacher_path), "reused": True}, time.monotonic() - started)
    assert run.teacher_out is not None
    model, history, seconds = teachers.train_teacher(
        run.teacher,
        datasets.teacher_train if datasets.teacher_train is not None else datasets.train,
        datasets.steps_per_epoch,
        datasets.validation,
        run.quiet,
    )
    test_logits = teachers.predict_logits(model, flatten_and_scale(data.x_test))
    val_logits = teachers.predict_logits(model, datasets.validation[0])
    metadata = teachers.save_teacher(
        model,
        run.teacher_out,
        {
            "recipe": run.teacher.hyperparameters(),
            "seed": run.seed,
            "train_seconds": round(seconds, 1),
            "metrics": {
                "validation": {"accuracy": float((val_logits.argmax(1) == datasets.validation[1].argmax(1)).mean())},
                "test": {"accuracy": float((test_logits.argmax(1) == data.y_test).mean())},
            },
            "history": {k: [round(float(v), 6) for v in vs] for k, vs in history.items() if k != "learning_rate"},
            "parameters": int(model.count_params()),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return Teacher(model, {**metadata, "path": str(run.teacher_out), "reused": False}, time.monotonic() - started)


def fit(run: Run, datasets: Datasets, teacher: Teacher | None = None) -> Fitted:
    """Build the preset's model (with a linear last layer), compile it with its optimizer and loss (the
    distillation's, given a teacher), and train it."""
    import keras

    student = run.preset.build(logits=True)
    optimizer = run.preset.optimizer(run.epochs, datasets.steps_per_epoch)
    if teacher is not None and run.distill is not None:
        from training.distill import make_distiller

        model = make_distiller(student, teacher.model, run.distill, run.preset.label_smoothing)
        model.compile(optimizer=optimizer, metrics=["accuracy"])
    else:
        model = student
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=run.preset.label_smoothing),
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
    return Fitted(student, history.history, time.monotonic() - started)


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


def save_serving_copy(preset: Preset, model: Any, path: Path, temperature: float = 1.0) -> Any:
    """Save a fresh, uncompiled copy of the trained model to `path`, with its softmax output and the
    temperature folded into its last layer: no optimizer state and no training-only configuration in
    the file. Returns that copy."""
    from training.calibrate import fold_temperature

    serving = preset.build()
    serving.set_weights(fold_temperature(model.get_weights(), temperature))
    path.parent.mkdir(parents=True, exist_ok=True)
    serving.save(path)
    return serving


class Calibrated(NamedTuple):
    temperature: float
    report: dict[str, Any]  # the metadata's "calibration"


def calibrate(student: Any, split: Split, data: Mnist) -> Calibrated:
    """Fit the temperature on the validation split; ECE before and after on validation and test."""
    from training.calibrate import calibration_report, fit_temperature

    val = predict_probabilities(student, flatten_and_scale(split.x_val))  # the student's outputs: logits
    test = predict_probabilities(student, flatten_and_scale(data.x_test))
    temperature = fit_temperature(val, split.y_val)
    report = calibration_report(temperature, {"validation": (val, split.y_val), "test": (test, data.y_test)})
    return Calibrated(temperature, report)


def make_scorer(
    recipe: ScorerRecipe, serving: Any, split: Split, bold: np.ndarray | None, run: Run, path: Path, out: Path
) -> dict[str, Any]:
    """Train the digit scorer on the `serving` model's trunk, fold its threshold in (chosen on the
    validation digits), save it at `path` (to be published beside `out`), and say what the model's
    metadata records about it."""
    from training import scorer

    model, seconds = scorer.train_scorer(recipe, serving, split.x_train, split.y_train, bold, run.seed, run.quiet)
    threshold = scorer.fold_threshold(model, split.x_val, recipe.flagged)
    checks = {"validation_digits": float((scorer.scores(model, split.x_val) < scorer.THRESHOLD).mean())}
    sha256 = scorer.save_scorer(model, path)
    return scorer.metadata(recipe, scorer.scorer_path(out).name, sha256, threshold, checks, seconds)


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
            split: {
                "accuracy": round(r["accuracy"], 6),
                "loss": round(r["loss"], 6),
                "ece": round(r["ece"], 6),
                "count": r["count"],
            }
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
    if "reliability" in paths and "probabilities" in test:
        plots.plot_reliability(
            test["probabilities"], test["labels"], paths["reliability"], f"{preset_name}: MNIST test reliability"
        )


def artifact_paths(out: Path) -> dict[str, Path]:
    """Where the metadata and plots of a model file go."""
    return {
        "model": out,
        "metadata": out.with_suffix(".json"),
        "curves": out.with_name(f"{out.stem}.curves.png"),
        "confusion": out.with_name(f"{out.stem}.confusion.png"),
        "reliability": out.with_name(f"{out.stem}.reliability.png"),
        "scorer": scorer_path(out),
    }


def temporary_paths(out: Path) -> dict[str, Path]:
    """Hidden files beside `out`, one for each artifact, private to this process, to write before publishing."""
    prefix = f".{out.stem}.{os.getpid()}.tmp"
    return {
        "model": out.with_name(f"{prefix}.keras"),
        "metadata": out.with_name(f"{prefix}.json"),
        "curves": out.with_name(f"{prefix}.curves.png"),
        "confusion": out.with_name(f"{prefix}.confusion.png"),
        "reliability": out.with_name(f"{prefix}.reliability.png"),
        "scorer": out.with_name(f"{prefix}.digit.keras"),
    }


def publish(temporary: dict[str, Path], out: Path) -> None:
    """Move the written files into place. Each os.replace is atomic, and the model goes last, so a reader
    never sees a model without its metadata (nor new metadata beside an old model for long)."""
    final = artifact_paths(out)
    for kind in ("curves", "confusion", "reliability", "scorer", "metadata", "model"):
        if temporary[kind].exists():  # a run without a scorer writes none
            os.replace(temporary[kind], final[kind])


def train(args: argparse.Namespace, data: Mnist, tmp_paths: list[Path]) -> dict[str, Any]:
    """Train, evaluate and write the artifacts (through temporary files, listed in `tmp_paths` for the
    caller to remove if anything fails); return the metadata."""
    run = Run.from_args(args)
    seed_everything(run.seed)
    split = split_validation(data, run.validation_size, run.seed)
    stages: dict[str, float] = {}
    started = time.monotonic()
    datasets = build_datasets(split, run)
    stages["data_seconds"] = time.monotonic() - started
    teacher = None
    if run.distill is not None:
        teacher = get_teacher(run, datasets, data)
        stages["teacher_seconds"] = teacher.seconds
    fitted = fit(run, datasets, teacher)
    stages["student_seconds"] = fitted.seconds
    started = time.monotonic()
    calibrated = calibrate(fitted.model, split, data)

    temporary = temporary_paths(args.out)
    tmp_paths += temporary.values()
    serving = save_serving_copy(run.preset, fitted.model, temporary["model"], calibrated.temperature)
    reports = evaluate_splits(serving, split, data)
    stages["calibration_and_evaluation_seconds"] = time.monotonic() - started
    metadata = build_metadata(run, serving, fitted, reports, data, temporary["model"], args.out)
    metadata["calibration"] = calibrated.report
    if run.scorer is not None:
        started = time.monotonic()
        metadata["digit_score"] = make_scorer(
            run.scorer, serving, split, datasets.bold_images, run, temporary["scorer"], args.out
        )
        stages["scorer_seconds"] = time.monotonic() - started
    if teacher is not None:
        metadata["teacher"] = {
            k: teacher.metadata.get(k) for k in ("path", "reused", "sha256", "metrics", "train_seconds", "recipe")
        }
    metadata["stages"] = {k: round(v, 1) for k, v in stages.items()}
    test_probabilities = predict_probabilities(serving, flatten_and_scale(data.x_test))
    plotted = {**reports["test"], "probabilities": test_probabilities, "labels": data.y_test}
    write_plots(fitted.history, plotted, run.preset_name, temporary)
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
        f"validation {m['validation']['accuracy']:.4%}, train {m['train']['accuracy']:.4%}; "
        f"temperature {metadata['calibration']['temperature']:.3f}, test ECE "
        f"{metadata['calibration']['test']['ece_before']:.2%} -> {metadata['calibration']['test']['ece_after']:.2%}"
    )
    if args.reading_calibration:  # a new model: the old one's reading calibration no longer applies
        return fit_reading_calibration(args.out, args.reading_calibration, args.data)
    return 0


def fit_reading_calibration(model: Path, n: int, data: Path | None) -> int:
    """python -m training.reading_calibration for the new model, in a process of its own: this one runs
    TensorFlow's threads, and the calibration's process pool forks (a fork of them aborts)."""
    command = [sys.executable, "-m", "training.reading_calibration", "--model", str(model), "--n", str(n)]
    return subprocess.run([*command, *(["--data", str(data)] if data else [])], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
