"""The two models of the Open Inference Protocol, whatever the transport (REST /v2, gRPC): the checks of
a model's name and version, its tensors, and the data plane calls that answer an inference, by output name.

`mnist-mlp` classifies digits (images through predict_files, pixel rows through infer_pixels);
`mnist-reader` reads whole numbers (read_files). Errors are ServiceErrors; each transport renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.answers import Classified, Reading
from app.api.v2 import codec
from app.api.v2.types import (
    MODEL_INPUTS,
    MODEL_NAMES,
    MODEL_OUTPUTS,
    READER_INPUTS,
    READER_NAME,
    READER_OUTPUTS,
    SCORER_OUTPUTS,
    MetadataTensor,
)
from app.dataplane import DataPlane, ServedModel, Upload
from app.errors import BadRequest, ImageError, NotFound


@dataclass
class Answer:
    """An inference's results by output name, the version that computed them, and the fields of its log line."""

    results: dict[str, np.ndarray]
    version: str
    log_fields: dict[str, Any]


def check_model(dataplane: DataPlane, model_name: str, version: str | None) -> str:
    """The served version, after checking the name and version asked for (NotFound otherwise). Both
    models have it: the reader is the served classifier behind a segmentation."""
    check_name(model_name)
    served = dataplane.version
    if version not in (None, "", served):
        raise NotFound(f"Unknown version {version!r} of {model_name!r}; the served version is {served!r}.")
    return served


def check_name(model_name: str) -> None:
    if model_name not in MODEL_NAMES:
        raise NotFound(f"Unknown model {model_name!r}; this server serves {' and '.join(map(repr, MODEL_NAMES))}.")


def tensors(model_name: str, served: ServedModel) -> tuple[list[MetadataTensor], list[MetadataTensor]]:
    """The model's inputs and outputs, as its metadata lists them."""
    if model_name == READER_NAME:
        return READER_INPUTS, READER_OUTPUTS
    return MODEL_INPUTS, MODEL_OUTPUTS + (SCORER_OUTPUTS if served.digit_threshold is not None else [])


def wire_form(model_name: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The input names the model takes, and its outputs' datatypes by name (the codec's parameters)."""
    if model_name == READER_NAME:
        return ("image",), codec.READER_OUTPUTS
    return tuple(codec.INPUTS), codec.OUTPUTS


async def infer(dataplane: DataPlane, model_name: str, inference: codec.Inference, max_files: int) -> Answer:
    """The model's answer to a checked request: the reader's readings or the classifier's answers."""
    if model_name == READER_NAME:
        assert inference.files is not None
        readings = await read_images(dataplane, inference.files, max_files)
        fields: dict[str, Any] = {"rows": len(readings), "read_digits": [len(r.digits) for r in readings]}
        return Answer(reading_results(readings), readings[0].version, fields)
    answers = await classify(dataplane, inference, max_files)
    rows = len(answers.digits)
    fields = {"rows": rows, **({"digits": answers.digits.tolist()} if rows <= 64 else {})}
    return Answer(classified_results(answers, inference), answers.version, fields)


async def classify(dataplane: DataPlane, inference: codec.Inference, max_files: int) -> Classified:
    """The classifier's answers for a request's images (as /v1/predict gives them) or pixel rows."""
    if inference.files is None:
        assert inference.pixels is not None
        return await dataplane.infer_pixels(inference.pixels)
    check_count(inference.files, max_files)
    try:
        return await dataplane.predict_files([Upload(f) for f in inference.files], "mnist")
    except ImageError as exc:
        raise image_error(exc) from None


def classified_results(answers: Classified, inference: codec.Inference) -> dict[str, np.ndarray]:
    """The classifier's outputs by name; the scorer's two only from a model that has a digit scorer."""
    results = {"probabilities": answers.probabilities, "digit": answers.digits}
    if answers.digit_scores is not None and answers.is_digit is not None:
        results["digit_score"], results["is_digit"] = answers.digit_scores, answers.is_digit
    elif inference.named and any(name in codec.SCORER_OUTPUTS for name in inference.outputs):
        raise BadRequest(
            "The served model has no digit scorer: outputs 'digit_score' and 'is_digit' are not available."
        )
    return results


async def read_images(dataplane: DataPlane, files: list[bytes], max_files: int) -> list[Reading]:
    """The number read in each encoded image, as /v1/read gives them."""
    check_count(files, max_files)
    try:
        return await dataplane.read_files([Upload(f) for f in files])
    except ImageError as exc:
        raise image_error(exc) from None


def reading_results(readings: list[Reading]) -> dict[str, np.ndarray]:
    """The reader's outputs: `text` (object [N] of UTF-8 bytes), `confidence` float32 [N] and `digits`
    int64 [N, D], each reading's digits line by line, -1 padded to the longest reading's D."""
    width = max((len(reading.digits) for reading in readings), default=0)
    digits = np.full((len(readings), width), -1, dtype=np.int64)
    for row, reading in zip(digits, readings, strict=True):
        ordered = sorted(reading.digits, key=lambda digit: digit.line)  # stable: left to right within a line
        row[: len(ordered)] = [digit.digit for digit in ordered]
    return {
        "text": np.array([reading.text.encode() for reading in readings], dtype=np.object_),
        "confidence": np.array([reading.confidence for reading in readings], dtype=np.float32),
        "digits": digits,
    }


def check_count(files: list[bytes], max_files: int) -> None:
    if len(files) > max_files:
        raise BadRequest(f"Input 'image' holds {len(files)} images; at most {max_files} are accepted.")


def image_error(exc: ImageError) -> BadRequest:
    """An image that cannot be classified or read: a 400 naming the element, as the protocol has it."""
    return BadRequest(f"Input 'image' element {exc.index}: {exc.detail}")
