"""The engine processes behind the batcher: same answers as in-process, a dead child replaced without a
failed request, nothing left running after shutdown."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.answers import Classified
from app.config import Settings
from app.contract import flatten_and_scale
from app.engines import batcher as batcher_module
from app.engines.batcher import Batcher
from app.engines.environment import SPIN_ENV
from app.engines.messages import Done, Evaluation, Failed, merge
from app.engines.process import ChildEngine
from app.engines.tasks import ClassifyFiles, Task
from app.engines.worker import await_input, evaluate
from app.errors import InvalidImage, NotReady
from app.main import create_app
from app.model.classifier import Classifier
from app.model.network import Network
from app.preprocessing import preprocess
from tests.conftest import SEVEN, encode


def child_pids(client: TestClient) -> list[int]:
    return [engine.pid for engine in client.app_state["dataplane"].current.batcher._engines]  # type: ignore[attr-defined]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # not a zombie: reaped or running


@pytest.fixture
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(engine_processes=2), classifier)) as c:
        yield c


def test_child_processes_answer_as_the_thread_does(classifier: Classifier, client: TestClient) -> None:
    files = [("files", (f"{i}.png", SEVEN, "image/png")) for i in range(5)] + [
        ("files", ("x.txt", b"nope", "text/plain"))
    ]
    with TestClient(create_app(Settings(engine_processes=0), classifier)) as threaded:
        for path, kwargs in (("/v1/predict", {"files": {"file": SEVEN}}), ("/v1/predict/batch", {"files": files[:5]})):
            a, b = client.post(path, **kwargs), threaded.post(path, **kwargs)  # type: ignore[arg-type]
            assert a.status_code == b.status_code == 200 and a.json() == b.json()
        a, b = client.post("/v1/predict/batch", files=files), threaded.post("/v1/predict/batch", files=files)
        assert a.status_code == b.status_code == 415 and a.json() == b.json() and "File 5" in a.json()["detail"]


def test_a_killed_child_is_replaced_and_no_request_fails(client: TestClient) -> None:
    batcher = client.app_state["dataplane"].current.batcher
    victim = batcher._idle[-1].pid  # the engine the next request goes to
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    for _ in range(3):
        response = client.post("/v1/predict", files={"file": SEVEN})
        assert response.status_code == 200 and response.json()["digit"] == 7
    now = child_pids(client)
    assert victim not in now and len(now) == 2 and all(alive(pid) for pid in now)


def test_shutdown_leaves_no_child_running(classifier: Classifier) -> None:
    with TestClient(create_app(Settings(engine_processes=2), classifier)) as c:
        assert c.post("/v1/predict", files={"file": SEVEN}).status_code == 200
        pids = child_pids(c)
        assert all(alive(pid) for pid in pids)
    assert not any(alive(pid) for pid in pids)


def test_engines_start_side_by_side_and_one_that_cannot_start_stops_the_rest(
    classifier: Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_start = ChildEngine.start
    starting, most, calls = 0, 0, 0
    pids: list[int] = []

    async def counted(network: object, timeout_s: float = 30.0, spin_s: float = 0.0) -> ChildEngine:
        nonlocal starting, most, calls
        starting += 1
        most = max(most, starting)
        calls += 1
        try:
            if calls == 5:  # the third of the second start_all call fails
                await asyncio.sleep(0.05)
                raise RuntimeError("no room for another process")
            engine = await real_start(network, timeout_s, spin_s)  # type: ignore[arg-type]
            pids.append(engine.pid or 0)
            return engine
        finally:
            starting -= 1

    monkeypatch.setattr(ChildEngine, "start", staticmethod(counted))

    async def scenario() -> None:
        started = await ChildEngine.start_all(classifier.network, 2, 30.0)
        assert most == 2, "both were starting at once"
        assert all(alive(engine.pid or 0) for engine in started)
        for engine in started:
            await engine.close()
        pids.clear()
        with pytest.raises(RuntimeError, match="no room"):
            await ChildEngine.start_all(classifier.network, 3, 30.0)

    asyncio.run(scenario())
    assert len(pids) == 2 and not any(alive(pid) for pid in pids), "the two that started were stopped"


def test_probabilities_cross_the_pipe_exactly(
    classifier: Classifier, client: TestClient, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    digit = sample[0][3]
    got = client.post("/v1/predict", files={"file": encode(Image.fromarray(digit))}).json()["probabilities"]
    expected = classifier.predict_proba(digit.reshape(1, 784).astype(np.float32) / 255)[0]
    np.testing.assert_array_equal(np.float32(got), expected)


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


@pytest.mark.parametrize(("seconds", "spills"), [(0.001, False), (0.3, True)])
def test_a_second_engine_takes_the_queue_only_behind_a_long_batch(
    classifier: Classifier, seconds: float, spills: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batcher_module, "SPILL_AFTER_S", 0.05)  # wide margins: a loaded CI machine stays on the right side

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


class CrashOnMarker(ChildEngine):
    """A real engine process, killed whenever a batch holds the upload b"CRASH" (as a decoder crash would)."""

    async def _evaluate(self, tasks: list[Task]) -> Evaluation:
        if any(source == b"CRASH" for task in tasks if isinstance(task, ClassifyFiles) for source in task.files):
            await self.kill()
        return await super()._evaluate(tasks)


def test_an_upload_that_kills_the_engine_is_refused_and_the_rest_answered(classifier: Classifier) -> None:
    async def scenario() -> tuple[Evaluation, int, bool]:
        engine = await CrashOnMarker.start(classifier.network)
        before = engine.pid
        tasks = [
            ClassifyFiles([SEVEN], "mnist", 10**6),
            ClassifyFiles([SEVEN, b"CRASH", SEVEN], "mnist", 10**6),
            ClassifyFiles([SEVEN], "mnist", 10**6),
        ]
        evaluation = await engine.evaluate(tasks)
        assert engine.pid != before and isinstance(await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)]), Evaluation)
        assert engine.pid is not None
        serving = alive(engine.pid)
        await engine.close()
        return evaluation, before, serving

    evaluation, before, serving = asyncio.run(scenario())
    first, crashed, last = evaluation.outcomes
    assert isinstance(first, Done) and isinstance(last, Done) and int(evaluation.answer(last).digits[0]) == 7
    assert isinstance(crashed, Failed) and crashed.index == 1 and isinstance(crashed.error, InvalidImage)
    assert "crashed the decoder" in str(crashed.error)
    assert evaluation.batch_size == 2 and not alive(before) and serving


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


class HangOnMarker(ChildEngine):
    """A real engine process, stopped (SIGSTOP: it never answers) whenever a batch holds b"HANG"."""

    async def _evaluate(self, tasks: list[Task]) -> Evaluation:
        if any(source == b"HANG" for task in tasks if isinstance(task, ClassifyFiles) for source in task.files):
            assert self.pid is not None
            os.kill(self.pid, signal.SIGSTOP)
        return await super()._evaluate(tasks)


def test_an_upload_that_stalls_the_engine_is_refused_after_the_timeout(classifier: Classifier) -> None:
    async def scenario() -> tuple[Evaluation, int, bool]:
        engine = await HangOnMarker.start(classifier.network, timeout_s=0.5)
        before = engine.pid
        evaluation = await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6), ClassifyFiles([b"HANG"], "mnist", 10**6)])
        assert engine.pid is not None
        serving = alive(engine.pid) and isinstance(await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)]), Evaluation)
        await engine.close()
        return evaluation, before, serving

    evaluation, before, serving = asyncio.run(scenario())
    done, stalled = evaluation.outcomes
    assert isinstance(done, Done) and int(evaluation.answer(done).digits[0]) == 7
    assert (
        isinstance(stalled, Failed) and isinstance(stalled.error, InvalidImage) and "over 0.5 s" in str(stalled.error)
    )
    assert not alive(before) and serving


class CrashOnCompany(ChildEngine):
    """A real engine process, killed whenever a batch holds more than one file (a fault that only shows
    in company: every file is fine alone)."""

    async def _evaluate(self, tasks: list[Task]) -> Evaluation:
        if sum(task.size for task in tasks) > 1:
            await self.kill()
        return await super()._evaluate(tasks)


def test_a_retry_keeps_the_results_it_got(classifier: Classifier) -> None:
    """A request whose files fail together but each succeed alone is answered, not a 5xx."""

    async def scenario() -> Evaluation:
        engine = await CrashOnCompany.start(classifier.network)
        try:
            return await engine.evaluate([ClassifyFiles([SEVEN, SEVEN, SEVEN], "mnist", 10**6, keep_pixels=True)])
        finally:
            await engine.close()

    evaluation = asyncio.run(scenario())
    (outcome,) = evaluation.outcomes
    assert isinstance(outcome, Done) and evaluation.answer(outcome).digits.tolist() == [7, 7, 7]
    assert evaluation.batch_size == 3 and len(outcome.notes) == 3
    assert outcome.pixels is not None and [p.shape for p in outcome.pixels] == [(28, 28)] * 3


def test_the_engine_timeout_grows_with_the_files_in_a_batch(classifier: Classifier) -> None:
    engine = ChildEngine(classifier.network, timeout_s=2.0)
    one, sixteen_more = (
        [ClassifyFiles([SEVEN], "mnist", 10**6)],
        [ClassifyFiles([SEVEN] * 9, "mnist", 10**6), ClassifyFiles([SEVEN] * 8, "mnist", 10**6)],
    )
    assert engine.timeout_for(one) == 2.0 and engine.timeout_for(sixteen_more) == 4.0


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


def test_no_upload_is_decoded_in_the_server_process(classifier: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever its size, an upload is preprocessed in an engine process, never in the server's."""

    def in_the_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload was decoded in the server process")

    monkeypatch.setattr("app.engines.tasks.classify.preprocess", in_the_server)
    rng = np.random.default_rng(0)
    big = encode(Image.fromarray(rng.integers(0, 256, (800, 800), dtype=np.uint8)))  # noise: ~640 KB
    assert len(big) > batcher_module.BIG_JOB_BYTES
    seven = Image.open(io.BytesIO(SEVEN)).convert("L").resize((600, 600))
    with TestClient(create_app(Settings(engine_processes=1), classifier)) as client:
        for data in (SEVEN, big, encode(seven)):
            response = client.post("/v1/predict", files={"file": ("x.png", data, "image/png")})
            assert response.status_code in (200, 422), response.text
        batch = client.post("/v1/predict/batch", files=[("files", ("a.png", SEVEN)), ("files", ("b.png", big))])
        assert batch.status_code in (200, 422), batch.text


