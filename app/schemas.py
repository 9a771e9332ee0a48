"""The /v1 answers: their response models ("model" in a name here always means the Keras model), and
`predictions()` and `reading_answers()`, which render the data plane's answers in that form for /v1 and
the command line."""

from __future__ import annotations

import base64
import io
import math
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.answers import Classified, ReadDigit
from app.answers import Reading as NumberReading  # the data plane's; `Reading` here is its /v1 answer

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
    reading_calibration: dict[str, Any] | None = Field(
        default=None,
        description="how /v1/read's `confidence` was calibrated for this model: the fit's numbers and its "
        "held-out ECE and AUROC before and after (models/mnist-mlp.reading.json); null when it is not "
        "(then it is the product of the digits' probabilities and the cuts' certainty)",
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
            answer["digit_score"], answer["is_digit"] = _rounded_down(score), flag
    return answers


# /v1/read ----------------------------------------------------------------------------------------------

BOX_DESCRIPTION = "`[x, y, width, height]` in the uploaded image's pixels (after EXIF rotation), from its top left"
LINE_DESCRIPTION = "the line it is on, from 0 at the top"
# the reading of tests/data/seven.png
EXAMPLE_READING: dict[str, JsonValue] = {
    "text": "7",
    "confidence": 0.999987,
    "digits": [
        {
            "digit": 7,
            "confidence": 0.999987,
            "probabilities": EXAMPLE_PROBABILITIES,
            "digit_score": 0.999876,
            "is_digit": True,
            "box": [6, 7, 16, 20],
            "line": 0,
        }
    ],
    "marks": [],
    "notes": [],
}


class ReadingDigit(BaseModel):
    """One digit of a number read, as the model answered it."""

    digit: int = Field(ge=0, le=9, description="the most probable digit", examples=[9])
    confidence: float = Field(ge=0, le=1, description="the probability of `digit`", examples=[0.99])
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="softmax probability of each digit; index = digit; sums to 1"
    )
    digit_score: float | None = Field(
        None, ge=0, le=1,
        description="how much this piece looks like a digit at all, from 0 to 1 (as on /v1/predict); absent when "
        "the model has no scorer",
    )  # fmt: skip
    is_digit: bool | None = Field(
        None, description="`digit_score` is at least the model's threshold (as on /v1/predict)"
    )
    box: list[int] = Field(min_length=4, max_length=4, description=BOX_DESCRIPTION, examples=[[12, 8, 40, 61]])
    line: int = Field(ge=0, description=LINE_DESCRIPTION)
    pixels: list[list[int]] | None = Field(
        None,
        min_length=28,
        max_length=28,
        description="with `explain=true`: the 28x28 image the model saw for this digit, white on black, rows of "
        "0-255 ints",
    )
    input_image: str | None = Field(
        None,
        description="with `explain=true`: the same image as a data:image/png;base64 URL (as /v1/predict's `input_image`)",
    )


class ReadingMark(BaseModel):
    """A small mark between digits (left out of `text`)."""

    char: str = Field(description="the character it most likely is: `.`, `,`, `-` or `/`", examples=["."])
    box: list[int] = Field(min_length=4, max_length=4, description=BOX_DESCRIPTION, examples=[[118, 60, 6, 6]])
    line: int = Field(ge=0, description=LINE_DESCRIPTION)


class FileReading(BaseModel):
    """The number read from one image: an answer of /v1/read/batch."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_READING]})

    text: str = Field(
        description="the digits read, left to right; several lines top to bottom, joined by `\\n`", examples=["947833"]
    )
    confidence: float = Field(
        ge=0,
        le=1,
        description="the probability that the whole reading is right, calibrated for the served model "
        "(/v1/model's `reading_calibration`; one digit: its own `confidence`); docs/reading.md",
    )
    digits: list[ReadingDigit] = Field(description="one entry per digit of `text`, in its order")
    marks: list[ReadingMark] = Field(
        default_factory=list, description="small marks between the digits (a decimal point, a comma, a dash, a slash)"
    )
    notes: list[str] = Field(
        default_factory=list, description="what preprocessing did to the upload (as on /v1/predict)"
    )


class Reading(FileReading):
    """The number read from one image, and the model version that read it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**EXAMPLE_READING, "model_version": "8f44499a9900"}]})

    model_version: str = Field(description="the model version that answered (as on /v1/predict)")


class BatchReading(BaseModel):
    """One reading per uploaded file, in upload order."""

    readings: list[FileReading]
    model_version: str = Field(description="the model version that read every file of the batch")


def reading_answers(found: list[NumberReading], explain: bool = False) -> list[dict[str, Any]]:
    """Each file's reading as /v1/read/batch gives it (a `FileReading` as a plain dict); `explain`: with
    each digit's 28x28 image, when the data plane kept them."""
    return [
        {
            "text": reading.text,
            "confidence": reading.confidence,
            "digits": [_digit(digit, explain) for digit in reading.digits],
            "marks": [{"char": m.char, "box": list(m.box), "line": m.line} for m in reading.marks],
            "notes": reading.notes,
        }
        for reading in found
    ]


def _digit(digit: ReadDigit, explain: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "digit": digit.digit,
        "confidence": digit.confidence,
        "probabilities": digit.probabilities.tolist(),
        "box": list(digit.box),
        "line": digit.line,
    }
    if digit.digit_score is not None:
        answer["digit_score"], answer["is_digit"] = _rounded_down(digit.digit_score), digit.is_digit
    if explain and digit.pixels is not None:
        answer["pixels"] = digit.pixels.tolist()
        answer["input_image"] = png_data_url(digit.pixels)
    return answer


def png_data_url(pixels: np.ndarray) -> str:
    """(28, 28) uint8 -> a data:image/png;base64 URL (what `explain=true` shows)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _rounded_down(score: float) -> float:
    """6 decimals, rounded down: a score shown as 1.0 is 1.0 (float64 scores stay under it)."""
    return math.floor(score * 1e6) / 1e6
