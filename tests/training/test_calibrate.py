"""app/calibration.py and training/calibrate.py: ECE on known inputs, the fitted temperature, and folding
it into the last layer gives the same probabilities as dividing the logits by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model.calibration import expected_calibration_error, reliability, softmax
from app.model.keras_file import read_dense_layers
from app.model.network import forward
from training.calibrate import calibration_report, fit_temperature, fold_temperature, nll
from training.models import PRESETS


def test_ece_of_a_perfectly_calibrated_and_of_an_overconfident_set() -> None:
    # four predictions at 0.75 confidence, three right: calibrated
    p = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(p, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    # all at 0.9, half right: ECE 0.4
    p = np.array([[0.9, 0.1]] * 4)
    assert expected_calibration_error(p, np.array([0, 0, 1, 1])) == pytest.approx(0.4)


def test_ece_weights_the_bins_by_their_share() -> None:
    # bin (0.6, 0.667]: 0.65 confident, right (gap 0.35), bin (0.933, 1]: 3 at 0.95, all right (gap 0.05)
    p = np.array([[0.65, 0.35], [0.95, 0.05], [0.95, 0.05], [0.95, 0.05]])
    assert expected_calibration_error(p, np.zeros(4, int)) == pytest.approx((0.35 + 3 * 0.05) / 4)
    r = reliability(p, np.zeros(4, int))
    assert r.counts.sum() == 4 and r.counts[-1] == 3 and len(r.edges) == 16


def test_fit_temperature_recovers_the_temperature_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20000, 10)) * 4
    true_t = 2.5
    labels = np.array([rng.choice(10, p=row) for row in softmax(logits, true_t)])
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.05)
    assert nll(logits, labels, fitted) <= min(nll(logits, labels, t) for t in (1.0, 2.0, 3.0))


def test_folding_the_temperature_is_dividing_the_logits(tmp_path: Path) -> None:
    preset = PRESETS["mlp-256-dropout"]
    trained = preset.build(logits=True)
    x = np.random.default_rng(1).random((16, 784), dtype=np.float32)
    logits = np.asarray(trained(x))
    temperature = 1.7
    serving = preset.build()
    serving.set_weights(fold_temperature(trained.get_weights(), temperature))
    np.testing.assert_allclose(np.asarray(serving(x)), softmax(logits, temperature), atol=1e-5)
    # and the numpy reader of the service reads the folded file the same way
    serving.save(tmp_path / "m.keras")
    served = forward(read_dense_layers(tmp_path / "m.keras"), x)
    np.testing.assert_allclose(served, softmax(logits, temperature), atol=1e-5)


def test_the_report_records_ece_before_and_after() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3000, 10)) * 6  # overconfident
    labels = np.array([rng.choice(10, p=row) for row in softmax(logits, 3.0)])
    t = fit_temperature(logits, labels)
    report = calibration_report(t, {"validation": (logits, labels)})
    assert report["temperature"] == t and report["ece_bins"] == 15
    assert report["validation"]["ece_after"] < report["validation"]["ece_before"]
    assert report["validation"]["nll_after"] < report["validation"]["nll_before"]
