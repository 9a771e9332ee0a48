"""The batcher (app/engines/batcher.py) over fake engines: how queued tasks become batches, spill to a second engine, and fail rather than hang."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from app.answers import Classified
from app.engines import batcher as batcher_module
from app.engines.batcher import Batcher
from app.engines.messages import Done, Evaluation
from app.engines.tasks import ClassifyFiles, Task
from app.errors import NotReady
from app.model.classifier import Classifier
from tests.conftest import alive, encode


class FakeEngine:
    """Takes `seconds` per batch and records the batches it was given (and its recycling)."""

    retiring = False

    def __init__(self, seconds: float) -> None:
        self.seconds, self.batches, self.recycled = seconds, [], 0

    async def recycle(self) -> None:
        await asyncio.sleep(self.seconds)
        self.retiring = False
        self.recycled += 1

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        self.batches.append(len(tasks))
        await asyncio.sleep(self.seconds)
        outcomes = [Done(i, [[]], None) for i in range(len(tasks))]
        probabilities = np.full((len(tasks), 10), 0.1, np.float32)
        return Evaluation(outcomes, len(tasks), 0.0, probabilities, None, None, "fake", self.seconds)  # type: ignore[arg-type]

    async def close(self) -> None:
        pass


class MalformedEngine(FakeEngine):
    """Answers a batch with one outcome too few: turning it into results fails in the batcher."""

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        evaluation = await super().evaluate(tasks)
        evaluation.outcomes.pop()
        return evaluation


class RetiringEngine(FakeEngine):
    """Asks to be replaced after its first batch (as an engine whose memory stays high does)."""

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        evaluation = await super().evaluate(tasks)
        self.retiring = self.recycled == 0
        return evaluation


def test_an_answer_the_batcher_cannot_deliver_fails_its_requests_rather_than_leaving_them_waiting(
    classifier: Classifier,
) -> None:
    async def scenario() -> list[BaseException | Classified]:
        batcher = Batcher(classifier.network)
        engine = MalformedEngine(0.01)
        batcher._engines, batcher._idle = [engine], [engine]
        first = asyncio.ensure_future(batcher.run(ClassifyFiles([b"a"], "mnist", 100)))
        await asyncio.sleep(0)  # the first batch runs alone; the next two queue behind it as one batch
        rest = [asyncio.ensure_future(batcher.run(ClassifyFiles([b"b"], "mnist", 100))) for _ in range(2)]
        outcomes = await asyncio.wait_for(asyncio.gather(first, *rest, return_exceptions=True), 5)
        await batcher.close()
        return outcomes  # type: ignore[return-value]

    first, delivered, undelivered = asyncio.run(scenario())
    assert isinstance(first, ValueError)  # its batch had no outcome at all (zip's strict check)
    assert isinstance(delivered, Classified) and isinstance(undelivered, ValueError)  # results up to the fault


def test_a_queued_job_whose_request_has_gone_is_never_evaluated(classifier: Classifier) -> None:
    async def scenario() -> tuple[FakeEngine, bool]:
        batcher = Batcher(classifier.network)
        engine = FakeEngine(0.05)
        batcher._engines, batcher._idle = [engine], [engine]
        first = asyncio.ensure_future(batcher.run(ClassifyFiles([b"a"], "mnist", 100)))
        await asyncio.sleep(0)  # the first batch runs; the next two queue behind it
        gone = asyncio.ensure_future(asyncio.wait_for(batcher.run(ClassifyFiles([b"b"] * 5, "mnist", 100)), 0.01))
        kept = asyncio.ensure_future(batcher.run(ClassifyFiles([b"c"], "mnist", 100)))
        with pytest.raises(TimeoutError):  # a deadline passes while the job waits in the queue
            await gone
        await asyncio.gather(first, kept)
        await batcher.close()
        return engine, batcher.busy

    engine, busy = asyncio.run(scenario())
    assert engine.batches == [1, 1] and not busy  # the second batch is the kept job alone


@pytest.mark.parametrize(("seconds", "spills"), [(0.001, False), (0.3, True)])
def test_a_second_engine_takes_the_queue_only_behind_a_long_batch(
    classifier: Classifier, seconds: float, spills: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        batcher_module, "SPILL_AFTER_S", 0.05
    )  # wide margins: a loaded CI machine stays on the right side

    async def scenario() -> tuple[FakeEngine, FakeEngine]:
        batcher = Batcher(classifier.network)
        first, second = FakeEngine(seconds), FakeEngine(seconds)
        batcher._engines, batcher._idle = [second, first], [second, first]  # `first` is taken first
        one = asyncio.ensure_future(batcher.run(ClassifyFiles([b"a"], "mnist", 100)))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(batcher.run(ClassifyFiles([b"b"], "mnist", 100))) for _ in range(3)]
        await asyncio.gather(one, *rest)
        await batcher.close()
        return first, second

    first, second = asyncio.run(scenario())
    if spills:  # the three queued jobs went to the idle engine together, 50 ms into the first batch
        assert first.batches == [1] and second.batches == [3]
    else:  # they waited for the first engine's short batch and ran there as one batch
        assert first.batches == [1, 3] and second.batches == []


@pytest.mark.parametrize(("seconds", "spills"), [(0.0005, False), (0.1, True)])
def test_a_second_engine_takes_the_queue_at_once_once_images_have_proved_slow(
    classifier: Classifier, seconds: float, spills: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a batch whose image took HEAVY_IMAGE_S or more to prepare (a canvas, a photo), the queue no longer waits
    behind a busy engine to grow: the batcher measured that the model's share of the work is small.
    (`first` is the engine taken first, for the warm-up batch and again after it.)"""
    monkeypatch.setattr(batcher_module, "SPILL_AFTER_S", 10.0)  # no spilling by time in this test
    monkeypatch.setattr(batcher_module, "HEAVY_IMAGE_S", 0.02)

    async def scenario() -> tuple[FakeEngine, FakeEngine, float]:
        batcher = Batcher(classifier.network)
        first, second = FakeEngine(seconds), FakeEngine(seconds)
        batcher._engines, batcher._idle = [second, first], [second, first]
        await batcher.run(ClassifyFiles([b"a"], "mnist", 100))  # measured: one image took `seconds`
        measured = batcher.image_s
        one = asyncio.ensure_future(batcher.run(ClassifyFiles([b"a"], "mnist", 100)))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(batcher.run(ClassifyFiles([b"b"], "mnist", 100))) for _ in range(3)]
        await asyncio.wait_for(asyncio.gather(one, *rest), 5.0)
        await batcher.close()
        return first, second, measured

    first, second, measured = asyncio.run(scenario())
    assert measured == seconds  # what the engine reported for its one image
    if spills:  # the next queued job went to the idle engine as it arrived; the other two queued behind
        assert first.batches == [1, 1, 2] and second.batches == [1]
    else:  # they waited for the busy engine's short batch and ran there as one batch
        assert first.batches == [1, 1, 3] and second.batches == []


