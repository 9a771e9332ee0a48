"""tools/nondigits.py: the held-out non-digits, in MNIST's form, of every kind, and made without training's code."""

from __future__ import annotations

import ast

import numpy as np

from tests.conftest import ROOT
from tools import nondigits


def test_every_kind_in_mnists_form() -> None:
    images, kinds = nondigits.make_nondigits(2, seed=0)
    assert images.shape == (2 * len(nondigits.kinds()), 28, 28) and images.dtype == np.uint8
    assert sorted(set(kinds)) == sorted(nondigits.kinds())
    assert len(nondigits.kinds()) == len(nondigits.LETTERS) + len(nondigits.SYMBOLS) + len(nondigits.DOODLES)
    # MNIST's form: the ink in a 20 px box centred by mass, so the outer rows and columns are mostly black
    border = np.concatenate([images[:, :2].ravel(), images[:, -2:].ravel(), images[:, :, :2].ravel()])
    assert border.mean() < 8
    assert (images.reshape(len(images), -1).max(axis=1) > 200).all()


def test_same_seed_same_images() -> None:
    a, _ = nondigits.make_nondigits(1, seed=5)
    b, _ = nondigits.make_nondigits(1, seed=5)
    c, _ = nondigits.make_nondigits(1, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shares_no_code_with_the_training_negatives() -> None:
    tree = ast.parse((ROOT / "tools" / "nondigits.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not any(name.startswith("training") for name in imported), imported