class RetiringEngine(FakeEngine):
    """Asks to be replaced after its first batch (as an engine whose memory stays high does)."""

    async def evaluate(self, tasks: list[Task]) -> Evaluation:
        evaluation = await super().evaluate(tasks)
        self.retiring = self.recycled == 0
        return evaluation


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


def test_an_engine_killed_while_idle_is_replaced_at_once(classifier: Classifier) -> None:
    async def scenario() -> tuple[int, int | None, bool]:
        engine = await ChildEngine.start(classifier.network)
        before = engine.pid
        assert before is not None
        os.kill(before, signal.SIGKILL)
        for _ in range(100):  # no batch is sent: the engine notices the exit itself
            await asyncio.sleep(0.05)
            if engine.pid not in (None, before) and alive(engine.pid):  # type: ignore[arg-type]
                break
        after = engine.pid
        answered = isinstance(await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)]), Evaluation)
        await engine.close()
        return before, after, answered

    before, after, answered = asyncio.run(scenario())
    assert after is not None and after != before and not alive(before) and answered


class DiesWhileStarting(ChildEngine):
    """A real engine whose next `failures` children die while starting, as one killed from outside would."""

    failures = 0

    async def _spawn(self) -> None:
        await super()._spawn()
        if self.failures:
            self.failures -= 1
            await self.kill()
            raise EOFError("killed while starting")


