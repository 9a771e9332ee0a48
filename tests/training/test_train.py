"""training/train.py and training/evaluate.py end to end on a small subset of MNIST (a few seconds, never the full model)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from PIL import Image

from app.contract import flatten_and_scale, sha256_file
from app.model.classifier import Classifier
from tests.conftest import ROOT, load_sample
from training.data import array_sha256, load_mnist
from training.evaluate import evaluate
from training.evaluate import main as evaluate_main
from training.models import PRESETS
from training.scorer import ScorerRecipe
from training.train import main as train_main
from training.train import publish, split_validation, temporary_paths

TRAIN, TEST, VALIDATION = 600, 200, 100
METADATA_KEYS = {  # every field train.py writes
    "name",
    "preset",
    "description",
    "architecture",
    "input",
    "output",
    "parameters",
    "hyperparameters",
    "seed",
    "epochs_run",
    "best_epoch",
    "train_seconds",
    "metrics",
    "test_per_class_accuracy",
    "test_confusion_matrix",
    "history",
    "data",
    "sha256",
    "file",
    "versions",
    "created_at",
    "calibration",
    "digit_score",
    "stages",
}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 training and 200 test images of the committed sample, as an MNIST .npz."""
    x, y = load_sample()
    path = tmp_path_factory.mktemp("data") / "mnist-small.npz"
    np.savez(path, x_train=x[:TRAIN], y_train=y[:TRAIN], x_test=x[TRAIN : TRAIN + TEST], y_test=y[TRAIN : TRAIN + TEST])
    return path


def argv(data: Path, out: Path, *extra: str) -> list[str]:
    """The `smoothed` preset (augmentation, bold copies, dropout, warm-up, label smoothing; no teacher) for 2
    short epochs."""
    common = [
        "--reading-calibration",  # its own tests: tests/model/test_reading_calibration.py
        "0",
        "--preset",
        "smoothed",
        "--epochs",
        "2",
        "--scorer-epochs",
        "2",
        "--validation-size",
        str(VALIDATION),
        "--quiet",
    ]
    return [*common, "--data", str(data), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_file: Path) -> tuple[Path, dict[str, Any], str]:
    """One training run: the model path, its metadata and what main() printed."""
    out = tmp_path_factory.mktemp("run") / "m.keras"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert train_main(argv(data_file, out)) == 0
    return out, json.loads(out.with_suffix(".json").read_text()), stdout.getvalue()


# what a run with --out m.keras writes: the model, its scorer, metadata and plots
WRITTEN = ["m.confusion.png", "m.curves.png", "m.digit.keras", "m.json", "m.keras", "m.reliability.png"]


def weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def test_writes_the_model_its_metadata_and_plots(trained: tuple[Path, dict[str, Any], str]) -> None:
    model, _, stdout = trained
    assert sorted(p.name for p in model.parent.iterdir()) == WRITTEN
    for plot in ("m.curves.png", "m.confusion.png", "m.reliability.png"):
        with Image.open(model.parent / plot) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 300
    assert stdout.startswith(f"saved {model} (1,276,810 parameters, 2 epochs") and "test accuracy" in stdout


