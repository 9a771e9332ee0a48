"""The routes' typed dependencies: the settings, and the data plane once it serves (the one readiness
check: 503 before the lifespan has started it, and once it is closing). Async: a plain `def`
dependency would cost a hop to the thread pool per request."""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Request

from app.config import Settings
from app.dataplane import DataPlane
from app.errors import NotReady


class State(TypedDict):
    """The lifespan's state, which every request's `request.state` carries."""

    dataplane: DataPlane


def serving(request: Request) -> DataPlane | None:
    """The data plane if it takes requests (None before the lifespan has started it, and once closing)."""
    dataplane: DataPlane | None = getattr(request.state, "dataplane", None)
    return dataplane if dataplane is not None and dataplane.ready else None


def ready_dataplane(request: Request) -> DataPlane:
    """The data plane, if it takes requests; NotReady (503) otherwise."""
    if (dataplane := serving(request)) is None:
        raise NotReady()
    return dataplane


async def get_dataplane(request: Request) -> DataPlane:
    return ready_dataplane(request)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
