"""The engine's side (app/engines/worker.py): a batch prepared and evaluated, refused uploads freed at once, polling for the next batch."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app.engines.messages import Failed, merge
from app.engines.tasks import ClassifyFiles, Task
from app.engines.worker import await_input, evaluate
from app.model.classifier import Classifier
from tests.conftest import SEVEN, encode


def test_an_evaluation_reports_the_time_its_files_took_to_prepare(classifier: Classifier) -> None:
    """What the batcher's spreading reads: the decoding and preprocessing time, apart from the model's."""
    canvas = encode(Image.new("L", (600, 600), 255))
    tasks: list[Task] = [ClassifyFiles([SEVEN], "mnist", 10**8), ClassifyFiles([canvas, SEVEN], "mnist", 10**8)]
    started = time.perf_counter()
    evaluation = evaluate(tasks, classifier.network)
    wall = time.perf_counter() - started
    assert 0 < evaluation.prepare_seconds < wall and evaluation.seconds < wall
    merged = merge([evaluation, evaluate(tasks[:1], classifier.network)])
    assert merged.prepare_seconds > evaluation.prepare_seconds


@pytest.mark.parametrize("kind", ["blank", "truncated", "bomb"])
def test_a_refused_upload_leaves_nothing_for_the_garbage_collector(classifier: Classifier, kind: str) -> None:
    """A refused upload's error crosses back without its traceback: the failed decode's frames, and the
    arrays in them, are freed at once rather than kept in a reference cycle until the collector runs
    (which under hostile uploads let an engine's memory climb by hundreds of MiB)."""
    blank = encode(Image.new("L", (300, 300), 255), "PNG")
    data = {
        "blank": blank,
        "truncated": encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300), np.uint8)), "PNG")[
            :4000
        ],
        "bomb": encode(Image.new("L", (9000, 9000), 0), "PNG"),
    }[kind]
    task = ClassifyFiles([data], "mnist", max_pixels=1_000_000 if kind == "bomb" else 40_000_000)
    evaluate([task], classifier.network)  # warm: first calls import and cache lazily
    gc.collect()
    gc.disable()
    try:
        evaluation = evaluate([task], classifier.network)
        assert isinstance(evaluation.outcomes[0], Failed)
        del evaluation
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_an_engine_polls_for_its_next_batch_only_until_input_arrives_or_its_time_is_up() -> None:
    read, write = os.pipe()
    with os.fdopen(read, "rb") as stream:
        started = time.perf_counter()
        await_input(stream, 0.05)  # nothing comes: it gives up after its time, and the read that follows blocks
        assert 0.05 <= time.perf_counter() - started < 5
        threading.Timer(0.1, os.write, (write, b"x")).start()
        started = time.perf_counter()
        await_input(stream, 60)  # input comes: it returns then, not after a minute
        assert time.perf_counter() - started < 30 and stream.read(1) == b"x"
        os.close(write)
        started = time.perf_counter()
        await_input(stream, 60)  # the parent closed the pipe: it returns, and the read finds the end
        assert time.perf_counter() - started < 30 and stream.read(1) == b""
        started = time.perf_counter()
        await_input(stream, 0)  # 0: no polling at all
        assert time.perf_counter() - started < 1
