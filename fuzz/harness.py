"""The atheris harness, in the style of Pillow's Tests/oss-fuzz: one input is one upload.

The first byte of an input chooses its task, preprocess (/v1/predict) or read (/v1/read), and their
options (fuzz/inputs.py); the rest is the file, of any of the accepted formats. The only exceptions
either task may raise are the image errors (app/errors.py's ImageError: 400, 413, 415, 422); anything
else is a crash, and libFuzzer keeps the input. Time and memory limits are libFuzzer's (-timeout, -rss_limit_mb), set by fuzz/__main__.py.

    python -m fuzz.harness CORPUS_DIR [libFuzzer flags]    # fuzz
    python -m fuzz.harness artifacts/fuzz/crash-<sha1>     # reproduce one input
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():  # Python-level coverage of the decode path (Pillow's C code is not instrumented)
    import PIL.Image  # noqa: F401  (instrumented: the plugins it loads are reached through it)

    import app.preprocessing  # decoding and the named steps: /v1/predict's path
    import app.reading  # noqa: F401  (segmentation: /v1/read's path)

from fuzz.inputs import SMALL_CAP, load_network, options, run  # imported after: the modules above instrumented

__all__ = ["SMALL_CAP", "one_input", "options"]
NETWORK = load_network()


def one_input(data: bytes) -> None:
    run(data, NETWORK)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
