"""/v1/read's confidence: the reading calibration's features, its file beside the model, and its reload
with the same model (app/model/reading_calibration.py, app/model/reload.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from app.answers import ReadDigit, Reading
from app.config import Settings
from app.dataplane import DataPlane, Upload
from app.model.calibration import auroc, confidence_ece
from app.model.classifier import Classifier
from app.model.keras_file import ModelLoadError
from app.model.reading_calibration import (
    FEATURES,
    ReadingCalibration,
    calibration_path,
    features,
    load_reading_calibration,
)
from bench.reading_accuracy import generate
from tests.api.test_read import spaced_number, text_of
from tests.conftest import MODEL, copy_model
from training.reading_calibration import main as fit_main
from training.reading_calibration import read

FEATURE = {name: k for k, name in enumerate(FEATURES)}


def digit(x: int, width: int = 20, line: int = 0, confidence: float = 0.99, score: float | None = 0.9) -> ReadDigit:
    probabilities = np.full(10, (1 - confidence) / 9, np.float32)
    probabilities[3] = confidence
    return ReadDigit(3, confidence, probabilities, score, None, (x, 10, width, 40), line, None)


def reading(*digits: ReadDigit, certainty: float = 0.9, marks: int = 0) -> Reading:
    lines = max(d.line for d in digits) + 1
    text = "\n".join("3" * sum(d.line == n for d in digits) for n in range(lines))
    return Reading(text, 0.5, list(digits), [None] * marks, [], "v", certainty)  # type: ignore[list-item]


def calibration_of(model: Path, weights: dict[str, float], bias: float = 0.0) -> ReadingCalibration:
    w = tuple(weights.get(name, 0.0) for name in FEATURES)
    return ReadingCalibration(w, bias, Classifier.load(model).sha256, {"by": "a test"})


def test_the_features_see_digits_that_touch_and_digits_that_stand_apart() -> None:
    spaced = features(reading(digit(0), digit(40), digit(80)))
    touching = features(reading(digit(0), digit(18), digit(60)))  # the first two overlap by 2 px
    assert spaced[FEATURE["closest_gap"]] == pytest.approx(0.5) and spaced[FEATURE["share_touching"]] == 0
    assert touching[FEATURE["closest_gap"]] == pytest.approx(-0.05) and touching[FEATURE["share_touching"]] == 0.5
    assert spaced[FEATURE["log_digits"]] == pytest.approx(np.log(3))
    assert spaced[FEATURE["log_certainty"]] == pytest.approx(np.log(0.9))


def test_the_features_are_finite_for_one_digit_a_sure_one_and_no_digit_scores() -> None:
    for one in (
        reading(digit(0, confidence=1.0, score=None), certainty=1.0),
        reading(digit(0, confidence=0.1, score=1e-9), certainty=0.0),
        reading(digit(0), digit(0, line=1), digit(30, line=1), marks=2),
    ):
        assert np.isfinite(features(one)).all() and features(one).shape == (len(FEATURES),)
    # a line's gaps are between neighbours of that line only
    assert features(reading(digit(0), digit(0, line=1)))[FEATURE["closest_gap"]] == 1.0


def test_its_probability_follows_its_weights_and_one_digit_keeps_its_own() -> None:
    calibration = ReadingCalibration(tuple(1.0 if n == "log_product" else 0.0 for n in FEATURES), 0.0, "x")
    sure, unsure = reading(digit(0, confidence=0.99), digit(40)), reading(digit(0, confidence=0.5), digit(40))
    assert calibration.probability(sure) == pytest.approx(1 / (1 + 1 / 0.99**2))
    assert calibration.probability(sure) > calibration.probability(unsure)
    assert [r.confidence for r in calibration.calibrate([sure, unsure])] == [
        calibration.probability(sure), calibration.probability(unsure)
    ]  # fmt: skip
    assert sure.confidence == 0.5  # calibrate gives new readings
    one = reading(digit(0, confidence=0.6))
    assert calibration.probability(one) == one.confidence  # as /v1/predict gives it (times the cuts' certainty)


def test_the_file_is_read_back_and_keyed_to_its_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = copy_model(tmp_path / "m.keras")
    path = calibration_path(model)
    assert path.name == "m.reading.json"
    path.unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, "app"):
        assert load_reading_calibration(model, "any") is None
    assert "no reading calibration" in caplog.text
    written = calibration_of(model, {"log_product": 2.0}, bias=0.5)
    path.write_text(json.dumps(written.to_json()))
    assert Classifier.load(model).reading_calibration == written
    caplog.clear()
    with caplog.at_level(logging.WARNING, "app"):  # fitted for another model: not used, and said
        assert load_reading_calibration(model, "0" * 64) is None
    assert "fitted for another model" in caplog.text


@pytest.mark.parametrize(
    "broken",
    [
        "{not json",
        json.dumps({"features": ["log_product"], "weights": [1.0], "bias": 0.0}),
        json.dumps({"features": list(FEATURES), "weights": [1.0], "bias": 0.0}),
        json.dumps({"features": list(FEATURES), "weights": ["x"] * len(FEATURES), "bias": 0.0}),
        json.dumps({"features": list(FEATURES), "weights": [float("nan")] * len(FEATURES), "bias": 0.0}),
        json.dumps({"features": list(FEATURES), "weights": [0.0] * len(FEATURES), "bias": None}),
    ],
)
def test_an_unreadable_calibration_of_the_model_is_refused_with_its_reason(tmp_path: Path, broken: str) -> None:
    model = copy_model(tmp_path / "m.keras")
    sha256 = Classifier.load(model).sha256
    data = broken if broken.startswith("{not") else json.dumps({**json.loads(broken), "model_sha256": sha256})
    calibration_path(model).write_text(data)
    with pytest.raises(ModelLoadError, match="reading calibration"):
        Classifier.load(model)


def test_the_data_plane_gives_the_calibrated_confidence_and_the_product_without_one(tmp_path: Path) -> None:
    model = copy_model(tmp_path / "m.keras")
    upload = [Upload(spaced_number([[4, 8, 2, 5]]), "n.png")]

    async def read(settings: Settings) -> Reading:
        dataplane = await DataPlane.load(settings, check_with_keras=False)
        try:
            return (await dataplane.read_files(upload))[0]
        finally:
            await dataplane.close()

    settings = Settings(model_path=model, engine_processes=1, model_poll_s=0)
    calibration_path(model).unlink(missing_ok=True)
    plain = asyncio.run(read(settings))
    assert plain.text == text_of([[4, 8, 2, 5]])
    assert plain.confidence == pytest.approx(plain.certainty * np.prod([d.confidence for d in plain.digits]))
    calibration = calibration_of(model, {"log_product": 1.0, "closest_gap": 2.0}, bias=1.0)
    calibration_path(model).write_text(json.dumps(calibration.to_json()))
    calibrated = asyncio.run(read(settings))
    assert calibrated.text == plain.text and calibrated.certainty == plain.certainty
    assert calibrated.confidence == pytest.approx(calibration.probability(plain))
    assert calibrated.confidence != pytest.approx(plain.confidence)


def test_a_new_calibration_of_the_serving_model_is_reloaded_without_new_engines(tmp_path: Path) -> None:
    model = copy_model(tmp_path / "m.keras")
    calibration_path(model).unlink(missing_ok=True)

    async def scenario() -> None:
        dataplane = await DataPlane.load(Settings(model_path=model, engine_processes=1, model_poll_s=0))
        try:
            deployment = dataplane.current
            assert dataplane.classifier.reading_calibration is None
            calibration = calibration_of(model, {"log_product": 1.0})
            calibration_path(model).write_text(json.dumps(calibration.to_json()))
            await dataplane.reloader.poll()
            assert dataplane.current is deployment  # the same engines
            assert dataplane.classifier.reading_calibration == calibration
            assert dataplane.model().reading_calibration == {"by": "a test"}  # what /v1/model shows
            calibration_path(model).unlink()
            await dataplane.reloader.poll()
            assert dataplane.classifier.reading_calibration is None and dataplane.current is deployment
        finally:
            await dataplane.close()

    asyncio.run(scenario())


def test_the_committed_model_has_its_reading_calibration() -> None:
    classifier = Classifier.load(MODEL)
    calibration = classifier.reading_calibration
    assert calibration is not None, "refit it: python -m training.reading_calibration"
    assert calibration.model_sha256 == classifier.sha256
    after, before = calibration.fitted["after"], calibration.fitted["before"]
    assert after["ece"] < before["ece"] and after["auroc"] > before["auroc"]


@pytest.mark.skipif(
    not os.environ.get("MNIST_NPZ"),
    reason="MNIST_NPZ is not set: this test reads numbers of MNIST's own digits (../shared/data/mnist.npz); "
    ".ci/run sets it",
)
def test_the_committed_calibration_holds_on_numbers_it_was_not_fitted_on() -> None:
    """Numbers of both generators from the digits the reading figures use (MNIST's test set, the last
    10,000 training digits), which the fit never saw: the calibrated confidence is nearer the truth and
    tells right readings from wrong ones better than the product it replaces."""
    calibration = Classifier.load(MODEL).reading_calibration
    assert calibration is not None
    images = [
        number
        for generator in ("numbers", "handwriting")
        for number in generate(generator, 150, 77, (1, 12), os.environ["MNIST_NPZ"], 2)
    ]
    found = asyncio.run(read(images, Settings(model_path=MODEL, engine_processes=2)))
    right, product, calibrated = found.right, found.product, found.calibrated(calibration)
    assert 0.2 < right.mean() < 0.9, "a sample this easy or hard says little of the confidence"
    ece_before, ece_after = confidence_ece(product, right), confidence_ece(calibrated, right)
    assert ece_after < ece_before - 0.05 and ece_after < 0.07, (ece_before, ece_after)
    assert auroc(calibrated, right) > auroc(product, right) + 0.08, (auroc(product, right), auroc(calibrated, right))


def test_the_training_cli_fits_a_calibration_for_the_model_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MNIST_NPZ", raising=False)  # the committed sample's digits: a quick run
    model = copy_model(tmp_path / "m.keras")
    calibration_path(model).unlink(missing_ok=True)
    assert fit_main(["--model", str(model), "--n", "25", "--workers", "1", "--engines", "1"]) == 0
    calibration = Classifier.load(model).reading_calibration
    assert calibration is not None and calibration.model_sha256 == Classifier.load(model).sha256
    assert calibration.fitted["numbers"] <= 50 and calibration.fitted["held_out"] >= 5
    assert fit_main(["--model", str(tmp_path / "nope.keras"), "--n", "10", "--workers", "1"]) == 2
    assert set(calibration.fitted["after"]) == {"ece", "ece_floor", "auroc"}
