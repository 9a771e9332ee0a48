"""The training package: data loading and validation, the CLI end to end on small data, the committed model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from training.data import DataError, array_sha256, flatten_and_scale, load_mnist, sha256_file
from training.train import main as train_main

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mnist-mlp.keras"
NEEDS_MNIST = pytest.mark.skipif(
    not os.environ.get("MNIST_NPZ"),
    reason="MNIST_NPZ is not set: this test needs the full MNIST .npz (../shared/data/mnist.npz); .ci/run sets it",
)


def write_npz(path: Path, **overrides: np.ndarray) -> Path:
    """A small valid MNIST-format file from the committed sample, with some arrays replaced."""
    with np.load(ROOT / "tests" / "data" / "mnist-sample.npz") as sample:
        x, y = sample["x"], sample["y"]
    arrays = {"x_train": x[:700], "y_train": y[:700], "x_test": x[700:], "y_test": y[700:], **overrides}
    np.savez(path, **arrays)
    return path


def test_load_valid_file(tmp_path: Path) -> None:
    data = load_mnist(write_npz(tmp_path / "m.npz"))
    assert data.x_train.shape == (700, 28, 28) and data.x_test.shape == (300, 28, 28)
    assert data.y_train.dtype == np.uint8


def test_env_var_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_NPZ", str(write_npz(tmp_path / "m.npz")))
    assert load_mnist().source == str(tmp_path / "m.npz")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x_train": np.zeros((10, 28, 28), np.float32)}, "dtype float32, expected uint8"),
        ({"x_train": np.zeros((10, 28, 27), np.uint8)}, "expected (N, 28, 28)"),
        ({"y_test": np.full(300, 11, np.uint8)}, "expected 0 to 9"),
        ({"y_train": np.zeros(5, np.uint8)}, "to match x_train"),
    ],
    ids=["dtype", "shape", "labels", "length"],
)
def test_invalid_arrays_are_named(tmp_path: Path, overrides: dict[str, np.ndarray], message: str) -> None:
    path = write_npz(tmp_path / "m.npz", **overrides)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_mnist(path)
    assert str(path) in str(error.value)


def test_missing_key_missing_file_and_not_an_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match="missing key"):
        load_mnist(tmp_path / "partial.npz")
    with pytest.raises(DataError, match="no such file"):
        load_mnist(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_mnist(tmp_path / "text.npz")
    with pytest.raises(DataError, match="directory"):
        load_mnist(tmp_path)


def test_offline_without_a_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    def offline() -> None:
        raise OSError("Name or service not known")

    monkeypatch.delenv("MNIST_NPZ", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="are you offline"):
        load_mnist()


def test_flatten_and_scale_is_exact() -> None:
    pixels = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
    flat = flatten_and_scale(pixels.astype(np.uint8))
    assert flat.shape == (2, 784) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, (pixels.reshape(2, 784) / 255.0).astype(np.float32))
    with pytest.raises(ValueError):
        flatten_and_scale(np.zeros((28, 28), np.uint8))


def train(tmp_path: Path, out: str, *extra: str) -> int:
    data = write_npz(tmp_path / "m.npz")
    argv = ["--preset", "default", "--epochs", "1", "--validation-size", "100", "--quiet", "--data", str(data)]
    return train_main([*argv, "--out", str(tmp_path / out), *extra])


def test_cli_writes_model_metadata_and_plots(tmp_path: Path) -> None:
    import keras

    assert train(tmp_path, "m.keras") == 0
    model, meta = tmp_path / "m.keras", json.loads((tmp_path / "m.json").read_text())
    assert (tmp_path / "m.curves.png").stat().st_size > 1000 and (tmp_path / "m.confusion.png").stat().st_size > 1000
    assert meta["sha256"] == sha256_file(model) and meta["preset"] == "default" and meta["epochs_run"] == 1
    assert set(meta["metrics"]) == {"train", "validation", "test"} and len(meta["test_confusion_matrix"]) == 10
    assert meta["data"]["sha256"]["x_train"] == array_sha256(load_mnist(tmp_path / "m.npz").x_train)
    assert {"python", "tensorflow", "keras"} <= set(meta["versions"]) and meta["created_at"]
    loaded = keras.saving.load_model(model)
    assert getattr(loaded, "optimizer", None) is None and loaded.count_params() == meta["parameters"]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_same_seed_same_weights(tmp_path: Path) -> None:
    import keras

    assert train(tmp_path, "a.keras", "--preset", "logreg") == 0
    assert train(tmp_path, "b.keras", "--preset", "logreg") == 0
    a, b = (keras.saving.load_model(tmp_path / n).get_weights() for n in ("a.keras", "b.keras"))
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_bad_data_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = train_main(["--data", str(tmp_path / "absent.npz"), "--out", str(tmp_path / "m.keras"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", interrupted)
    assert train(tmp_path, "m.keras") == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_committed_model_matches_its_metadata() -> None:
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    assert meta["sha256"] == sha256_file(MODEL)
    assert meta["name"] == "mnist-mlp" and meta["metrics"]["test"]["accuracy"] >= 0.99
    for plot in ("curves", "confusion"):
        assert (MODEL.parent / f"mnist-mlp.{plot}.png").is_file()


@NEEDS_MNIST
def test_committed_model_reproduces_its_test_accuracy() -> None:
    from training.evaluate import evaluate

    data = load_mnist(os.environ["MNIST_NPZ"])
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    report = evaluate(MODEL, data.x_test, data.y_test)
    assert report["accuracy"] == pytest.approx(meta["metrics"]["test"]["accuracy"], abs=1e-6)
    assert report["accuracy"] >= 0.99
    assert meta["data"]["sha256"]["x_test"] == array_sha256(data.x_test)
