"""Typed dependencies of the routes: the settings and the service, from the app's state (async: a
plain `def` dependency would cost a hop to the thread pool per request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import NotReady
from app.service import Service


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current_service(request: Request) -> Service:
    """The service, once the lifespan has loaded the model and started the engines (503 before).

    /v1/predict calls this itself rather than declaring ServiceDep: on the busiest route, FastAPI's
    solving of one more dependency is a measurable share of the server's CPU per request (A/B it with
    bench/server-cpu.sh)."""
    service: Service | None = request.app.state.service
    if service is None:
        raise NotReady()
    return service


async def get_service(request: Request) -> Service:
    return current_service(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]
