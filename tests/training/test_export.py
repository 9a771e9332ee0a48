"""training/export.py: each format exported from the committed model, loaded with its own runtime (TensorFlow,
the LiteRT interpreter, ONNX Runtime) and compared with Keras on the committed sample; and the CLI's errors.

The runtimes are imported at the top on purpose: a missing one fails these tests rather than skipping them
(they come with `pip install -e ".[dev]"`, through the train extra)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from ai_edge_litert.interpreter import Interpreter

from app.contract import flatten_and_scale, sha256_file
from tests.conftest import MODEL, ROOT, SAMPLE
from training.export import main

ATOL = 1e-5
ROWS = 64


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """The first 64 digits of the committed sample, flattened and scaled: (64, 784) float32."""
    with np.load(SAMPLE) as sample:
        return flatten_and_scale(sample["x"][:ROWS])


@pytest.fixture(scope="module")
def keras_answers(pixels: np.ndarray) -> np.ndarray:
    import keras

    model = keras.saving.load_model(MODEL, compile=False, safe_mode=True)
    return np.asarray(model(pixels, training=False))


def export(fmt: str, out: Path, *extra: str) -> int:
    return main(["--format", fmt, "--model", str(MODEL), "--out", str(out), *extra])


def assert_record(out: Path, name: str, fmt: str, path: str) -> dict:
    """The JSON beside the export names the source model by sha256 and version, the format and the tools."""
    record = json.loads((out / name).read_text())
    sha256 = sha256_file(MODEL)
    assert record["format"] == fmt
    assert record["path"] == path
    assert record["model"]["sha256"] == sha256
    assert record["model"]["version"] == sha256[:12]
    assert record["model"]["file"] == "mnist-mlp.keras"
    assert {"python", "keras", "tensorflow", "numpy"} <= set(record["tools"])
    assert record["input"]["name"] == "pixels" and record["output"]["name"] == "probabilities"
    assert 0 <= record["check"]["max_abs_diff"] <= ATOL
    return record


def report(fmt: str, got: np.ndarray, expected: np.ndarray) -> None:
    """Assert the export matches Keras to ATOL; print the difference (pytest -s shows it)."""
    assert got.shape == expected.shape == (ROWS, 10)
    assert got.dtype == np.float32
    difference = float(np.abs(got - expected).max())
    print(f"{fmt}: max |difference| from Keras on {ROWS} digits = {difference:.3g}")
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_saved_model_has_tf_serving_layout_and_signature(tmp_path, pixels, keras_answers):
    import tensorflow as tf

    assert export("saved_model", tmp_path) == 0
    version_dir = tmp_path / "mnist-mlp" / "1"
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    assert sorted(p.name for p in (tmp_path / "mnist-mlp").iterdir()) == ["1"]  # only version dirs for TF Serving
    assert_record(tmp_path, "mnist-mlp.saved_model.json", "saved_model", "mnist-mlp/1")

    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures["serving_default"]
    args, kwargs = signature.structured_input_signature
    assert args == ()
    assert kwargs == {"pixels": tf.TensorSpec(shape=(None, 784), dtype=tf.float32, name="pixels")}
    assert set(signature.structured_outputs) == {"probabilities"}
    assert signature.structured_outputs["probabilities"].shape.as_list() == [None, 10]
    outputs = signature(pixels=tf.constant(pixels))
    report("saved_model", outputs["probabilities"].numpy(), keras_answers)


def test_litert_runs_in_the_litert_interpreter(tmp_path, pixels, keras_answers):
    assert export("litert", tmp_path) == 0
    path = tmp_path / "mnist-mlp.tflite"
    record = assert_record(tmp_path, "mnist-mlp.tflite.json", "litert", "mnist-mlp.tflite")
    assert record["check"]["runtime"].startswith("ai-edge-litert ")

    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["pixels"], "outputs": ["probabilities"]}}
    runner = interpreter.get_signature_runner("serving_default")
    assert runner.get_input_details()["pixels"]["shape_signature"].tolist() == [-1, 784]
    report("litert", runner(pixels=pixels)["probabilities"], keras_answers)
    # one digit at a time too: the batch dimension really is dynamic
    one = runner(pixels=pixels[:1])["probabilities"]
    np.testing.assert_allclose(one, keras_answers[:1], atol=ATOL, rtol=0)


def test_litert_check_falls_back_to_tf_lite_without_ai_edge_litert(tmp_path, pixels, keras_answers, monkeypatch):
    import training.export as export_module

    assert export("litert", tmp_path) == 0
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # `from ... import` now raises ImportError
    _, runtime = export_module.litert_interpreter(tmp_path / "mnist-mlp.tflite")
    assert runtime.startswith("tf.lite.Interpreter (tensorflow ")
    got = export_module.run_litert(tmp_path / "mnist-mlp.tflite", pixels)
    np.testing.assert_allclose(got, keras_answers, atol=ATOL, rtol=0)


def test_onnx_runs_in_onnx_runtime(tmp_path, pixels, keras_answers):
    assert export("onnx", tmp_path) == 0
    path = tmp_path / "mnist-mlp.onnx"
    record = assert_record(tmp_path, "mnist-mlp.onnx.json", "onnx", "mnist-mlp.onnx")
    assert {"tf2onnx", "onnx", "onnxruntime"} <= set(record["tools"])

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [input_] = session.get_inputs()
    [output] = session.get_outputs()
    assert (input_.name, input_.shape, input_.type) == ("pixels", ["N", 784], "tensor(float)")
    assert (output.name, output.shape, output.type) == ("probabilities", ["N", 10], "tensor(float)")
    (got,) = session.run(["probabilities"], {"pixels": pixels})
    report("onnx", got, keras_answers)


def test_an_existing_export_is_kept_unless_overwrite(tmp_path, capsys):
    (tmp_path / "mnist-mlp.tflite").write_bytes(b"an older export")
    assert export("litert", tmp_path) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "mnist-mlp.tflite").read_bytes() == b"an older export"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["--format", "onnx", "--model", str(tmp_path / "nope.keras"), "--out", str(tmp_path)]) == 2
    assert "nope.keras does not exist" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_sha256_mismatch_is_refused(tmp_path, capsys):
    model = tmp_path / "mnist-mlp.keras"
    shutil.copy(MODEL, model)
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    metadata["sha256"] = "0" * 64
    model.with_suffix(".json").write_text(json.dumps(metadata))
    out = tmp_path / "out"
    assert main(["--format", "saved_model", "--model", str(model), "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert "sha256" in err and "0" * 64 in err
    assert not out.exists()


def test_missing_metadata_is_refused(tmp_path, capsys):
    model = tmp_path / "mnist-mlp.keras"
    shutil.copy(MODEL, model)
    assert main(["--format", "litert", "--model", str(model), "--out", str(tmp_path / "out")]) == 2
    assert "mnist-mlp.json does not exist" in one_line_error(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "tfjs", "--out", "x"],  # unknown format
        ["--format", "onnx"],  # no --out
        ["--out", "x"],  # no --format
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = one_line_error(capsys)
    assert err.startswith("python -m training.export: error: ")
    if "tfjs" in argv:
        assert "invalid choice: 'tfjs'" in err


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from training.export import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'onnx', 'tf2onnx', 'onnxruntime') if m in sys.modules)\n"
        "print('imported:', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--format {saved_model,litert,onnx}" in done.stdout
    assert done.stdout.strip().endswith("imported: []")


def test_a_failing_converter_is_one_line_exit_1_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import training.export as export_module

    def broken(model, path):
        path.write_bytes(b"half an export")
        raise RuntimeError("the converter broke\nwith a long traceback-like tail")

    monkeypatch.setitem(export_module.WRITERS, "onnx", broken)
    assert export("onnx", tmp_path) == 1
    err = one_line_error(capsys)
    assert err == "error: the onnx converter failed (RuntimeError: the converter broke).\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
