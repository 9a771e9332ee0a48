"""/v2/repository: Triton's model repository extension (index and load), over the data plane's reload.

The repository holds one set of weights, loaded from MNIST_MODEL_PATH, served as two models: `mnist-mlp`
(the classifier) and `mnist-reader` (the same classifier reading whole numbers). They share the weights,
so they share their versions and states: the index lists each entry under both names, and loading either
reloads the weights of both. `load` reloads from MNIST_MODEL_PATH now (as a poll that finds new files
would), through the same quality gate; a refused candidate is a 400 with the reason, and the current
version keeps serving.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.api.deps import DataPlaneDep
from app.api.v2.models import check_name
from app.api.v2.routes import ERRORS
from app.api.v2.types import MODEL_NAMES, RepositoryIndexRequest, RepositoryLoadRequest, RepositoryModel
from app.errors import BadRequest
from app.model.keras_file import ModelLoadError

# tritonclient's load_model posts `{}` with no Content-Type: a body without one is read as JSON here
router = APIRouter(prefix="/v2/repository", tags=["v2: model repository"], strict_content_type=False)


@router.post(
    "/index",
    summary="Repository index",
    description="The models' versions and their state: READY (served), LOADING (a candidate being loaded and "
    "gated), UNAVAILABLE (the last candidate refused, with the reason). `mnist-mlp` and `mnist-reader` share "
    "one set of weights, so each version is listed under both names, with the same state.",
    response_model=list[RepositoryModel],
    responses=ERRORS,
)
async def index(
    dataplane: DataPlaneDep, body: Annotated[RepositoryIndexRequest | None, Body()] = None
) -> list[RepositoryModel]:
    entries = dataplane.repository_index()
    if body is not None and body.ready:
        entries = [entry for entry in entries if entry.state == "READY"]
    return [
        RepositoryModel(name=name, version=e.version, state=e.state, reason=e.reason)
        for name in MODEL_NAMES
        for e in entries
    ]


@router.post(
    "/models/{model_name}/load",
    summary="Load (reload) the model",
    description="Reload the model from MNIST_MODEL_PATH now, through the quality gate: 200 once the new version "
    "serves (or the files are those already served), 400 with the reason when it is refused. `mnist-mlp` and "
    "`mnist-reader` share the weights: loading either reloads both. Protected by the API keys when they are set.",
    responses={200: {"description": "`{}`: loaded, or already served"}, **ERRORS},
)
async def load(
    dataplane: DataPlaneDep, model_name: str, body: Annotated[RepositoryLoadRequest | None, Body()] = None
) -> dict[str, str]:
    check_name(model_name)
    try:
        await dataplane.reload("request")
    except ModelLoadError as exc:
        raise BadRequest(f"The model was not loaded: {exc}") from None
    return {}
