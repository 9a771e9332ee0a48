"""/v2: the Open Inference Protocol (KServe / Triton REST), with Triton's binary tensor extension.

The model `mnist-mlp` takes one input, either
- `pixels`: FP32 [N, 784] or [N, 28, 28] in [0, 1] (or UINT8 0-255), MNIST-format digits, or
- `image`: BYTES [N], encoded image files (base64 strings in JSON; raw bytes in binary form), which go
  through the same preprocessing as /v1/predict,
and answers `probabilities` FP32 [N, 10] and `digit` INT64 [N].
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.batching import BatchError, Upload
from app.inference import Classifier
from app.schemas import V2_INFER_REQUEST, V2Error, V2Metadata, V2ModelReady, V2ServerMetadata

MODEL_NAME = "mnist-mlp"
PLATFORM = "keras_numpy"  # a Keras model, evaluated as numpy matrix products
MAX_ROWS = 4096  # tensor rows per request (images per request are capped by MNIST_MAX_BATCH_FILES)
HEADER = "inference-header-content-length"
NUMPY_DATATYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1"), "INT64": np.dtype("<i8")}

router = APIRouter(prefix="/v2", tags=["v2: Open Inference Protocol"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": V2Error, "description": "A malformed request: a bad shape, datatype, size or name."},
    404: {"model": V2Error, "description": "No such model or version."},
    503: {"model": V2Error, "description": "The model is not loaded yet."},
}


class ProtocolError(Exception):
    """An Open Inference Protocol error: answered as {"error": message} with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def install_v2(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)


def ready_classifier(request: Request) -> Classifier | None:
    return getattr(request.app.state, "classifier", None)


def model_version(request: Request) -> str:
    classifier = ready_classifier(request)
    if classifier is None:
        raise ProtocolError(503, "The model is not loaded yet; retry shortly.")
    return classifier.version


def check_model(request: Request, model_name: str, version: str | None) -> str:
    """The served version, after checking the name and version in the path (404 otherwise)."""
    if model_name != MODEL_NAME:
        raise ProtocolError(404, f"Unknown model {model_name!r}; this server serves {MODEL_NAME!r}.")
    served = model_version(request)
    if version not in (None, "", served):
        raise ProtocolError(404, f"Unknown version {version!r} of {MODEL_NAME!r}; the served version is {served!r}.")
    return served


# server and model status --------------------------------------------------------------------------


@router.get("", summary="Server metadata", response_model=V2ServerMetadata)
async def server_metadata(request: Request) -> V2ServerMetadata:
    return V2ServerMetadata(name="mnist-service", version=request.app.version, extensions=["binary_tensor_data"])


@router.get("/health/live", summary="Server liveness", responses={200: {"description": '`{"live": true}`'}})
async def live() -> JSONResponse:
    return JSONResponse({"live": True})


@router.get("/health/ready", summary="Server readiness", responses={200: {"description": '`{"ready": true}`'}, 503: {}})
async def ready(request: Request) -> JSONResponse:
    is_ready = ready_classifier(request) is not None
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("/models/{model_name}/ready", summary="Model readiness", response_model=V2ModelReady, responses=ERRORS)
@router.get("/models/{model_name}/versions/{version}/ready", summary="Model version readiness", response_model=V2ModelReady, responses=ERRORS)  # fmt: skip
async def model_ready(request: Request, model_name: str, version: str | None = None) -> JSONResponse:
    if model_name != MODEL_NAME:
        raise ProtocolError(404, f"Unknown model {model_name!r}; this server serves {MODEL_NAME!r}.")
    if ready_classifier(request) is None:
        return JSONResponse({"name": MODEL_NAME, "ready": False}, status_code=503)
    check_model(request, model_name, version)
    return JSONResponse({"name": MODEL_NAME, "ready": True})


@router.get("/models/{model_name}", summary="Model metadata", response_model=V2Metadata, responses=ERRORS)
@router.get("/models/{model_name}/versions/{version}", summary="Model version metadata", response_model=V2Metadata, responses=ERRORS)  # fmt: skip
async def model_metadata(request: Request, model_name: str, version: str | None = None) -> V2Metadata:
    served = check_model(request, model_name, version)
    return V2Metadata(
        name=MODEL_NAME,
        versions=[served],
        platform=PLATFORM,
        inputs=[
            {"name": "pixels", "datatype": "FP32", "shape": [-1, 784]},
            {"name": "image", "datatype": "BYTES", "shape": [-1]},
        ],
        outputs=[
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "digit", "datatype": "INT64", "shape": [-1]},
        ],
    )


# inference ----------------------------------------------------------------------------------------

