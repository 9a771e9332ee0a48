"""PNG plots of a training run: learning curves and the test confusion matrix.

Figures are made with matplotlib's object interface (`Figure`, rendered by Agg when saved), not pyplot:
no display is needed, and importing this module leaves matplotlib's global backend as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, training vs validation."""
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.plot(epochs, history[metric], label=f"training {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if "val_accuracy" in history:
        ax_acc.set_ylim(max(0.9, min(history["val_accuracy"]) - 0.01), 1.0)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def plot_confusion(confusion: list[list[int]], path: Path, title: str) -> None:
    """10x10 heatmap of the confusion matrix, counts written in each cell; log colour scale."""
    matrix = np.asarray(confusion)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        if n:
            colour = "white" if matrix[i, j] > matrix.max() / 4 else "black"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def plot_reliability(probabilities: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    """Reliability diagram (15 bins): accuracy against mean confidence per bin, the diagonal, and the
    share of predictions in each bin (log scale, below)."""
    from app.model.calibration import ECE_BINS, expected_calibration_error, reliability

    r = reliability(probabilities, labels, ECE_BINS)
    ece = expected_calibration_error(probabilities, labels, ECE_BINS)
    fig = Figure(figsize=(6, 7))
    ax, ax_count = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    centres = (r.edges[:-1] + r.edges[1:]) / 2
    width = r.edges[1] - r.edges[0]
    used = r.counts > 0
    ax.bar(centres[used], r.accuracy[used], width=width * 0.9, label="accuracy", alpha=0.7)
    ax.plot(r.confidence[used], r.accuracy[used], "o-", color="black", markersize=3, label="(confidence, accuracy)")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(f"{title}\nECE ({ECE_BINS} bins) {ece:.2%}")
    ax_count.bar(centres, np.maximum(r.counts, 0), width=width * 0.9)
    ax_count.set_yscale("log")
    ax_count.set_xlabel("confidence (top probability)")
    ax_count.set_ylabel("predictions")
    ax_count.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
