"""training/models.py: every preset builds the model it documents, with the input and output the service expects,
and what it says of itself (description, hyperparameters) is what it builds."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from app.model.classifier import Classifier
from app.model.keras_file import ModelLoadError, read_dense_layers
from app.model.network import BLAS_ROWS, ROW_BY_ROW, DenseLayer, Network, forward
from tests.conftest import MODEL
from training.models import INPUT_NAME, OUTPUT_NAME, PRESETS, Adam, CosineAdamW, Preset

PARAMETERS = {  # from each builder's docstring and the README's preset table
    "mlp-512": 669_706,  # 784*512+512 + 512*512+512 + 512*10+10
    "mlp-256-dropout": 269_322,  # 784*256+256 + 256*256+256 + 256*10+10
    "logreg": 7_850,  # 784*10+10
    "default": 1_276_810,  # 784*800+800 + 800*800+800 + 800*10+10
    "smoothed": 1_276_810,  # the default's layers
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
    optimizer = PRESETS["smoothed"].optimizer(20, steps)
    rates = []
    for step in (0, steps, 2 * steps, 11 * steps, 20 * steps):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)  # two epochs of warm-up to the peak
    assert rates[2] > rates[3] > rates[4] > 0  # then cosine decay, never to zero


DESCRIPTIONS = {  # what each preset's metadata says; the default's is the committed model's (test_committed_model.py)
    "mlp-512": "784-512-512-10 ReLU, softmax; Adam, 20 epochs, batch 128",
    "mlp-256-dropout": "784-256-256-10 ReLU, dropout 0.45, softmax; Adam, 20 epochs, batch 128 (published: 98.4%)",
    "logreg": "multinomial logistic regression, 784-10 softmax; Adam, 20 epochs, batch 128",
    "smoothed": (
        "784-800-800-10 ReLU, dropout 0.2, softmax; AdamW (weight decay 1e-4) with warm-up and cosine decay to zero "
        "over all 50 epochs; label smoothing 0.05; random affine augmentation (rotation, scale, shift, shear); half the "
        "digits each epoch drawn with a bold pen and brought back to MNIST's form by the service's own steps"
    ),
    "default": (
        "784-800-800-10 ReLU, softmax; AdamW (weight decay 1e-4) with warm-up and cosine decay to zero over all 60 "
        "epochs; random affine augmentation (rotation, scale, shift, shear); half the digits each epoch drawn with a "
        "bold pen and brought back to MNIST's form by the service's own steps; elastic distortions (alpha 16); "
        "distilled from a CNN teacher (temperature 4, alpha 0.7)"
    ),
}


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_description_is_derived_from_the_definition(name: str) -> None:
    assert PRESETS[name].description == DESCRIPTIONS[name]


def test_description_follows_the_parameters() -> None:
    preset = dataclasses.replace(
        PRESETS["smoothed"],
        hidden=(64,),
        dropout=0.3,
        optimizer=CosineAdamW(peak_learning_rate=2e-3, weight_decay=5e-5),
        epochs=7,
        label_smoothing=0.1,
        augment=False,
        bold=0.25,
        early_stopping_patience=3,
    )
    assert preset.description == (
        "784-64-10 ReLU, dropout 0.3, softmax; AdamW (weight decay 5e-5) with warm-up and cosine decay to zero over all "
        "7 epochs; label smoothing 0.1; 25% of the digits each epoch drawn with a bold pen and brought back to MNIST's "
        "form by the service's own steps; early stopping on validation accuracy (patience 3)"
    )


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_hyperparameters_are_what_the_preset_builds(name: str) -> None:
    """Every recorded value is read back from the model, optimizer and loss the preset makes."""
    preset = PRESETS[name]
    hyper = preset.hyperparameters(validation_size=5000)
    assert list(hyper)[:7] == [
        "epochs_max",
        "batch_size",
        "validation_size",
        "augment",
        "bold",
        "early_stopping_patience",
        "label_smoothing",
    ]
    assert (hyper["epochs_max"], hyper["batch_size"], hyper["validation_size"]) == (
        preset.epochs,
        preset.batch_size,
        5000,
    )
    assert (hyper["augment"], hyper["bold"], hyper["label_smoothing"]) == (
        preset.augment,
        preset.bold,
        preset.label_smoothing,
    )
    rates = {layer.rate for layer in preset.build().layers if isinstance(layer, keras.layers.Dropout)}
    assert rates == ({hyper["dropout"]} if "dropout" in hyper else set())
    optimizer = preset.optimizer(preset.epochs, 100)
    if isinstance(preset.optimizer, CosineAdamW):
        assert isinstance(optimizer, keras.optimizers.AdamW)
        assert optimizer.weight_decay == hyper["weight_decay"]
        assert optimizer.learning_rate.numpy() == pytest.approx(hyper["peak_learning_rate"] / 10)  # warm-up's start
        optimizer.iterations.assign(2 * 100)
        assert optimizer.learning_rate.numpy() == pytest.approx(hyper["peak_learning_rate"])
    else:
        assert isinstance(preset.optimizer, Adam) and type(optimizer) is keras.optimizers.Adam
        assert set(hyper) == set(list(hyper)[:7]) | ({"dropout"} if preset.dropout else set())


def test_a_run_overrides_what_the_command_line_sets() -> None:
    hyper = PRESETS["smoothed"].hyperparameters(validation_size=100, epochs=2, batch_size=64, bold=0.0)
    assert (hyper["epochs_max"], hyper["batch_size"], hyper["validation_size"], hyper["bold"]) == (2, 64, 100, 0.0)
    assert hyper["label_smoothing"] == 0.05 and hyper["weight_decay"] == 1e-4  # the rest is the preset's


def test_presets_are_frozen_definitions() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["smoothed"].dropout = 0.5  # type: ignore[misc]
    assert all(isinstance(preset, Preset) for preset in PRESETS.values())


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
    # image by image (sparse and dense rows mixed), then padded to a multiple of BLAS_ROWS, or not
    for rows in [*ROW_BY_ROW, BLAS_ROWS + 1, 2 * BLAS_ROWS - 1, 2 * BLAS_ROWS]:
        part = slice(16 - rows // 2, 16 - rows // 2 + rows)
        got = forward(layers, batch[part])
        assert got.shape == expected[part].shape  # the padding rows cut off again
        np.testing.assert_allclose(got, expected[part], atol=1e-5, rtol=0)


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
    with pytest.raises(ModelLoadError, match=r"\(Dense, tanh\) is not a Dense relu/softmax/sigmoid/linear layer"):
        read_dense_layers(tmp_path / "tanh.keras")
    with zipfile.ZipFile(tmp_path / "tanh.keras") as source, zipfile.ZipFile(tmp_path / "noweights.keras", "w") as out:
        out.writestr("config.json", source.read("config.json"))
    with pytest.raises(ModelLoadError, match="not a readable Keras 3 model"):
        read_dense_layers(tmp_path / "noweights.keras")


def test_the_committed_model_passes_the_keras_cross_check() -> None:
    assert len(Classifier.load(MODEL, check_with_keras=True).layers) == 3


def test_the_newer_ingredients_are_recorded_only_when_on() -> None:
    smoothed = PRESETS["smoothed"].hyperparameters(validation_size=100)
    assert not {"elastic_alpha", "distillation", "outliers"} & set(smoothed)
    distilled = PRESETS["default"]
    hyper = distilled.hyperparameters(validation_size=100)
    assert hyper["elastic_alpha"] == distilled.elastic and "outliers" not in hyper  # none in this preset
    assert distilled.distill is not None and hyper["distillation"] == distilled.distill.hyperparameters()
    assert distilled.hyperparameters(validation_size=100, outliers=0.1)["outliers"] == 0.1
    off = distilled.hyperparameters(validation_size=100, elastic=0.0, distill=False, outliers=0.0)
    assert not {"elastic_alpha", "distillation", "outliers"} & set(off)


def test_the_training_copy_has_logits_and_the_same_weights() -> None:
    preset = PRESETS["default"]
    trained, serving = preset.build(logits=True), preset.build()
    assert trained.layers[-1].get_config()["activation"] == "linear"
    assert serving.layers[-1].get_config()["activation"] == "softmax"
    serving.set_weights(trained.get_weights())
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    z = np.asarray(trained(x))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(np.asarray(serving(x)), p / p.sum(axis=1, keepdims=True), atol=1e-6)


def test_a_scorer_on_the_classifiers_trunk_shares_it_and_answers_as_alone() -> None:
    """A scorer that starts with the classifier's first layer (the same weights) is evaluated on the
    classifier's activations of that layer: one copy of it, and the scores of the scorer run alone."""
    rng = np.random.default_rng(0)

    def dense(n_in: int, n_out: int, activation: str) -> DenseLayer:
        return DenseLayer(
            rng.normal(0, 0.1, (n_in, n_out)).astype(np.float32),
            rng.normal(0, 0.1, n_out).astype(np.float32),
            activation,
        )

    trunk = dense(784, 32, "relu")
    classifier = [trunk, dense(32, 10, "softmax")]
    own = [dense(784, 32, "relu"), dense(32, 8, "relu"), dense(8, 1, "sigmoid")]
    on_trunk = [dataclasses.replace(trunk, kernel=trunk.kernel.copy(), bias=trunk.bias.copy()), *own[1:]]
    x = rng.random((9, 784), dtype=np.float32) * (rng.random((9, 784)) > 0.7)
    for scorer, shared in ((on_trunk, 1), (own, 0)):
        alone = forward(scorer, x)[:, 0]
        network = Network(classifier, list(scorer))
        probabilities, scores = network(x)
        assert network.shared == shared and (network.scorer[0] is trunk) == bool(shared)  # type: ignore[index]
        assert (network.head is not None) == bool(shared)  # it shares all the classifier's hidden layers: fused
        np.testing.assert_allclose(probabilities, forward(classifier, x), atol=1e-6)
        assert scores is not None and ((scores > 0) & (scores < 1)).all()
        np.testing.assert_allclose(scores, alone, atol=1e-6)
    assert Network(classifier)(x)[1] is None
