"""The number images of tools/numbers.py: deterministic, decodable, and their truth (text, boxes, gaps, lines,
marks) right, checked on the decoded pixels and on the layout's own masks."""

from __future__ import annotations

import io
import json
from functools import cache

import numpy as np
import pytest
from PIL import Image

from tools.numbers import (
    GAPS,
    MARKS,
    STYLES,
    Box,
    DigitSource,
    Layout,
    NumberImage,
    layout,
    main,
    make_number,
    sample_numbers,
    upright,
)

SEEDS = range(12)


@cache
def source() -> DigitSource:
    """The committed sample's digits and the machine's fonts."""
    return DigitSource.load()


@cache
def sampled(seed: int = 0) -> tuple[NumberImage, ...]:
    """One number per style and gap kind, short lines (fast)."""
    return tuple(sample_numbers(len(STYLES) * len(GAPS), seed, lengths=(1, 6), source=source()))


def ink_levels(number: NumberImage) -> np.ndarray:
    """(height, width) int: how far each pixel of the upright image, over white, is from white (0 to 255),
    by its darkest channel, so coloured pens count as ink too."""
    image = upright(number.data).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    return 255 - np.asarray(image, dtype=np.int16).min(axis=2)


def consecutive_digits(page: Layout) -> list[tuple[int, int]]:
    """The indices of the pairs of neighbouring digits on the same line (the layouts here have no marks)."""
    items = page.items
    return [(i, i + 1) for i in range(len(items) - 1) if items[i].line == items[i + 1].line]


def connected(mask: np.ndarray) -> bool:
    """Whether a (h, w) bool mask's True pixels are one 8-connected component."""
    seen = np.zeros_like(mask)
    seen.flat[np.flatnonzero(mask)[0]] = True
    while True:
        padded = np.pad(seen, 1)
        grown = np.zeros_like(seen)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                grown |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
        grown &= mask
        if np.array_equal(grown, seen):
            return bool(np.array_equal(seen, mask))
        seen = grown


def boxes(page: Layout, a: int, b: int) -> tuple[Box, Box]:
    """The boxes of items a and b."""
    return page.items[a].box, page.items[b].box


def test_the_same_seed_gives_the_same_bytes_and_truth() -> None:
    again = sample_numbers(len(STYLES) * len(GAPS), 0, lengths=(1, 6), source=source())
    for first, second in zip(sampled(0), again, strict=True):
        assert first.data == second.data
        assert first.truth("f") == second.truth("f")
    other = sample_numbers(3, 1, lengths=(1, 6), source=source())
    assert [n.data for n in other] != [n.data for n in sampled(0)[:3]]


def test_every_file_decodes_to_its_format_at_a_sane_size() -> None:
    for number in sampled():
        image = Image.open(io.BytesIO(number.data))
        assert image.format == number.format, number.style
        assert number.format == {"canvas": "PNG", "scan": "JPEG", "photo": "JPEG", "photo_heic": "HEIF"}.get(
            number.style, number.format
        )
        shown = upright(number.data)
        assert shown.size == (number.width, number.height)
        assert min(shown.size) >= 20 and max(shown.size) <= 4000


def test_the_sampler_covers_every_style_and_gap_kind() -> None:
    pairs = {(n.style, n.gap) for n in sampled()}
    assert pairs == {(s, g) for s in STYLES for g in GAPS}
    assert {n.format for n in sampled()} >= {"PNG", "JPEG", "HEIF"}


@pytest.mark.parametrize("style", ["canvas", "print"])
def test_the_boxes_hold_the_ink_and_nothing_else_does(style: str) -> None:
    for seed in SEEDS:
        number = make_number(np.random.default_rng(seed), source(), style=style, lines=2, length=(1, 8), marks=0.5)
        levels = ink_levels(number)
        inside = np.zeros(levels.shape, dtype=bool)
        for x, y, w, h in [g.box for g in number.digits] + [m.box for m in number.marks]:
            assert x >= 0 and y >= 0 and x + w <= number.width and y + h <= number.height and w > 0 and h > 0
            box = levels[y : y + h, x : x + w]
            assert box.max() >= 160 and (box >= 128).mean() > 0.05, (seed, (x, y, w, h))
            inside[y : y + h, x : x + w] = True
        ink = levels >= 128
        assert (ink & ~inside).sum() <= 0.01 * ink.sum(), seed
        assert (levels[~inside] < 100).mean() > 0.99


def test_the_text_is_the_digits_in_reading_order() -> None:
    for number in sampled():
        lines = number.text.split("\n")
        assert all(line.isdigit() for line in lines)
        assert number.n_digits == len(number.text.replace("\n", ""))
        for n, line in enumerate(lines):
            glyphs = [g for g in number.digits if g.line == n]
            assert "".join(str(g.digit) for g in glyphs) == line
            centres = [x + w / 2 for x, _, w, _ in (g.box for g in glyphs)]
            assert centres == sorted(centres)


