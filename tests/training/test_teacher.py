"""training/teacher.py: the CNN teacher reads the student's input, outputs logits, and round-trips with its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.contract import sha256_file
from training.teacher import TeacherRecipe, build_teacher, load_teacher, predict_logits, save_teacher


def test_reads_pixels_and_outputs_logits() -> None:
    model = build_teacher(TeacherRecipe())
    assert tuple(model.inputs[0].shape) == (None, 784) and tuple(model.outputs[0].shape) == (None, 10)
    logits = predict_logits(model, np.random.default_rng(0).random((5, 784), dtype=np.float32))
    assert logits.shape == (5, 10) and logits.dtype == np.float32
    assert not np.allclose(logits.sum(axis=1), 1.0), "logits, not probabilities"


def test_save_and_load_round_trip_with_the_files_sha256(tmp_path: Path) -> None:
    model = build_teacher(TeacherRecipe(filters=(4, 4, 4), dense=8))
    path = tmp_path / "t.keras"
    meta = save_teacher(model, path, {"metrics": {"test": {"accuracy": 0.5}}})
    assert meta["sha256"] == sha256_file(path) == json.loads(path.with_suffix(".json").read_text())["sha256"]
    loaded, loaded_meta = load_teacher(path)
    x = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    np.testing.assert_allclose(predict_logits(loaded, x), predict_logits(model, x), atol=1e-5)
    assert loaded_meta["metrics"]["test"]["accuracy"] == 0.5


def test_a_changed_teacher_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.keras"
    save_teacher(build_teacher(TeacherRecipe(filters=(4, 4, 4), dense=8)), path, {})
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(ValueError, match="sha256"):
        load_teacher(path)
