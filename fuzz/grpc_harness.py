"""The atheris harness on the gRPC request converter: one input is the bytes of one ModelInferRequest,
taken as the server takes them (fuzz/grpc_inputs.py: parse, check, convert.to_inference, and the answer
back through convert.to_response). Anything but the service's own client errors is a crash, and
libFuzzer keeps the input. `make fuzz` runs it after the upload harness (fuzz/__main__.py).

    python -m fuzz.grpc_harness CORPUS_DIR [libFuzzer flags]    # fuzz
    python -m fuzz.grpc_harness artifacts/fuzz/grpc/crash-<sha1>  # reproduce one input

It imports the server's protobuf stubs: never tritonclient.grpc in the same process.
"""

from __future__ import annotations

import sys

import atheris

# what the converter imports, first and uninstrumented: instrument_imports instruments every module first
# imported inside it, and the data plane's (asyncio, pydantic, the engines...) took a minute to instrument
import app.answers
import app.api.grpc.proto.open_inference_grpc_pb2
import app.api.v2.types
import app.dataplane

with atheris.instrument_imports():  # Python-level coverage of the converter and the codec it shares with REST /v2
    import app.api.grpc.convert
    import app.api.v2.codec
    import app.api.v2.models  # noqa: F401

from fuzz.grpc_inputs import run  # imported after: the modules above instrumented

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    run(data)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
