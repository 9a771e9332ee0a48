"""`mnist-service read`: the table, JSON lines and CSV in-process, a bad file refused and named, and
`--url` against a real server answering as in-process does."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.api.test_read import READING_FIELDS, spaced_number, text_of
from tests.conftest import SEVEN, running_server

NUMBERS = {"a.png": [[0, 1, 2]], "b.png": [[3, 4], [5]], "nested/seven.png": None}


def run(*argv: str) -> Any:
    return CliRunner().invoke(cli, list(argv), catch_exceptions=False)


def rows(text: str) -> dict[str, dict[str, Any]]:
    return {row["file"]: row for row in map(json.loads, text.splitlines())}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Numbers of spaced digits, one on two lines, a hand-drawn 7 in a nested folder."""
    root = tmp_path_factory.mktemp("numbers")
    (root / "nested").mkdir()
    for name, lines in NUMBERS.items():
        (root / name).write_bytes(SEVEN if lines is None else spaced_number(lines, dark_on_light=True))
    return root


def expected(name: str) -> str:
    lines = NUMBERS[name]
    return "7" if lines is None else text_of(lines)


def test_table(folder: Path) -> None:
    result = run("read", str(folder), "-j", "1")
    assert result.exit_code == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["file", "text", "confidence", "digits", "notes"]
    table = {line.split()[0]: line.split()[1:] for line in lines}
    assert list(table) == [str(folder / name) for name in NUMBERS]
    for name in NUMBERS:
        text, confidence, digits = table[str(folder / name)][:3]
        assert text == expected(name).replace("\n", "\\n")  # a row per file, whatever its lines
        assert 0 < float(confidence) <= 1 and int(digits) == len(expected(name).replace("\n", ""))


def test_json_lines_are_v1_readings(folder: Path) -> None:
    result = run("read", str(folder), "--json", "-j", "1")
    assert result.exit_code == 0, result.stderr
    answers = rows(result.stdout)
    assert list(answers) == [str(folder / name) for name in NUMBERS]
    for name in NUMBERS:
        answer = answers[str(folder / name)]
        assert set(answer) == READING_FIELDS | {"file"}
        assert answer["text"] == expected(name) and len(answer["digits"]) == len(expected(name).replace("\n", ""))


def test_csv(folder: Path) -> None:
    result = run("read", str(folder / "b.png"), str(folder / "a.png"), "--csv", "-j", "1")
    assert result.exit_code == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == ["file", "text", "confidence", "digits", "notes"]
    assert [row["file"] for row in table] == [str(folder / "b.png"), str(folder / "a.png")]
    assert [row["text"] for row in table] == [expected("b.png"), expected("a.png")]  # the lines kept whole
    assert [row["digits"] for row in table] == ["3", "3"] and table[0]["notes"] == "inverted dark-on-light"


def test_url_against_a_real_server_answers_as_in_process(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "blank.png").write_bytes(spaced_number([[]]))
    (tmp_path / "notes.txt").write_text("the numbers are in the other files\n")
    local = rows(run("read", str(folder), "--json", "-j", "1").stdout)
    with running_server({"MNIST_ENGINE_PROCESSES": "1"}) as url:
        remote = run("read", str(folder), "--json", "--url", url, "--batch-size", "2")
        refused = run("read", str(folder / "a.png"), str(tmp_path), "--url", url)
    assert remote.exit_code == 0, remote.stderr
    answers = rows(remote.stdout)
    assert list(answers) == list(local)
    for name, answer in answers.items():
        assert answer["text"] == local[name]["text"] and answer["model_version"] == local[name]["model_version"]
        for digit, in_process in zip(answer["digits"], local[name]["digits"], strict=True):
            assert digit["box"] == in_process["box"]
            np.testing.assert_allclose(digit["probabilities"], in_process["probabilities"], atol=1e-6)
    # one bad file fails a batch request: it is refused and named, and the others are answered
    assert refused.exit_code == 1 and len(refused.stdout.splitlines()) == 2  # the header and a.png
    errors = refused.stderr.splitlines()
    assert errors[0].startswith(f"error: {tmp_path / 'blank.png'}: ") and errors[0].endswith("(blank_image)")
    assert errors[1].startswith(f"error: {tmp_path / 'notes.txt'}: ") and "(unsupported_media_type)" in errors[1]
