"""The atheris harness, in the style of Pillow's Tests/oss-fuzz: one input is one upload.

The first byte of an input chooses how it is preprocessed: bit 0 the mode (`mnist` or `simple`), bit 1
the pixel cap (the default 40 MP, or SMALL_CAP, so that the size checks are reached too). The rest is
the file, of any of the accepted formats. The only exceptions `preprocess` may raise are the image
errors (app/errors.py's ImageError: 400, 413, 415, 422); anything else is a crash, and libFuzzer keeps
the input. Time and memory limits are libFuzzer's (-timeout, -rss_limit_mb), set by fuzz/__main__.py.

    python -m fuzz.harness CORPUS_DIR [libFuzzer flags]    # fuzz
    python -m fuzz.harness artifacts/fuzz/crash-<sha1>     # reproduce one input
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():  # Python-level coverage of the decode path (Pillow's C code is not instrumented)
    import PIL.Image  # noqa: F401  (instrumented: the plugins it loads are reached through it)

    from app.errors import ImageError
    from app.preprocessing import DEFAULT_MAX_PIXELS, Mode, preprocess

SMALL_CAP = 64 * 64
MODES: tuple[Mode, Mode] = ("mnist", "simple")


def options(head: int) -> tuple[Mode, int]:
    return MODES[head & 1], SMALL_CAP if head & 2 else DEFAULT_MAX_PIXELS


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, cap = options(data[0])
    with contextlib.suppress(ImageError):  # refused with a clear 4xx: what a hostile or broken file should get
        preprocess(data[1:], mode, cap)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
