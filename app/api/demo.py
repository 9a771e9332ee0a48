"""GET /: a page to draw or drop a digit and see what the model answers (static files, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"


def install_demo(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.include_router(router)
