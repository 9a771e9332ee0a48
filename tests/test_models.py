"""training/models.py: every preset builds the model it documents, with the input and output the service expects."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from app.inference import Classifier, ModelLoadError, forward, read_dense_layers
from training.models import INPUT_NAME, OUTPUT_NAME, PRESETS

PARAMETERS = {  # from each builder's docstring and the README's preset table
    "mlp-512": 669_706,  # 784*512+512 + 512*512+512 + 512*10+10
    "mlp-256-dropout": 269_322,  # 784*256+256 + 256*256+256 + 256*10+10
    "logreg": 7_850,  # 784*10+10
    "default": 1_276_810,  # 784*800+800 + 800*800+800 + 800*10+10
}


def test_every_preset_is_tested() -> None:
    assert set(PRESETS) == set(PARAMETERS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_preset_builds_the_documented_model(name: str) -> None:
    model = PRESETS[name].build()
    assert model.count_params() == PARAMETERS[name]
    assert len(model.inputs) == 1 and len(model.outputs) == 1
    assert tuple(model.inputs[0].shape) == (None, 784) and model.inputs[0].name == INPUT_NAME
    assert tuple(model.outputs[0].shape) == (None, 10) and model.output_names == [OUTPUT_NAME]
    assert model.inputs[0].dtype == "float32"
    assert model.get_layer(OUTPUT_NAME).activation is keras.activations.softmax


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_output_is_a_probability_distribution(name: str) -> None:
    model = PRESETS[name].build()
    batch = np.random.default_rng(0).random((16, 784), dtype=np.float32)
    batch[0] = 0.0  # a blank image
    probabilities = np.asarray(model(batch, training=False))
    assert probabilities.shape == (16, 10) and probabilities.dtype == np.float32
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probabilities, np.asarray(model(batch, training=False)))  # no dropout at inference


@pytest.mark.parametrize("name", sorted(PARAMETERS))
@pytest.mark.parametrize("epochs", [1, 3, 50])
def test_preset_optimizer_builds_for_any_epoch_count(name: str, epochs: int) -> None:
    optimizer = PRESETS[name].optimizer(epochs, 430)
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    rate = optimizer.learning_rate
    assert 0 < float(rate) <= 1e-2


def test_default_schedule_warms_up_then_decays() -> None:
    steps = 100
    optimizer = PRESETS["default"].optimizer(20, steps)
    rates = []
    for step in (0, steps, 2 * steps, 11 * steps, 20 * steps):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)  # two epochs of warm-up to the peak
    assert rates[2] > rates[3] > rates[4] > 0  # then cosine decay, never to zero


def test_builds_are_independent() -> None:
    keras.utils.set_random_seed(1)
    a = PRESETS["logreg"].build()
    keras.utils.set_random_seed(1)
    b = PRESETS["logreg"].build()
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a is not b and a.layers[-1] is not b.layers[-1]


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_the_service_reads_every_preset_as_keras_computes_it(name: str, tmp_path: Path) -> None:
    """app.inference reads the weights from the .keras archive without Keras: same answers to 1e-5."""
    model = PRESETS[name].build()
    model.save(tmp_path / "m.keras")
    layers = read_dense_layers(tmp_path / "m.keras")
    batch = np.random.default_rng(1).random((32, 784), dtype=np.float32)
    batch[:16] *= batch[:16] > 0.7
    expected = np.asarray(model(batch, training=False))
    np.testing.assert_allclose(forward(layers, batch), expected, atol=1e-5, rtol=0)
    for row in (0, 20):  # one sparse, digit-like row (the sparse product) and one dense row
        np.testing.assert_allclose(forward(layers, batch[row : row + 1]), expected[row : row + 1], atol=1e-5, rtol=0)


def test_the_cross_check_refuses_a_model_keras_disagrees_with(tmp_path: Path) -> None:
    PRESETS["logreg"].build().save(tmp_path / "a.keras")
    classifier = Classifier(read_dense_layers(tmp_path / "a.keras"), {}, tmp_path / "a.keras", "")
    classifier.check_against(keras.saving.load_model(tmp_path / "a.keras"))  # the same weights: accepted
    with pytest.raises(ModelLoadError, match="disagrees with Keras"):
        classifier.check_against(PRESETS["logreg"].build())  # other random weights


def test_layers_the_numpy_path_cannot_compute_are_refused(tmp_path: Path) -> None:
    inputs = keras.Input((784,))
    hidden = keras.layers.Dense(16, activation="tanh")(inputs)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden)).save(tmp_path / "tanh.keras")
    with pytest.raises(ModelLoadError, match=r"\(Dense, tanh\) is not a Dense relu/softmax/linear layer"):
        read_dense_layers(tmp_path / "tanh.keras")
    with zipfile.ZipFile(tmp_path / "tanh.keras") as source, zipfile.ZipFile(tmp_path / "noweights.keras", "w") as out:
        out.writestr("config.json", source.read("config.json"))
    with pytest.raises(ModelLoadError, match="not a readable Keras 3 model"):
        read_dense_layers(tmp_path / "noweights.keras")


def test_the_committed_model_passes_the_keras_cross_check() -> None:
    model = Path(__file__).resolve().parent.parent / "models" / "mnist-mlp.keras"
    assert len(Classifier.load(model, check_with_keras=True).layers) == 3
