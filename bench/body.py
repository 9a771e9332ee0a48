"""`python -m bench.body KIND FILE`: write make bench's multipart upload of KIND to FILE and print the
route it is posted to; the shell tools (bench/server-cpu.sh, bench/ab.sh) load the service with it.

KIND: `digit` (a 28x28 digit PNG), `canvas` (a 280x280 canvas drawing: every preprocessing step) or
`batch` (64 digit PNGs, for /v1/predict/batch)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.run import canvas_png, digit_png, multipart

KINDS = {
    "digit": lambda: ("/v1/predict", multipart("file", [digit_png(0)])),
    "canvas": lambda: ("/v1/predict", multipart("file", [canvas_png(0)])),
    "batch": lambda: ("/v1/predict/batch", multipart("files", [digit_png(i) for i in range(64)])),
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS:
        print(f"usage: python -m bench.body {{{','.join(KINDS)}}} FILE", file=sys.stderr)
        return 2
    route, body = KINDS[argv[0]]()
    Path(argv[1]).write_bytes(body)
    print(route)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
