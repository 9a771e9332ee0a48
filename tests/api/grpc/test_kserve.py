"""KServe's InferenceGRPCClient against a real server: kserve_client.py's tests, in a pytest process of
their own (KServe's protos and tritonclient's cannot share one), without this package's conftest.py,
which imports tritonclient."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.api.grpc.conftest import GrpcServerURL
from tests.conftest import ROOT


def test_kserve_client(server: GrpcServerURL) -> None:
    env = {**os.environ, "MNIST_TEST_GRPC": server.grpc, "MNIST_TEST_URL": str(server)}
    suite = ROOT / "tests" / "api" / "grpc" / "kserve_client.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider", "--noconftest"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
