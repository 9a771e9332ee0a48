"""/v2: the Open Inference Protocol (KServe / Triton REST), with Triton's binary tensor extension.

The model `mnist-mlp` takes one input, either
- `pixels`: FP32 [N, 784] or [N, 28, 28] in [0, 1] (or UINT8 0-255), MNIST-format digits, or
- `image`: BYTES [N], encoded image files (base64 strings in JSON; raw bytes in binary form), which go
  through the same preprocessing as /v1/predict,
and answers `probabilities` FP32 [N, 10] and `digit` INT64 [N].

Request bodies may be gzip/deflate-compressed (Content-Encoding) and answers are compressed when the
client asks (Accept-Encoding), as tritonclient's `request_compression_algorithm` and
`response_compression_algorithm` do.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from app.batching import BatchError, Upload
from app.inference import Classifier
from app.routes.predict import preprocess_big_files
from app.schemas import V2_INFER_REQUEST, V2Error, V2Metadata, V2ModelReady, V2ServerMetadata

MODEL_NAME = "mnist-mlp"
PLATFORM = "keras_numpy"  # a Keras model, evaluated as numpy matrix products
MAX_ROWS = 4096  # `pixels` rows per request in binary form (images are capped by MNIST_MAX_BATCH_FILES)
# json.loads holds the GIL from start to end, in a worker thread too: a 16 MB tensor of floats stalls the
# event loop for ~1 s. JSON tensors are capped (counted by their commas, before parsing) to keep that
# under ~0.1 s; big batches go in binary form, which costs no parsing.
MAX_JSON_ROWS = 256
MAX_JSON_VALUES = (MAX_JSON_ROWS + 1) * 784
INLINE_BYTES = 64 * 1024  # bigger bodies are decoded (inflated, cast, checked) in the thread pool
INLINE_ROWS = 64  # bigger answers are encoded in the thread pool
HEADER = "inference-header-content-length"
T = TypeVar("T")
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

INFER_DESCRIPTION = f"""Send exactly one input:
- `pixels`: datatype `FP32` with values in [0, 1] (or `UINT8` 0-255), shape `[N, 784]` or `[N, 28, 28]`,
  `data` flat or nested in row-major order: MNIST-format digits (white on black, centred), no preprocessing.
  N is 1 to {MAX_JSON_ROWS} in JSON, 1 to {MAX_ROWS} in binary form. Values outside the range are refused (400),
  not clipped.
- `image`: datatype `BYTES`, shape `[N]`, each element an encoded image file (PNG, JPEG, ...), as a base64
  string in JSON or raw in the binary extension; preprocessed like `POST /v1/predict` (`preprocess=mnist`).
  N is 1 to `MNIST_MAX_BATCH_FILES` (64).

