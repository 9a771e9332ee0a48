"""The shape of the code: imports run one way, the transports reach the model only through the data
plane, importing changes nothing, modules stay small, and serving needs no training stack."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

TRAINING_ONLY = ("tensorflow", "keras", "matplotlib")
TRANSPORTS = ("app/api/", "app/cli/")
# what a transport reaches only through app/dataplane.py: the batcher, the engines, the model's network
BELOW_THE_DATA_PLANE = ("app.engines", "app.model.classifier", "app.model.network")
PURE = ("app/engines/", "app/model/", "app/preprocessing/", "app/answers.py", "app/contract.py", "app/errors.py")
MAX_LINES = 400


def module_name(source: Path) -> str:
    parts = source.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: Path) -> set[str]:
    """The modules a file imports, at any depth of its code, except those only imported for type checking."""
    tree = ast.parse(source.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in block.body
        for node in ast.walk(statement)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from app.api import demo`
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def app_sources() -> dict[str, Path]:
    return {str(source.relative_to(ROOT)): source for source in sorted((ROOT / "app").rglob("*.py"))}


def app_graph() -> dict[str, set[str]]:
    """app's module -> the app modules it imports."""
    modules = {module_name(source) for source in app_sources().values()}
    graph = {}
    for source in app_sources().values():
        names = {name for name in imported_modules(source) if name in modules}
        # `from app.cli import local` imports the submodule: the package is its parent, not its dependency
        names = {name for name in names if not any(n.startswith(name + ".") for n in names)}
        graph[module_name(source)] = names - {module_name(source)}  # a module run with -m imports itself
    return graph


def test_app_never_imports_training_tests_or_bench() -> None:
    offenders = {
        path: {name.split(".")[0] for name in imported_modules(source)} & {"training", "tests", "bench", "tools"}
        for path, source in app_sources().items()
    }
    assert not any(offenders.values()), offenders


def test_the_app_imports_the_training_stack_only_for_the_optional_keras_check() -> None:
    users = {
        path
        for path, source in app_sources().items()
        if {name.split(".")[0] for name in imported_modules(source)} & set(TRAINING_ONLY)
    }
    assert users == {"app/model/keras_file.py"}  # load_keras_model(), for MNIST_CHECK_WITH_KERAS


def test_imports_run_one_way() -> None:
    graph = app_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"an import cycle: {exc.args[1]}")
    assert order  # every module, dependencies first


def test_the_transports_reach_the_model_only_through_the_data_plane() -> None:
    offenders = {
        path: {name for name in imported_modules(source) if name.startswith(BELOW_THE_DATA_PLANE)}
        for path, source in app_sources().items()
        if path.startswith(TRANSPORTS)
    }
    assert not any(offenders.values()), offenders
    assert any("app.dataplane" in imported_modules(s) for p, s in app_sources().items() if p.startswith("app/api/"))


def test_the_entry_points_are_imported_by_nothing() -> None:
    importers = {
        path for path, names in app_graph().items() if names & {"app.__main__", "app.main", "app.engines.worker.main"}
    }
    assert not importers, importers


def test_the_model_engines_and_preprocessing_import_no_web_framework() -> None:
    offenders = {
        path: {name for name in imported_modules(source) if name.split(".")[0] in ("fastapi", "starlette", "uvicorn")}
        for path, source in app_sources().items()
        if path.startswith(PURE)
    }
    assert not any(offenders.values()), offenders


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {
        path: len(source.read_text().splitlines())
        for path, source in app_sources().items()
        if "_pb2" not in source.name  # generated from a proto (make grpc-stubs)
    }
    assert not {path: lines for path, lines in sizes.items() if lines > MAX_LINES}


def test_the_settings_load_no_image_library() -> None:
    script = "import sys, app.config; print(sorted(m for m in ('PIL', 'pillow_heif', 'pyspng') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_serving_dependencies_leave_out_the_training_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    serving = project["dependencies"]
    assert not [d for d in serving if d.startswith(TRAINING_ONLY)], serving
    train = project["optional-dependencies"]["train"]
    assert all(any(d.startswith(name) for d in train) for name in TRAINING_ONLY), train
    assert "mnist-service[train]" in project["optional-dependencies"]["dev"]


@pytest.mark.parametrize(
    "modules", ["app.main, app.engines.worker, app.__main__", "training.train, training.models, training.bold"]
)
def test_importing_changes_no_environment_variable(modules: str) -> None:
    script = f"import os; before = dict(os.environ); import {modules}; print(sorted(set(os.environ.items()) ^ set(before.items())))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
