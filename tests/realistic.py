"""Realistic uploads made from MNIST digits: how people really send a digit, as encoded file bytes.

Each maker turns a (28, 28) uint8 MNIST digit (white on black) into the bytes of an image file,
deterministically from a numpy Generator: a scan, a phone photo, a canvas drawing, a bold digit in
a big frame, and one of each format and mode the service decodes. `python -m tests.realistic DIR`
writes examples to look at.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

UploadMaker = Callable[[np.ndarray, np.random.Generator], bytes]


def ink(digit: np.ndarray, side: int, bold: int = 0) -> np.ndarray:
    """The digit upscaled smoothly to side x side, as ink coverage in [0, 1]; `bold` thickens the pen."""
    image = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    if bold:
        image = image.filter(ImageFilter.MaxFilter(2 * bold + 1))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(side / 200)), dtype=np.float32) / 255.0


def place(coverage: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Put the digit somewhere (not necessarily centred) in a height x width frame."""
    frame = np.zeros((height, width), dtype=np.float32)
    h, w = coverage.shape
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    frame[top : top + h, left : left + w] = coverage
    return frame


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gray(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))


def paper_and_ink(digit: np.ndarray, rng: np.random.Generator, side: int, frame: float = 1.5) -> np.ndarray:
    """Dark ink on light paper with grain: (H, W) float grey levels."""
    coverage = place(ink(digit, side), int(side * rng.uniform(1.2, frame)), int(side * rng.uniform(1.2, frame)), rng)
    paper, pen = rng.uniform(195, 245), rng.uniform(10, 70)
    return paper * (1 - coverage) + pen * coverage + rng.normal(0, 5, coverage.shape)


def scan_jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A flatbed scan: off-white paper, grain, JPEG at quality 50-85."""
    return encode(
        gray(paper_and_ink(digit, rng, int(rng.integers(150, 400)))), "JPEG", quality=int(rng.integers(50, 86))
    )


def phone_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo: tinted paper, a light gradient and vignetting, blur, noise, stored rotated with an
    EXIF Orientation tag (3, 6 or 8) so that viewers show it upright."""
    side = int(rng.integers(200, 500))
    coverage = place(ink(digit, side), int(side * 1.6), int(side * 1.3), rng)
    h, w = coverage.shape
    y, x = np.mgrid[0:h, 0:w]
    u, v = x / w - 0.5, y / h - 0.5
    light = 0.8 + 0.25 * (u * rng.uniform(-1, 1) + v * rng.uniform(-1, 1)) - 0.35 * (u * u + v * v)
    shade = 235 * light * (1 - 0.85 * coverage) + rng.normal(0, 4, coverage.shape)
    tint = rng.uniform(0.85, 1.0, 3)
    rgb = Image.fromarray(np.clip(shade[..., None] * tint, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.0)
    )
    orientation = int(rng.choice([3, 6, 8]))
    stored = rgb.transpose(
        {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=80, exif=exif.tobytes())


def canvas(digit: np.ndarray, rng: np.random.Generator, colour: bool) -> bytes:
    """An HTML canvas export: 280x280 RGBA, transparent background (RGB 0), antialiased ink in alpha."""
    coverage = place(ink(digit, int(rng.integers(150, 260)), bold=int(rng.integers(0, 3))), 280, 280, rng)
    pen = rng.integers(0, 200, 3) if colour else np.zeros(3)
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., :3] = pen
    rgba[..., 3] = np.clip(coverage * 255, 0, 255)
    if colour and rng.random() < 0.5:  # some canvases are filled white first
        background = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
        return encode(Image.alpha_composite(background, Image.fromarray(rgba, "RGBA")), "PNG")
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def canvas_black(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return canvas(digit, rng, colour=False)


def canvas_colour(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return canvas(digit, rng, colour=True)


def thick_small(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A bold marker digit, small and off-centre in a big 640x480 frame, dark on light."""
    side = int(rng.integers(50, 110))
    coverage = place(ink(digit, side, bold=max(1, side // 40)), 480, 640, rng)
    image = gray(240 * (1 - coverage) + 25 * coverage + rng.normal(0, 3, coverage.shape))
    return encode(image, "PNG") if rng.random() < 0.5 else encode(image, "JPEG", quality=85)


def light_on_dark(digit: np.ndarray, rng: np.random.Generator, side: int = 96) -> np.ndarray:
    coverage = place(ink(digit, side), side + 32, side + 32, rng)
    return 20 + 220 * coverage


def png_16bit(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """16-bit grayscale PNG (Pillow mode I;16), dark on light."""
    values = (255 - light_on_dark(digit, rng)) * 257
    return encode(Image.fromarray(np.clip(values, 0, 65535).astype(np.uint16)), "PNG")


def png_palette(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(gray(255 - light_on_dark(digit, rng)).convert("RGB").quantize(16), "PNG")


def gif(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(gray(light_on_dark(digit, rng)), "GIF")


def gif_animated(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit is the first frame; the later frames are something else."""
    first = gray(255 - light_on_dark(digit, rng))
    others = [gray(rng.uniform(0, 255, (first.height, first.width))) for _ in range(2)]
    return encode(first, "GIF", save_all=True, append_images=others, duration=100, loop=0)


def bmp(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(gray(255 - light_on_dark(digit, rng)).convert("RGB"), "BMP")


def webp(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(gray(paper_and_ink(digit, rng, 120)).convert("RGB"), "WEBP", quality=80)


def tiff(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(gray(light_on_dark(digit, rng)), "TIFF", compression="tiff_lzw")


def jpeg_cmyk(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(gray(paper_and_ink(digit, rng, 140)).convert("CMYK"), "JPEG", quality=90)


def png_la(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """LA: dark ink, alpha = ink coverage, the rest transparent."""
    coverage = place(ink(digit, 120), 150, 150, rng)
    la = np.stack([np.full(coverage.shape, 30.0), coverage * 255], axis=-1)
    return encode(Image.fromarray(np.clip(la, 0, 255).astype(np.uint8), "LA"), "PNG")


def png_rgba_white_ink(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The other canvas polarity: white ink on a transparent background."""
    coverage = place(ink(digit, 200), 280, 280, rng)
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.clip(coverage * 255, 0, 255)
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


KINDS: dict[str, UploadMaker] = {
    "scan_jpeg": scan_jpeg,
    "phone_photo": phone_photo,
    "canvas_black": canvas_black,
    "canvas_colour": canvas_colour,
    "thick_small": thick_small,
    "png_16bit": png_16bit,
    "png_palette": png_palette,
    "gif": gif,
    "gif_animated": gif_animated,
    "bmp": bmp,
    "webp": webp,
    "tiff": tiff,
    "jpeg_cmyk": jpeg_cmyk,
    "png_la": png_la,
    "png_rgba_white_ink": png_rgba_white_ink,
}


def make_upload(kind: str, digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The bytes of one upload of `kind` showing `digit`."""
    return KINDS[kind](digit, rng)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts/uploads")
    out.mkdir(parents=True, exist_ok=True)
    with np.load(Path(__file__).parent / "data" / "mnist-sample.npz") as sample:
        digits = sample["x"][:3]
    for kind in KINDS:
        rng = np.random.default_rng(0)
        for i, digit in enumerate(digits):
            data = make_upload(kind, digit, rng)
            suffix = Image.open(io.BytesIO(data)).format.lower()  # type: ignore[union-attr]
            (out / f"{kind}-{i}.{suffix}").write_bytes(data)
    print(f"wrote {len(KINDS) * len(digits)} files to {out}")
