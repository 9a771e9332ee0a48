"""`mnist-service`, the command line (app/cli/): each output format, refused files and the exit
statuses, `--url` against a real server and against a stub that answers 503 first, HEIC and AVIF,
Ctrl-C, and the serve and train commands."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import app.preprocessing  # noqa: F401  # registers pillow-heif's HEIF opener and saver with Pillow
from app.cli import cli
from bench.procs import children, is_engine
from tests.conftest import ROOT, SEVEN, encode, load_sample, running_server
from tools.uploads import make_upload

KINDS = ("scan_jpeg", "phone_photo", "canvas_black", "canvas_colour", "png_16bit", "webp")
CONSOLE_SCRIPT = Path(sys.executable).with_name("mnist-service")


def run(*argv: str) -> Any:
    """The command line in this process, stdout and stderr apart."""
    return CliRunner().invoke(cli, list(argv), catch_exceptions=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of realistic uploads, a nested one, and a hidden file (left out)."""
    root = tmp_path_factory.mktemp("uploads")
    digits, labels = load_sample()
    rng = np.random.default_rng(0)
    for i, kind in enumerate(KINDS):
        (root / f"{i}-{kind}-digit{labels[i]}").write_bytes(make_upload(kind, digits[i], rng))
    (root / "nested").mkdir()
    (root / "nested" / "seven.png").write_bytes(SEVEN)
    (root / ".DS_Store").write_bytes(b"not an image, and hidden")
    return root


@pytest.fixture(scope="module")
def with_bad(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    """Some good uploads, a text file and a truncated PNG."""
    root = tmp_path_factory.mktemp("with-bad")
    for good in sorted(folder.glob("[0-2]-*")):
        (root / good.name).write_bytes(good.read_bytes())
    (root / "notes.txt").write_text("the digits are in the other files\n")
    (root / "truncated.png").write_bytes(SEVEN[: len(SEVEN) // 2])
    return root


def json_lines(text: str) -> dict[str, dict[str, Any]]:
    return {row["file"]: row for row in map(json.loads, text.splitlines())}


def test_table(folder: Path) -> None:
    result = run("predict", str(folder), "-j", "1")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["file", "digit", "confidence", "is_digit", "digit_score", "notes"]
    assert len(rows) == len(KINDS) + 1 and result.stderr == ""
    assert all(row.split()[3] in ("true", "false") for row in rows)
    assert rows[-1].startswith(str(folder / "nested" / "seven.png")) and rows[-1].split()[1] == "7"
    assert all(row.split()[0].endswith(f"digit{row.split()[1]}") for row in rows[:-1])


def test_json_lines_are_v1_predictions(folder: Path) -> None:
    result = run("predict", str(folder), "--json", "-j", "2")
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result.stdout)
    assert list(rows) == sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.name != ".DS_Store")
    for row in rows.values():
        assert set(row) == {
            "file", "digit", "confidence", "probabilities", "preprocess", "notes", "model_version", "digit_score", "is_digit",
        }  # fmt: skip
        assert row["digit"] == int(np.argmax(row["probabilities"])) and len(row["probabilities"]) == 10
        assert abs(sum(row["probabilities"]) - 1) < 1e-4 and isinstance(row["notes"], list)
    assert rows[str(folder / "nested" / "seven.png")]["digit"] == 7


def test_csv(folder: Path) -> None:
    result = run("predict", str(folder / "nested"), str(folder / "0-*"), "--csv", "-j", "1")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["file", "digit", "confidence", "is_digit", "digit_score", "notes"]
    assert [row["file"] for row in rows] == [str(folder / "nested" / "seven.png"), *map(str, folder.glob("0-*"))]
    assert rows[0]["digit"] == "7" and 0 < float(rows[0]["confidence"]) <= 1


def test_a_bad_file_is_refused_and_named_the_others_answered(with_bad: Path) -> None:
    result = run("predict", str(with_bad), "--json", "-j", "1")
    assert result.exit_code == 1
    assert len(json_lines(result.stdout)) == 3
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"error: {with_bad / 'notes.txt'}: ") and "(unsupported_media_type)" in errors[0]
    assert errors[1].startswith(f"error: {with_bad / 'truncated.png'}: ") and "(invalid_image)" in errors[1]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["predict"], id="no-path"),
        pytest.param(["predict", "/nonexistent/folder"], id="no-such-path"),
        pytest.param(["predict", "/nonexistent/*.png"], id="glob-matching-nothing"),
        pytest.param(["predict", "{folder}", "--json", "--csv"], id="json-and-csv"),
        pytest.param(["predict", "{folder}", "--preprocess", "fancy"], id="unknown-mode"),
        pytest.param(["predict", "{folder}", "--no-such-option"], id="unknown-option"),
        pytest.param(["predict", "{folder}/.DS_Store/.."], id="no-files"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], folder: Path, tmp_path: Path) -> None:
    argv = [arg.replace("{folder}", str(folder)) for arg in argv]
    if argv[-1].endswith("/.."):  # a folder holding only hidden files
        (tmp_path / ".hidden.png").write_bytes(SEVEN)
        argv[-1] = str(tmp_path)
    result = run(*argv)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_heic_and_avif_are_answered(tmp_path: Path) -> None:
    digit = Image.fromarray(255 - load_sample()[0][0]).resize((160, 160)).convert("RGB")  # a 7, dark on light
    for fmt in ("HEIF", "AVIF", "PNG"):
        (tmp_path / f"seven.{fmt.lower()}").write_bytes(
            encode(digit, fmt, quality=90) if fmt != "PNG" else encode(digit)
        )
    result = run("predict", str(tmp_path), "--json", "-j", "1")
    assert result.exit_code == 0, result.stderr
    digits = {Path(name).suffix: row["digit"] for name, row in json_lines(result.stdout).items()}
    assert digits == {".heif": 7, ".avif": 7, ".png": 7}


