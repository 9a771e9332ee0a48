"""The Open Inference Protocol's wire format: a request body -> checked tensors, results -> a response
body. Compression (Content-Encoding / Accept-Encoding), Triton's binary tensor extension
(Inference-Header-Content-Length, binary_data_size, binary_data_output) and its BYTES serialisation.
A model is a parameter: the names of the inputs it takes and the datatypes of the outputs it answers.
Every malformed request is a BadRequest (400) that says what was expected; no HTTP framework here.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import struct
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError
from pydantic_core import from_json

from app.api.v2.types import InferenceRequest, Parameters, RequestInput
from app.contract import INPUT_SIZE
from app.errors import BadRequest, PayloadTooLarge

MAX_ROWS = 4096  # `pixels` rows per request in binary form (images are capped by MNIST_MAX_BATCH_FILES)
# Parsing JSON holds the GIL from start to end, in a worker thread too: JSON tensors are capped (counted
# by their commas, before parsing) so that one never stalls the event loop for long; big batches go in
# binary form, which costs no parsing.
MAX_JSON_ROWS = 256
MAX_JSON_VALUES = (MAX_JSON_ROWS + 1) * INPUT_SIZE
HEADER = "inference-header-content-length"
OUTPUTS = {"probabilities": "FP32", "digit": "INT64", "digit_score": "FP32", "is_digit": "BOOL"}
SCORER_OUTPUTS = ("digit_score", "is_digit")  # only from a model with a digit scorer
READER_OUTPUTS = {"text": "BYTES", "confidence": "FP32", "digits": "INT64"}
INPUTS = {"pixels": "'pixels' (FP32 [N, 784])", "image": "'image' (BYTES [N])"}
NUMPY_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype("<f4"), "UINT8": np.dtype("u1"), "INT64": np.dtype("<i8"), "BOOL": np.dtype("?"),
}  # fmt: skip
JSON_TOO_BIG = (
    f"The request's JSON holds over {MAX_JSON_VALUES:,} values; send at most {MAX_JSON_ROWS} rows of pixels as JSON, "
    f"or up to {MAX_ROWS} in binary form (Triton's binary tensor extension, tritonclient's default)."
)


@dataclass
class Inference:
    """A checked inference request: exactly one of `pixels` and `files` is set."""

    id: str | None
    outputs: dict[str, bool]  # output name -> answer it as binary data
    named: bool = False  # the request named its outputs (else: all that the model has)
    pixels: np.ndarray | None = None  # (N, 784) float32 in [0, 1]
    files: list[bytes] | None = None  # encoded image files


def decode_request(
    body: bytes,
    content_encoding: str,
    header_length: str | None,
    max_bytes: int,
    inputs: Collection[str] = tuple(INPUTS),
    outputs: Mapping[str, str] = OUTPUTS,
) -> Inference:
    """Decompress, split off the binary tensors, parse and check a request for a model that takes one of
    `inputs` and answers `outputs` (name -> datatype); BadRequest if it is malformed."""
    body = decompress(body, content_encoding, max_bytes)
    header, binary = split_body(body, header_length)
    if header.count(b",") > MAX_JSON_VALUES:
        raise BadRequest(JSON_TOO_BIG)
    request = parse_request(header)
    tensor = request.inputs[0]
    raw = binary_input(tensor, binary)
    if tensor.name not in inputs:
        raise unknown_input(tensor.name, inputs)
    wanted, named = requested_outputs(request, outputs), bool(request.outputs)
    if tensor.name == "pixels":
        return Inference(request.id, wanted, named, pixels=pixel_rows(tensor, raw))
    return Inference(request.id, wanted, named, files=image_elements(tensor, raw))


def unknown_input(name: str, inputs: Collection[str]) -> BadRequest:
    return BadRequest(f"Unknown input {name!r}; expected {' or '.join(INPUTS[known] for known in inputs)}.")


def check_output(name: str, outputs: Mapping[str, str], classification: bool) -> None:
    """BadRequest unless the model answers output `name`, and not with the classification extension."""
    names = ", ".join(map(repr, outputs))
    if name not in outputs:
        raise BadRequest(f"Unknown output {name!r}; expected one of {names}.")
    if classification:
        raise BadRequest(f"The classification extension is not supported; request one of {names}.")


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """A gzip or deflate (zlib) body, inflated to at most `max_bytes`: a small bomb never expands."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or identity.")
    attempts = (31,) if "gzip" in encoding else (15, -15)  # deflate: zlib-wrapped as HTTP says, or raw as some send
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            inflated = inflater.decompress(body, max_bytes + 1)
        except zlib.error:
            continue
        if len(inflated) > max_bytes:
            raise PayloadTooLarge(f"The request body is over the {max_bytes:,}-byte limit once decompressed.")
        if inflater.eof and not inflater.unused_data:
            return inflated
    raise BadRequest(f"The request body is not complete {encoding} data, as its Content-Encoding says.")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request (binary extension), or the whole body as JSON."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length!r} must be between 1 and the body size ({len(body)})."
        )
    return body[: int(header_length)], body[int(header_length) :]


