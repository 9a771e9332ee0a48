"""bench/uploads_accuracy.py (`make accuracy`): measures each kind against raw digits, caches, counts refusals as wrong."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from app.model.classifier import Classifier
from bench import uploads_accuracy


def test_prints_each_kind_against_raw_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MNIST_NPZ", raising=False)
    monkeypatch.setattr(uploads_accuracy, "CACHE", tmp_path)
    argv = ["--n", "40", "--kind", "bmp", "--kind", "canvas_black", "--workers", "1"]
    assert uploads_accuracy.main(argv) == 0
    first = capsys.readouterr().out
    assert "digits: 40 from app/data/mnist-sample.npz" in first
    figure = r"(\d+\.\d\d%|nan%)"  # nan: a model without a digit scorer flags nothing
    assert re.search(rf"^raw 28x28 arrays +\d+\.\d\d% +{figure} +{figure}$", first, re.MULTILINE)
    for kind in ("bmp", "canvas_black"):
        assert re.search(rf"^{kind} +\d+\.\d\d% +-?\d+\.\d\dp  (yes|NO) +{figure} +{figure}$", first, re.MULTILINE)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    assert uploads_accuracy.main(argv) == 0  # from the cache: the same figures
    assert capsys.readouterr().out == first


def test_an_upload_refused_counts_as_wrong(classifier: Classifier, sample: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sample[0][:10], sample[1][:10]
    full = uploads_accuracy.measure(classifier, x, y)
    x = x.copy()
    x[0] = 0  # how a refused upload is stored
    refused = uploads_accuracy.measure(classifier, x, y)
    assert refused["accuracy"] == pytest.approx(full["accuracy"] - 0.1)
    assert refused["ece"] == pytest.approx(uploads_accuracy.measure(classifier, x[1:], y[1:])["ece"])
