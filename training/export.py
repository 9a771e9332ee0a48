"""Export the trained model for other runtimes: TF Serving's SavedModel, a LiteRT (.tflite) file, or ONNX.

    python -m training.export --format saved_model|litert|onnx [--model PATH] --out DIR

Each export keeps the model's contract (app/contract.py): one input `pixels`, [N, 784] float32 in [0, 1],
one output `probabilities`, [N, 10] float32. The source model's sha256 is checked against the .json
beside it first; after writing, the export is loaded with its own runtime (TensorFlow, the LiteRT
interpreter, ONNX Runtime) and its answers on the built-in sample are compared with Keras's, and a
small JSON beside the export records the source model, the format, the check and the tool versions.
See docs/exports.md.

TensorFlow is imported only once an export starts, so `--help` and the argument errors are instant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from app.contract import INPUT_SIZE, MODEL_NAME, NUM_CLASSES, flatten_and_scale
from app.model.keras_file import ModelLoadError, check_model_files, load_keras_model

FORMATS = ("saved_model", "litert", "onnx")
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
SIGNATURE = "serving_default"
SERVING_VERSION = 1  # TF Serving's version directory: DIR/mnist-mlp/1/
ONNX_OPSET = 17
CHECK_ROWS = 64  # digits of the built-in sample each export is checked on
CHECK_TOLERANCE = 1e-5  # the same bound the service holds its numpy path to (app.inference.PROBE_TOLERANCE)
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "app" / "data" / "mnist-sample.npz"


class ExportError(Exception):
    """Bad input (exit 2): no such model, a sha256 that disagrees with the .json, an unknown format, ...
    The message says why, in one sentence."""


class ExportFailed(ExportError):
    """The converter or the export's own runtime failed, or the export's answers differ from Keras's (exit 1)."""


@dataclass
class ExportResult:
    path: Path  # the export: a directory (saved_model) or a file
    metadata_path: Path  # the JSON beside it
    max_abs_diff: float  # the export's largest difference from Keras on the check rows


def export_paths(fmt: str, out: Path) -> tuple[Path, Path]:
    """Where a format's export and its JSON go in DIR."""
    if fmt == "saved_model":
        # TF Serving reads <base path>/<version>/; the JSON stays outside the base path it scans
        return out / MODEL_NAME / str(SERVING_VERSION), out / f"{MODEL_NAME}.saved_model.json"
    suffix = {"litert": ".tflite", "onnx": ".onnx"}[fmt]
    return out / f"{MODEL_NAME}{suffix}", out / f"{MODEL_NAME}{suffix}.json"


def check_inputs() -> np.ndarray:
    """The first CHECK_ROWS digits of the built-in sample, as the model's (N, 784) float32 input."""
    with np.load(SAMPLE_PATH) as sample:
        return flatten_and_scale(sample["x"][:CHECK_ROWS])


def tool_versions(*packages: str) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "numpy", *packages):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            if package == "tensorflow":  # installed as tensorflow-cpu on Linux/Windows x86_64
                versions[package] = importlib_metadata.version("tensorflow-cpu")
    return versions


# --- the three exports -------------------------------------------------------------------------------


def input_spec() -> Any:
    """The contract's input, [N, 784] float32 named `pixels`, as Keras's export API takes it."""
    import keras

    return keras.InputSpec(shape=(None, INPUT_SIZE), dtype="float32", name=INPUT_NAME)


def write_saved_model(model: Any, path: Path) -> None:
    """TF Serving's SavedModel: signature `serving_default`, pixels [N, 784] -> {probabilities: [N, 10]}."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda pixels: {OUTPUT_NAME: model(pixels, training=False)},
        input_signature=[input_spec()],
    )
    archive.write_out(str(path), verbose=False)


def run_saved_model(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if SIGNATURE not in loaded.signatures:
        raise ExportFailed(f"{path} has no {SIGNATURE} signature (it has {sorted(loaded.signatures)}).")
    outputs = loaded.signatures[SIGNATURE](**{INPUT_NAME: tf.constant(x)})
    return np.asarray(outputs[OUTPUT_NAME].numpy())


def write_litert(model: Any, path: Path) -> None:
    """A .tflite converted from the SavedModel above, builtin ops only (no Flex delegate needed), float32.

    Keras's own `model.export(format="litert")` names the output `output_0` and allows TF ops; converting
    our SavedModel keeps the contract's names in the .tflite signature.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="mnist-export-") as tmp:
        saved = Path(tmp) / "saved_model"
        write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        path.write_bytes(converter.convert())


