"""The committed model, models/mnist-mlp.keras: it is the file its metadata describes, and it scores what it claims."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest

from app.contract import sha256_file
from tests.conftest import MODEL
from training.data import array_sha256, load_mnist

MODELS = MODEL.parent
METADATA = MODEL.with_suffix(".json")

pytestmark = pytest.mark.skipif(
    not MODEL.exists(), reason=f"{MODEL} is absent: no model is committed yet (train one with `make train`)"
)
NEEDS_MNIST = pytest.mark.skipif(
    not os.environ.get("MNIST_NPZ"),
    reason="MNIST_NPZ is not set: this test needs the full MNIST .npz (../shared/data/mnist.npz); .ci/run sets it",
)


@pytest.fixture(scope="module")
def meta() -> dict[str, Any]:
    return json.loads(METADATA.read_text())


def test_metadata_describes_this_file(meta: dict[str, Any]) -> None:
    assert meta["sha256"] == sha256_file(MODEL), "the model changed without its metadata (or the other way round)"
    assert meta["file"] == MODEL.name and meta["name"] == "mnist-mlp"
    for plot in ("curves", "confusion"):
        assert (MODELS / f"mnist-mlp.{plot}.png").is_file()


def test_claims_at_least_99_percent(meta: dict[str, Any]) -> None:
    test = meta["metrics"]["test"]
    assert test["count"] == 10_000 and test["accuracy"] >= 0.99
    assert np.trace(np.array(meta["test_confusion_matrix"])) == round(test["accuracy"] * 10_000)


def test_loads_as_the_preset_it_names(meta: dict[str, Any]) -> None:
    import keras

    from training.models import PRESETS

    model = keras.saving.load_model(MODEL)
    assert getattr(model, "optimizer", None) is None
    assert tuple(model.inputs[0].shape) == (None, 784) and tuple(model.outputs[0].shape) == (None, 10)
    assert model.count_params() == meta["parameters"] == PRESETS[meta["preset"]].build().count_params()
    assert model.name == meta["architecture"]


def test_its_preset_still_derives_the_recorded_recipe(meta: dict[str, Any]) -> None:
    """The preset's definition yields the description and hyperparameters this model was trained with (what a
    run chooses, the validation size, is taken from the file; it is also the command line's default)."""
    from training.models import PRESETS
    from training.train import VALIDATION_SIZE

    preset = PRESETS[meta["preset"]]
    recorded = meta["hyperparameters"]
    assert recorded["validation_size"] == VALIDATION_SIZE
    derived = preset.hyperparameters(validation_size=recorded["validation_size"])
    assert list(derived.items()) == list(recorded.items())  # same keys, values and order
    assert preset.description == meta["description"]
    assert preset.build().name == meta["architecture"]


def test_scores_on_the_committed_sample(sample: tuple[np.ndarray, np.ndarray]) -> None:
    """The first 1000 MNIST test digits; no full MNIST needed."""
    from training.evaluate import evaluate

    x, y = sample
    assert evaluate(MODEL, x, y)["accuracy"] >= 0.99


@NEEDS_MNIST
def test_reproduces_its_test_accuracy_exactly(meta: dict[str, Any]) -> None:
    from training.evaluate import evaluate

    data = load_mnist(os.environ["MNIST_NPZ"])
    assert meta["data"]["sha256"]["x_test"] == array_sha256(data.x_test), "other data than it was tested on"
    assert meta["data"]["sha256"]["y_test"] == array_sha256(data.y_test)
    report = evaluate(MODEL, data.x_test, data.y_test)
    assert round(report["accuracy"], 6) == meta["metrics"]["test"]["accuracy"]
    assert report["confusion_matrix"] == meta["test_confusion_matrix"]


def test_its_digit_scorer_and_plots_are_the_ones_its_metadata_names(meta: dict[str, Any]) -> None:
    scorer = MODELS / meta["digit_score"]["file"]
    assert scorer.name == "mnist-mlp.digit.keras" and meta["digit_score"]["sha256"] == sha256_file(scorer)
    assert meta["digit_score"]["threshold"] == 0.5
    assert (MODELS / "mnist-mlp.reliability.png").is_file()


def test_claims_what_issue_14_asks(meta: dict[str, Any]) -> None:
    """At least 99.4% on the test set as an MLP, and calibrated there: ECE at most 1% (fitted on validation)."""
    assert meta["metrics"]["test"]["accuracy"] >= 0.994
    calibration = meta["calibration"]
    assert calibration["fitted_on"] == "validation" and calibration["test"]["ece_after"] <= 0.01
    assert meta["metrics"]["test"]["ece"] == pytest.approx(calibration["test"]["ece_after"], abs=1e-3)


@NEEDS_MNIST
def test_its_scorer_flags_what_its_metadata_says_on_the_validation_digits(meta: dict[str, Any]) -> None:
    from app.contract import flatten_and_scale
    from app.model.classifier import Classifier
    from training.train import split_validation

    data = load_mnist(os.environ["MNIST_NPZ"])
    split = split_validation(data, meta["hyperparameters"]["validation_size"], meta["seed"])
    _, scores = Classifier.load(MODEL).predict(flatten_and_scale(split.x_val))
    assert scores is not None
    flagged = float((scores < meta["digit_score"]["threshold"]).mean())
    assert flagged == pytest.approx(meta["digit_score"]["flagged"]["validation_digits"], abs=2e-4)
