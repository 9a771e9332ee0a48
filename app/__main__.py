"""`python -m app`: check the model, then serve with uvicorn (host, port and workers from the environment)."""

from __future__ import annotations

import os
import sys

import uvicorn

from app.config import Settings
from app.inference import ModelLoadError, check_model_files


def main() -> int:
    settings = Settings()
    try:  # fail in one line, before uvicorn starts, rather than with a traceback from every worker
        check_model_files(settings.model_path, settings.verify_model_sha256)
    except ModelLoadError as exc:
        print(f"error: cannot serve: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "app.main:app",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=int(os.environ.get("WEB_CONCURRENCY", "1")),
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