def test_a_child_that_dies_while_starting_is_replaced_again_then_the_engine_says_503(classifier: Classifier) -> None:
    async def scenario() -> tuple[Evaluation, type[BaseException] | None]:
        engine = await DiesWhileStarting.start(classifier.network)
        assert engine.pid is not None
        engine.failures = 1
        os.kill(engine.pid, signal.SIGKILL)  # the batch finds it dead; its first replacement dies too
        await asyncio.sleep(0.2)
        answered = await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)])
        engine.failures = 10
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        try:
            await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)])
            raised = None
        except Exception as exc:
            raised = type(exc)
        engine.failures = 0
        await engine.close()
        return answered, raised

    answered, raised = asyncio.run(scenario())
    assert isinstance(answered.outcomes[0], Done)
    assert raised is NotReady


def test_an_engine_whose_child_dies_while_it_first_starts_starts_another(classifier: Classifier) -> None:
    """A server's engines are started by its lifespan: a child killed meanwhile (chaos, the OOM killer)
    must not fail the start, or uvicorn stops the whole server (a worker that fails to start)."""

    class DiesTwice(DiesWhileStarting):
        failures = 2

    class DiesEveryTime(DiesWhileStarting):
        failures = 10

    async def scenario() -> tuple[Evaluation, type[BaseException] | None]:
        engine = await DiesTwice.start(classifier.network)
        answered = await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)])
        await engine.close()
        try:
            await DiesEveryTime.start(classifier.network)
            raised = None
        except Exception as exc:
            raised = type(exc)
        return answered, raised

    answered, raised = asyncio.run(scenario())
    assert isinstance(answered.outcomes[0], Done)
    assert raised is NotReady


