"""The shape of the code: imports run one way, importing changes nothing, and serving needs no training stack."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT

TRAINING_ONLY = ("tensorflow", "keras", "matplotlib")


def imports_of(package: str) -> dict[str, set[str]]:
    """Module file -> the top-level names it imports (at any depth of the code)."""
    found: dict[str, set[str]] = {}
    for source in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
        found[str(source.relative_to(ROOT))] = names
    return found


def test_app_never_imports_training_tests_or_bench() -> None:
    offenders = {path: names & {"training", "tests", "bench", "tools"} for path, names in imports_of("app").items()}
    assert not any(offenders.values()), offenders


def test_the_app_imports_the_training_stack_only_for_the_optional_keras_check() -> None:
    users = {path for path, names in imports_of("app").items() if names & set(TRAINING_ONLY)}
    assert users == {"app/inference.py"}  # load_keras_model(), for MNIST_CHECK_WITH_KERAS


def test_serving_dependencies_leave_out_the_training_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    serving = project["dependencies"]
    assert not [d for d in serving if d.startswith(TRAINING_ONLY)], serving
    train = project["optional-dependencies"]["train"]
    assert all(any(d.startswith(name) for d in train) for name in TRAINING_ONLY), train
    assert "mnist-service[train]" in project["optional-dependencies"]["dev"]


@pytest.mark.parametrize(
    "modules", ["app.main, app.engine, app.__main__", "training.train, training.models, training.bold"]
)
def test_importing_changes_no_environment_variable(modules: str) -> None:
    script = f"import os; before = dict(os.environ); import {modules}; print(sorted(set(os.environ.items()) ^ set(before.items())))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
