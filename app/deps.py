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


async def get_batcher(request: Request) -> Batcher:
    batcher: Batcher | None = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise ApiError(503, "not_ready", "The model is not loaded yet; retry shortly.", {"Retry-After": "1"})
    return batcher


BatcherDep = Annotated[Batcher, Depends(get_batcher)]