def test_spaced_digits_are_apart() -> None:
    for seed in SEEDS:
        page = layout(np.random.default_rng(seed), source(), style="canvas", gap="spaced", length=(2, 8), marks=0)
        for a, b in consecutive_digits(page):
            box_a, box_b = boxes(page, a, b)
            assert box_a[0] + box_a[2] + 1 < box_b[0]


def test_tight_digits_are_close_and_do_not_share_ink() -> None:
    for seed in SEEDS:
        page = layout(np.random.default_rng(seed), source(), style="scan", gap="tight", length=(2, 8), marks=0)
        for a, b in consecutive_digits(page):
            mask_a, mask_b = page.page_mask(a), page.page_mask(b)
            assert not (mask_a & mask_b).any()
            box_a, box_b = boxes(page, a, b)
            assert box_b[0] - (box_a[0] + box_a[2]) <= 0.15 * page.size


@pytest.mark.parametrize("style", ["canvas", "print"])
def test_touching_digits_are_in_contact(style: str) -> None:
    pairs = joined = 0
    for seed in SEEDS:
        page = layout(np.random.default_rng(seed), source(), style=style, gap="touching", length=(2, 6), marks=0)
        for a, b in consecutive_digits(page):
            mask_a, mask_b = page.page_mask(a), page.page_mask(b)
            assert not (mask_a & mask_b).any()  # in contact, not crossing
            pairs += 1
            joined += connected(mask_a | mask_b)
    assert joined >= 0.8 * pairs


@pytest.mark.parametrize("style", ["canvas", "print", "photo"])
def test_overlapping_digits_share_columns(style: str) -> None:
    for seed in SEEDS:
        page = layout(np.random.default_rng(seed), source(), style=style, gap="overlapping", length=(2, 6), marks=0)
        for a, b in consecutive_digits(page):
            box_a, box_b = boxes(page, a, b)
            assert box_a[0] + box_a[2] - box_b[0] >= 1


def test_several_lines_read_top_to_bottom() -> None:
    for seed in SEEDS:  # the photo's layout: the most rotation
        page = layout(np.random.default_rng(seed), source(), style="photo", lines=3, length=(1, 12))
        assert page.text().count("\n") == 2
        digits = [item for item in page.items if item.char.isdigit()]
        for n in (1, 2):
            above = [d.box for d in digits if d.line == n - 1]
            for x, y, w, h in (d.box for d in digits if d.line == n):
                nearest = min(above, key=lambda box: abs(box[0] + box[2] / 2 - x - w / 2))
                assert y + h / 2 > nearest[1] + nearest[3] / 2
    number = make_number(np.random.default_rng(0), source(), style="scan", lines=2, length=(1, 3))
    assert [g.line for g in number.digits] == sorted(g.line for g in number.digits)
    assert number.text.count("\n") == 1


def test_marks_are_listed_apart_between_digits() -> None:
    chars = set()
    for seed in SEEDS:
        style = ("canvas", "print")[seed % 2]
        number = make_number(np.random.default_rng(seed), source(), style=style, length=(3, 8), marks=1.0)
        assert number.marks and set(number.text) <= set("0123456789\n")
        for mark in number.marks:
            chars.add(mark.char)
            assert mark.char in MARKS
            x, y, w, h = mark.box
            assert w > 0 and h > 0 and x + w <= number.width and y + h <= number.height
            centres = [g.box[0] + g.box[2] / 2 for g in number.digits if g.line == mark.line]
            assert min(centres) < x + w / 2 < max(centres)
    assert len(chars) >= 3


def test_the_keras_npz_and_no_fonts_work(tmp_path) -> None:
    x, y = source().images[:20], source().labels[:20]
    np.savez(tmp_path / "mnist.npz", x_test=x, y_test=y, x_train=x[:1], y_train=y[:1])
    loaded = DigitSource.load(tmp_path / "mnist.npz", fonts=())
    assert loaded.images.shape == (20, 28, 28) and not loaded.fonts
    written = make_number(np.random.default_rng(0), loaded, style="canvas", length=5)
    assert set(written.text) <= {str(d) for d in y}
    printed = make_number(np.random.default_rng(0), loaded, style="print", length=5)  # Pillow's default font
    assert len(printed.text) == 5 and all(g.box[2] > 0 for g in printed.digits)


def test_the_cli_writes_the_files_and_their_truth(tmp_path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--n", "6", "--seed", "3"]) == 0
    truths = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert len(truths) == 6 and len(list(tmp_path.iterdir())) == 7
    for truth in truths:
        data = (tmp_path / truth["file"]).read_bytes()
        assert upright(data).size == (truth["width"], truth["height"])
        assert len(truth["digits"]) == len(truth["text"].replace("\n", ""))
    assert "wrote 6 numbers" in capsys.readouterr().out
