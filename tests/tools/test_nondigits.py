"""tools/nondigits.py: the held-out non-digits, in MNIST's form, of every kind, and made without training's code."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

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


# make_nondigits(3, seed=0)'s images before set "b" was added, with the fonts and FreeType they were made with
SET_A_SHA256 = "93087bf32fa270d2870a0cfbbc0a4473bdbe6828c887f74725194e3133f63f57"
SET_A_FONTS_SHA256 = "0780bbe5fff71024"  # the first 16 hex of sha256 of the fonts' names, one a line
SET_A_FREETYPE = "2.14.3"
SET_A_KINDS = (
    [f"letter:{c}" for c in "AEKMWxh"]
    + [f"symbol:{c}" for c in "#%&@?+=$*"]
    + [
        f"doodle:{d}"
        for d in ("smiley", "star", "heart", "house", "spiral", "arrow", "triangle", "sun", "stick-figure")
    ]
)


def test_set_a_is_unchanged() -> None:
    assert nondigits.kinds() == nondigits.kinds("a") == SET_A_KINDS
    images, kinds = nondigits.make_nondigits(3, seed=0)
    assert kinds == [kind for kind in SET_A_KINDS for _ in range(3)]
    default, _ = nondigits.make_nondigits(3, 0, "a")
    np.testing.assert_array_equal(images, default)
    fonts = hashlib.sha256("\n".join(p.name for p in nondigits.fonts()).encode()).hexdigest()[:16]
    if fonts != SET_A_FONTS_SHA256 or features.version("freetype2") != SET_A_FREETYPE:
        pytest.skip("other fonts or FreeType than the recorded set a was typed with")
    assert hashlib.sha256(images.tobytes()).hexdigest() == SET_A_SHA256


def test_set_b_kinds() -> None:
    kinds_b = nondigits.kinds("b")
    assert kinds_b == (
        [f"letter:{c}" for c in "FHNRTUVYmnr"]
        + [f"symbol:{c}" for c in "!~<>^{}¶§€£¥"]
        + [
            f"doodle:{d}"
            for d in (
                *("moon", "cloud", "flower", "fish", "tree", "envelope"),
                *("lightning", "cat-face", "umbrella", "key", "checkmark", "eye"),
            )
        ]
    )
    assert len(set(kinds_b)) == len(kinds_b)
    assert not set(kinds_b) & set(nondigits.kinds("a"))
    # disjoint in shapes too: none of set a's letters, nor their twins of the same shape in the other case
    # (K/k, W/w, x/X; H/h and M/m are different shapes), nor a doodle drawn by the same function
    assert not set(nondigits.LETTERS_B) & set(nondigits.LETTERS + "kwX")
    assert not set(nondigits.SYMBOLS_B) & set(nondigits.SYMBOLS)
    assert not set(nondigits.DOODLES_B.values()) & set(nondigits.DOODLES.values())
    assert not any(c.isdigit() for c in nondigits.LETTERS_B + nondigits.SYMBOLS_B)
    with pytest.raises(ValueError):
        nondigits.kinds("c")


def test_set_b_in_mnists_form() -> None:
    images, kinds = nondigits.make_nondigits(3, seed=0, kind_set="b")
    assert images.shape == (3 * len(nondigits.kinds("b")), 28, 28) and images.dtype == np.uint8
    assert kinds == [kind for kind in nondigits.kinds("b") for _ in range(3)]
    border = np.concatenate([images[:, :2].ravel(), images[:, -2:].ravel(), images[:, :, :2].ravel()])
    assert border.mean() < 8
    assert (images.reshape(len(images), -1).max(axis=1) > 200).all()
    # centred by mass, as MNIST is: each image's centre of mass near (14, 14)
    ys, xs = np.mgrid[:28, :28]
    mass = images.astype(np.float64).sum(axis=(1, 2))
    for grid in (ys, xs):
        centre = (images * grid).sum(axis=(1, 2)) / mass
        assert (np.abs(centre - 14.0) < 1.0).all(), centre
    # and no two images alike: the pen, place and font vary
    assert len({image.tobytes() for image in images}) == len(images)


def test_set_b_same_seed_same_images() -> None:
    a, _ = nondigits.make_nondigits(1, seed=5, kind_set="b")
    b, _ = nondigits.make_nondigits(1, seed=5, kind_set="b")
    c, _ = nondigits.make_nondigits(1, seed=6, kind_set="b")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    first_a, _ = nondigits.make_nondigits(1, seed=5)
    assert not any((image == first_a).all(axis=(1, 2)).any() for image in a)


def test_glyphs_a_font_lacks_are_found() -> None:
    for font in nondigits.fonts():
        for char in ("\u4e00", "\U0001f9a9", nondigits.MISSING):  # a CJK ideograph, a flamingo: no font here
            assert not nondigits.has_glyph(font, char), (font, char)
        assert not nondigits.has_glyph(font, " ")  # blank
        assert nondigits.has_glyph(font, "F")
    assert nondigits.typing_fonts("\u4e00", nondigits.fonts()) == []


def test_set_b_typed_glyphs_are_not_blank_nor_tofu() -> None:
    fonts = nondigits.fonts()
    assert fonts, "no TrueType font on this machine"
    ttlib = pytest.importorskip("fontTools.ttLib")
    for char in nondigits.LETTERS_B + nondigits.SYMBOLS_B:
        usable = nondigits.typing_fonts(char, fonts)
        assert usable, f"no font types {char!r}"
        for font in usable:
            # the font's own character map has it (fontTools: not the test's own rendering check) ...
            assert ord(char) in ttlib.TTFont(font, lazy=True).getBestCmap(), (font, char)
            # ... and, typed, it is ink and unlike the box the font draws for what it lacks
            drawn = nondigits._render(char, font)
            assert (drawn > 128).sum() > 20, (font, char)
            assert not np.array_equal(drawn, nondigits._render(nondigits.MISSING, font)), (font, char)
            canvas = nondigits.draw_typed(char, font, np.random.default_rng(0))
            assert canvas.max() > 200, (font, char)


def test_sheet_of_set_b(tmp_path: Path) -> None:
    assert nondigits.main(["--out", str(tmp_path), "--n", "2", "--set", "b"]) == 0
    sheet = Image.open(tmp_path / "nondigits-b.png")
    rows = -(-len(nondigits.kinds("b")) // 5)
    assert sheet.size == (5 * 2 * 28 * 2, rows * 28 * 2)
