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
