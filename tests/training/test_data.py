"""training/data.py: loading and validating MNIST .npz files, the model's input format, the data's hashes."""

from __future__ import annotations

import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_sample
from training.data import DataError, array_sha256, flatten_and_scale, load_mnist, sha256_file

NEEDS_MNIST = pytest.mark.skipif(
    not os.environ.get("MNIST_NPZ"),
    reason="MNIST_NPZ is not set: this test needs the full MNIST .npz (../shared/data/mnist.npz); .ci/run sets it",
)
# ../shared/data/README.md: sha256 of each array's bytes in C order
README_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


def sample_arrays() -> dict[str, np.ndarray]:
    """A small valid MNIST: 60 training and 40 test images of the committed sample."""
    x, y = (a[:100] for a in load_sample())
    return {"x_train": x[:60], "y_train": y[:60], "x_test": x[60:], "y_test": y[60:]}


def write_npz(path: Path, **overrides: np.ndarray | None) -> Path:
    """Write the small MNIST to `path`, with arrays replaced (or left out, for None)."""
    arrays = {k: v for k, v in {**sample_arrays(), **overrides}.items() if v is not None}
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def load_error(path: Path) -> str:
    """The DataError message of loading `path`, checked to name the path on one line."""
    with pytest.raises(DataError) as error:
        load_mnist(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    return message


def test_loads_a_valid_file(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mnist.npz")
    data = load_mnist(path)
    expected = sample_arrays()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(data, key), expected[key])
    assert data.x_train.dtype == np.uint8 and data.x_train.shape == (60, 28, 28) and data.x_test.shape == (40, 28, 28)
    assert data.y_train.dtype == np.uint8 and data.source == str(path)


def test_accepts_any_integer_labels(tmp_path: Path) -> None:
    labels = sample_arrays()["y_train"].astype(np.int64)
    data = load_mnist(write_npz(tmp_path / "mnist.npz", y_train=labels))
    assert data.y_train.dtype == np.uint8
    np.testing.assert_array_equal(data.y_train, labels)


def test_accepts_a_str_path_and_extra_keys(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mnist.npz", notes=np.zeros(3))
    assert load_mnist(str(path)).source == str(path)


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in load_error(tmp_path / "absent.npz")


def test_directory(tmp_path: Path) -> None:
    assert "is a directory" in load_error(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"x_train,y_train\n1,2\n", b"", b"PK\x03\x04 a truncated zip", b"\x93NUMPY\x01\x00garbage"],
    ids=["text", "empty", "truncated-zip", "corrupt-npy"],
)
def test_not_an_npz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(content)
    assert "not a readable .npz" in load_error(path)


def test_a_single_npy_array(tmp_path: Path) -> None:
    path = tmp_path / "x_train.npy"
    np.save(path, sample_arrays()["x_train"])
    assert "single .npy array" in load_error(path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mnist.npz", x_train=np.array([{"evil": 1}], dtype=object))
    assert "not a readable .npz" in load_error(path)


def test_missing_key(tmp_path: Path) -> None:
    message = load_error(write_npz(tmp_path / "mnist.npz", y_test=None))
    assert "missing key(s) y_test" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"x_train": np.zeros((60, 28, 28), np.float32)}, "x_train has dtype float32, expected uint8", id="x-float"
        ),
        pytest.param(
            {"x_test": np.zeros((40, 28, 28), np.int64)}, "x_test has dtype int64, expected uint8", id="x-int64"
        ),
        pytest.param(
            {"x_train": np.zeros((60, 28, 27), np.uint8)},
            "x_train has shape (60, 28, 27), expected (N, 28, 28)",
            id="x-shape",
        ),
        pytest.param({"x_test": np.zeros((40, 784), np.uint8)}, "x_test has shape (40, 784)", id="x-flat"),
        pytest.param(
            {"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.uint8)}, "with N > 0", id="x-empty"
        ),
        pytest.param(
            {"y_train": np.zeros(60, np.float32)}, "y_train has dtype float32, expected integer labels", id="y-float"
        ),
        pytest.param(
            {"y_test": np.full(40, 10, np.uint8)}, "y_test has labels from 10 to 10, expected 0 to 9", id="label-10"
        ),
        pytest.param(
            {"y_train": np.arange(60, dtype=np.int16) - 1},
            "y_train has labels from -1 to 58, expected 0 to 9",
            id="label-negative",
        ),
        pytest.param(
            {"y_train": np.zeros(59, np.uint8)},
            "y_train has shape (59,), expected (60,) to match x_train",
            id="y-length",
        ),
        pytest.param({"y_test": np.zeros((40, 1), np.uint8)}, "y_test has shape (40, 1), expected (40,)", id="y-2d"),
    ],
)
def test_invalid_arrays(tmp_path: Path, overrides: dict[str, np.ndarray], expected: str) -> None:
    assert expected in load_error(write_npz(tmp_path / "mnist.npz", **overrides))