def test_metadata_has_every_field(trained: tuple[Path, dict[str, Any], str], data_file: Path) -> None:
    _, meta, _ = trained
    assert set(meta) == METADATA_KEYS
    assert meta["name"] == "mnist-mlp" and meta["preset"] == "smoothed" and meta["architecture"] == "mlp_smoothed"
    assert meta["file"] == "m.keras" and meta["seed"] == 42 and meta["parameters"] == 1_276_810
    assert meta["input"] == {"name": "pixels", "shape": [-1, 784], "dtype": "float32", "range": [0.0, 1.0]}
    assert meta["output"]["name"] == "probabilities" and meta["output"]["shape"] == [-1, 10]
    hyper = meta["hyperparameters"]
    assert hyper["epochs_max"] == 2 and hyper["batch_size"] == 128 and hyper["validation_size"] == VALIDATION
    assert hyper["augment"] is True and hyper["label_smoothing"] == 0.05
    assert hyper["bold"] == PRESETS["smoothed"].bold > 0
    assert meta["epochs_run"] == 2 and meta["best_epoch"] in (1, 2) and meta["train_seconds"] >= 0
    assert {split: m["count"] for split, m in meta["metrics"].items()} == {
        "train": TRAIN - VALIDATION,
        "validation": VALIDATION,
        "test": TEST,
    }
    for split in meta["metrics"].values():
        assert 0 <= split["accuracy"] <= 1 and split["loss"] > 0
    assert set(meta["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in meta["history"].values())
    confusion = np.array(meta["test_confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == TEST
    assert np.trace(confusion) / TEST == pytest.approx(meta["metrics"]["test"]["accuracy"], abs=1e-6)
    assert set(meta["test_per_class_accuracy"]) == {str(d) for d in range(10)}
    data = load_mnist(data_file)
    assert meta["data"] == {
        "source": str(data_file),
        "sha256": {k: array_sha256(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")},
    }
    assert {"python", "tensorflow", "keras", "numpy"} == set(meta["versions"])
    assert meta["versions"]["keras"] == keras.__version__ and meta["created_at"].endswith("+00:00")


def test_metadata_records_the_presets_own_description_and_recipe(trained: tuple[Path, dict[str, Any], str]) -> None:
    _, meta, _ = trained
    preset = PRESETS["smoothed"]
    assert meta["description"] == preset.description
    assert meta["hyperparameters"] == preset.hyperparameters(validation_size=VALIDATION, epochs=2)


def test_sha256_in_the_metadata_is_the_files(trained: tuple[Path, dict[str, Any], str]) -> None:
    model, meta, _ = trained
    assert meta["sha256"] == sha256_file(model)


def test_saved_model_loads_without_an_optimizer(trained: tuple[Path, dict[str, Any], str], data_file: Path) -> None:
    path, meta, _ = trained
    model = keras.saving.load_model(path)
    assert getattr(model, "optimizer", None) is None, "the file holds no optimizer state"
    assert model.count_params() == meta["parameters"]
    assert tuple(model.inputs[0].shape) == (None, 784) and tuple(model.outputs[0].shape) == (None, 10)
    # evaluating the file reproduces the metrics recorded at training time exactly
    data = load_mnist(data_file)
    report = evaluate(path, data.x_test, data.y_test)
    assert round(report["accuracy"], 6) == meta["metrics"]["test"]["accuracy"]
    assert report["confusion_matrix"] == meta["test_confusion_matrix"]
    assert report["per_class_accuracy"] == meta["test_per_class_accuracy"]


def test_same_seed_same_model(trained: tuple[Path, dict[str, Any], str], data_file: Path, tmp_path: Path) -> None:
    first, meta, _ = trained
    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main(argv(data_file, tmp_path / "again.keras")) == 0
    for a, b in zip(weights(first), weights(tmp_path / "again.keras"), strict=True):
        np.testing.assert_array_equal(a, b)
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["metrics"] == meta["metrics"] and again["history"] == meta["history"]


def test_other_seed_other_model(data_file: Path, tmp_path: Path) -> None:
    quick = ["--preset", "logreg", "--epochs", "1", "--validation-size", "100", "--quiet", "--data", str(data_file)]
    quick += ["--reading-calibration", "0"]
    with contextlib.redirect_stdout(io.StringIO()):
        for seed in ("1", "2"):
            assert train_main([*quick, "--seed", seed, "--out", str(tmp_path / f"seed{seed}.keras")]) == 0
    a, b = weights(tmp_path / "seed1.keras"), weights(tmp_path / "seed2.keras")
    assert not np.array_equal(a[0], b[0])


def write_bad(path: Path, kind: str) -> Path:
    if kind == "text":
        path.write_text("this is not an npz\n")
    elif kind == "dtype":  # float64 images
        x, y = np.zeros((5, 28, 28)), np.zeros(5, np.uint8)
        np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    return path


@pytest.mark.parametrize("kind", ["absent", "text", "dtype"])
def test_bad_data_is_one_line_exit_2_and_writes_nothing(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_bad(tmp_path / "bad.npz", kind)
    out = tmp_path / "out" / "m.keras"
    assert train_main(["--data", str(data), "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {data}: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.parent.exists()


def test_validation_set_bigger_than_the_training_set(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "m.keras"
    assert train_main(["--data", str(data_file), "--out", str(out), "--validation-size", str(TRAIN), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--validation-size 600 must be between 1 and 599" in err
    assert not out.parent.exists()


@pytest.mark.parametrize(
    "args",
    [["--out", "model.h5"], ["--epochs", "0"], ["--batch-size", "-1"], ["--preset", "resnet"], ["--bold", "1.5"]],
    ids=["out-suffix", "epochs", "batch-size", "preset", "bold"],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        train_main(args)
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err


def interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


class InterruptMidEpoch(keras.callbacks.Callback):
    """Presses Ctrl-C in the middle of the first epoch."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("when", ["before-training", "during-fit", "while-writing"])
def test_ctrl_c_returns_130_and_leaves_nothing(
    when: str, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if when == "before-training":
        monkeypatch.setattr("training.train.make_dataset", interrupt)
    elif when == "during-fit":
        real_fit = keras.Model.fit

        def fit(self: keras.Model, *args: Any, callbacks: list[Any], **kwargs: Any) -> Any:
            return real_fit(self, *args, callbacks=[*callbacks, InterruptMidEpoch()], **kwargs)

        monkeypatch.setattr(keras.Model, "fit", fit)
    else:  # the model and the curves are already in their temporary files
        monkeypatch.setattr("training.plots.plot_confusion", interrupt)
    out = tmp_path / "m.keras"
    # an earlier model in the same place stays as it was
    out.write_bytes(b"the previous model")
    out.with_suffix(".json").write_text("{}")
    assert train_main(argv(data_file, out)) == 130
    assert "interrupted: nothing was written." in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]
    assert out.read_bytes() == b"the previous model" and out.with_suffix(".json").read_text() == "{}"


def test_publish_moves_every_file_into_place_the_model_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m.keras"
    temporary = temporary_paths(out)
    for kind, path in temporary.items():
        assert path.parent == tmp_path and path.name.startswith(".m.") and ".tmp" in path.name
        path.write_text(kind)
    moved: list[str] = []
    real_replace = os.replace

    def replace(source: Path, target: Path) -> None:
        moved.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    publish(temporary, out)
    assert moved[-1] == "m.keras" and sorted(moved) == WRITTEN
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(moved)
    assert (tmp_path / "m.json").read_text() == "metadata" and out.read_text() == "model"


IMPORT_CHECK = """
import importlib, os, sys
import matplotlib
environment, backend = dict(os.environ), matplotlib.rcParams._get_backend_or_none()
for name in sys.argv[1:]:
    importlib.import_module(name)
changed = sorted(k for k in set(environment) | set(os.environ) if environment.get(k) != os.environ.get(k))
heavy = sorted(m for m in ("tensorflow", "keras", "matplotlib.pyplot") if m in sys.modules)
print(changed, heavy, matplotlib.rcParams._get_backend_or_none() == backend)
"""
TRAINING_MODULES = [
    "training",
    "training.__main__",
    "training.augment",
    "training.bold",
    "training.calibrate",
    "training.data",
    "training.distill",
    "training.evaluate",
    "training.export",
    "training.models",
    "training.negatives",
    "training.plots",
    "training.positives",
    "training.reading_calibration",
    "training.scorer",
    "training.teacher",
    "training.train",
]


def test_importing_the_training_modules_has_no_side_effects() -> None:
    """No environment variable set, no TensorFlow loaded, matplotlib's backend untouched, nothing run."""
    every_module = {"training" if p.stem == "__init__" else f"training.{p.stem}" for p in ROOT.glob("training/*.py")}
    assert every_module == set(TRAINING_MODULES)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, *TRAINING_MODULES], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[] [] True\n"


def test_python_m_training_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m training")


def test_evaluate_prints_the_accuracy(
    trained: tuple[Path, dict[str, Any], str], data_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, meta, _ = trained
    assert evaluate_main(["--model", str(model), "--data", str(data_file)]) == 0
    out = capsys.readouterr().out
    assert f"accuracy: {meta['metrics']['test']['accuracy']:.4%}" in out
    assert f"(test split, {TEST} images)" in out and "confusion matrix" in out
    assert evaluate_main(["--model", str(model), "--data", str(data_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == TEST and report["confusion_matrix"] == meta["test_confusion_matrix"]


def test_evaluate_errors_are_one_line(tmp_path: Path, data_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_main(["--model", str(tmp_path / "absent.keras"), "--data", str(data_file)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'absent.keras'}: no such model file.\n"
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    assert evaluate_main(["--model", str(model), "--data", str(tmp_path / "absent.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "absent.npz: no such file" in err and err.count("\n") == 1


def test_the_saved_model_is_calibrated_on_validation(trained: tuple[Path, dict[str, Any], str]) -> None:
    _, meta, stdout = trained
    calibration = meta["calibration"]
    assert calibration["fitted_on"] == "validation" and calibration["temperature"] > 0
    assert set(calibration) >= {"validation", "test", "ece_bins"}
    for split in ("validation", "test"):
        assert {"ece_before", "ece_after"} <= set(calibration[split])
    # the file holds the calibrated model: the test ECE recorded for it is the "after" one
    assert meta["metrics"]["test"]["ece"] == pytest.approx(calibration["test"]["ece_after"], abs=1e-3)
    assert "temperature" in stdout
    assert set(meta["stages"]) == {
        "data_seconds",
        "student_seconds",
        "calibration_and_evaluation_seconds",
        "scorer_seconds",
    }


def test_the_digit_scorer_is_saved_beside_the_model_and_served_with_it(
    trained: tuple[Path, dict[str, Any], str], data_file: Path
) -> None:
    """The scorer's file matches the metadata's sha256; its threshold, folded into its last bias, is 0.5,
    where the recipe's share of the validation digits falls below it; the service loads it with the model."""
    model, meta, _ = trained
    spec = meta["digit_score"]
    scorer_file = model.with_name(spec["file"])
    assert spec["file"] == "m.digit.keras" and spec["sha256"] == sha256_file(scorer_file)
    assert spec["threshold"] == 0.5 and 0 < spec["threshold_before_folding"] < 1
    assert spec["flagged"]["validation_digits"] == pytest.approx(ScorerRecipe().flagged, abs=0.011)  # few digits here
    classifier = Classifier.load(model)
    assert classifier.digit_threshold == 0.5 and classifier.network.scorer is not None
    data = load_mnist(data_file)
    split = split_validation(data, VALIDATION, 42)
    _, scores = classifier.predict(flatten_and_scale(split.x_val))
    assert scores is not None and scores.shape == (VALIDATION,) and ((scores >= 0) & (scores <= 1)).all()
    # the numpy path is Keras's own answer
    keras_scores = keras.saving.load_model(scorer_file, compile=False)(flatten_and_scale(split.x_val))
    np.testing.assert_allclose(scores, np.asarray(keras_scores)[:, 0], atol=1e-5)
    assert (scores < 0.5).mean() == pytest.approx(spec["flagged"]["validation_digits"], abs=1e-9)
    assert Classifier.load(model, digit_threshold=0.9).digit_threshold == 0.9


def test_a_run_then_fits_the_new_models_reading_calibration_in_a_process_of_its_own(
    data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own process: TensorFlow's threads run in this one, and a fork of them aborts. The fitting itself
    is tests/model/test_reading_calibration.py's."""
    ran: list[list[str]] = []

    def run(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(subprocess, "run", run)
    out = tmp_path / "m.keras"
    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main([*argv(data_file, out), "--epochs", "1", "--reading-calibration", "7"]) == 3
    assert out.exists() and ran == [
        [
            sys.executable,
            "-m",
            "training.reading_calibration",
            "--model",
            str(out),
            "--n",
            "7",
            "--data",
            str(data_file),
        ]
    ]


def test_no_scorer_writes_none_and_serves_without_one(data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.keras"
    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main([*argv(data_file, out, "--no-scorer"), "--epochs", "1"]) == 0
    assert not out.with_name("m.digit.keras").exists() and "digit_score" not in json.loads(
        out.with_suffix(".json").read_text()
    )
    classifier = Classifier.load(out)
    assert classifier.digit_threshold is None and classifier.predict(np.zeros((2, 784), np.float32))[1] is None


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory, data_file: Path) -> tuple[Path, dict[str, Any]]:
    """A tiny distilled run: a 1-epoch teacher trained and saved beside the student, then 1 student epoch."""
    out = tmp_path_factory.mktemp("distilled") / "student.keras"
    common = ["--preset", "default", "--epochs", "1", "--teacher-epochs", "1", "--validation-size", str(VALIDATION)]
    common += ["--reading-calibration", "0"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main([*common, "--quiet", "--data", str(data_file), "--out", str(out)]) == 0
    return out, json.loads(out.with_suffix(".json").read_text())


def test_a_distilled_run_trains_saves_and_records_its_teacher(distilled: tuple[Path, dict[str, Any]]) -> None:
    out, meta = distilled
    teacher = out.with_name("mnist-teacher.keras")
    assert teacher.is_file() and teacher.with_suffix(".json").is_file()
    teacher_meta = json.loads(teacher.with_suffix(".json").read_text())
    assert teacher_meta["sha256"] == sha256_file(teacher) == meta["teacher"]["sha256"]
    assert teacher_meta["recipe"]["epochs"] == 1 and "accuracy" in teacher_meta["metrics"]["test"]
    assert meta["teacher"]["reused"] is False and meta["stages"]["teacher_seconds"] > 0
    hyper = meta["hyperparameters"]
    assert hyper["distillation"] == {"temperature": 4.0, "alpha": 0.7}
    assert hyper["elastic_alpha"] == PRESETS["default"].elastic and "outliers" not in hyper
    # the student is still served as a softmax MLP
    model = keras.saving.load_model(out, compile=False)
    assert model.layers[-1].get_config()["activation"] == "softmax"


def test_teacher_reuses_a_saved_teacher(
    distilled: tuple[Path, dict[str, Any]], data_file: Path, tmp_path: Path
) -> None:
    out, _ = distilled
    teacher = out.with_name("mnist-teacher.keras")
    args = ["--preset", "default", "--epochs", "1", "--validation-size", str(VALIDATION), "--quiet"]
    args += ["--reading-calibration", "0"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            train_main([*args, "--teacher", str(teacher), "--data", str(data_file), "--out", str(tmp_path / "s.keras")])
            == 0
        )
    meta = json.loads((tmp_path / "s.json").read_text())
    assert meta["teacher"]["reused"] is True and meta["teacher"]["path"] == str(teacher)
    assert not (tmp_path / "mnist-teacher.keras").exists()


def test_no_distill_trains_no_teacher(data_file: Path, tmp_path: Path) -> None:
    args = ["--preset", "default", "--no-distill", "--elastic", "0", "--outliers", "0", "--epochs", "1"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            train_main(
                [
                    *args,
                    "--validation-size",
                    "100",
                    "--quiet",
                    "--data",
                    str(data_file),
                    "--out",
                    str(tmp_path / "s.keras"),
                ]
            )
            == 0
        )
    meta = json.loads((tmp_path / "s.json").read_text())
    assert "teacher" not in meta and "distillation" not in meta["hyperparameters"]
    assert not (tmp_path / "mnist-teacher.keras").exists()
