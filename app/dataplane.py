"""The data plane: the operations every transport calls, and nothing below it is called by them.

REST /v1, REST /v2 and the in-process command line (and any further transport) translate their wire
formats at the edge and call a `DataPlane` (as MLServer's REST and gRPC servers share its
handlers/dataplane.py):
- `predict_files`: encoded image files -> their answers (the classify-files task);
- `read_files`: encoded images of whole numbers -> their readings (the read-files task);
- `infer_pixels`: rows already in the model's input form -> their answers (the evaluate-pixels task);
- `model`: the served model's description; `ready`: whether requests are taken;
- `reload` and `repository_index`: hot reload (app/model/reload.py) and its state.

Every evaluation runs in the engines (app/engines/), whatever the input: the crash boundary. The data
plane owns the served `Deployment`, a model version with the batcher and engines that serve it, and
swaps in a new one whole: its engines are started with its weights first, then new requests go to it,
while those already queued on the old version finish there; the old engines stop once drained. A batch
is evaluated by one version, never a mix, and every answer names it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.answers import Classified, Reading, readings
from app.config import Settings
from app.engines.batcher import Batcher
from app.engines.messages import Evaluation
from app.engines.tasks import ClassifyFiles, EvaluatePixels, ReadFiles
from app.errors import ImageError
from app.model import gate
from app.model.classifier import Classifier, load_classifier
from app.model.reload import Entry, Fingerprint, Reloader, Trigger
from app.preprocessing import Mode

log = logging.getLogger("app")
DRAIN_POLL_S = 0.02  # how often a retired version is checked for work still in flight
Observer = Callable[[Evaluation], None]


@dataclass
class Upload:
    """One file of a request, as it arrived."""

    data: bytes
    filename: str | None = None


@dataclass
class Deployment:
    """One model version being served: its classifier and the batcher (and engines) in front of it."""

    classifier: Classifier
    batcher: Batcher
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    async def start(cls, classifier: Classifier, settings: Settings, observe: Observer | None) -> Deployment:
        """Start the engines for `classifier`, as `settings` say; they hold its weights once this returns."""
        batcher = Batcher(classifier.network, settings.batch_max_size, settings.batch_max_wait_ms / 1000, observe)
        await batcher.start(settings.engine_processes, settings.engine_timeout_s, settings.engine_spin_ms / 1000)
        return cls(classifier, batcher)

    async def drain_and_close(self, timeout_s: float) -> None:
        """Wait for the requests already queued on this version (at most `timeout_s`), then stop its engines."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.batcher.busy and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        await self.batcher.close()


@dataclass(frozen=True)
class ServedModel:
    """The served model, as the transports describe it."""

    version: str
    sha256: str
    loaded_at: datetime
    metadata: dict[str, Any]
    digit_threshold: float | None  # None: the model has no digit scorer
    reading_calibration: dict[str, Any] | None = None  # how /v1/read's confidence was fitted; None: it was not