def test_env_var_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = write_npz(tmp_path / "env.npz")
    monkeypatch.setenv("MNIST_NPZ", str(from_env))
    assert load_mnist().source == str(from_env)
    given = write_npz(tmp_path / "given.npz")
    assert load_mnist(given).source == str(given), "an explicit path wins over $MNIST_NPZ"
    monkeypatch.setenv("MNIST_NPZ", str(tmp_path / "absent.npz"))
    with pytest.raises(DataError, match=r"absent\.npz: no such file"):
        load_mnist()


@pytest.mark.parametrize(
    "failure",
    [urllib.error.URLError("[Errno -3] Temporary failure in name resolution"), OSError("Network is unreachable")],
    ids=["URLError", "OSError"],
)
def test_offline_with_no_local_copy(monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    import keras

    def offline() -> None:
        raise failure

    monkeypatch.delenv("MNIST_NPZ", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError) as error:
        load_mnist()
    message = str(error.value)
    assert "no local MNIST given (--data or $MNIST_NPZ)" in message and "are you offline?" in message
    assert type(failure).__name__ in message and "\n" not in message


def test_keras_download_is_validated_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    arrays = sample_arrays()
    arrays["y_test"] = arrays["y_test"] + 10
    monkeypatch.delenv("MNIST_NPZ", raising=False)
    monkeypatch.setattr(
        keras.datasets.mnist,
        "load_data",
        lambda: ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])),
    )
    with pytest.raises(DataError, match=r"keras\.datasets\.mnist .*y_test has labels"):
        load_mnist()


def test_flatten_and_scale_is_exactly_x_over_255() -> None:
    pixels = np.arange(4 * 28 * 28).reshape(4, 28, 28) % 256  # every grey level
    before = pixels.astype(np.uint8)
    flat = flatten_and_scale(before)
    assert flat.shape == (4, 784) and flat.dtype == np.float32
    assert flat.min() == 0.0 and flat.max() == 1.0
    np.testing.assert_array_equal(flat, (pixels.reshape(4, 784) / 255).astype(np.float32))
    np.testing.assert_array_equal(flat[0, :28], np.float32(np.arange(28)) / np.float32(255))
    np.testing.assert_array_equal(before, pixels.astype(np.uint8))  # the input is left as it was


def test_flatten_and_scale_keeps_row_order(sample: tuple[np.ndarray, np.ndarray]) -> None:
    x = sample[0][:3]
    flat = flatten_and_scale(x)
    np.testing.assert_array_equal(flat.reshape(3, 28, 28) * 255, x.astype(np.float32))


@pytest.mark.parametrize(
    "shape", [(28, 28), (1, 784), (2, 28, 27), (1, 28, 28, 1)], ids=["one-image", "flat", "27-wide", "channel"]
)
def test_flatten_and_scale_rejects_other_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected an \\(N, 28, 28\\) array"):
        flatten_and_scale(np.zeros(shape, np.uint8))


def test_array_sha256_is_of_the_c_order_bytes() -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert array_sha256(array) == hashlib.sha256(array.tobytes()).hexdigest()
    assert array_sha256(np.asfortranarray(array)) == array_sha256(array)
    assert array_sha256(array.T) == hashlib.sha256(np.ascontiguousarray(array.T).tobytes()).hexdigest()


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    content = os.urandom(3 << 20 | 123)  # several 1 MiB blocks and a partial one
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()


@NEEDS_MNIST
def test_full_mnist_matches_the_readme_hashes() -> None:
    data = load_mnist(os.environ["MNIST_NPZ"])
    assert {key: array_sha256(getattr(data, key)) for key in README_SHA256} == README_SHA256
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert np.bincount(data.y_test, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
