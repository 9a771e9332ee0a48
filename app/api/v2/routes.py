"""/v2: the Open Inference Protocol (KServe / Triton REST), with Triton's binary tensor extension.

The model `mnist-mlp` takes one input, either
- `pixels`: FP32 [N, 784] or [N, 28, 28] in [0, 1] (or UINT8 0-255), MNIST-format digits, or
- `image`: BYTES [N], encoded image files (base64 strings in JSON; raw bytes in binary form), which go
  through the same data plane, and so the same preprocessing, as /v1/predict,
and answers `probabilities` FP32 [N, 10] and `digit` INT64 [N]. The model `mnist-reader` is the same
served classifier reading whole numbers (the data plane's read_files): it takes `image` and answers `text`
BYTES [N], `confidence` FP32 [N] and `digits` INT64 [N, D] (-1 padded). The wire format is codec.py's; the
bodies' types are types.py's. Errors are rendered as the protocol's {"error"} (app/api/policy.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.api.deps import DataPlaneDep, SettingsDep, serving
from app.api.offload import INLINE_BYTES, INLINE_ROWS, maybe_off_loop
from app.api.v2 import codec, models
from app.api.v2.models import check_model, check_name, reading_results  # noqa: F401 (reading_results: re-exported)
from app.api.v2.types import (
    PLATFORM,
    InferenceRequest,
    InferenceResponse,
    MetadataModel,
    MetadataServer,
    ModelReady,
    V2Error,
    inline_schema,
)

router = APIRouter(prefix="/v2", tags=["v2: Open Inference Protocol"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": V2Error, "description": "A malformed request: a bad shape, datatype, size or name."},
    404: {"model": V2Error, "description": "No such model or version."},
    503: {"model": V2Error, "description": "The model is not loaded yet."},
}


# server and model status --------------------------------------------------------------------------


@router.get("", summary="Server metadata", response_model=MetadataServer)
async def server_metadata(request: Request) -> MetadataServer:
    return MetadataServer(name="mnist-service", version=request.app.version, extensions=["binary_tensor_data"])


@router.get("/health/live", summary="Server liveness", responses={200: {"description": '`{"live": true}`'}})
async def live() -> JSONResponse:
    return JSONResponse({"live": True})


@router.get("/health/ready", summary="Server readiness", responses={200: {"description": '`{"ready": true}`'}, 503: {}})
async def ready(request: Request) -> JSONResponse:
    is_ready = serving(request) is not None
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("/models/{model_name}/ready", summary="Model readiness", response_model=ModelReady, responses=ERRORS)
@router.get("/models/{model_name}/versions/{version}/ready", summary="Model version readiness", response_model=ModelReady, responses=ERRORS)  # fmt: skip
async def model_ready(request: Request, model_name: str, version: str | None = None) -> JSONResponse:
    check_name(model_name)
    if (dataplane := serving(request)) is None:
        return JSONResponse({"name": model_name, "ready": False}, status_code=503)
    check_model(dataplane, model_name, version)
    return JSONResponse({"name": model_name, "ready": True})


@router.get("/models/{model_name}", summary="Model metadata", response_model=MetadataModel, responses=ERRORS)
@router.get("/models/{model_name}/versions/{version}", summary="Model version metadata", response_model=MetadataModel, responses=ERRORS)  # fmt: skip
async def model_metadata(dataplane: DataPlaneDep, model_name: str, version: str | None = None) -> MetadataModel:
    check_model(dataplane, model_name, version)
    served = dataplane.model()
    inputs, outputs = models.tensors(model_name, served)
    return MetadataModel(
        name=model_name, versions=[served.version], platform=PLATFORM, inputs=inputs, outputs=outputs,
        loaded_at=served.loaded_at,
    )  # fmt: skip


# inference ----------------------------------------------------------------------------------------

INFER_DESCRIPTION = f"""`mnist-mlp` classifies single digits; `mnist-reader` reads whole numbers. Send exactly one input:
- `pixels`: datatype `FP32` with values in [0, 1] (or `UINT8` 0-255), shape `[N, 784]` or `[N, 28, 28]`,
  `data` flat or nested in row-major order: MNIST-format digits (white on black, centred), no preprocessing.
  N is 1 to {codec.MAX_JSON_ROWS} in JSON, 1 to {codec.MAX_ROWS} in binary form. Values outside the range are refused (400),
  not clipped.