def test_a_full_batch_goes_to_an_idle_engine_at_once(classifier: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batcher_module, "SPILL_AFTER_S", 10.0)  # no spilling by time in this test

    async def scenario() -> tuple[FakeEngine, FakeEngine]:
        batcher = Batcher(classifier.network, max_batch_size=2)
        first, second = FakeEngine(0.2), FakeEngine(0.2)
        batcher._engines, batcher._idle = [second, first], [second, first]
        jobs = [asyncio.ensure_future(batcher.run(ClassifyFiles([b"a", b"b"], "mnist", 100))) for _ in range(2)]
        await asyncio.wait_for(asyncio.gather(*jobs), 1.0)  # both engines at once: ~0.2 s, not 0.4 s or 10 s
        await batcher.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert first.batches == [1] and second.batches == [1]


def test_a_big_job_is_a_batch_of_its_own(classifier: Classifier) -> None:
    async def scenario() -> FakeEngine:
        batcher = Batcher(classifier.network)
        engine = FakeEngine(0.05)
        batcher._engines, batcher._idle = [engine], [engine]
        first = asyncio.ensure_future(batcher.run(ClassifyFiles([b"a"], "mnist", 100)))
        await asyncio.sleep(0)  # the first job is running: the next ones queue behind it
        big = asyncio.ensure_future(batcher.run(ClassifyFiles([b"b" * batcher_module.BIG_JOB_BYTES], "mnist", 100)))
        small = [asyncio.ensure_future(batcher.run(ClassifyFiles([b"c"], "mnist", 100))) for _ in range(2)]
        await asyncio.gather(first, big, *small)
        await batcher.close()
        return engine

    assert asyncio.run(scenario()).batches == [1, 1, 2]  # the big job alone, then the two small ones together


def test_an_engine_that_asks_to_be_replaced_is_recycled_between_batches(classifier: Classifier) -> None:
    async def scenario() -> tuple[RetiringEngine, list[int]]:
        batcher = Batcher(classifier.network)
        engine = RetiringEngine(0.01)
        batcher._engines, batcher._idle = [engine], [engine]
        answered = []
        for _ in range(3):  # one after another: the second waits for the recycling, and is answered
            answered.append(len(await batcher.run(ClassifyFiles([b"a"], "mnist", 100))))
        await batcher.close()
        return engine, answered

    engine, answered = asyncio.run(scenario())
    assert engine.recycled == 1 and engine.batches == [1, 1, 1] and answered == [1, 1, 1]


def test_closing_mid_batch_stops_the_engines_without_a_retry(
    classifier: Classifier, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutdown (or Ctrl-C in the CLI) while a batch is in an engine: the request gets 503, the engines
    stop, and no engine is restarted for a batch that was abandoned, not failed."""
    noise = np.random.default_rng(0).integers(0, 256, (2500, 2500), dtype=np.uint8)
    slow = encode(Image.fromarray(noise))  # a noise PNG: tens of milliseconds to decode

    async def scenario() -> tuple[BaseException | None, list[int]]:
        batcher = Batcher(classifier.network)
        await batcher.start(processes=1)
        pids = [engine.pid for engine in batcher._engines]  # type: ignore[attr-defined]
        request = asyncio.ensure_future(batcher.run(ClassifyFiles([slow] * 8, "mnist", 40_000_000)))
        await asyncio.sleep(0.05)  # in the engine now
        await batcher.close()
        outcome = await asyncio.wait_for(asyncio.gather(request, return_exceptions=True), 10)
        return outcome[0] if isinstance(outcome[0], BaseException) else None, pids

    error, pids = asyncio.run(scenario())
    assert isinstance(error, NotReady)
    assert not any(alive(pid) for pid in pids)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")], caplog.text
