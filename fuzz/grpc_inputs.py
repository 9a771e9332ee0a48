"""What one gRPC fuzz input is, shared by its harness (fuzz/grpc_harness.py) and the replay: the bytes of
a ModelInferRequest as they arrive on the wire, taken the way the server takes them (app/api/grpc/): parsed
(interceptors.py: a DecodeError is a BadRequest), the model and version checked, converted to a checked
`Inference` (convert.py), the image count checked, and an answer of the right shape converted back to a
response and serialised (the engines' part is not run: their inputs are the upload harness's business).

The only exceptions allowed are the service's own client errors (app/errors.py's ServiceError with a
status under 500, rendered as INVALID_ARGUMENT, NOT_FOUND...); anything else is a finding.

This module imports the server's protobuf stubs: a process that imports it must not import
tritonclient.grpc (both define the protobuf package `inference`), so the tests run it in a subprocess.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from app.answers import Classified
from app.api.grpc import convert
from app.api.grpc.proto import open_inference_grpc_pb2 as pb
from app.api.v2 import codec, models
from app.api.v2.types import READER_NAME
from app.config import Settings
from app.errors import BadRequest, ServiceError

VERSION = "1"
SERVED: Any = SimpleNamespace(version=VERSION)  # what check_model reads of the data plane
MAX_FILES = Settings.model_fields["max_batch_files"].default
MAX_LEN = 65536  # libFuzzer's -max_len: room for 16 raw rows of FP32 pixels, or a few typed ones


def convert_request(data: bytes) -> pb.ModelInferResponse:
    """The server's handling of `data` up to the engines, and back: the response it would send."""
    try:
        request = pb.ModelInferRequest.FromString(data)
    except DecodeError:
        raise BadRequest("The request is not a valid protobuf message.") from None
    models.check_model(SERVED, request.model_name, request.model_version)
    inputs, datatypes = models.wire_form(request.model_name)
    inference = convert.to_inference(request, inputs, datatypes)
    if inference.files is not None:
        models.check_count(inference.files, MAX_FILES)
        rows = len(inference.files)
    else:
        assert inference.pixels is not None
        assert inference.pixels.shape[1:] == (784,) and inference.pixels.dtype == np.float32
        rows = len(inference.pixels)
    results = answers(request.model_name, rows, inference)
    response = convert.to_response(request.model_name, VERSION, inference.id, results, inference.outputs, datatypes)
    response.SerializeToString()
    return response


def answers(model_name: str, rows: int, inference: codec.Inference) -> dict[str, np.ndarray]:
    """Results of the right shapes for `rows` inputs, as the data plane's answers give them."""
    if model_name == READER_NAME:
        return {
            "text": np.array([b"42"] * rows, dtype=np.object_),
            "confidence": np.full(rows, 0.5, np.float32),
            "digits": np.tile(np.array([4, 2], np.int64), (rows, 1)),
        }
    probabilities = np.full((rows, 10), 0.1, np.float32)
    scores = np.full(rows, 0.9) if rows % 2 else None  # a model with a digit scorer, and one without
    classified = Classified(probabilities, scores, None if scores is None else scores > 0.5, [], None, VERSION)
    return models.classified_results(classified, inference)


def run(data: bytes) -> None:
    """One input; a client error (status < 500) is what a hostile or broken message should get."""
    try:
        convert_request(data)
    except ServiceError as exc:
        if exc.status >= 500:
            raise


# ---- the seeds ------------------------------------------------------------------------------------


def tensor(name: str, datatype: str, shape: list[int], **contents: Any) -> pb.ModelInferRequest.InferInputTensor:
    typed = pb.InferTensorContents(**contents) if contents else None
    return pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape, contents=typed)


def pack(files: list[bytes]) -> bytes:
    """Triton's BYTES serialisation (each element a 4-byte little-endian length, then its bytes)."""
    return b"".join(struct.pack("<I", len(f)) + f for f in files)


def seed_requests(pngs: list[bytes], pixels: np.ndarray) -> list[pb.ModelInferRequest]:
    """Valid requests of every form (images as BYTES and pixels as FP32 [N, 784] and [N, 28, 28], typed
    and raw, UINT8 too; both models; named outputs, binary or not), and a few that must be refused."""
    request = pb.ModelInferRequest
    output = request.InferRequestedOutputTensor
    binary = {"binary_data": pb.InferParameter(bool_param=True)}
    out: list[pb.ModelInferRequest] = []
    for model in ("mnist-mlp", READER_NAME):
        for files in (pngs[:1], pngs[:3]):
            typed = tensor("image", "BYTES", [len(files)], bytes_contents=files)
            out.append(request(model_name=model, id="seed", inputs=[typed]))
            raw = tensor("image", "BYTES", [len(files)])
            out.append(request(model_name=model, model_version=VERSION, inputs=[raw], raw_input_contents=[pack(files)]))
    for rows in (1, 2):
        values = pixels[:rows]
        for shape in ([rows, 784], [rows, 28, 28]):
            flat = values.reshape(-1)
            out.append(request(model_name="mnist-mlp", inputs=[tensor("pixels", "FP32", shape, fp32_contents=flat)]))
            out.append(
                request(
                    model_name="mnist-mlp",
                    inputs=[tensor("pixels", "FP32", shape)],
                    raw_input_contents=[flat.astype("<f4").tobytes()],
                    outputs=[output(name="digit"), output(name="probabilities", parameters=binary)],
                )
            )
            as_uint8 = np.round(flat * 255).astype(np.uint8)
            out.append(
                request(model_name="mnist-mlp", inputs=[tensor("pixels", "UINT8", shape, uint_contents=as_uint8)])
            )
            out.append(
                request(
                    model_name="mnist-mlp",
                    inputs=[tensor("pixels", "UINT8", shape)],
                    raw_input_contents=[as_uint8.tobytes()],
                    parameters={"binary_data_output": pb.InferParameter(bool_param=False)},
                    outputs=[output(name="digit_score"), output(name="is_digit")],
                )
            )
    refused = [
        request(
            model_name="mnist-mlp", inputs=[tensor("pixels", "FP32", [2, 784], fp32_contents=pixels[0].reshape(-1))]
        ),
        request(model_name="mnist-mlp", inputs=[tensor("image", "BYTES", [1])], raw_input_contents=[b"\xff\0\0\0ab"]),
        request(model_name="nope", inputs=[tensor("pixels", "FP32", [1, 784])]),
    ]
    return out + refused


def seeds() -> list[bytes]:
    """The seed corpus: serialised requests built with the server's own stubs, made on the fly."""
    from tools.uploads import digit_png, sample_digits

    digits = sample_digits()[:3]
    requests = seed_requests([digit_png(d) for d in digits], (digits / 255.0).astype(np.float32))
    return [r.SerializeToString() for r in requests]


def dictionary() -> list[bytes]:
    """Words for libFuzzer's -dict: the names, datatypes and parameters the converter looks for."""
    words = {"mnist-mlp", READER_NAME, VERSION, "pixels", "image", "FP32", "UINT8", "BYTES", "INT32", "INT64"}
    words |= {"binary_data", "binary_data_output", "classification", *codec.OUTPUTS, *codec.READER_OUTPUTS}
    return sorted(w.encode() for w in words)