INFER_DESCRIPTION = """Send exactly one input:
- `pixels`: datatype `FP32` with values in [0, 1] (or `UINT8` 0-255), shape `[N, 784]` or `[N, 28, 28]`,
  `data` flat or nested in row-major order: MNIST-format digits (white on black, centred), no preprocessing;
- `image`: datatype `BYTES`, shape `[N]`, each element an encoded image file (PNG, JPEG, ...), as a base64
  string in JSON or raw in the binary extension; preprocessed like `POST /v1/predict` (`preprocess=mnist`).

Outputs: `probabilities` (FP32 [N, 10]) and `digit` (INT64 [N]); all of them unless `outputs` names some.
Triton's binary tensor extension is supported both ways (`Inference-Header-Content-Length`,
`binary_data_size`, `binary_data` / `binary_data_output`). The request `id` is echoed."""


@router.post("/models/{model_name}/infer", summary="Inference", description=INFER_DESCRIPTION, responses=ERRORS, openapi_extra=V2_INFER_REQUEST)  # fmt: skip
@router.post("/models/{model_name}/versions/{version}/infer", summary="Inference on a version", description=INFER_DESCRIPTION, responses=ERRORS, openapi_extra=V2_INFER_REQUEST)  # fmt: skip
async def infer(request: Request, model_name: str, version: str | None = None) -> Response:
    served = check_model(request, model_name, version)
    classifier: Classifier = request.app.state.classifier
    header, binary = split_body(await request.body(), request.headers.get(HEADER))
    inference = parse_request(header)
    tensor = inference["inputs"][0]
    wanted = requested_outputs(inference)
    raw = read_binary_inputs(inference["inputs"], binary)
    if tensor.get("name") == "image":
        probabilities = await classify_images(request, image_elements(tensor, raw[0]))
    elif tensor.get("name") == "pixels":
        probabilities = await run_in_threadpool(classifier.predict_proba, pixel_rows(tensor, raw[0]))
    else:
        raise ProtocolError(
            400, f"Unknown input {tensor.get('name')!r}; expected 'pixels' (FP32 [N, 784]) or 'image' (BYTES [N])."
        )
    results = {"probabilities": probabilities, "digit": probabilities.argmax(axis=1).astype(np.int64)}
    response: dict[str, Any] = {"model_name": MODEL_NAME, "model_version": served}
    if "id" in inference:
        response["id"] = inference["id"]
    return build_response(response, results, wanted)


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request (binary extension), or the whole body as JSON."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise ProtocolError(
            400, f"Inference-Header-Content-Length {header_length!r} must be between 1 and the body size ({len(body)})."
        )
    return body[: int(header_length)], body[int(header_length) :]


def parse_request(header: bytes) -> dict[str, Any]:
    try:
        inference = json.loads(header)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(400, f"The request is not valid JSON ({exc}).") from None
    if not isinstance(inference, dict):
        raise ProtocolError(400, "The request must be a JSON object with an 'inputs' list.")
    inputs = inference.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError(400, "'inputs' must list exactly one input tensor: 'pixels' or 'image'.")
    if "id" in inference and not isinstance(inference["id"], str):
        raise ProtocolError(400, "'id' must be a string.")
    return inference


def requested_outputs(inference: dict[str, Any]) -> dict[str, bool]:
    """Output name -> whether to answer it as binary data."""
    parameters = inference.get("parameters") or {}
    binary_default = bool(isinstance(parameters, dict) and parameters.get("binary_data_output", False))
    outputs = inference.get("outputs")
    if outputs is None:
        return {"probabilities": binary_default, "digit": binary_default}
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise ProtocolError(400, "'outputs' must be a list of objects with a 'name'.")
    wanted = {}
    for output in outputs:
        name = output.get("name")
        if name not in ("probabilities", "digit"):
            raise ProtocolError(400, f"Unknown output {name!r}; expected 'probabilities' or 'digit'.")
        options = output.get("parameters") or {}
        if options.get("classification"):
            raise ProtocolError(
                400, "The classification extension is not supported; request 'probabilities' or 'digit'."
            )
        wanted[name] = bool(options.get("binary_data", binary_default))
    return wanted


