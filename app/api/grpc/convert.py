"""Protobuf <-> the codec's types (as MLServer's grpc/converters.py): a ModelInferRequest -> a checked
`Inference`, with REST /v2's checks (app/api/v2/codec.py), and results -> a ModelInferResponse.

Inputs come in typed `contents` (fp32_contents, uint_contents, bytes_contents) or in
`raw_input_contents` (little-endian values; BYTES as Triton's length-prefixed elements). Outputs go in
typed `contents`, or all of them in `raw_output_contents` when the request sent its input raw (as
KServe answers; tritonclient.grpc reads numbers only from there) or asks for binary data: the request's
parameter `binary_data_output` or an output's `binary_data` (a request's explicit `false` wins).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from math import prod
from typing import Any

import numpy as np

from app.api.grpc.proto import open_inference_grpc_pb2 as pb
from app.api.v2 import codec
from app.api.v2.types import RequestInput
from app.contract import INPUT_SIZE
from app.errors import BadRequest

# Where each datatype's typed contents are; other fields of `contents` are refused for it.
CONTENTS = {"FP32": "fp32_contents", "UINT8": "uint_contents", "BYTES": "bytes_contents"}
OUTPUT_CONTENTS = {"FP32": "fp32_contents", "INT64": "int64_contents", "BOOL": "bool_contents"}
ALL_CONTENTS = (
    "bool_contents", "int_contents", "int64_contents", "uint_contents", "uint64_contents", "fp32_contents",
    "fp64_contents", "bytes_contents",
)  # fmt: skip


def to_inference(request: pb.ModelInferRequest, inputs: Collection[str], outputs: Mapping[str, str]) -> codec.Inference:
    """Check a request for a model that takes one of `inputs` and answers `outputs` (name -> datatype);
    BadRequest if it is malformed."""
    if len(request.inputs) != 1:
        raise BadRequest("'inputs' must list exactly one input tensor: 'pixels' or 'image'.")
    tensor = request.inputs[0]
    if tensor.name not in inputs:
        raise codec.unknown_input(tensor.name, inputs)
    if any(size < 0 for size in tensor.shape):
        raise BadRequest(f"Input {tensor.name!r}: 'shape' must be a list of non-negative integers.")
    raw = raw_input(request)
    form = RequestInput.model_construct(name=tensor.name, shape=list(tensor.shape), datatype=tensor.datatype)
    wanted, named = requested_outputs(request, outputs, raw is not None), len(request.outputs) > 0
    request_id = request.id or None
    if tensor.name == "pixels":
        if raw is None:
            raw = typed_pixels(tensor)
        return codec.Inference(request_id, wanted, named, pixels=codec.pixel_rows(form, raw))
    elements = None if raw is not None else list(typed_values(tensor, "BYTES"))
    return codec.Inference(request_id, wanted, named, files=codec.image_elements(form, raw, elements))


def raw_input(request: pb.ModelInferRequest) -> bytes | None:
    """The input's raw bytes, or None when it came in typed `contents` (both is a BadRequest)."""
    raws = request.raw_input_contents
    if not raws:
        return None
    name = request.inputs[0].name
    if len(raws) != 1:
        raise BadRequest(f"The request has {len(raws)} raw_input_contents for its one input {name!r}.")
    if any(len(getattr(request.inputs[0].contents, field)) for field in ALL_CONTENTS):
        raise BadRequest(f"Input {name!r} is in both contents and raw_input_contents; send one.")
    return bytes(raws[0])


def typed_values(tensor: pb.ModelInferRequest.InferInputTensor, datatype: str) -> Any:
    """The tensor's typed contents for its datatype; BadRequest when other fields hold values."""
    field = CONTENTS[datatype]
    values = getattr(tensor.contents, field)
    if any(len(getattr(tensor.contents, other)) for other in ALL_CONTENTS if other != field):
        raise BadRequest(f"Input {tensor.name!r} ({datatype}): its values go in contents.{field}.")
    return values


def typed_pixels(tensor: pb.ModelInferRequest.InferInputTensor) -> bytes:
    """`pixels` in typed contents, as the raw bytes codec.pixel_rows reads (after its datatype and shape checks)."""
    datatype, shape = tensor.datatype, list(tensor.shape)
    if datatype not in CONTENTS or datatype == "BYTES" or shape[1:] not in ([INPUT_SIZE], [28, 28]):
        return b""  # codec.pixel_rows refuses the datatype or the shape, in REST /v2's words
    values = typed_values(tensor, datatype)
    if len(values) != prod(shape):
        raise BadRequest(
            f"Input 'pixels' holds {len(values)} values in contents.{CONTENTS[datatype]}; its shape {shape} needs {prod(shape)}."
        )
    if datatype == "UINT8" and len(values) and max(values) > 255:
        raise BadRequest("Input 'pixels' (UINT8) must hold integers from 0 to 255.")
    return np.asarray(values, dtype=codec.NUMPY_DATATYPES[datatype]).tobytes()


def parameter(parameters: Mapping[str, pb.InferParameter], name: str) -> bool | None:
    """A boolean parameter's value, None when it is absent; BadRequest when it is not a bool."""
    if name not in parameters:
        return None
    value = parameters[name]
    if value.WhichOneof("parameter_choice") != "bool_param":
        raise BadRequest(f"Parameter {name!r} must be a bool_param.")
    return bool(value.bool_param)


def requested_outputs(request: pb.ModelInferRequest, outputs: Mapping[str, str], raw_in: bool) -> dict[str, bool]:
    """Output name -> whether to answer it raw; no `outputs` means all of them. Raw or typed goes for all
    outputs at once: raw_output_contents is indexed by the outputs' order, so it is all or nothing."""
    asked = parameter(request.parameters, "binary_data_output")
    names: list[str] = []
    per_output = False
    for output in request.outputs:
        codec.check_output(output.name, outputs, "classification" in output.parameters)
        per_output |= bool(parameter(output.parameters, "binary_data"))
        names.append(output.name)
    binary = asked if asked is not None else (raw_in or per_output)
    return dict.fromkeys(names or outputs, binary)


def to_response(
    model_name: str,
    version: str,
    request_id: str | None,
    results: dict[str, np.ndarray],
    wanted: dict[str, bool],
    datatypes: Mapping[str, str],
) -> pb.ModelInferResponse:
    """The response for `results` (name -> array; BYTES as object arrays of bytes), the outputs `wanted`
    in their order."""
    response = pb.ModelInferResponse(model_name=model_name, model_version=version, id=request_id or "")
    for name, binary in wanted.items():
        if name not in results:
            continue
        datatype, values = datatypes[name], results[name]
        output = response.outputs.add(name=name, datatype=datatype, shape=values.shape)
        if datatype == "BYTES":
            elements = [bytes(element) for element in values.ravel()]
            if binary:
                response.raw_output_contents.append(codec.pack_bytes(elements))
            else:
                output.contents.bytes_contents.extend(elements)
            continue
        values = values.astype(codec.NUMPY_DATATYPES[datatype], copy=False)
        if binary:
            response.raw_output_contents.append(values.tobytes())
        else:
            getattr(output.contents, OUTPUT_CONTENTS[datatype]).extend(values.ravel().tolist())
    return response