class Receiving:
    """Counts a request in `batcher.receiving` while its body arrives (a class: cheaper than @contextmanager)."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher

    def __enter__(self) -> None:
        self.batcher.receiving += 1

    def __exit__(self, *exc: object) -> None:
        self.batcher.receiving -= 1


class DataPlane:
    """The served model version, swappable while serving, and the operations on it."""

    def __init__(
        self, deployment: Deployment, settings: Settings, observe: Observer | None, seen: Fingerprint | None
    ) -> None:
        self.current = deployment
        self.settings = settings
        self.observe = observe
        self.ready = True  # False once closing: new requests get 503
        self.reloader = Reloader(self, settings, seen)
        self._retiring: set[asyncio.Task[None]] = set()

    @classmethod
    async def load(
        cls,
        settings: Settings,
        observe: Observer | None = None,
        classifier: Classifier | None = None,
        check_with_keras: bool | None = None,
    ) -> DataPlane:
        """Serve the model at MNIST_MODEL_PATH (or `classifier`, already loaded), once it loads and passes
        the gate's absolute bar, when MNIST_GATE_MIN_ACCURACY sets one; ModelLoadError otherwise."""
        seen = Fingerprint.of(settings.model_path)  # before reading the files: see Reloader
        if classifier is None:
            classifier = await asyncio.to_thread(load_classifier, settings, check_with_keras)
        gate.check(classifier, settings.gate_min_accuracy, serving=None)
        return await cls.start(classifier, settings, observe, seen)

    @classmethod
    async def start(
        cls,
        classifier: Classifier,
        settings: Settings,
        observe: Observer | None = None,
        seen: Fingerprint | None = None,
    ) -> DataPlane:
        """Serve `classifier` with engines as `settings` say; `observe` gets each batch's evaluation (the
        metrics); `seen`: the model files as they were before `classifier` was read from them."""
        return cls(await Deployment.start(classifier, settings, observe), settings, observe, seen)

    def watch(self) -> None:
        """Reload on changes to the model files (MNIST_MODEL_POLL_S) and on SIGHUP, while serving."""
        self.reloader.start()

    async def close(self, drain_s: float = 0.0) -> None:
        """Stop: the requests queued or in progress get up to `drain_s` to finish, then 503."""
        self.ready = False
        await self.reloader.stop()
        for task in list(self._retiring):
            task.cancel()
        await self.current.drain_and_close(drain_s)

    # inference ------------------------------------------------------------------------------------

    async def predict_files(self, uploads: list[Upload], mode: Mode, keep_pixels: bool = False) -> Classified:
        """Decode, preprocess and classify encoded image files, in an engine; raises the ImageError of
        the first bad file, with its `index` and `filename` set. `keep_pixels`: also the 28x28 images."""
        task = ClassifyFiles([upload.data for upload in uploads], mode, self.settings.max_pixels, keep_pixels)
        try:
            return await self.current.batcher.run(task)
        except ImageError as exc:
            exc.filename = uploads[exc.index or 0].filename
            raise

    async def read_files(self, uploads: list[Upload], keep_pixels: bool = False) -> list[Reading]:
        """Read the number in each encoded image file, in an engine: its digits cut apart and classified;
        raises the ImageError of the first bad file (TooManyDigits over MNIST_MAX_DIGITS), with its
        `index` and `filename` set. `keep_pixels`: also each digit's 28x28 image."""
        settings = self.settings
        task = ReadFiles([upload.data for upload in uploads], settings.max_pixels, settings.max_digits, keep_pixels)
        deployment = self.current  # the model that reads them calibrates their confidence
        try:
            found = readings(await deployment.batcher.run(task))
        except ImageError as exc:
            exc.filename = uploads[exc.index or 0].filename
            raise
        calibration = deployment.classifier.reading_calibration
        return found if calibration is None else calibration.calibrate(found)

    async def infer_pixels(self, rows: np.ndarray) -> Classified:
        """(N, 784) float32 in [0, 1], already in the model's input form -> the answers, in an engine."""
        return await self.current.batcher.run(EvaluatePixels(rows))

    def receiving(self) -> Receiving:
        """`with dataplane.receiving():` marks a request whose body is still arriving: the batcher may
        wait for it (MNIST_BATCH_MAX_WAIT_MS)."""
        return Receiving(self.current.batcher)

    # the model ------------------------------------------------------------------------------------

    @property
    def classifier(self) -> Classifier:
        return self.current.classifier

    @property
    def version(self) -> str:
        return self.current.classifier.version

    def model(self) -> ServedModel:
        classifier = self.current.classifier
        calibration = classifier.reading_calibration
        return ServedModel(
            classifier.version, classifier.sha256, self.current.loaded_at, classifier.metadata,
            classifier.digit_threshold, None if calibration is None else calibration.fitted,
        )  # fmt: skip

    # reload ---------------------------------------------------------------------------------------

    async def reload(self, trigger: Trigger = "request") -> str:
        """Load MNIST_MODEL_PATH through the gate and serve it; the version served after (ModelLoadError
        with the reason when it is refused: the current version keeps serving)."""
        return await self.reloader.reload(trigger)

    def repository_index(self) -> list[Entry]:
        return self.reloader.index()

    async def swap(self, classifier: Classifier) -> None:
        """Serve `classifier` from now on: its engines are started first, the old version drains in
        the background."""
        new = await Deployment.start(classifier, self.settings, self.observe)
        old, self.current = self.current, new
        drain = asyncio.get_running_loop().create_task(old.drain_and_close(self.drain_timeout_s))
        self._retiring.add(drain)
        drain.add_done_callback(self._retiring.discard)
        log.info("now serving model %s (was %s)", new.classifier.version, old.classifier.version)

    @property
    def drain_timeout_s(self) -> float:
        """Time for the batches of a retired version to finish: a full batch's engine timeout and retries."""
        return self.settings.engine_timeout_s * 4
