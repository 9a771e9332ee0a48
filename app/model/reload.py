"""Hot model reload: notice a new model at MNIST_MODEL_PATH, pass it through the gate, swap it in.

Three triggers, one path (`Reloader.reload`):
- polling every MNIST_MODEL_POLL_S seconds: the model's, its metadata's and its reading calibration's
  size and mtime, then the sha256 when they changed (0 turns polling off);
- SIGHUP to the serving process;
- POST /v2/repository/models/mnist-mlp/load (Triton's model repository extension).

A candidate is served only if it loads (sha256 against its metadata, Dense layers only, the contract's
shapes: app/model/keras_file.py) and scores high enough on the gate sample (app/model/gate.py). A refused one
leaves the current model serving; the log and `mnist_model_reloads_total` say why. The same model with a
new reading calibration (`python -m training.reading_calibration` refits it after training) keeps its
engines: only /v1/read's confidence changes.

A file caught half-written (`cp` writes in place; the training CLI renames into place, which is atomic)
fails those checks too. When polling finds a candidate it has not seen before failing, it is taken to
be still arriving: logged once, retried at the next poll, refused only if it fails the same way again.

With several uvicorn workers each worker polls, gates and swaps for itself (each has its own engines);
a load call reloads the worker that answers it, and the others follow at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from app.config import Settings
from app.contract import MODEL_NAME, sha256_file
from app.metrics import MODEL_RELOADS, set_model_info
from app.model import gate
from app.model.classifier import Classifier, load_classifier
from app.model.keras_file import ModelLoadError
from app.model.reading_calibration import calibration_path, load_reading_calibration

log = logging.getLogger("app")
State = Literal["READY", "LOADING", "UNAVAILABLE"]
Trigger = Literal["poll", "signal", "request"]


class Served(Protocol):
    """What the reloader swaps models into (the data plane)."""

    @property
    def classifier(self) -> Classifier: ...

    async def swap(self, classifier: Classifier) -> None: ...


@dataclass(frozen=True)
class Fingerprint:
    """What polling compares first: the size and mtime of the model file, its metadata and its reading
    calibration."""

    model: tuple[int, int] | None
    metadata: tuple[int, int] | None
    reading: tuple[int, int] | None = None

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        def stat(file: Path) -> tuple[int, int] | None:
            try:
                info = file.stat()
            except OSError:
                return None
            return info.st_size, info.st_mtime_ns

        return cls(stat(path), stat(path.with_suffix(".json")), stat(calibration_path(path)))


@dataclass(frozen=True)
class Entry:
    """One line of the repository index, as Triton's POST /v2/repository/index gives it."""

    name: str
    version: str
    state: State
    reason: str = ""