Outputs: `probabilities` (FP32 [N, 10]) and `digit` (INT64 [N]); all of them unless `outputs` names some.
Triton's binary tensor extension is supported both ways (`Inference-Header-Content-Length`,
`binary_data_size`, `binary_data` / `binary_data_output`); so are gzip and deflate request bodies
(`Content-Encoding`) and answers (`Accept-Encoding`). The request `id` is echoed. The body is capped by
`MNIST_MAX_BATCH_BODY_BYTES` (32 MiB), compressed or not."""
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The outputs: JSON, or with binary outputs a JSON header of `Inference-Header-Content-Length` bytes followed by the raw tensors.",
        "content": {"application/json": {}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **ERRORS,
    413: {"model": V2Error, "description": "The body, or the body once decompressed, is over the byte cap."},
}  # fmt: skip


@dataclass
class InferRequest:
    """A checked inference request: exactly one of `pixels` and `files` is set."""

    id: str | None
    outputs: dict[str, bool]  # output name -> answer it as binary data
    pixels: np.ndarray | None = None  # (N, 784) float32 in [0, 1]
    files: list[bytes] | None = None  # encoded image files


@router.post("/models/{model_name}/infer", summary="Inference", description=INFER_DESCRIPTION, responses=INFER_RESPONSES, openapi_extra=V2_INFER_REQUEST)  # fmt: skip
@router.post("/models/{model_name}/versions/{version}/infer", summary="Inference on a version", description=INFER_DESCRIPTION, responses=INFER_RESPONSES, openapi_extra=V2_INFER_REQUEST)  # fmt: skip
async def infer(request: Request, model_name: str, version: str | None = None) -> Response:
    served = check_model(request, model_name, version)
    classifier: Classifier = request.app.state.classifier
    settings = request.app.state.settings
    body = await request.body()
    parsed = await maybe_off_loop(
        len(body) > INLINE_BYTES or "content-encoding" in request.headers,
        decode_request, body, request.headers, settings.max_batch_body_bytes,
    )  # fmt: skip
    if parsed.files is not None:
        probabilities = await classify_images(request, parsed.files)
    else:
        assert parsed.pixels is not None
        probabilities = await run_in_threadpool(classifier.predict_proba, parsed.pixels)
    digits = probabilities.argmax(axis=1).astype(np.int64)
    request.state.log_fields = {"rows": len(digits), **({"digits": digits.tolist()} if len(digits) <= 64 else {})}
    response: dict[str, Any] = {"model_name": MODEL_NAME, "model_version": served}
    if parsed.id is not None:
        response["id"] = parsed.id
    results = {"probabilities": probabilities, "digit": digits}
    return await maybe_off_loop(
        len(digits) > INLINE_ROWS, build_response, response, results, parsed.outputs, request.headers.get("accept-encoding", "")
    )  # fmt: skip


async def maybe_off_loop(off: bool, function: Callable[..., T], *args: Any) -> T:
    """Run `function` in the thread pool when `off`, else right here (a hop costs more than small work)."""
    return await run_in_threadpool(function, *args) if off else function(*args)


def decode_request(body: bytes, headers: Headers, max_bytes: int) -> InferRequest:
    """Decompress, split off the binary tensors, parse and check the request; ProtocolError (400) if bad."""
    body = decompress(body, headers.get("content-encoding", ""), max_bytes)
    header, binary = split_body(body, headers.get(HEADER))
    if header.count(b",") > MAX_JSON_VALUES:
        raise ProtocolError(400, JSON_TOO_BIG)
    inference = parse_request(header)
    tensor = inference["inputs"][0]
    raw = read_binary_inputs(inference["inputs"], binary)[0]
    outputs = requested_outputs(inference)
    if tensor.get("name") == "pixels":
        return InferRequest(inference.get("id"), outputs, pixels=pixel_rows(tensor, raw))
    if tensor.get("name") == "image":
        return InferRequest(inference.get("id"), outputs, files=image_elements(tensor, raw))
    raise ProtocolError(
        400, f"Unknown input {tensor.get('name')!r}; expected 'pixels' (FP32 [N, 784]) or 'image' (BYTES [N])."
    )


JSON_TOO_BIG = (
    f"The request's JSON holds over {MAX_JSON_VALUES:,} values; send at most {MAX_JSON_ROWS} rows of pixels as JSON, "
    f"or up to {MAX_ROWS} in binary form (Triton's binary tensor extension, tritonclient's default)."
)


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """A gzip or deflate (zlib) body, inflated to at most `max_bytes`: a small bomb never expands."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ProtocolError(400, f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity.")
    attempts = (31,) if "gzip" in encoding else (15, -15)  # deflate: zlib-wrapped as HTTP says, or raw as some send
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            inflated = inflater.decompress(body, max_bytes + 1)
        except zlib.error:
            continue
        if len(inflated) > max_bytes:
            raise ProtocolError(413, f"The request body is over the {max_bytes:,}-byte limit once decompressed.")
        if inflater.eof and not inflater.unused_data:
            return inflated
    raise ProtocolError(400, f"The request body is not complete {encoding} data, as its Content-Encoding says.")


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
    parameters_of(inference, "The request")
    return inference


def parameters_of(item: dict[str, Any], where: str) -> dict[str, Any]:
    """An object's `parameters`: {} when absent; 400 when it is not an object."""
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise ProtocolError(400, f"{where}: 'parameters' must be an object.")
    return parameters


def requested_outputs(inference: dict[str, Any]) -> dict[str, bool]:
    """Output name -> whether to answer it as binary data; no (or an empty) `outputs` means all of them."""
    binary_default = parameters_of(inference, "The request").get("binary_data_output", False) is True
    outputs = inference.get("outputs")
    if not outputs:
        return {"probabilities": binary_default, "digit": binary_default}
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise ProtocolError(400, "'outputs' must be a list of objects with a 'name'.")
    wanted = {}
    for output in outputs:
        name = output.get("name")
        if name not in ("probabilities", "digit"):
            raise ProtocolError(400, f"Unknown output {name!r}; expected 'probabilities' or 'digit'.")
        options = parameters_of(output, f"Output {name!r}")
        if options.get("classification"):
            raise ProtocolError(
                400, "The classification extension is not supported; request 'probabilities' or 'digit'."
            )
        wanted[name] = options.get("binary_data", binary_default) is True
    return wanted


