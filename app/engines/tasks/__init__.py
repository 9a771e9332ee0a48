"""The task kinds an engine executes, each a module; registering one here lets the engines run it."""

from __future__ import annotations

from app.engines.tasks.base import Task
from app.engines.tasks.classify import ClassifyFiles
from app.engines.tasks.pixels import EvaluatePixels
from app.engines.tasks.read import ReadFiles

KINDS: dict[str, type] = {kind.kind: kind for kind in (ClassifyFiles, EvaluatePixels, ReadFiles)}

__all__ = ["KINDS", "ClassifyFiles", "EvaluatePixels", "ReadFiles", "Task"]