def read_binary_inputs(inputs: list[dict[str, Any]], binary: bytes) -> list[bytes | None]:
    """The raw bytes of each input sent in binary form (parameters.binary_data_size), in order."""
    raw: list[bytes | None] = []
    offset = 0
    for tensor in inputs:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is None:
            raw.append(None)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise ProtocolError(
                400,
                f"Input {tensor.get('name')!r}: binary_data_size {size!r} does not fit the {len(binary)} bytes after the JSON header.",
            )
        raw.append(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise ProtocolError(400, f"{len(binary) - offset} bytes after the JSON header belong to no input.")
    return raw


def shape_of(tensor: dict[str, Any]) -> list[int]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError(400, f"Input {tensor.get('name')!r}: 'shape' must be a list of non-negative integers.")
    return shape


def pixel_rows(tensor: dict[str, Any], raw: bytes | None) -> np.ndarray:
    """An FP32/UINT8 `pixels` tensor -> (N, 784) float32 in [0, 1]."""
    datatype, shape = tensor.get("datatype"), shape_of(tensor)
    if datatype not in ("FP32", "UINT8"):
        raise ProtocolError(
            400, f"Input 'pixels' has datatype {datatype!r}; expected FP32 (values in [0, 1]) or UINT8 (0-255)."
        )
    if shape[1:] not in ([784], [28, 28]) or len(shape) not in (2, 3):
        raise ProtocolError(400, f"Input 'pixels' has shape {shape}; expected [N, 784] or [N, 28, 28].")
    rows = shape[0]
    if not 1 <= rows <= MAX_ROWS:
        raise ProtocolError(400, f"Input 'pixels' has {rows} rows; expected 1 to {MAX_ROWS}.")
    dtype = NUMPY_DATATYPES[datatype]
    if raw is not None:
        if len(raw) != rows * 784 * dtype.itemsize:
            raise ProtocolError(
                400,
                f"Input 'pixels' has {len(raw)} bytes of binary data; shape {shape} of {datatype} needs {rows * 784 * dtype.itemsize}.",
            )
        values = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    else:
        values = flat_numbers(tensor.get("data"), rows * 784)
    if datatype == "UINT8":
        if values.size and (values.min() < 0 or values.max() > 255 or not np.all(values == np.round(values))):
            raise ProtocolError(400, "Input 'pixels' (UINT8) must hold integers from 0 to 255.")
        values = values / np.float32(255.0)
    elif not np.all((values >= 0.0) & (values <= 1.0)):  # also refuses NaN
        raise ProtocolError(
            400, "Input 'pixels' (FP32) must hold values in [0, 1]; scale 0-255 pixels by 1/255 or send UINT8."
        )
    return values.reshape(rows, 784).astype(np.float32)


def flat_numbers(data: Any, count: int) -> np.ndarray:
    """JSON `data`, flat or nested (row-major), as a flat float32 array of exactly `count` numbers."""
    try:
        values = np.asarray(data, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ProtocolError(400, "Input 'pixels': 'data' must be a list of numbers, flat or nested.") from None
    if data is None or values.size != count:
        raise ProtocolError(
            400,
            f"Input 'pixels': 'data' holds {values.size if data is not None else 0} numbers; its shape needs {count}.",
        )
    return values.astype(np.float32)


def image_elements(tensor: dict[str, Any], raw: bytes | None) -> list[bytes]:
    """A BYTES `image` tensor -> the encoded files: base64 strings in JSON, length-prefixed raw bytes in binary."""
    shape = shape_of(tensor)
    if tensor.get("datatype") != "BYTES":
        raise ProtocolError(
            400, f"Input 'image' has datatype {tensor.get('datatype')!r}; expected BYTES (encoded image files)."
        )
    if len(shape) != 1 or shape[0] < 1:
        raise ProtocolError(400, f"Input 'image' has shape {shape}; expected [N] with N >= 1.")
    if raw is not None:
        files = unpack_bytes(raw)
    else:
        data = tensor.get("data")
        if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
            raise ProtocolError(400, "Input 'image': 'data' must be a list of base64-encoded image files.")
        files = [b64decode(i, d) for i, d in enumerate(data)]
    if len(files) != shape[0]:
        raise ProtocolError(400, f"Input 'image' holds {len(files)} elements; its shape {shape} needs {shape[0]}.")
    return files


def b64decode(index: int, text: str) -> bytes:
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(400, f"Input 'image' element {index} is not valid base64.") from None


def unpack_bytes(raw: bytes) -> list[bytes]:
    """Triton's BYTES serialisation: each element a 4-byte little-endian length, then its bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ProtocolError(400, "Input 'image': the binary data ends inside an element's length prefix.")
        (length,) = struct.unpack_from("<I", raw, offset)
        if offset + 4 + length > len(raw):
            raise ProtocolError(400, "Input 'image': an element is longer than the binary data that is left.")
        elements.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return elements


async def classify_images(request: Request, files: list[bytes]) -> np.ndarray:
    settings = request.app.state.settings
    if len(files) > settings.max_batch_files:
        raise ProtocolError(
            400, f"Input 'image' holds {len(files)} images; at most {settings.max_batch_files} are accepted."
        )
    try:
        results = await request.app.state.batcher.predict([Upload(f) for f in files], "mnist", settings.max_pixels)
    except BatchError as exc:
        raise ProtocolError(400, f"Input 'image' element {exc.index}: {exc.error}") from None
    return np.stack([row for _, row in results])


def build_response(response: dict[str, Any], results: dict[str, np.ndarray], wanted: dict[str, bool]) -> Response:
    """JSON, or a JSON header plus raw output bytes when any output is asked for in binary."""
    datatypes = {"probabilities": "FP32", "digit": "INT64"}
    outputs, tail = [], []
    for name, binary in wanted.items():
        values = results[name].astype(NUMPY_DATATYPES[datatypes[name]])
        output: dict[str, Any] = {"name": name, "datatype": datatypes[name], "shape": list(values.shape)}
        if binary:
            tail.append(values.tobytes())
            output["parameters"] = {"binary_data_size": len(tail[-1])}
        else:
            output["data"] = values.ravel().tolist()
        outputs.append(output)
    response["outputs"] = outputs
    header = json.dumps(response).encode()
    if not tail:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(tail),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
