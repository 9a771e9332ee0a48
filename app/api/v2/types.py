"""The Open Inference Protocol's request and response bodies, as pydantic types (as MLServer's
types/dataplane.py has them): the parser of requests and the source of their JSON Schema in /docs.

Requests are parsed strictly from JSON bytes by pydantic's own parser, which bounds nesting depth:
numbers are numbers (JSON `true` is not an FP32 value), non-finite or out-of-range ones (`1e400`, an
integer of 400 digits) are refused, and anything nested too deep is not valid JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from app.contract import INPUT_SIZE, MODEL_NAME, NUM_CLASSES

PLATFORM = "keras_numpy"  # a Keras model, evaluated as numpy matrix products
# The reader: the same served classifier behind a segmentation of whole numbers into digits. It shares the
# classifier's weights, so its version is the classifier's, and it loads and reloads with it.
READER_NAME = "mnist-reader"
MODEL_NAMES = (MODEL_NAME, READER_NAME)
STRICT = ConfigDict(strict=True, allow_inf_nan=False)

# `data` of a tensor: flat, or nested in row-major order as deep as the shapes we take ([N, 28, 28]);
# strings for BYTES. Tried left to right: a flat list of numbers, the usual case, is checked once.
TensorData = list[float] | list[list[float]] | list[list[list[float]]] | list[str]


class Parameters(BaseModel):
    """A tensor's or a request's `parameters`: the binary extension's, and any others (kept, unused)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")

    binary_data_size: NonNegativeInt | None = None
    binary_data: bool | None = None
    binary_data_output: bool | None = None


class RequestInput(BaseModel):
    model_config = STRICT

    name: str = Field(examples=["pixels"], description="`pixels` (FP32 or UINT8) or `image` (BYTES)")
    shape: list[NonNegativeInt] = Field(examples=[[1, INPUT_SIZE]])
    datatype: str = Field(examples=["FP32"], description="FP32 or UINT8 for `pixels`, BYTES for `image`")
    parameters: Parameters | None = None
    data: TensorData | None = Field(
        None, union_mode="left_to_right", description="absent when the tensor is sent in binary form"
    )


class RequestOutput(BaseModel):
    model_config = STRICT

    name: str = Field(
        examples=["probabilities"],
        description="`probabilities`, `digit`, `digit_score` or `is_digit`; from `mnist-reader`: `text`, `confidence` or `digits`",
    )
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """POST /v2/models/{mnist-mlp,mnist-reader}/infer: exactly one input; all outputs unless `outputs` names some."""

    model_config = ConfigDict(
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {"name": "pixels", "shape": [1, INPUT_SIZE], "datatype": "FP32", "data": [0.0] * INPUT_SIZE}
                    ],
                    "outputs": [{"name": "probabilities"}],
                }
            ]
        },
    )

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(None, description="`binary_data_size` when the output follows the JSON")
    data: list[float] | list[int] | list[str] | None = None


class InferenceResponse(BaseModel):
    model_name: str = Field(examples=[MODEL_NAME])
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class MetadataModel(BaseModel):
    """The model's metadata: its versions, platform, inputs and outputs (-1 is the batch dimension)."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    loaded_at: datetime | None = Field(None, description="when the served version was loaded (an extension)")


class MetadataServer(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelReady(BaseModel):
    name: str
    ready: bool


class RepositoryIndexRequest(BaseModel):
    """Triton's repository index request: `ready` true lists only the models ready to serve."""

    model_config = ConfigDict(extra="forbid", strict=True)
    ready: bool = False


class RepositoryModel(BaseModel):
    """One model version in the repository index, as Triton lists it."""

    name: str = Field(examples=[MODEL_NAME])
    version: str = Field(examples=["8f44499a9900"])
    state: Literal["READY", "LOADING", "UNAVAILABLE"]
    reason: str = Field("", description="why a version is UNAVAILABLE (a refused candidate)")


class RepositoryLoadRequest(BaseModel):
    """Triton's load request. The model is always loaded from MNIST_MODEL_PATH: no `parameters` are taken."""

    model_config = ConfigDict(extra="forbid", strict=True)


class V2Error(BaseModel):
    """Every /v2 error, as the protocol defines it."""

    error: str = Field(examples=["Input 'pixels' has shape [1, 783]; expected [N, 784] or [N, 28, 28]."])


MODEL_INPUTS = [
    MetadataTensor(name="pixels", datatype="FP32", shape=[-1, INPUT_SIZE]),
    MetadataTensor(name="image", datatype="BYTES", shape=[-1]),
]
MODEL_OUTPUTS = [
    MetadataTensor(name="probabilities", datatype="FP32", shape=[-1, NUM_CLASSES]),
    MetadataTensor(name="digit", datatype="INT64", shape=[-1]),
]
SCORER_OUTPUTS = [  # a model with a digit scorer also answers these
    MetadataTensor(name="digit_score", datatype="FP32", shape=[-1]),
    MetadataTensor(name="is_digit", datatype="BOOL", shape=[-1]),
]
READER_INPUTS = [MetadataTensor(name="image", datatype="BYTES", shape=[-1])]
READER_OUTPUTS = [
    MetadataTensor(name="text", datatype="BYTES", shape=[-1]),  # lines joined by "\n"
    MetadataTensor(name="confidence", datatype="FP32", shape=[-1]),
    MetadataTensor(name="digits", datatype="INT64", shape=[-1, -1]),  # -1 padded to the longest reading
]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON Schema with its $defs inlined: OpenAPI's requestBody can't hold local $defs."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    result: dict[str, Any] = resolve(schema)
    return result