# What each field must be, for the first error pydantic reports on it.
EXPECTED = {
    "inputs": "'inputs' must list exactly one input tensor: 'pixels' or 'image'",
    "outputs": "'outputs' must be a list of objects with a 'name'",
    "id": "'id' must be a string",
    "parameters": "'parameters' must be an object",
    "binary_data_size": "binary_data_size must be a non-negative integer",
    "binary_data": "binary_data must be true or false",
    "binary_data_output": "binary_data_output must be true or false",
    "name": "'name' must be a string",
    "datatype": "'datatype' must be a string",
    "shape": "'shape' must be a list of non-negative integers",
    "data": "'data' must be a list of finite numbers, flat or nested, or of base64 strings",
}


def parse_request(header: bytes) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        raise BadRequest(describe(exc, header)) from None


def describe(exc: ValidationError, header: bytes) -> str:
    """One sentence for the first thing wrong with a request, naming the tensor it is in."""
    error = exc.errors(include_url=False)[0]
    if error["type"] == "json_invalid":
        return f"The request is not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')})."
    loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]  # drop union arm names
    if not loc:
        return "The request must be a JSON object with an 'inputs' list."
    where = "The request"
    if loc[0] in ("inputs", "outputs") and len(loc) > 2 and isinstance(loc[1], int):
        name = _raw_name(header, str(loc[0]), loc[1])
        where = f"{'Input' if loc[0] == 'inputs' else 'Output'} {name!r}"
    field = next((str(part) for part in reversed(loc) if str(part) in EXPECTED), str(loc[0]))
    expected = EXPECTED.get(field, f"{field!r} is not expected here")
    if field == "binary_data_size":
        expected += f", not {error['input']!r}"
    if field in ("inputs", "outputs", "id") and len(loc) <= 2:
        return expected[0].upper() + expected[1:] + "."
    return f"{where}: {expected}."


def _raw_name(header: bytes, key: str, index: int) -> object:
    """The `name` of inputs[index] or outputs[index] as sent (the request failed validation)."""
    try:
        return from_json(header)[key][index].get("name")
    except Exception:
        return None


def binary_input(tensor: RequestInput, binary: bytes) -> bytes | None:
    """The raw bytes of the input sent in binary form (parameters.binary_data_size), or None."""
    size = tensor.parameters.binary_data_size if tensor.parameters else None
    if size is None:
        if binary:
            raise BadRequest(f"{len(binary)} bytes after the JSON header belong to no input.")
        return None
    if size > len(binary):
        raise BadRequest(
            f"Input {tensor.name!r}: binary_data_size {size} does not fit the {len(binary)} bytes left after the JSON header."
        )
    if size != len(binary):
        raise BadRequest(f"{len(binary) - size} bytes after the JSON header belong to no input.")
    return binary


def requested_outputs(request: InferenceRequest, outputs: Mapping[str, str] = OUTPUTS) -> dict[str, bool]:
    """Output name -> whether to answer it as binary data; no (or an empty) `outputs` means all of them."""
    binary_default = bool(request.parameters and request.parameters.binary_data_output)
    if not request.outputs:
        return dict.fromkeys(outputs, binary_default)
    wanted = {}
    for output in request.outputs:
        options = output.parameters or Parameters()
        check_output(output.name, outputs, bool((options.model_extra or {}).get("classification")))
        wanted[output.name] = binary_default if options.binary_data is None else options.binary_data
    return wanted


def pixel_rows(tensor: RequestInput, raw: bytes | None) -> np.ndarray:
    """An FP32/UINT8 `pixels` tensor -> (N, 784) float32 in [0, 1]."""
    datatype, shape = tensor.datatype, tensor.shape
    if datatype not in ("FP32", "UINT8"):
        raise BadRequest(
            f"Input 'pixels' has datatype {datatype!r}; expected FP32 (values in [0, 1]) or UINT8 (0-255)."
        )
    if shape[1:] not in ([INPUT_SIZE], [28, 28]):
        raise BadRequest(f"Input 'pixels' has shape {shape}; expected [N, 784] or [N, 28, 28].")
    rows = shape[0]
    if not 1 <= rows <= MAX_ROWS:
        raise BadRequest(f"Input 'pixels' has {rows} rows; expected 1 to {MAX_ROWS}.")
    dtype = NUMPY_DATATYPES[datatype]
    if raw is not None:
        if len(raw) != rows * INPUT_SIZE * dtype.itemsize:
            raise BadRequest(
                f"Input 'pixels' has {len(raw)} bytes of binary data; shape {shape} of {datatype} needs {rows * INPUT_SIZE * dtype.itemsize}."
            )
        values = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    elif rows > MAX_JSON_ROWS:
        raise BadRequest(JSON_TOO_BIG)
    else:
        values = flat_numbers(tensor.data, rows * INPUT_SIZE)
    if datatype == "UINT8":
        if values.size and (values.min() < 0 or values.max() > 255 or not np.all(values == np.round(values))):
            raise BadRequest("Input 'pixels' (UINT8) must hold integers from 0 to 255.")
        values = values / np.float32(255.0)
    elif not np.all((values >= 0.0) & (values <= 1.0)):  # also refuses NaN (binary data may hold it)
        raise BadRequest("Input 'pixels' (FP32) must hold values in [0, 1]; scale 0-255 pixels by 1/255 or send UINT8.")
    return values.reshape(rows, INPUT_SIZE).astype(np.float32)