def read_binary_inputs(inputs: list[dict[str, Any]], binary: bytes) -> list[bytes | None]:
    """The raw bytes of each input sent in binary form (parameters.binary_data_size), in order."""
    raw: list[bytes | None] = []
    offset = 0
    for tensor in inputs:
        size = parameters_of(tensor, f"Input {tensor.get('name')!r}").get("binary_data_size")
        if size is None:
            raw.append(None)
            continue
        if type(size) is not int or size < 0:
            raise ProtocolError(
                400, f"Input {tensor.get('name')!r}: binary_data_size must be a non-negative integer, not {size!r}."
            )
        if offset + size > len(binary):
            raise ProtocolError(
                400,
                f"Input {tensor.get('name')!r}: binary_data_size {size} does not fit the {len(binary) - offset} bytes left after the JSON header.",
            )
        raw.append(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise ProtocolError(400, f"{len(binary) - offset} bytes after the JSON header belong to no input.")
    return raw


def shape_of(tensor: dict[str, Any]) -> list[int]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(400, f"Input {tensor.get('name')!r}: 'shape' must be a list of non-negative integers.")
    return shape


def pixel_rows(tensor: dict[str, Any], raw: bytes | None) -> np.ndarray:
    """An FP32/UINT8 `pixels` tensor -> (N, 784) float32 in [0, 1]."""
    datatype, shape = tensor.get("datatype"), shape_of(tensor)
    if datatype not in ("FP32", "UINT8"):
        raise ProtocolError(
            400, f"Input 'pixels' has datatype {datatype!r}; expected FP32 (values in [0, 1]) or UINT8 (0-255)."
        )
    if shape[1:] not in ([784], [28, 28]):
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
    elif rows > MAX_JSON_ROWS:
        raise ProtocolError(400, JSON_TOO_BIG)
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
    if not isinstance(data, list):
        raise ProtocolError(400, f"Input 'pixels': 'data' must be a list of {count} numbers, flat or nested.")
    try:
        values = np.asarray(data, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ProtocolError(400, "Input 'pixels': 'data' must be a list of numbers, flat or nested.") from None
    if values.size != count:
        raise ProtocolError(400, f"Input 'pixels': 'data' holds {values.size} numbers; its shape needs {count}.")
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
    """Standard base64 (a `data:...;base64,` prefix is allowed); whitespace and the URL-safe alphabet are not."""
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
    """(N, 10) probabilities of encoded images, through the batcher and the preprocessing of /v1/predict."""
    settings = request.app.state.settings
    if len(files) > settings.max_batch_files:
        raise ProtocolError(
            400, f"Input 'image' holds {len(files)} images; at most {settings.max_batch_files} are accepted."
        )
    uploads = [Upload(f) for f in files]
    await preprocess_big_files(uploads, "mnist", settings.max_pixels)
    try:
        results = await request.app.state.batcher.predict(uploads, "mnist", settings.max_pixels)
    except BatchError as exc:
        raise ProtocolError(400, f"Input 'image' element {exc.index}: {exc.error}") from None
    return np.stack([row for _, row in results])


def build_response(
    response: dict[str, Any], results: dict[str, np.ndarray], wanted: dict[str, bool], accept_encoding: str
) -> Response:
    """JSON, or a JSON header plus raw output bytes when any output is asked for in binary; compressed
    when the client accepts gzip or deflate (Inference-Header-Content-Length counts the uncompressed header)."""
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
    headers = {"Inference-Header-Content-Length": str(len(header))} if tail else {}
    body = header + b"".join(tail)
    encoding = response_encoding(accept_encoding)
    if encoding == "gzip":
        body = gzip.compress(body, compresslevel=6, mtime=0)
    elif encoding == "deflate":
        body = zlib.compress(body, 6)
    if encoding:
        headers["Content-Encoding"] = encoding
    headers["Vary"] = "Accept-Encoding"
    return Response(body, media_type="application/octet-stream" if tail else "application/json", headers=headers)


def response_encoding(accept_encoding: str) -> str | None:
    """gzip or deflate when the Accept-Encoding header allows one (gzip first), else None."""
    allowed = set()
    for item in accept_encoding.lower().split(","):
        coding, _, quality = item.partition(";")
        q = quality.strip().removeprefix("q=")
        try:
            acceptable = float(q) > 0 if q else True
        except ValueError:
            acceptable = False
        if acceptable:
            allowed.add(coding.strip())
    return next((c for c in ("gzip", "deflate") if c in allowed), None)
