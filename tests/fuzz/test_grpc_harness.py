"""The gRPC converter's fuzz harness (fuzz/grpc_harness.py): its seeds are valid requests of every form,
it lets client errors through and nothing else, and a few thousand libFuzzer runs from the seeds find
nothing. Everything runs in subprocesses: the harness imports the server's protobuf stubs, which cannot
share a process with tritonclient.grpc's (tests/api/grpc/ imports those)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SEEDS = """
import json
from fuzz.grpc_inputs import convert_request, pb, run, seeds
forms, refused = set(), 0
for data in seeds():
    run(data)  # raises on anything but a client error
    try:
        convert_request(data)
    except Exception:
        refused += 1
        continue
    request = pb.ModelInferRequest.FromString(data)
    tensor = request.inputs[0]
    forms.add((request.model_name, tensor.name, tensor.datatype, len(tensor.shape), bool(request.raw_input_contents)))
print(json.dumps({"forms": sorted(forms), "refused": refused}))
"""

FINDING = """
from fuzz import grpc_inputs
from fuzz.grpc_inputs import BadRequest, run, seeds
from app.errors import NotReady
for error in (KeyError("a bug"), NotReady()):
    def broken(*args, error=error):
        raise error
    grpc_inputs.convert.to_inference = broken
    try:
        run(seeds()[0])
    except type(error):
        print("raised", type(error).__name__)
grpc_inputs.convert.to_inference = lambda *args: (_ for _ in ()).throw(BadRequest("fine"))
run(seeds()[0])
print("let through BadRequest")
"""


def python(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_seeds_are_valid_requests_of_every_form_and_pass_the_harness() -> None:
    done = python("-c", SEEDS)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    forms = {tuple(form) for form in result["forms"]}
    for model in ("mnist-mlp", "mnist-reader"):
        assert {(model, "image", "BYTES", 1, raw) for raw in (False, True)} <= forms
    for datatype in ("FP32", "UINT8"):
        assert {("mnist-mlp", "pixels", datatype, dims, raw) for dims in (2, 3) for raw in (False, True)} <= forms
    assert result["refused"] >= 3  # and a few that must be refused: wrong counts, truncated BYTES, unknown model


def test_the_harness_lets_through_client_errors_only() -> None:
    done = python("-c", FINDING)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["raised KeyError", "raised NotReady", "let through BadRequest"]


def test_a_short_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    corpus, artifacts = tmp_path / "corpus", tmp_path / "findings"
    artifacts.mkdir()
    write = "import sys, pathlib; from fuzz import seeds, grpc_inputs; seeds.write(pathlib.Path(sys.argv[1]), grpc_inputs.seeds())"
    assert python("-c", write, str(corpus)).returncode == 0
    done = python(
        "-m", "fuzz.grpc_harness", str(corpus), "-runs=20000", "-seed=1", "-max_len=65536", "-timeout=10",
        f"-artifact_prefix={artifacts}/", "-print_final_stats=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stat::number_of_executed_units: 20000" in done.stderr
    assert not list(artifacts.iterdir())
