"""Accuracy on realistic uploads: MNIST digits sent the way people send them (tools/uploads.py).

Target (issue 3): for each kind of upload, accuracy within 1 point of the model's accuracy on the
same digits as raw 28x28 arrays. Plain `convert("L").resize((28, 28))` is measured beside it.
Bold marker digits have the least room (their marker fills some holes and gaps completely: a 4 closed
into a 9), so they are measured on all 1,000 digits of the sample, the other kinds on the first 300.
`make accuracy` measures every kind on the full MNIST test set.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.contract import flatten_and_scale
from app.model.classifier import Classifier
from app.preprocessing import preprocess
from tools.uploads import KINDS, make_upload

DIGITS = 300  # per kind: the first 300 of the committed sample ...
ALL_DIGITS = ("thick_small",)  # ... or all 1,000 of it


def naive(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
    return np.asarray(image, dtype=np.uint8)[np.newaxis]


@pytest.mark.parametrize("kind", list(KINDS))
def test_accuracy_within_one_point_of_raw(
    kind: str, classifier: Classifier, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = (a if kind in ALL_DIGITS else a[:DIGITS] for a in sample)
    raw = float(np.mean(classifier.predict_proba(flatten_and_scale(x)).argmax(axis=1) == y))
    rng = np.random.default_rng(0)
    uploads = [make_upload(kind, digit, rng) for digit in x]
    ours = np.concatenate([preprocess(data).model_input for data in uploads])
    accuracy = float(np.mean(classifier.predict_proba(ours).argmax(axis=1) == y))
    baseline = float(
        np.mean(
            classifier.predict_proba(flatten_and_scale(np.concatenate([naive(d) for d in uploads]))).argmax(axis=1) == y
        )
    )
    print(f"{kind}: {accuracy:.4f} (raw {raw:.4f}, naive resize {baseline:.4f}; {len(x)} digits)")
    assert accuracy >= raw - 0.01, f"{kind}: {accuracy:.3f} vs raw {raw:.3f}"
