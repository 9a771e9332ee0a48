"""The upload makers of tools/uploads.py: each kind decodes with Pillow to the format, mode and picture meant."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.conftest import load_sample
from tools.uploads import KINDS, ORIENTATION, main, make_upload

ASYMMETRIC = (0, 1, 4)  # a 7, a 2 and a 4: no rotation of them looks like the upright digit

# kind -> (Pillow format, the modes it may decode to)
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "scan_jpeg": ("JPEG", {"L", "RGB"}),
    "phone_photo": ("JPEG", {"RGB"}),
    "canvas_black": ("PNG", {"RGBA"}),
    "canvas_colour": ("PNG", {"RGBA"}),
    "thick_small": ("PNG JPEG", {"L", "RGB"}),
    "png_16bit": ("PNG", {"I;16"}),
    "png_palette": ("PNG", {"P"}),
    "gif": ("GIF", {"P", "L"}),
    "gif_animated": ("GIF", {"P", "L"}),
    "bmp": ("BMP", {"RGB", "L", "P"}),
    "webp": ("WEBP", {"RGB"}),
    "tiff": ("TIFF", {"L", "RGB"}),
    "jpeg_cmyk": ("JPEG", {"CMYK"}),
    "png_la": ("PNG", {"LA"}),
    "png_rgba_white_ink": ("PNG", {"RGBA"}),
    "phone_heic": ("HEIF", {"RGB"}),
}
PHOTOS = ("phone_photo", "phone_heic")  # under uneven light


def sample_digits() -> np.ndarray:
    """The first 12 digits of the committed sample, (12, 28, 28) uint8."""
    return load_sample()[0][:12]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return sample_digits()


@cache
def made(kind: str, seed: int, start: int, stop: int) -> tuple[bytes, ...]:
    rng = np.random.default_rng(seed)
    return tuple(make_upload(kind, digit, rng) for digit in sample_digits()[start:stop])


def uploads(kind: str, start: int = 0, stop: int = 12, seed: int = 0) -> list[bytes]:
    """Uploads of the sample digits start..stop from one generator (made once per test session)."""
    return list(made(kind, seed, start, stop))


def flatten_light(luminance: np.ndarray) -> np.ndarray:
    """Subtract a quadratic surface fitted robustly to the background: uneven light goes, the ink stays."""
    h, w = luminance.shape
    y, x = np.mgrid[0:h, 0:w]
    u, v = (x / w - 0.5).ravel(), (y / h - 0.5).ravel()
    basis = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    values = luminance.ravel()
    keep = np.ones(values.shape, dtype=bool)
    for _ in range(4):
        kept = basis[keep]
        coefficients = np.linalg.solve(kept.T @ kept, kept.T @ values[keep])
        residual = values - basis @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        keep = np.abs(residual) < 3 * spread + 1e-3
    return (values - basis @ coefficients).reshape(h, w)


def viewed(data: bytes, exif: bool = True) -> Image.Image:
    """The upload's first frame as a viewer shows it (EXIF orientation applied), shrunk to at most 256 px."""
    image: Image.Image = Image.open(io.BytesIO(data))
    if exif:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("P", "CMYK"):
        image = image.convert("RGBA")
    image.thumbnail((256, 256), Image.Resampling.BOX)
    return image


def seen_ink(data: bytes, exif: bool = True, uneven_light: bool = False) -> np.ndarray:
    """What a viewer shows of an upload, as ink coverage in [0, 1] whatever the polarity (as `viewed`)."""
    image = viewed(data, exif)
    if image.mode.startswith("I;16"):
        luminance = np.asarray(image, dtype=np.float32) / 65535
    else:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
        if rgba[..., 3].min() < 0.5:  # a transparent background: what is visible is the ink
            return rgba[..., 3]
        luminance = rgba[..., :3].mean(axis=-1)
    ink = np.abs(flatten_light(luminance) if uneven_light else luminance - np.median(luminance))
    return ink / ink.max()