- `image`: datatype `BYTES`, shape `[N]`, each element an encoded image file (PNG, JPEG, ...), as a base64
  string in JSON or raw in the binary extension; preprocessed like `POST /v1/predict` (`preprocess=mnist`).
  N is 1 to `MNIST_MAX_BATCH_FILES` (64).

Outputs: `probabilities` (FP32 [N, 10]), `digit` (INT64 [N]) and, from a model with a digit scorer (the
committed one has it), `digit_score` (FP32 [N]: how digit-like each image is, in [0, 1]) and `is_digit`
(BOOL [N]: `digit_score` at or above the model's threshold); all of them unless `outputs` names some.

`mnist-reader` takes `image` only, reads the number in each image (digits cut apart and classified, as
`POST /v1/read`) and answers `text` (BYTES [N]: the digits left to right, lines joined by a newline),
`confidence` (FP32 [N]: the probability that the whole reading is right) and `digits` (INT64 [N, D]: each
reading's digits, lines in order, -1 padded to the longest reading's D).

Triton's binary tensor extension is supported both ways (`Inference-Header-Content-Length`,
`binary_data_size`, `binary_data` / `binary_data_output`); so are gzip and deflate request bodies
(`Content-Encoding`) and answers (`Accept-Encoding`). The request `id` is echoed. The body is capped by
`MNIST_MAX_BATCH_BODY_BYTES` (32 MiB), compressed or not. A malformed request (wrong JSON types,
nesting too deep, numbers out of range) is a 400."""
INFER_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Triton's binary tensor extension: a JSON header of Inference-Header-Content-Length bytes, then the tensors' raw bytes.",
            },
        },
    }
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": InferenceResponse,
        "description": "The outputs: JSON, or with binary outputs a JSON header of `Inference-Header-Content-Length` bytes followed by the raw tensors.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **ERRORS,
    413: {"model": V2Error, "description": "The body, or the body once decompressed, is over the byte cap."},
}  # fmt: skip


@router.post("/models/{model_name}/infer", summary="Inference", description=INFER_DESCRIPTION, responses=INFER_RESPONSES, openapi_extra=INFER_REQUEST)  # fmt: skip
@router.post("/models/{model_name}/versions/{version}/infer", summary="Inference on a version", description=INFER_DESCRIPTION, responses=INFER_RESPONSES, openapi_extra=INFER_REQUEST)  # fmt: skip
async def infer(
    request: Request, dataplane: DataPlaneDep, settings: SettingsDep, model_name: str, version: str | None = None
) -> Response:
    check_model(dataplane, model_name, version)
    inputs, datatypes = models.wire_form(model_name)
    body = await request.body()
    encoding, header_length = request.headers.get("content-encoding", ""), request.headers.get(codec.HEADER)
    inference = await maybe_off_loop(
        len(body) > INLINE_BYTES or bool(encoding),
        codec.decode_request, body, encoding, header_length, settings.max_batch_body_bytes, inputs, datatypes,
    )  # fmt: skip
    answer = await models.infer(dataplane, model_name, inference, settings.max_batch_files)
    results, computed_by, rows = answer.results, answer.version, answer.log_fields["rows"]
    request.state.log_fields = answer.log_fields
    outputs = {name: binary for name, binary in inference.outputs.items() if name in results}
    # the version that computed the answer: a swap between the path's check and here means the new one
    response: dict[str, Any] = {"model_name": model_name, "model_version": computed_by}
    if inference.id is not None:
        response["id"] = inference.id
    content, headers, media_type = await maybe_off_loop(
        rows > INLINE_ROWS,
        codec.encode_response, response, results, outputs, request.headers.get("accept-encoding", ""), datatypes,
    )  # fmt: skip
    return Response(content, media_type=media_type, headers=headers)