def flat_numbers(data: list[Any] | None, count: int) -> np.ndarray:
    """JSON `data`, flat or nested (row-major), as a flat float32 array of exactly `count` numbers."""
    if data is None:
        raise BadRequest(f"Input 'pixels': 'data' must be a list of {count} numbers, flat or nested.")
    try:
        values = np.asarray(data, dtype=np.float64).ravel()
    except (TypeError, ValueError):  # strings, or ragged nesting
        raise BadRequest("Input 'pixels': 'data' must be a list of numbers, flat or nested.") from None
    if values.size != count:
        raise BadRequest(f"Input 'pixels': 'data' holds {values.size} numbers; its shape needs {count}.")
    with np.errstate(over="ignore"):  # beyond FP32's range is infinite, and refused by the range checks
        return values.astype(np.float32)


def image_elements(tensor: RequestInput, raw: bytes | None, elements: list[bytes] | None = None) -> list[bytes]:
    """A BYTES `image` tensor -> the encoded files: base64 strings in JSON, length-prefixed raw bytes in
    binary, or `elements` already apart (gRPC's typed contents)."""
    shape = tensor.shape
    if tensor.datatype != "BYTES":
        raise BadRequest(f"Input 'image' has datatype {tensor.datatype!r}; expected BYTES (encoded image files).")
    if len(shape) != 1 or shape[0] < 1:
        raise BadRequest(f"Input 'image' has shape {shape}; expected [N] with N >= 1.")
    if elements is not None:
        files = elements
    elif raw is not None:
        files = unpack_bytes(raw)
    else:
        data = tensor.data
        if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
            raise BadRequest("Input 'image': 'data' must be a list of base64-encoded image files.")
        files = [b64decode(i, d) for i, d in enumerate(data)]  # type: ignore[arg-type]
    if len(files) != shape[0]:
        raise BadRequest(f"Input 'image' holds {len(files)} elements; its shape {shape} needs {shape[0]}.")
    return files


def b64decode(index: int, text: str) -> bytes:
    """Standard base64 (a `data:...;base64,` prefix is allowed); whitespace and the URL-safe alphabet are not."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"Input 'image' element {index} is not valid base64.") from None


def unpack_bytes(raw: bytes) -> list[bytes]:
    """Triton's BYTES serialisation: each element a 4-byte little-endian length, then its bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest("Input 'image': the binary data ends inside an element's length prefix.")
        (length,) = struct.unpack_from("<I", raw, offset)
        if offset + 4 + length > len(raw):
            raise BadRequest("Input 'image': an element is longer than the binary data that is left.")
        elements.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return elements


def pack_bytes(elements: list[bytes]) -> bytes:
    """Triton's BYTES serialisation of `elements` (unpack_bytes' inverse)."""
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def encode_response(
    response: dict[str, Any],
    results: dict[str, np.ndarray],
    wanted: dict[str, bool],
    accept_encoding: str,
    datatypes: Mapping[str, str] = OUTPUTS,
) -> tuple[bytes, dict[str, str], str]:
    """(body, headers, media type): JSON, or a JSON header plus raw output bytes when any output is
    asked for in binary; compressed when the client accepts gzip or deflate
    (Inference-Header-Content-Length counts the uncompressed header). BYTES results are arrays of
    `bytes` objects: UTF-8 strings in JSON, length-prefixed in binary."""
    outputs, tail = [], []
    for name, binary in wanted.items():
        datatype = datatypes[name]
        values = results[name]
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if datatype == "BYTES":
            elements = [bytes(element) for element in values.ravel()]
            if binary:
                tail.append(pack_bytes(elements))
            else:
                output["data"] = [element.decode() for element in elements]
        else:
            values = values.astype(NUMPY_DATATYPES[datatype])
            if binary:
                tail.append(values.tobytes())
            else:
                output["data"] = values.ravel().tolist()
        if binary:
            output["parameters"] = {"binary_data_size": len(tail[-1])}
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
    return body, headers, "application/octet-stream" if tail else "application/json"


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