class Reloader:
    """Watches MNIST_MODEL_PATH and swaps the models that pass the gate into `served`."""

    def __init__(self, served: Served, settings: Settings, seen: Fingerprint | None = None) -> None:
        self.served = served
        self.settings = settings
        self.path = settings.model_path
        # the files as they were before the serving model was read from them: taken after, a file replaced
        # meanwhile (while another worker was starting, say) would pass for the one being served
        self.seen = seen or Fingerprint.of(self.path)
        self.loading: str | None = None  # the candidate being loaded (its version, or "?" before its hash)
        self.refused: Entry | None = None  # the last candidate that was not served, and why
        self._pending: Fingerprint | None = None  # a failed candidate given one more poll (maybe half-written)
        self._refused_at: Fingerprint | None = None  # the files of the last refused candidate: not retried as is
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._signal_installed = False

    # triggers -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling (unless MNIST_MODEL_POLL_S=0) and listen for SIGHUP (main thread only)."""
        loop = asyncio.get_running_loop()
        if self.settings.model_poll_s > 0:
            self._poller = loop.create_task(self._poll_forever(self.settings.model_poll_s))
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_signal)
            self._signal_installed = True
        except (ValueError, RuntimeError, NotImplementedError, AttributeError):  # not the main thread, or no SIGHUP
            log.debug("SIGHUP reload not available in this thread")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._signal_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    def _on_signal(self) -> None:
        log.info("SIGHUP: reloading the model from %s", self.path)
        asyncio.get_running_loop().create_task(self._reload_logged("signal"))

    async def _poll_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.poll()

    async def poll(self) -> None:
        """One poll: reload when the files differ from those of the serving model."""
        current = Fingerprint.of(self.path)
        if current in (self.seen, self._refused_at):
            return
        await self._reload_logged("poll", current)

    async def _reload_logged(self, trigger: Trigger, fingerprint: Fingerprint | None = None) -> None:
        with contextlib.suppress(ModelLoadError):  # logged and counted by reload()
            await self.reload(trigger, fingerprint)

    # the reload -----------------------------------------------------------------------------------

    async def reload(self, trigger: Trigger, fingerprint: Fingerprint | None = None) -> str:
        """Load MNIST_MODEL_PATH, gate it and swap it in; the version served after. Raise ModelLoadError
        (or gate.Refused) with the reason when it is not served. A file identical to the serving one
        changes nothing."""
        async with self._lock:
            fingerprint = fingerprint or Fingerprint.of(self.path)
            serving = self.served.classifier
            self.loading = "?"
            try:
                sha256 = await asyncio.to_thread(self._sha256)
                if sha256 == serving.sha256:
                    calibration = await asyncio.to_thread(load_reading_calibration, self.path, sha256)
                    if calibration != serving.reading_calibration:
                        serving.reading_calibration = calibration
                        log.info("reading calibration of model %s reloaded", serving.version)
                    self.seen, self.refused, self._pending = fingerprint, None, None
                    return serving.version
                self.loading = sha256[:12] if sha256 else "?"
                candidate = await asyncio.to_thread(self._load_and_gate, serving)
            except ModelLoadError as exc:
                self._refuse(trigger, fingerprint, exc)
                raise
            except Exception as exc:
                MODEL_RELOADS.labels("failed").inc()
                log.exception("loading a new model failed (%s)", trigger)
                self.refused = Entry(MODEL_NAME, self.loading or "?", "UNAVAILABLE", f"{type(exc).__name__}: {exc}")
                raise ModelLoadError(f"loading the model failed ({type(exc).__name__}: {exc})") from exc
            finally:
                self.loading = None
            try:
                await self.served.swap(candidate)
            except Exception as exc:  # the new engines did not start: the old version still serves
                MODEL_RELOADS.labels("failed").inc()
                log.exception(
                    "starting engines for model %s failed; %s still serves", candidate.version, serving.version
                )
                self.refused = Entry(MODEL_NAME, candidate.version, "UNAVAILABLE", f"engines failed to start: {exc}")
                raise ModelLoadError(f"the engines for model {candidate.version} failed to start ({exc})") from exc
            self.seen, self.refused, self._pending = fingerprint, None, None
            MODEL_RELOADS.labels("loaded").inc()
            set_model_info(candidate, previous=serving)
            log.info("model reloaded", extra={"fields": {"trigger": trigger, "version": candidate.version,
                                                         "previous": serving.version, "sha256": candidate.sha256}})  # fmt: skip
            return candidate.version

    def _sha256(self) -> str:
        try:
            return sha256_file(self.path)
        except OSError:
            return ""  # missing: Classifier.load says so

    def _load_and_gate(self, serving: Classifier) -> Classifier:
        candidate = load_classifier(self.settings)
        gate.check(candidate, self.settings.gate_min_accuracy, serving)
        return candidate

    def _refuse(self, trigger: Trigger, fingerprint: Fingerprint, error: ModelLoadError) -> None:
        """Log and count a candidate that is not served; a new one found by polling gets one more poll."""
        if trigger == "poll" and not isinstance(error, gate.Refused) and fingerprint != self._pending:
            self._pending = fingerprint
            log.warning("the model files changed but are not ready yet (%s); trying again at the next poll", error)
            return
        self._pending = None
        self._refused_at = fingerprint
        self.refused = Entry(MODEL_NAME, self.loading or "?", "UNAVAILABLE", str(error))
        MODEL_RELOADS.labels("refused").inc()
        log.error("new model refused; %s still serves: %s", self.served.classifier.version, error)

    # the repository index -------------------------------------------------------------------------

    def index(self) -> list[Entry]:
        """The served version (READY), a candidate being loaded (LOADING), the last refused one (UNAVAILABLE)."""
        entries = [Entry(MODEL_NAME, self.served.classifier.version, "READY")]
        if self.loading is not None:
            entries.append(Entry(MODEL_NAME, self.loading, "LOADING"))
        if self.refused is not None:
            entries.append(self.refused)
        return entries
