"""Evaluate a saved model on MNIST: accuracy, loss, ECE (15 bins), per-class accuracy and the confusion matrix."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from app.contract import NUM_CLASSES, flatten_and_scale
from app.model.calibration import ECE_BINS, expected_calibration_error
from training.data import DataError, load_mnist


def report_from_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """(N, 10) probabilities and (N,) labels -> accuracy, loss, ECE, per-class accuracy, confusion matrix."""
    labels = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], eps, 1.0))))
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "count": len(labels),
        "accuracy": float((predicted == labels).mean()),
        "loss": loss,
        "ece": expected_calibration_error(probabilities, labels, ECE_BINS),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
        "per_class_accuracy": {str(d): round(float(a), 6) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
    }


def predict_probabilities(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(N, 784) float32 -> (N, 10) float32, calling the model in batches (no Keras progress bar)."""
    parts = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def evaluate(model_path: str | os.PathLike[str], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Load the .keras file and report on (N, 28, 28) uint8 images with (N,) labels."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    return report_from_probabilities(predict_probabilities(model, flatten_and_scale(x)), y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/mnist-mlp.keras"), help="the .keras file")
    parser.add_argument(
        "--data", type=Path, default=None, help="MNIST .npz (default: $MNIST_NPZ, else Keras's download)"
    )
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: {args.model}: no such model file.", file=sys.stderr)
        return 2
    try:
        data = load_mnist(args.data)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = evaluate(args.model, data.x_test, data.y_test)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"model:    {args.model}")
    print(f"data:     {data.source} (test split, {report['count']} images)")
    print(f"accuracy: {report['accuracy']:.4%}   loss: {report['loss']:.4f}")
    print(f"ECE ({ECE_BINS} bins): {report['ece']:.2%}   mean confidence: {report['mean_confidence']:.2%}")
    print("per class: " + "  ".join(f"{d}:{a:.3f}" for d, a in report["per_class_accuracy"].items()))
    print("confusion matrix (rows = true digit, columns = predicted):")
    for d, row in enumerate(report["confusion_matrix"]):
        print(f"  {d}: " + " ".join(f"{n:5d}" for n in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
