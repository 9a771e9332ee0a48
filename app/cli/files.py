"""The files a command line names: files, folders (every file inside, recursively, hidden ones left out)
and glob patterns (for shells that don't expand them, and for `**`), in the order given."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path


class NoFiles(ValueError):
    """A path that names nothing, or paths that name no file at all: a usage error."""


def find_files(paths: Sequence[str]) -> list[Path]:
    """Each file once, in the order named; a folder's files sorted by path."""
    found: dict[Path, None] = {}
    for name in paths:
        path = Path(name)
        if path.exists():
            matches = [path]
        elif any(char in name for char in "*?["):
            matches = [Path(match) for match in sorted(glob.glob(name, recursive=True))]
            if not matches:
                raise NoFiles(f"no file matches {name!r}")
        else:
            raise NoFiles(f"no such file or folder: {name}")
        for match in matches:
            for file in _files(match):
                found.setdefault(file, None)
    if not found:
        raise NoFiles(f"no files in {', '.join(paths)}")
    return list(found)


def _files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    return sorted(
        file
        for file in path.rglob("*")
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
