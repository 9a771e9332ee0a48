"""A big ModelInfer message is converted in the thread pool, a small one on the event loop (as REST /v2
decodes bodies). It runs in a process of its own: it imports the server's stubs, which cannot share a
process with tritonclient's (conftest.py)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import asyncio, threading
from app.api.grpc import convert, servicer
from app.api.grpc.proto import open_inference_grpc_pb2 as pb
from app.api.offload import INLINE_BYTES

convert.to_inference = lambda *args: threading.get_ident()  # where the conversion ran

def request(rows):
    message = pb.ModelInferRequest(model_name="mnist-mlp")
    tensor = message.inputs.add(name="pixels", datatype="FP32", shape=[rows, 784])
    tensor.contents.fp32_contents.extend([0.5] * (rows * 784))
    return message

async def main():
    loop_thread = threading.get_ident()
    small, big = request(1), request(64)
    assert small.ByteSize() < INLINE_BYTES < big.ByteSize()
    print(await servicer.parsed(small, ["pixels"], {}) == loop_thread, await servicer.parsed(big, ["pixels"], {}) == loop_thread)

asyncio.run(main())
"""


def test_a_big_message_is_converted_off_the_event_loop() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