class AlreadyGone:
    """A child transport whose process is gone before its exit is reported: kill() raises, as uvloop's does."""

    def __init__(self, transport: object) -> None:
        self.transport = transport

    def kill(self) -> None:
        self.transport.kill()  # type: ignore[attr-defined]
        raise ProcessLookupError

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)


def test_killing_a_child_whose_exit_is_not_yet_reported_is_not_an_error(classifier: Classifier) -> None:
    async def scenario() -> bool:
        engine = await ChildEngine.start(classifier.network)
        engine._child = AlreadyGone(engine._child)  # type: ignore[assignment]
        await engine.kill()  # raised ProcessLookupError out of the retry path: a 500 under make chaos
        answered = isinstance(await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)]), Evaluation)
        await engine.close()
        return answered

    assert asyncio.run(scenario())


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


def test_the_engine_spin_setting_reaches_the_children(classifier: Classifier) -> None:
    with TestClient(create_app(Settings(engine_processes=1, engine_spin_ms=2.5), classifier)) as c:
        (pid,) = child_pids(c)
        environ = dict(
            entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry
        )
        assert environ[SPIN_ENV] == "2.5"
        assert c.post("/v1/predict", files={"file": SEVEN}).json()["digit"] == 7
        assert c.post("/v1/predict", files={"file": SEVEN}).json()["digit"] == 7  # the next batch, after polling


def post_seven(client: TestClient, kind: str) -> int:
    """The digit answered for the hand-drawn 7, sent as a file to /v1 or as MNIST-form pixels to /v2."""
    if kind == "file":
        response = client.post("/v1/predict", files={"file": SEVEN})
        assert response.status_code == 200, response.text
        return int(response.json()["digit"])
    rows = flatten_and_scale(preprocess(SEVEN).pixels[None])
    body = {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": rows.ravel().tolist()}]}
    response = client.post("/v2/models/mnist-mlp/infer", json=body)
    assert response.status_code == 200, response.text
    (digit,) = [output["data"] for output in response.json()["outputs"] if output["name"] == "digit"]
    return int(digit[0])


@pytest.mark.parametrize("kind", ["file", "pixels"])
def test_no_evaluation_runs_in_the_server_process(
    classifier: Classifier, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/v2's pixel rows are evaluated in an engine, as files are: the server's own copy of the network is never called."""

    def in_the_server(*args: object) -> None:
        raise AssertionError("the model was evaluated in the server process")

    with TestClient(create_app(Settings(engine_processes=1), classifier)) as client:
        monkeypatch.setattr(Network, "__call__", in_the_server)
        assert post_seven(client, kind) == 7


@pytest.mark.parametrize("kind", ["file", "pixels"])
def test_a_request_waits_on_and_recovers_from_a_stopped_engine(classifier: Classifier, kind: str) -> None:
    """A request whose engine is frozen (SIGSTOP) waits for the engine timeout, then is answered by the
    engine that replaces it: /v2 pixel rows as /v1 files."""
    with TestClient(create_app(Settings(engine_processes=1, engine_timeout_s=1.0), classifier)) as client:
        assert post_seven(client, kind) == 7
        (victim,) = child_pids(client)
        os.kill(victim, signal.SIGSTOP)
        started = time.perf_counter()
        assert post_seven(client, kind) == 7
        assert time.perf_counter() - started >= 1.0  # it waited for the timeout, not for a thread in the server
        (replacement,) = child_pids(client)
        assert replacement != victim and alive(replacement) and not alive(victim)