def test_url_against_a_real_server_answers_as_in_process(folder: Path, with_bad: Path) -> None:
    local = json_lines(run("predict", str(folder), "--json", "-j", "1").stdout)
    with running_server({"MNIST_ENGINE_PROCESSES": "1"}) as url:
        remote = run("predict", str(folder), "--json", "--url", url, "--batch-size", "3")
        refused = run("predict", str(with_bad), "--json", "--url", url)
    assert remote.exit_code == 0, remote.stderr
    answers = json_lines(remote.stdout)
    assert list(answers) == list(local)
    for name, row in answers.items():
        assert row["digit"] == local[name]["digit"] and row["notes"] == local[name]["notes"]
        np.testing.assert_allclose(row["probabilities"], local[name]["probabilities"], atol=1e-6)
    # one bad file fails a whole batch request: it is refused, and the others are sent again
    assert refused.exit_code == 1 and len(json_lines(refused.stdout)) == 3
    assert [line.split(": ")[1] for line in refused.stderr.splitlines()] == [
        str(with_bad / "notes.txt"),
        str(with_bad / "truncated.png"),
    ]


class Stub(BaseHTTPRequestHandler):
    """A service that answers 503 + Retry-After to the first batch, then a digit 3 for each file, with
    the fields a later model adds (is_digit, digit_score)."""

    limits: ClassVar[dict[str, int]] = {"max_batch_files": 2, "max_batch_body_bytes": 10**6}
    batches: ClassVar[list[int]] = []  # files in each batch request received, 503s included

    def do_GET(self) -> None:
        self._answer(200, {"limits": self.limits})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        files = body.count(b'name="files"')
        self.batches.append(files)
        if len(self.batches) == 1:
            self._answer(
                503, {"detail": "Too many requests; retry shortly.", "code": "overloaded"}, {"Retry-After": "1"}
            )
            return
        probabilities = [0.01] * 10
        probabilities[3] = 0.91
        prediction = {"digit": 3, "confidence": 0.91, "probabilities": probabilities, "notes": ["stub"],
                      "model_version": "stub", "is_digit": True, "digit_score": 0.97}  # fmt: skip
        self._answer(200, {"predictions": [prediction] * files, "model_version": "stub"})

    def _answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    Stub.batches = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_503_is_retried_after_retry_after_and_later_fields_are_shown(stub: str, folder: Path) -> None:
    files = sorted(map(str, folder.glob("[0-4]-*")))
    result = run("predict", *files, "--json", "--url", stub, "--concurrency", "1")
    assert result.exit_code == 0, result.stderr
    assert Stub.batches == [2, 2, 2, 1]  # the first batch twice (503, then 200), within max_batch_files
    rows = json_lines(result.stdout)
    assert list(rows) == files and all(r["is_digit"] is True and r["digit_score"] == 0.97 for r in rows.values())
    table = run("predict", *files, "--url", stub).stdout.splitlines()
    assert table[0].split() == ["file", "digit", "confidence", "is_digit", "digit_score", "notes"]
    assert table[1].split()[1:] == ["3", "0.9100", "true", "0.9700", "stub"]
    rows_csv = list(csv.DictReader(io.StringIO(run("predict", *files, "--csv", "--url", stub).stdout)))
    assert rows_csv[0]["is_digit"] == "true" and rows_csv[0]["digit_score"] == "0.97"


