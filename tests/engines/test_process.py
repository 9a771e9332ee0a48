"""The child engines (app/engines/process.py): started side by side, a crash or a stall costs the child and refuses only the file that caused it, a dead child replaced."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from app.engines.messages import Done, Evaluation, Failed
from app.engines.process import ChildEngine
from app.engines.tasks import ClassifyFiles, Task
from app.errors import InvalidImage, NotReady
from app.model.classifier import Classifier
from tests.conftest import SEVEN, alive


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
        assert engine.pid != before and isinstance(
            await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)]), Evaluation
        )
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
        evaluation = await engine.evaluate(
            [ClassifyFiles([SEVEN], "mnist", 10**6), ClassifyFiles([b"HANG"], "mnist", 10**6)]
        )
        assert engine.pid is not None
        serving = alive(engine.pid) and isinstance(
            await engine.evaluate([ClassifyFiles([SEVEN], "mnist", 10**6)]), Evaluation
        )
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
