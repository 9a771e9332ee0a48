"""Regenerate the Python stubs of open_inference_grpc.proto: `python -m app.api.grpc.proto.generate`
(`make grpc-stubs`). Needs grpcio-tools (the dev extra); tests/api/grpc/test_stubs.py fails when the
committed stubs differ from what this writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]  # the repository: the proto is compiled by its path from here, so that the
# generated modules import each other as `from app.api.grpc.proto import ...`
PROTO = HERE / "open_inference_grpc.proto"
STUBS = ("open_inference_grpc_pb2.py", "open_inference_grpc_pb2.pyi", "open_inference_grpc_pb2_grpc.py")


def generate(out: Path = ROOT) -> list[Path]:
    """Write the stubs under `out` (the repository root by default, so beside the proto); their paths."""
    proto = PROTO.relative_to(ROOT)
    # grpcio-tools (dev only: serving needs the generated modules, not the compiler), in a process of its own:
    # its compiler crashed a test process that held gRPC and three protobuf packages already
    args = [f"-I{ROOT}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", str(proto)]
    done = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed on {proto} ({done.returncode}): {done.stderr.strip()}")
    return [out / proto.parent / name for name in STUBS]


def main() -> int:
    for path in generate():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
