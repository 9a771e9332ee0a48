"""Realistic uploads made from MNIST digits: the encoded bytes of an image file as people really send one.

Each maker of a kind (KINDS) turns a (28, 28) uint8 MNIST digit (white on black) into the bytes of an image file,
deterministically from a numpy Generator: the digit is upscaled smoothly and given crisp, antialiased
strokes like a pen's, then put on paper or a canvas with the effects of a scanner, a phone camera or a
browser, and encoded. There is one kind per way of sending a digit (scan, phone photo, canvas, bold
digit in a big frame) and one per file format and mode the service decodes.

Below the kinds, the files the benchmarks and the soak post as they are: the committed sample's digits
as 28x28 PNGs and 280x280 canvas drawings, a ~400x300 photo, a 12 MP phone JPEG, random-noise PNGs,
decompression bombs, and the multipart body that carries any of them (one file or a batch). Every
maker is deterministic: from a numpy Generator, or from the digit alone.

    python -m tools.uploads --out DIR --n 3     # example files of each kind, for humans to look at
"""

from __future__ import annotations

import argparse
import io
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageFilter, ImageOps

UploadMaker = Callable[[np.ndarray, np.random.Generator], bytes]

SAMPLE = Path(__file__).resolve().parent.parent / "app" / "data" / "mnist-sample.npz"
MIB = 1 << 20
BODY_CAP = 5 * MIB  # the service's default MNIST_MAX_BODY_BYTES: the big files stay under it
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
ORIENTATION = 0x0112  # the EXIF Orientation tag
# Pixel data stored for each EXIF orientation, so that a viewer applying the tag shows it upright.
STORED_FOR = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
PEN_COLOURS = (  # what people pick in drawing apps: blue, red, green, purple, orange, teal
    (30, 80, 220),
    (0, 0, 255),
    (210, 30, 40),
    (20, 140, 60),
    (120, 40, 170),
    (230, 110, 0),
    (0, 128, 128),
)
# HEIC (phone_heic) is read and written through pillow-heif's Pillow plugin, as the service reads it
pillow_heif.register_heif_opener()


# ---- building blocks: arrays are float32, grey levels in [0, 255] or coverage in [0, 1] ----