def litert_interpreter(path: Path) -> tuple[Any, str]:
    """The LiteRT interpreter (ai-edge-litert); TensorFlow's tf.lite.Interpreter where it is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=str(path)), f"ai-edge-litert {importlib_metadata.version('ai-edge-litert')}"
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter is deprecated in favour of ai-edge-litert
            return tf.lite.Interpreter(model_path=str(path)), f"tf.lite.Interpreter (tensorflow {tf.__version__})"


def run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    interpreter, _ = litert_interpreter(path)
    runner = interpreter.get_signature_runner(SIGNATURE)
    return np.asarray(runner(**{INPUT_NAME: x})[OUTPUT_NAME])


def write_onnx(model: Any, path: Path) -> None:
    """ONNX through Keras's own exporter (tf2onnx), with the contract's names on the graph's input and output."""
    try:
        import onnx
        import tf2onnx  # noqa: F401  (Keras imports it itself; this gives the clear error first)
    except ImportError as exc:
        raise ExportFailed(
            f"the onnx export needs the tf2onnx and onnx packages ({exc}): pip install '.[train]'."
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Keras's tf2onnx numpy-2 patch touches np.object
        model.export(str(path), format="onnx", verbose=False, input_signature=[input_spec()], opset_version=ONNX_OPSET)
    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportFailed(
            f"{path}: expected one input and one output, got {len(graph.input)} and {len(graph.output)}."
        )
    # tf2onnx names the output after the TF graph (Identity:0) and the batch dimension unk__N
    renames = {graph.input[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in (graph.input[0], graph.output[0]):
        value.name = renames[value.name]
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(path))


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    return np.asarray(output)


def runtime_name(fmt: str, path: Path) -> str:
    if fmt == "saved_model":
        return f"tensorflow {tool_versions()['tensorflow']} (tf.saved_model.load)"
    if fmt == "litert":
        return litert_interpreter(path)[1]
    return f"onnxruntime {importlib_metadata.version('onnxruntime')}"


WRITERS = {"saved_model": write_saved_model, "litert": write_litert, "onnx": write_onnx}
RUNNERS = {"saved_model": run_saved_model, "litert": run_litert, "onnx": run_onnx}
EXTRA_TOOLS = {"saved_model": (), "litert": ("ai-edge-litert",), "onnx": ("tf2onnx", "onnx", "onnxruntime")}


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def write_and_check(fmt: str, model: Any, path: Path) -> float:
    """Write the export, run it on the check rows with its own runtime: its largest difference from Keras."""
    try:
        WRITERS[fmt](model, path)
    except ExportError:
        raise
    except Exception as exc:  # the converter's own failure, in one sentence
        raise ExportFailed(f"the {fmt} converter failed ({first_line(exc)}).") from exc
    x = check_inputs()
    expected = np.asarray(model(x, training=False), dtype=np.float32)
    try:
        got = RUNNERS[fmt](path, x)
    except ImportError as exc:
        raise ExportFailed(f"cannot check the {fmt} export: its runtime is not installed ({exc}).") from None
    except ExportError:
        raise
    except Exception as exc:
        raise ExportFailed(f"the {fmt} export does not run ({first_line(exc)}).") from exc
    if got.shape != expected.shape or got.dtype != np.float32:
        raise ExportFailed(f"{path} answers with {got.dtype}{list(got.shape)}, not float32{list(expected.shape)}.")
    max_abs_diff = float(np.abs(got - expected).max())
    if not max_abs_diff <= CHECK_TOLERANCE:
        raise ExportFailed(f"the {fmt} export differs from Keras by {max_abs_diff:.3g} (> {CHECK_TOLERANCE}).")
    return max_abs_diff


def export(fmt: str, model_path: Path, out: Path, overwrite: bool = False) -> ExportResult:
    """Check the model against its .json, export it as `fmt` into `out`, check the export, write its JSON."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    try:
        metadata, sha256 = check_model_files(model_path)
    except ModelLoadError as exc:
        raise ExportError(str(exc)) from None
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory.")
    path, metadata_path = export_paths(fmt, out)
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists; pass --overwrite to replace it.")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    try:
        model = load_keras_model(model_path)  # safe_mode=True
    except ModelLoadError as exc:
        raise ExportError(str(exc)) from None

    out.mkdir(parents=True, exist_ok=True)
    remove(path)
    remove(metadata_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        max_abs_diff = write_and_check(fmt, model, path)
    except ExportFailed:
        remove(path)  # never leave a broken export behind
        if path.parent != out and not any(path.parent.iterdir()):
            path.parent.rmdir()  # the SavedModel's base path, if it held nothing else
        raise

    record = {
        "format": fmt,
        "path": path.relative_to(out).as_posix(),
        "model": {
            "name": MODEL_NAME,
            "file": model_path.name,
            "sha256": sha256,
            "version": sha256[:12],
            "created_at": metadata.get("created_at"),
        },
        "input": {"name": INPUT_NAME, "shape": [-1, INPUT_SIZE], "dtype": "float32", "range": [0.0, 1.0]},
        "output": {"name": OUTPUT_NAME, "shape": [-1, NUM_CLASSES], "dtype": "float32"},
        "signature": SIGNATURE if fmt != "onnx" else None,
        "onnx_opset": ONNX_OPSET if fmt == "onnx" else None,
        "check": {
            "runtime": runtime_name(fmt, path),
            "rows": CHECK_ROWS,
            "max_abs_diff": max_abs_diff,
            "tolerance": CHECK_TOLERANCE,
        },
        "tools": tool_versions(*EXTRA_TOOLS[fmt]),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    metadata_path.write_text(json.dumps(record, indent=2) + "\n")
    return ExportResult(path, metadata_path, max_abs_diff)


# --- the CLI -----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit 2, without argparse's usage block (--help has it)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m training.export",
        description="Export the trained model as a TF Serving SavedModel, a LiteRT .tflite file or ONNX.",
        epilog="See docs/exports.md for serving each export.",
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="saved_model: DIR/mnist-mlp/1/ for TF Serving; litert: DIR/mnist-mlp.tflite; onnx: DIR/mnist-mlp.onnx",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/mnist-mlp.keras"),
        help="the .keras file, with its .json beside it (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the directory to write the export into")
    parser.add_argument("--overwrite", action="store_true", help="replace an export already in DIR")
    args = parser.parse_args(argv)
    try:
        result = export(args.format, args.model, args.out, overwrite=args.overwrite)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ExportFailed) else 2
    print(f"wrote {result.path} (max |difference| from Keras {result.max_abs_diff:.2g} on {CHECK_ROWS} digits)")
    print(f"wrote {result.metadata_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
