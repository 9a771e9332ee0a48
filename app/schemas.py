"""Response models of the API ("model" in a name here always means the Keras model)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

# the answer for tests/data/seven.png (label smoothing keeps confident answers near 0.95)
EXAMPLE_PROBABILITIES: list[JsonValue] = [
    0.0062,
    0.0059,
    0.0049,
    0.0044,
    0.0054,
    0.0059,
    0.0084,
    0.9495,
    0.0054,
    0.0041,
]


class Prediction(BaseModel):
    """The model's answer for one image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "digit": 7,
                    "confidence": 0.9495,
                    "probabilities": EXAMPLE_PROBABILITIES,
                    "preprocess": "mnist",
                    "notes": ["inverted dark-on-light"],
                }
            ]
        }
    )

    digit: int = Field(ge=0, le=9, description="the most probable digit")
    confidence: float = Field(ge=0, le=1, description="the probability of `digit`")
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="softmax probability of each digit; index = digit; sums to 1"
    )
    preprocess: str = Field("mnist", description="the preprocessing mode used")
    notes: list[str] = Field(
        default_factory=list,
        description="what preprocessing did to the upload that changes how it looks to the model "
        "(EXIF rotation, inversion, transparency, first frame of an animation)",
    )
    input_image: str | None = Field(
        None,
        description="with `explain=true`: the 28x28 image the model saw, white digit on black, as a "
        "data:image/png;base64 URL",
    )


class BatchPrediction(BaseModel):
    """One prediction per uploaded file, in upload order."""

    predictions: list[Prediction]


class ModelInfo(BaseModel):
    """The loaded model's metadata and how to call it."""

    name: str = Field(examples=["mnist-mlp"])
    sha256: str = Field(description="sha256 of the served .keras file")
    input: dict[str, Any] = Field(description="the model's input contract")
    output: dict[str, Any] = Field(description="the model's output contract")
    preprocessing_modes: dict[str, str] = Field(description="values of the `preprocess` query parameter")
    limits: dict[str, int] = Field(description="the service's upload limits")
    metadata: dict[str, Any] = Field(
        description="the training metadata (models/mnist-mlp.json), without the per-epoch history"
    )


class ErrorResponse(BaseModel):
    """Every error: one sentence for people, a stable code for programs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "The PNG file is truncated or corrupt (image file is truncated).", "code": "invalid_image"}
            ]
        }
    )

    detail: str = Field(description="what went wrong, in one sentence")
    code: str = Field(description="machine-readable error code, stable across versions")


class Status(BaseModel):
    """Health and readiness."""

    status: str = Field(examples=["ok"])


# Open Inference Protocol (v2) ---------------------------------------------------------------------


class V2Error(BaseModel):
    """Every /v2 error, as the protocol defines it."""

    error: str = Field(examples=["Input 'pixels' has shape [1, 783]; expected [N, 784] or [N, 28, 28]."])


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2ModelReady(BaseModel):
    name: str
    ready: bool


class V2Tensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2Metadata(BaseModel):
    """The model's metadata: its versions, platform, inputs and outputs (-1 is the batch dimension)."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[V2Tensor]
    outputs: list[V2Tensor]


_V2_INPUT = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string", "enum": ["pixels", "image"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["FP32", "UINT8", "BYTES"]},
        "parameters": {"type": "object"},
        "data": {"type": "array", "items": {}},
    },
}
V2_INFER_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": _V2_INPUT},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                            },
                        },
                    },
                },
                "example": {
                    "id": "42",
                    "inputs": [{"name": "pixels", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}],
                    "outputs": [{"name": "probabilities"}],
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Triton's binary tensor extension: a JSON header of Inference-Header-Content-Length bytes, then the tensors' raw bytes.",
            },
        },
    }
}