def ink(digit: np.ndarray, side: int, rng: np.random.Generator, bold: float = 0.0) -> np.ndarray:
    """(28, 28) uint8 digit -> (side, side) float32 ink coverage in [0, 1] with crisp, antialiased strokes.

    `bold` thickens the pen by that fraction of `side` on each side of the stroke.
    """
    image = Image.fromarray(np.ascontiguousarray(digit, dtype=np.uint8)).resize((side, side), Image.Resampling.LANCZOS)
    if bold > 0:
        image = image.filter(ImageFilter.MaxFilter(2 * max(1, round(bold * side)) + 1))
    # Upscaled, MNIST's own antialiasing is a wide soft edge; a ramp gives the solid stroke of a pen
    # and a little blur antialiases its edge again, as a scanner, a lens or a canvas does.
    low = rng.uniform(0.2, 0.35)
    coverage = np.clip((np.asarray(image, dtype=np.float32) / 255 - low) / 0.3, 0, 1)
    blurred = Image.fromarray((coverage * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(side / 280 * rng.uniform(0.6, 1.2))
    )
    return np.asarray(blurred, dtype=np.float32) / 255


def tilt(coverage: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate a coverage map by `degrees` (counter-clockwise) about its centre, same size."""
    image = Image.fromarray((coverage * 255).astype(np.uint8))
    return np.asarray(image.rotate(degrees, Image.Resampling.BICUBIC), dtype=np.float32) / 255


def place(coverage: np.ndarray, height: int, width: int, rng: np.random.Generator, spread: float = 1.0) -> np.ndarray:
    """Put a coverage map in a height x width frame, off centre by up to `spread` of the free room."""
    frame = np.zeros((height, width), dtype=np.float32)
    h, w = coverage.shape
    top = round((height - h) / 2 * (1 + spread * rng.uniform(-1, 1)))
    left = round((width - w) / 2 * (1 + spread * rng.uniform(-1, 1)))
    frame[top : top + h, left : left + w] = coverage
    return frame


def smooth_noise(height: int, width: int, rng: np.random.Generator, cell: int) -> np.ndarray:
    """(height, width) float32 noise of standard deviation ~1 varying over about `cell` pixels."""
    coarse = rng.normal(0, 1, (max(2, height // cell + 2), max(2, width // cell + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def paper(height: int, width: int, rng: np.random.Generator, shade: float, grain: float) -> np.ndarray:
    """Paper of grey level `shade`: blotches from the fibres plus fine grain of std `grain`."""
    blotches = 2.5 * smooth_noise(height, width, rng, cell=24) + 1.2 * smooth_noise(height, width, rng, cell=5)
    return shade + blotches + rng.normal(0, grain, (height, width)).astype(np.float32)


def lighting(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Uneven light on a sheet, as a phone sees it: a gradient from one side and vignetting, in ~[0.55, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width - 0.5, y / height - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0.1, 0.3) * (u * np.cos(angle) + v * np.sin(angle))
    vignette = rng.uniform(0.3, 0.6) * (u * u + v * v)
    return (1.0 - rng.uniform(0, 0.1) + gradient - vignette).astype(np.float32)


def on_paper(coverage: np.ndarray, paper_shade: np.ndarray | float, ink_shade: float) -> np.ndarray:
    """Ink of grey level `ink_shade` over the paper, by coverage."""
    return paper_shade * (1 - coverage) + ink_shade * coverage


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def canvas_rgba(coverage: np.ndarray, colour: Sequence[float] | np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 as a browser exports a canvas: alpha = coverage, RGB 0 where transparent.

    A canvas keeps premultiplied pixels, so the exported colour of faint edge pixels is quantised.
    """
    alpha = to_uint8(coverage * 255).astype(np.float32)
    premultiplied = np.rint(np.asarray(colour, dtype=np.float32) * alpha[..., None] / 255)
    rgb = np.where(alpha[..., None] > 0, np.rint(premultiplied * 255 / np.maximum(alpha[..., None], 1)), 0)
    return np.dstack([to_uint8(rgb), alpha.astype(np.uint8)])


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def plain(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A moderately sized digit, dark on light or light on dark at random, with mild noise: grey levels."""
    side = int(rng.integers(64, 161))
    height, width = (round(side * rng.uniform(1.1, 1.5)) for _ in range(2))
    coverage = place(ink(digit, side, rng), height, width, rng, spread=0.8)
    background, pen = rng.uniform(215, 250), rng.uniform(5, 60)
    if rng.random() < 0.4:
        background, pen = 255 - background, 255 - pen
    return on_paper(coverage, background, pen) + rng.normal(0, 2, coverage.shape).astype(np.float32)


def plain_rgb(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`plain` in colour: (H, W, 3) grey levels, the paper slightly tinted, sometimes a coloured pen."""
    values = plain(digit, rng)
    light = float(np.median(values)) > 127
    tint = rng.uniform(0.95, 1.0, 3) if light else np.ones(3)
    rgb = values[..., None] * tint
    if light and rng.random() < 0.5:
        darkness = np.clip((np.median(values) - values) / 200, 0, 1)[..., None]
        pen = np.asarray(PEN_COLOURS[int(rng.integers(len(PEN_COLOURS)))], dtype=np.float32) * 0.7
        rgb = rgb * (1 - darkness) + pen * darkness
    return rgb.astype(np.float32)


# ---- how people send a digit ----


def scan_jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A flatbed scan: dark ink on off-white paper with texture, slightly skewed, JPEG quality 50-85."""
    side = int(rng.integers(150, 401))
    coverage = tilt(ink(digit, side, rng), rng.uniform(-3, 3))
    height, width = round(side * rng.uniform(1.3, 1.9)), round(side * rng.uniform(1.3, 1.9))
    coverage = place(coverage, height, width, rng, spread=0.4)
    values = on_paper(
        coverage, paper(height, width, rng, rng.uniform(205, 240), rng.uniform(2, 5)), rng.uniform(25, 75)
    )
    values += 6 * rng.normal(0, 1, values.shape).astype(np.float32) * coverage  # ink is uneven too
    image = Image.fromarray(to_uint8(values))
    if rng.random() < 0.3:  # a colour scan of the same page: warm paper
        image = Image.fromarray(to_uint8(values[..., None] * (1.0, rng.uniform(0.96, 0.99), rng.uniform(0.88, 0.95))))
    dpi = int(rng.choice([150, 200, 300, 600]))
    return encode(image, "JPEG", quality=int(rng.integers(50, 86)), dpi=(dpi, dpi))


def _photo(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone camera's picture of a digit on paper, upright: (H, W, 3) uint8, a portrait 3:4 frame."""
    side = int(rng.integers(160, 320))
    height = round(side * rng.uniform(1.8, 2.4))
    width = round(height * 0.75)  # held upright: a portrait 3:4 frame
    coverage = place(tilt(ink(digit, side, rng), rng.uniform(-6, 6)), height, width, rng, spread=0.5)
    shade = on_paper(coverage, paper(height, width, rng, rng.uniform(200, 235), 1.0), rng.uniform(30, 80))
    light = lighting(height, width, rng)
    tint = np.array([1.0, rng.uniform(0.93, 0.99), rng.uniform(0.82, 0.95)], dtype=np.float32)  # warm indoor light
    if rng.random() < 0.3:  # daylight: slightly bluish instead
        tint = np.array([rng.uniform(0.9, 0.96), rng.uniform(0.95, 0.99), 1.0], dtype=np.float32)
    rgb = shade[..., None] * light[..., None] * tint
    blurred = Image.fromarray(to_uint8(rgb)).filter(ImageFilter.GaussianBlur(rng.uniform(0.7, 1.6)))
    noisy = np.asarray(blurred, dtype=np.float32) + rng.normal(0, rng.uniform(2, 5), rgb.shape).astype(np.float32)
    return to_uint8(noisy)


def _phone_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"  # Make, Model
    return exif.tobytes()


def phone_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of a digit on paper: tinted paper under uneven light, blur, sensor noise, JPEG, with the
    pixels stored rotated and an EXIF Orientation tag (3, 6 or 8) that turns them upright, as phones do."""
    upright = Image.fromarray(_photo(digit, rng))
    orientation = int(rng.choice([3, 6, 8]))
    stored = upright.transpose(STORED_FOR[orientation])
    return encode(stored, "JPEG", quality=int(rng.integers(75, 93)), exif=_phone_exif(orientation))


def phone_heic(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The same phone photo as an iPhone saves it: HEIC (pillow-heif), stored upright or, in about half of
    them, rotated with an EXIF Orientation tag (3, 6 or 8) that turns it upright."""
    upright = Image.fromarray(_photo(digit, rng))
    orientation = int(rng.choice([1, 1, 1, 3, 6, 8]))
    stored = upright if orientation == 1 else upright.transpose(STORED_FOR[orientation])
    # x265's ultrafast preset: the same kind of HEVC stream for the decoder, at an eighth of the encoding time
    options = {"quality": int(rng.integers(60, 91)), "enc_params": {"preset": "ultrafast"}}
    return encode(stored, "HEIF", exif=_phone_exif(orientation), **options)


def _canvas(digit: np.ndarray, rng: np.random.Generator, colour: Sequence[float], white: bool) -> bytes:
    size = int(rng.choice([256, 280, 280, 300]))
    side = round(size * rng.uniform(0.6, 1.0))
    coverage = place(ink(digit, side, rng, bold=rng.uniform(0, 0.02)), size, size, rng, spread=1.0)
    rgba = Image.fromarray(canvas_rgba(coverage, colour))
    if white:  # the page filled the canvas white before drawing
        rgba = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return encode(rgba, "PNG")


def canvas_black(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An HTML canvas drawing exported as PNG: ~280x280 RGBA, transparent background, black antialiased ink."""
    return _canvas(digit, rng, (0, 0, 0), white=False)


def canvas_colour(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A canvas drawing in a coloured pen, on a transparent background or one filled white."""
    pen = np.clip(np.asarray(PEN_COLOURS[int(rng.integers(len(PEN_COLOURS)))]) + rng.integers(-20, 21, 3), 0, 255)
    return _canvas(digit, rng, pen.tolist(), white=bool(rng.random() < 0.5))


def thick_small(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A bold marker digit, small and off-centre in a big 640x480 or 800x600 frame, dark on light."""
    width, height = (640, 480) if rng.random() < 0.5 else (800, 600)
    if rng.random() < 0.3:
        width, height = height, width
    side = int(rng.integers(60, 150))
    coverage = place(ink(digit, side, rng, bold=rng.uniform(0.03, 0.055)), height, width, rng, spread=0.85)
    board = paper(height, width, rng, rng.uniform(215, 245), 1.5) * (1 + 0.02 * smooth_noise(height, width, rng, 300))
    image = Image.fromarray(to_uint8(on_paper(coverage, board, rng.uniform(10, 45))))
    if rng.random() < 0.5:
        return encode(image, "PNG")
    return encode(image.convert("RGB"), "JPEG", quality=int(rng.integers(70, 91)))


# ---- one kind per format and mode ----


def png_16bit(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """16-bit grayscale PNG (Pillow mode I;16), as scientific and medical tools write."""
    values = plain(digit, rng) * 257 + rng.normal(0, 60, (1,)).astype(np.float32)
    return encode(Image.fromarray(np.clip(np.rint(values), 0, 65535).astype(np.uint16)), "PNG")


def png_palette(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Palette PNG (mode P), 8 to 64 colours, as image optimisers write."""
    image = Image.fromarray(to_uint8(plain_rgb(digit, rng)))
    return encode(image.quantize(int(rng.integers(8, 65)), dither=Image.Dither.NONE), "PNG", optimize=True)


def gif(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A still GIF."""
    return encode(Image.fromarray(to_uint8(plain(digit, rng))), "GIF")


def gif_animated(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An animated GIF whose first frame is the digit; the later frames fade it out and show a blank page."""
    first = to_uint8(plain(digit, rng))
    background = float(np.median(first))
    frames = [Image.fromarray(first)]
    for fade in (0.5, 1.0)[: int(rng.integers(1, 3))]:
        frames.append(Image.fromarray(to_uint8(first * (1 - fade) + background * fade)))
    frames.append(Image.fromarray(to_uint8(np.full(first.shape, background) + rng.normal(0, 2, first.shape))))
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=400, loop=0)


def bmp(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A Windows bitmap: 24-bit RGB or 8-bit grayscale, as Paint saves."""
    values = plain_rgb(digit, rng)
    image = Image.fromarray(to_uint8(values))
    return encode(image if rng.random() < 0.6 else image.convert("L"), "BMP")


def webp(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """WebP, lossy or lossless, as browsers and messengers save."""
    image = Image.fromarray(to_uint8(plain_rgb(digit, rng)))
    if rng.random() < 0.3:
        return encode(image, "WEBP", lossless=True)
    return encode(image, "WEBP", quality=int(rng.integers(60, 91)))


def tiff(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """TIFF, grayscale or RGB, uncompressed or LZW/Deflate/PackBits, as scanners and fax software write."""
    image = Image.fromarray(to_uint8(plain_rgb(digit, rng)))
    if rng.random() < 0.5:
        image = image.convert("L")
    compression = str(rng.choice(["raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"]))
    return encode(image, "TIFF", compression=compression, dpi=(300, 300))


def jpeg_cmyk(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A CMYK JPEG, as print workflows (Photoshop, InDesign exports) write."""
    image = Image.fromarray(to_uint8(plain_rgb(digit, rng))).convert("CMYK")
    return encode(image, "JPEG", quality=int(rng.integers(75, 96)))


def png_la(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Grayscale with alpha (LA): the ink in alpha, dark or light, the background fully transparent."""
    side = int(rng.integers(64, 161))
    size = round(side * rng.uniform(1.1, 1.5))
    coverage = place(ink(digit, side, rng), size, size, rng, spread=0.8)
    shade = rng.uniform(0, 60) if rng.random() < 0.6 else rng.uniform(200, 255)
    luminance = np.where(coverage > 0, shade, 0)
    la = np.dstack([to_uint8(luminance), to_uint8(coverage * 255)])
    return encode(Image.fromarray(la), "PNG")


def png_rgba_white_ink(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The other canvas polarity: white or light ink on a transparent background (a dark-mode drawing app)."""
    size = int(rng.choice([200, 280, 400]))
    coverage = place(ink(digit, round(size * rng.uniform(0.6, 0.95)), rng), size, size, rng, spread=0.8)
    pen = rng.uniform(225, 255, 3) if rng.random() < 0.5 else np.full(3, 255.0)
    return encode(Image.fromarray(canvas_rgba(coverage, pen)), "PNG")


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
    "phone_heic": phone_heic,  # last: the seeds of the kinds above are their index in this dict
}


def make_upload(kind: str, digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The bytes of one upload of `kind` showing the (28, 28) uint8 MNIST `digit`; same rng state, same bytes."""
    return KINDS[kind](digit, rng)


# ---- files posted as they are: benchmarks, soak, chaos ----


def sample_digits() -> np.ndarray:
    """The committed sample's (1000, 28, 28) uint8 MNIST test digits."""
    with np.load(SAMPLE) as sample:
        return sample["x"]


def digit_png(digit: np.ndarray) -> bytes:
    """The digit as it is, a 28x28 8-bit grayscale PNG: MNIST's own form, used as is by the service."""
    return encode(Image.fromarray(np.ascontiguousarray(digit, dtype=np.uint8)), "PNG")


def canvas_png(digit: np.ndarray) -> bytes:
    """The digit drawn on a 280x280 canvas: black ink in the alpha of a transparent PNG. Not MNIST's
    form, so it takes every preprocessing step; no randomness (the same digit, the same bytes)."""
    alpha = Image.fromarray(np.ascontiguousarray(digit, dtype=np.uint8)).resize((280, 280), Image.Resampling.LANCZOS)
    drawing = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    drawing.putalpha(alpha)
    return encode(drawing, "PNG")


def photo_jpeg(digit: np.ndarray, rng: np.random.Generator, width: int = 400, height: int = 300) -> bytes:
    """A ~400x300 photo of a digit on paper: a dark pen stroke, uneven light, warm tint, blur, sensor noise."""
    coverage = place(
        tilt(ink(digit, int(height * rng.uniform(0.6, 0.8)), rng), rng.uniform(-6, 6)), height, width, rng, 0.4
    )
    shade = on_paper(coverage, paper(height, width, rng, rng.uniform(200, 230), 1.0), rng.uniform(30, 70))
    rgb = shade[..., None] * lighting(height, width, rng)[..., None] * np.array([1.0, 0.96, 0.88], dtype=np.float32)
    blurred = Image.fromarray(to_uint8(rgb)).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.2)))
    noisy = np.asarray(blurred, dtype=np.float32) + rng.normal(0, 3, rgb.shape).astype(np.float32)
    return encode(Image.fromarray(to_uint8(noisy)), "JPEG", quality=int(rng.integers(75, 92)))


def phone_12mp_jpeg(digit: np.ndarray, rng: np.random.Generator, width: int = 4000, height: int = 3000) -> bytes:
    """A 12 MP phone-camera JPEG (4000x3000) of a digit on paper, with sensor noise; under the body cap."""
    small = photo_jpeg(digit, rng, width // 8, height // 8)  # drawn small, then upscaled as a lens would blur it
    image = Image.open(io.BytesIO(small)).resize((width, height), Image.Resampling.BICUBIC)
    values = np.asarray(image, dtype=np.float32)
    values += rng.normal(0, 4, values.shape).astype(np.float32)
    picture = Image.fromarray(to_uint8(values))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"  # Make, Model
    for quality in (85, 75, 65, 50):
        data = encode(picture, "JPEG", quality=quality, exif=exif.tobytes())
        if len(data) < BODY_CAP - 64 * 1024:
            return data
    return data


def noise_png(rng: np.random.Generator, side: int = 1200) -> bytes:
    """A valid side x side RGB PNG of random pixels: incompressible, so at 1200 it is about 4 MiB, under
    the body cap, and its decode is all the work there is (the service finds no digit in it)."""
    return encode(Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)), "PNG", compress_level=1)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_claiming() -> bytes:
    """A 100-byte PNG whose header claims 60000 x 60000 pixels (3.6 gigapixels)."""
    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def bomb_inflating(side: int = 6000) -> bytes:
    """A real zlib bomb: a valid side x side greyscale PNG, all black (36 MP at 6000, under the service's
    40 MP cap), a few tens of KB compressed and side * side bytes once inflated."""
    row = b"\0" + b"\0" * side  # filter byte + pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def multipart(field: str, files: Sequence[bytes], media_type: str = "image/png") -> bytes:
    """A multipart/form-data body (boundary BOUNDARY, Content-Type MULTIPART_TYPE) with each of `files`
    in the form field `field`: `file` for /v1/predict, `files` (1 to 64 of them) for /v1/predict/batch."""
    suffix = media_type.split("/")[-1]
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="d{i}.{suffix}"\r\n'
        f"Content-Type: {media_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


# ---- for humans to look at ----


def viewed(data: bytes, side: int = 160) -> Image.Image:
    """How a viewer shows an upload: first frame, EXIF orientation applied, transparency over a checkerboard."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode.startswith("I;16"):  # Pillow's convert() clips 16-bit levels rather than scaling them
        image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
    image = image.convert("RGBA")
    image.thumbnail((side, side))
    squares = (np.add.outer(np.arange(image.height) // 8, np.arange(image.width) // 8) % 2).astype(np.uint8)
    checker = Image.fromarray(np.where(squares[..., None], 200, 150).repeat(3, axis=2).astype(np.uint8)).convert("RGBA")
    return Image.alpha_composite(checker, image)


def contact_sheet(uploads: dict[str, list[bytes]], side: int = 160) -> Image.Image:
    """One row per kind, its uploads as a viewer shows them."""
    rows = max(1, len(uploads))
    columns = max(len(v) for v in uploads.values())
    sheet = Image.new("RGB", (columns * (side + 4) + 4, rows * (side + 4) + 4), (255, 255, 255))
    for r, datas in enumerate(uploads.values()):
        for c, data in enumerate(datas):
            sheet.paste(viewed(data, side), (4 + c * (side + 4), 4 + r * (side + 4)))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.uploads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the files to")
    parser.add_argument("--n", type=int, default=3, help="files per kind (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--kind", action="append", choices=sorted(KINDS), help="only this kind (repeatable)")
    parser.add_argument("--sheet", action="store_true", help="also write contact-sheet.png, every file as viewed")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    with np.load(SAMPLE) as sample:
        digits, labels = sample["x"], sample["y"]
    args.out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[bytes]] = {}
    for kind in args.kind or KINDS:
        rng = np.random.default_rng([args.seed, list(KINDS).index(kind)])
        written[kind] = []
        for i in range(args.n):
            index = i % len(digits)
            data = make_upload(kind, digits[index], rng)
            suffix = (Image.open(io.BytesIO(data)).format or "bin").lower().replace("jpeg", "jpg")
            (args.out / f"{kind}-{i}-digit{labels[index]}.{suffix}").write_bytes(data)
            written[kind].append(data)
    if args.sheet:
        contact_sheet(written).save(args.out / "contact-sheet.png")
    print(f"wrote {sum(map(len, written.values()))} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