def test_an_unreachable_service_is_exit_2(folder: Path) -> None:
    result = run("predict", str(folder), "--url", "http://127.0.0.1:9", "--retries", "0")
    assert result.exit_code == 2 and "cannot reach" in result.stderr


def engines_of(pid: int) -> list[int]:
    return [child for child in children(pid) if is_engine(child)]


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")  # a zombie is gone
    except OSError:
        return True


def default_sigint() -> None:
    """SIGINT as a terminal's shell leaves it for a command: a shell without job control (CI, `cmd &`)
    starts commands with it ignored, and Python then ignores it too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_promptly_with_130_and_no_engines_left(tmp_path: Path) -> None:
    digits = load_sample()[0]
    rng = np.random.default_rng(1)
    photos = [make_upload("phone_photo", digits[i], rng) for i in range(8)]
    for i in range(3000):  # far more than are done before the signal
        (tmp_path / f"{i:04d}.jpg").write_bytes(photos[i % len(photos)])
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "predict", str(tmp_path), "--json", "-j", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline()  # answering: the engines run
        engines = engines_of(process.pid)
        assert len(engines) == 2
        os.killpg(process.pid, signal.SIGINT)  # as a terminal sends Ctrl-C: to the whole process group
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr and "engine process failed" not in stderr
    deadline = time.monotonic() + 10
    while not all(map(gone, engines)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(gone, engines))


def test_the_console_script_is_installed() -> None:
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert all(command in result.stdout for command in ("predict", "serve", "train", "--install-completion"))


def test_serve_runs_the_server(tmp_path: Path) -> None:
    import httpx

    from tests.conftest import free_port, wait_ready

    port = free_port()
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "serve", "--port", str(port)], cwd=tmp_path,
        env={**os.environ, "MNIST_ENGINE_PROCESSES": "1", "MNIST_LOG_LEVEL": "warning"}, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(process, f"http://127.0.0.1:{port}")
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", content=SEVEN, headers={"Content-Type": "image/png"})
        assert answer.status_code == 200 and answer.json()["digit"] == 7
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_train_runs_the_training_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("runpy.run_module", lambda name, **_: calls.append((name, list(sys.argv))))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert run("train", "--preset", "default", "--help").exit_code == 0
    assert calls == [("training", ["mnist-service train", "--preset", "default", "--help"])]


def test_train_says_when_training_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "training", None)  # as in the serving image, which has no training/
    result = run("train", "--preset", "default")
    assert result.exit_code == 2 and "training isn't installed" in result.stderr
