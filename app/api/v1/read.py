"""/v1/read: the number in one image, or in each of a batch. Thin, as routes.py: the same uploads
(uploads.py), read by the data plane, rendered by app/schemas.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.api.deps import DataPlaneDep, SettingsDep, ready_dataplane
from app.api.openapi import DESCRIPTIONS, error_responses
from app.api.v1.uploads import BATCH_BODY, SINGLE_BODY, batch_uploads, single_upload
from app.errors import ImageError
from app.preprocessing import FORMAT_NAMES
from app.schemas import BatchReading, ErrorResponse, Reading, reading_answers

router = APIRouter(prefix="/v1", tags=["v1: read"])

ExplainQuery = Annotated[
    bool, Query(description="add each digit's `pixels`: the 28x28 image the model saw, rows of 0-255 ints")
]
# /v1/predict's errors, and one more 422
ERRORS = error_responses(400, 413, 415, 422, 503) | {
    422: {
        "model": ErrorResponse,
        "description": DESCRIPTIONS[422].removesuffix(".")
        + ", or more digits than `MNIST_MAX_DIGITS` (`too_many_digits`).",
    }
}


@router.post(
    "/read",
    summary="Read the number in one image",
    description=(
        f"Send one image ({FORMAT_NAMES}; photo, scan or canvas drawing) of a number, as /v1/predict takes "
        "it: multipart field `file`, or the raw body with `Content-Type: image/...`. Answers the digits read "
        "left to right (lines top to bottom, joined by `\\n`) as `text`, the probability that the whole reading "
        "is right, and each digit with its box, line, probabilities and digit score; small marks between the "
        "digits (`.`, `,`, `-`, `/`) are left out of `text` and listed under `marks`. At most "
        "`MNIST_MAX_DIGITS` (default 64) digits per image."
    ),
    response_model=Reading,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=SINGLE_BODY,
)
async def read(request: Request, explain: ExplainQuery = False) -> dict[str, Any]:
    dataplane = ready_dataplane(request)  # not DataPlaneDep: as /v1/predict, no solver work per request
    upload = await single_upload(request, dataplane)
    found = await dataplane.read_files([upload], keep_pixels=explain)
    reading = reading_answers(found, explain)[0] | {"model_version": found[0].version}
    # the digits' count, not the text: a number read may be private (an amount, a postcode), as on /v2
    request.state.log_fields = {"digits": len(reading["digits"]), "confidence": round(reading["confidence"], 4)}
    return reading


@router.post(
    "/read/batch",
    summary="Read the numbers in several images",
    description=(
        "Send 1 to `MNIST_MAX_BATCH_FILES` (default 64) images as multipart/form-data, the field `files` "
        "repeated. Answers one reading per file, in upload order, as /v1/read does. One bad file fails the "
        "whole request; the error names its index (from 0) and filename."
    ),
    response_model=BatchReading,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=BATCH_BODY,
)
async def read_batch(
    request: Request, dataplane: DataPlaneDep, settings: SettingsDep, explain: ExplainQuery = False
) -> dict[str, Any]:
    uploads = await batch_uploads(request, dataplane, settings.max_batch_files)
    try:
        found = await dataplane.read_files(uploads, keep_pixels=explain)
    except ImageError as exc:  # the same error, naming the file
        raise type(exc).for_file(exc.index or 0, exc.filename, exc.detail) from None
    readings = reading_answers(found, explain)
    request.state.log_fields = {
        "digits": [len(r["digits"]) for r in readings],
        "confidences": [round(r["confidence"], 4) for r in readings],
    }
    return {"readings": readings, "model_version": found[0].version}
