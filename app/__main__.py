"""`python -m app`: check the model, then serve with uvicorn (host, port and workers from the environment)."""

from __future__ import annotations

import os
import sys
import tempfile

from app.engines.environment import ONE_THREAD  # loads nothing: set below, before numpy loads


def main() -> int:
    for name, value in ONE_THREAD.items():
        os.environ.setdefault(name, value)
    import uvicorn  # imported here, after the thread settings: it and the app load numpy

    from app.api.middleware.security import ConfigError, load_api_keys
    from app.config import Settings
    from app.model.keras_file import ModelLoadError, check_model_files

    settings = Settings()
    try:  # fail in one line, before uvicorn starts, rather than with a traceback from every worker
        check_model_files(settings.model_path, settings.verify_model_sha256)
        load_api_keys(settings)
    except (ModelLoadError, ConfigError) as exc:
        print(f"error: cannot serve: {exc}", file=sys.stderr)
        return 2
    workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # workers share their metrics through files here; set before any worker imports prometheus_client
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mnist-metrics-")
    uvicorn.run(
        "app.main:app",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=workers,
        access_log=False,  # the app logs one structured line per request itself
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
