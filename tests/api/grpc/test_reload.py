"""A hot reload under gRPC load: RepositoryModelLoad swaps the model while clients keep calling
ModelInfer, and no call fails (as tests/model/test_reload.py shows for REST)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import tritonclient.grpc as triton

from app.model.classifier import Classifier
from tests.api.grpc.conftest import grpc_server, image_input, pixels_input
from tests.conftest import SEVEN, copy_model, load_sample
from tests.model.test_reload import nudged, write_variant


def test_a_reload_under_grpc_load_fails_no_call(tmp_path: Path) -> None:
    served = copy_model(tmp_path / "mnist-mlp.keras")
    old = Classifier.load(served).version
    x, _ = load_sample()
    answers: list[tuple[float, str]] = []  # (sent at, the version that answered)
    failures: list[str] = []
    stop = threading.Event()
    with grpc_server({"MNIST_MODEL_PATH": str(served), "MNIST_MODEL_POLL_S": "0"}) as server:

        def client(images: bool) -> None:
            tensor = image_input([SEVEN] * 3) if images else pixels_input(x[:16])
            with triton.InferenceServerClient(server.grpc) as grpc_client:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        result = grpc_client.infer("mnist-mlp", [tensor])
                    except Exception as exc:  # any failure is the test's finding
                        failures.append(f"{type(exc).__name__}: {exc}")
                        continue
                    answers.append((sent, result.get_response().model_version))

        threads = [threading.Thread(target=client, args=(images,)) for images in (True, False, True)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        new = Classifier.load(write_variant(served, weights=nudged)).version
        with triton.InferenceServerClient(server.grpc) as admin:
            admin.load_model("mnist-mlp")
            loaded_at = time.monotonic()
            assert admin.is_model_ready("mnist-mlp", new)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not failures, failures[:5]
    assert old != new and {version for _, version in answers} == {old, new}
    after = [version for sent, version in answers if sent > loaded_at]
    assert after and set(after) == {new}