def outline(coverage: np.ndarray) -> np.ndarray:
    """(20, 20) float32: the ink's bounding box, squared and shrunk, to compare shapes at any size."""
    ys, xs = np.nonzero(coverage > 0.5 * coverage.max())
    crop = coverage[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    h, w = crop.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = crop
    return np.asarray(Image.fromarray(square).resize((20, 20), Image.Resampling.BOX))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def rotations_similarity(data: bytes, digit: np.ndarray, exif: bool = True) -> list[float]:
    """Similarity of the upload's ink to the digit turned by 0, 90, 180 and 270 degrees."""
    seen = outline(seen_ink(data, exif=exif, uneven_light=True))
    truth = outline(digit.astype(np.float32) / 255)
    return [similarity(seen, np.rot90(truth, k)) for k in range(4)]


@pytest.mark.parametrize("kind", list(KINDS))
def test_decodes_to_the_format_and_mode_meant(kind: str, digits: np.ndarray) -> None:
    formats, modes = EXPECTED[kind]
    for data in uploads(kind):
        image = Image.open(io.BytesIO(data))
        assert image.format in formats.split() and image.mode in modes, (image.format, image.mode)
        assert min(image.size) >= 64 and max(image.size) <= 1000
        image.load()  # decodes completely, not just the header


@pytest.mark.parametrize("kind", list(KINDS))
def test_shows_the_digit(kind: str, digits: np.ndarray) -> None:
    """Seen as a viewer shows it, the upload's ink has the digit's shape (the bold digits a bolder one)."""
    truth = [outline(d.astype(np.float32) / 255) for d in digits]
    scores = [
        similarity(outline(seen_ink(data, uneven_light=kind in PHOTOS)), t)
        for data, t in zip(uploads(kind), truth, strict=True)
    ]
    floor = 0.5 if kind == "thick_small" else 0.7
    assert min(scores) > floor and np.mean(scores) > floor + 0.15, [round(s, 2) for s in scores]


@pytest.mark.parametrize("kind", list(KINDS))
def test_upright(kind: str, digits: np.ndarray) -> None:
    """Every kind shows the digit the right way up once the EXIF orientation is applied."""
    for index in ASYMMETRIC:
        scores = rotations_similarity(uploads(kind, index, index + 1, seed=index)[0], digits[index])
        assert scores[0] > max(scores[1:]) + 0.2, [round(s, 2) for s in scores]


def test_phone_photos_are_stored_rotated_with_an_exif_orientation(digits: np.ndarray) -> None:
    seen = set()
    for seed in range(8):
        index = ASYMMETRIC[seed % 3]
        data = make_upload("phone_photo", digits[index], np.random.default_rng(seed))
        image = Image.open(io.BytesIO(data))
        orientation = image.getexif()[ORIENTATION]
        assert orientation in (3, 6, 8)
        seen.add(orientation)
        upright = ImageOps.exif_transpose(image)
        assert upright.height > upright.width, "held upright, a phone takes a portrait photo"
        assert (image.width > image.height) == (orientation in (6, 8))
        # The stored pixels are turned the other way: 180 degrees for 3, 90 one way or the other for 6 and 8.
        raw = rotations_similarity(data, digits[index], exif=False)
        turned = {3: 2, 6: 1, 8: 3}[orientation]  # np.rot90 quarter turns (anticlockwise) of the stored pixels
        assert int(np.argmax(raw)) == turned, [round(s, 2) for s in raw]
        assert np.argmax(rotations_similarity(data, digits[index])) == 0
    assert seen == {3, 6, 8}


def test_heic_photos_are_stored_rotated_on_some(digits: np.ndarray) -> None:
    orientations = []
    for seed in range(12):
        index = ASYMMETRIC[seed % 3]
        data = make_upload("phone_heic", digits[index], np.random.default_rng(seed))
        image = Image.open(io.BytesIO(data))  # pillow-heif turns the pixels upright as it opens them
        orientations.append(image.info.get("original_orientation") or 1)
        assert image.format == "HEIF" and image.height > image.width, "upright, a portrait photo"
        assert np.argmax(rotations_similarity(data, digits[index])) == 0
    assert 1 in orientations and set(orientations) - {1} <= {3, 6, 8} and set(orientations) != {1}


@pytest.mark.parametrize("kind", PHOTOS)
def test_phone_photos_are_colour_under_uneven_light(kind: str, digits: np.ndarray) -> None:
    for data in uploads(kind, 0, 6):
        rgb = np.asarray(viewed(data), dtype=np.float32)
        paper = rgb[seen_ink(data, uneven_light=True) < 0.2]
        assert np.ptp(paper.mean(axis=0)) > 4, "tinted paper, not grey"
        assert paper.mean() < 240, "paper is not pure white in a photo"
        h, w = rgb.shape[:2]
        centre, corners = rgb[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3], [rgb[:9, :9], rgb[:9, -9:], rgb[-9:, :9]]
        assert min(np.median(c) for c in corners) < np.median(centre) - 8, "a gradient or vignetting"


def test_scans_are_light_paper_with_texture_and_margins(digits: np.ndarray) -> None:
    for data in uploads("scan_jpeg"):
        image = Image.open(io.BytesIO(data))
        gray = np.asarray(viewed(data).convert("L"), dtype=np.float32)
        ink = seen_ink(data)
        paper = gray[ink < 0.1]
        assert 190 < np.median(paper) < 250 and paper.std() > 1.0
        assert np.median(gray[ink > 0.8]) < 110
        ys, xs = np.nonzero(ink > 0.5)
        h, w = gray.shape
        assert ys.min() > 0.05 * h and ys.max() < 0.95 * h and xs.min() > 0.05 * w and xs.max() < 0.95 * w
        assert 0.3 < (ys.max() - ys.min()) / h < 0.8
        assert image.info.get("dpi") is not None


@pytest.mark.parametrize("kind", ["canvas_black", "canvas_colour", "png_rgba_white_ink"])
def test_canvases_are_transparent_with_antialiased_ink(kind: str, digits: np.ndarray) -> None:
    white_backgrounds = 0
    for data in uploads(kind):
        rgba = np.asarray(Image.open(io.BytesIO(data)), dtype=np.int64)
        alpha, rgb = rgba[..., 3], rgba[..., :3]
        assert 200 <= rgba.shape[0] == rgba.shape[1] <= 400
        if alpha.min() == 255:  # canvas_colour filled white first
            assert kind == "canvas_colour" and (rgb[0, 0] == 255).all()
            white_backgrounds += 1
            continue
        assert (rgb[alpha == 0] == 0).all(), "a canvas exports transparent pixels as RGB 0"
        assert np.count_nonzero((alpha > 0) & (alpha < 255)) > 100, "antialiased edges"
        assert np.count_nonzero(alpha == 255) > 500, "solid strokes"
        ink = rgb[alpha == 255]
        if kind == "canvas_black":
            assert (ink == 0).all()
        elif kind == "canvas_colour":
            assert np.ptp(ink.mean(axis=0)) > 60, "a coloured pen"
        else:
            assert ink.min() >= 225
    if kind == "canvas_colour":
        assert 0 < white_backgrounds < len(digits), "some on white, some transparent"


def test_bold_digits_are_small_and_off_centre_in_a_big_frame(digits: np.ndarray) -> None:
    offsets = []
    for data, digit in zip(uploads("thick_small"), digits, strict=True):
        image = Image.open(io.BytesIO(data))
        assert image.size in {(640, 480), (800, 600), (480, 640), (600, 800)}
        ink = seen_ink(data) > 0.5
        ys, xs = np.nonzero(ink)
        (frame_h, frame_w), height, width = ink.shape, np.ptp(ys) + 1, np.ptp(xs) + 1
        assert max(height, width) < min(frame_h, frame_w) / 2.5
        offsets.append(max(abs(np.mean(ys) / frame_h - 0.5), abs(np.mean(xs) / frame_w - 0.5)))
        # bolder than the MNIST digit: more of the ink's bounding box is ink
        my, mx = np.nonzero(digit > 127)
        mnist_fill = len(my) / ((np.ptp(my) + 1) * (np.ptp(mx) + 1))
        assert ink.sum() / (height * width) > mnist_fill * 1.15
    assert np.median(offsets) > 0.1, "off centre"


@pytest.mark.parametrize("kind", ["png_16bit", "png_palette", "gif", "bmp", "webp", "tiff", "jpeg_cmyk", "png_la"])
def test_formats_come_in_both_polarities(kind: str, digits: np.ndarray) -> None:
    def dark_on_light(data: bytes) -> bool:
        image = Image.open(io.BytesIO(data))
        if image.mode.startswith("I;16"):
            return float(np.median(np.asarray(image))) > 32768
        if image.mode == "LA":  # the visible pixels are the ink
            la = np.asarray(image, dtype=np.float32)
            return float(np.median(la[..., 0][la[..., 1] > 128])) < 128
        return float(np.median(np.asarray(image.convert("RGB").convert("L")))) > 128  # the median pixel is paper

    polarities = {dark_on_light(data) for data in uploads(kind)}
    assert polarities == {True, False}


def test_16bit_png_uses_16_bits(digits: np.ndarray) -> None:
    values = np.asarray(Image.open(io.BytesIO(uploads("png_16bit")[0])))
    assert values.dtype.itemsize == 2 or values.max() > 255
    assert np.count_nonzero(values % 257) > values.size // 2, "not just 8-bit levels times 257"


def test_animated_gif_first_frame_is_the_digit_and_later_frames_differ(digits: np.ndarray) -> None:
    for data in uploads("gif_animated", 0, 4):
        image = Image.open(io.BytesIO(data))
        n_frames = getattr(image, "n_frames", 1)
        assert n_frames >= 3
        frames = []
        for index in range(n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("L"), dtype=np.float32))
        contrast = [np.ptp(np.percentile(f, [1, 99])) for f in frames]
        assert contrast[0] > 120, "the first frame is the digit"
        assert contrast[-1] < 30, "the last frame is a blank page"
        assert all(np.abs(f - frames[0]).mean() > 1 for f in frames[1:])


def test_same_generator_state_same_bytes(digits: np.ndarray) -> None:
    for kind in KINDS:
        rng = np.random.default_rng(7)
        again = make_upload(kind, digits[0], rng)
        assert [again] == uploads(kind, 0, 1, seed=7), kind
        assert [again] != uploads(kind, 0, 1, seed=8), kind


def test_unknown_kind() -> None:
    with pytest.raises(KeyError):
        make_upload("tga", np.zeros((28, 28), np.uint8), np.random.default_rng(0))


def test_cli_writes_examples_of_each_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--n", "2", "--sheet"]) == 0
    files = sorted(p for p in tmp_path.iterdir() if p.name != "contact-sheet.png")
    assert len(files) == 2 * len(KINDS)
    for kind in KINDS:
        assert len([p for p in files if p.name.startswith(f"{kind}-")]) == 2
    for path in files:
        Image.open(path).load()
    assert Image.open(tmp_path / "contact-sheet.png").size[1] > 100 * len(KINDS)
    assert f"wrote {2 * len(KINDS)} files" in capsys.readouterr().out
