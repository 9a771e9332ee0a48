"""The fuzz harness itself: its seeds cover every accepted format in both modes and both caps, and it
passes them all (image errors only). `make fuzz` runs it under libFuzzer."""

from __future__ import annotations

import io

from PIL import Image

from app.preprocessing import FORMATS
from fuzz.harness import SMALL_CAP, one_input, options
from fuzz.seeds import seeds


def test_the_seeds_cover_every_format_mode_and_cap() -> None:
    found = set()
    for seed in seeds():
        mode, cap = options(seed[0])
        try:
            image_format = Image.open(io.BytesIO(seed[1:])).format
        except Exception:
            continue  # the hostile seeds
        found.add((image_format, mode, cap == SMALL_CAP))
    formats = {f for f, _, _ in found}
    assert formats >= set(FORMATS) - {"DIB"}
    assert {(m, small) for _, m, small in found} == {
        ("mnist", False),
        ("mnist", True),
        ("simple", False),
        ("simple", True),
    }


def test_every_seed_passes_the_harness() -> None:
    for seed in seeds():
        one_input(seed)  # raises on anything but an image error
