"""The /v1 answers: their response models ("model" in a name here always means the Keras model), and
`predictions()`, which renders the data plane's answers in that form for /v1 and the command line."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.answers import Classified

# the answer for tests/data/seven.png, a clear 7
EXAMPLE_PROBABILITIES: list[JsonValue] = [0.0, 0.0, 0.0, 0.000001, 0.0, 0.0, 0.0, 0.999987, 0.0, 0.000012]


class Prediction(BaseModel):
    """The model's answer for one image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "digit": 7,
                    "confidence": 0.999987,
                    "probabilities": EXAMPLE_PROBABILITIES,
                    "preprocess": "mnist",
                    "notes": [],
                    "model_version": "8f44499a9900",
                    "digit_score": 0.999876,
                    "is_digit": True,
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
    model_version: str = Field(
        description="the model version that answered: the first 12 hex digits of its file's sha256 (as /v2 names it)"
    )
    digit_score: float | None = Field(
        None, ge=0, le=1,
        description="how much the image looks like a handwritten digit at all, from 0 to 1 (the model's digit "
        "scorer, trained on MNIST against drawings that are no digit: letters, symbols, doodles); absent when "
        "the model has no scorer",
    )  # fmt: skip
    is_digit: bool | None = Field(
        None,
        description="`digit_score` is at least the model's threshold (GET /v1/model: `digit_threshold`). When false, "
        "`digit` is only the best guess among the ten: the image does not look like a digit",
    )


class BatchPrediction(BaseModel):
    """One prediction per uploaded file, in upload order."""

    predictions: list[Prediction]
    model_version: str = Field(description="the model version that answered every file of the batch")


class ModelInfo(BaseModel):
    """The loaded model's metadata and how to call it."""

    name: str = Field(examples=["mnist-mlp"])
    version: str = Field(description="the served version: the first 12 hex digits of `sha256`")
    loaded_at: datetime = Field(description="when the served version was loaded (start-up or hot reload)")
    sha256: str = Field(description="sha256 of the served .keras file")
    input: dict[str, Any] = Field(description="the model's input contract")
    output: dict[str, Any] = Field(description="the model's output contract")
    preprocessing_modes: dict[str, str] = Field(description="values of the `preprocess` query parameter")
    formats: list[str] = Field(description="the image formats accepted (Pillow's names; HEIF covers HEIC)")
    limits: dict[str, int] = Field(description="the service's upload limits")
    digit_threshold: float | None = Field(
        description="`is_digit` is `digit_score >= digit_threshold`: the model's own (its metadata's), or "
        "MNIST_DIGIT_THRESHOLD; null when the model has no digit scorer"
    )
    metadata: dict[str, Any] = Field(
        description="the training metadata (models/mnist-mlp.json), without the per-epoch history"
    )


class FailedFile(BaseModel):
    """The file of a batch that failed it."""

    index: int = Field(description="its place in the upload, from 0", examples=[1])
    filename: str | None = Field(description="its filename, as uploaded", examples=["b.png"])
    detail: str = Field(description="what is wrong with that file, in one sentence")


class ErrorResponse(BaseModel):
    """Every error: one sentence for people, a stable code for programs, and for an error about one
    file of a batch, which file (`file`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "The PNG file is truncated or corrupt (image file is truncated).", "code": "invalid_image"},
                {
                    "detail": "File 1 ('b.png'): The PNG file is truncated or corrupt (image file is truncated).",
                    "code": "invalid_image",
                    "file": {
                        "index": 1,
                        "filename": "b.png",
                        "detail": "The PNG file is truncated or corrupt (image file is truncated).",
                    },
                },
            ]
        }
    )

    detail: str = Field(description="what went wrong, in one sentence")
    code: str = Field(description="machine-readable error code, stable across versions")
    file: FailedFile | None = Field(
        default=None, description="on /v1/predict/batch, the file that failed the batch (absent otherwise)"
    )


class Status(BaseModel):
    """Health and readiness."""

    status: str = Field(examples=["ok"])


def predictions(classified: Classified, mode: str) -> list[dict[str, Any]]:
    """Each image's answer as /v1 gives it: a `Prediction` as a plain dict (FastAPI validates and
    serialises it in pydantic's core); `digit_score` and `is_digit` only from a model with a scorer."""
    answers: list[dict[str, Any]] = []
    for i, (digit, probabilities) in enumerate(
        zip(classified.digits.tolist(), classified.probabilities.tolist(), strict=True)
    ):
        answers.append(
            {
                "digit": digit,
                "confidence": probabilities[digit],
                "probabilities": probabilities,
                "preprocess": mode,
                "notes": classified.notes[i],
                "model_version": classified.version,
            }
        )
    if classified.digit_scores is not None and classified.is_digit is not None:
        scored = zip(answers, classified.digit_scores.tolist(), classified.is_digit.tolist(), strict=True)
        for answer, score, flag in scored:
            # 6 decimals, rounded down: a score shown as 1.0 is 1.0 (float64 scores stay under it)
            answer["digit_score"], answer["is_digit"] = math.floor(score * 1e6) / 1e6, flag
    return answers
