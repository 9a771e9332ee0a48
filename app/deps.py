"""Typed dependencies: the loaded classifier and the settings, from the lifespan's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.batching import Batcher
from app.config import Settings
from app.errors import ApiError
from app.inference import Classifier


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_classifier(request: Request) -> Classifier:
    classifier: Classifier | None = getattr(request.app.state, "classifier", None)
    if classifier is None:
        raise ApiError(503, "not_ready", "The model is not loaded yet; retry shortly.", {"Retry-After": "1"})
    return classifier


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]


def serving_state(request: Request) -> tuple[Batcher, Settings]:
    """The batcher and settings of the prediction routes, read directly: on the hot path FastAPI's
    dependency resolution costs more than the lookup itself."""
    batcher: Batcher | None = request.app.state.batcher
    if batcher is None:
        raise ApiError(503, "not_ready", "The model is not loaded yet; retry shortly.", {"Retry-After": "1"})
    return batcher, request.app.state.settings
