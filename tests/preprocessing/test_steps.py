"""Each preprocessing step on images the tests generate, then the whole pipeline's guarantees."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.contract import DEFAULT_MAX_PIXELS
from app.errors import BlankImage, ImageError, ImageTooLarge, InvalidImage, UnsupportedImageType
from app.preprocessing import preprocess
from app.preprocessing.background import Background, _border, _design, fit_background, normalise_polarity
from app.preprocessing.decode import apply_exif_orientation, decode
from app.preprocessing.form import as_mnist_digit
from app.preprocessing.gray import flatten_transparency, thumbnail, to_gray_and_alpha
from app.preprocessing.ink import remove_background
from app.preprocessing.morphology import erode
from app.preprocessing.region import WORKING_SIDE, Region, cut_out, find_digit
from app.preprocessing.steps import centre_by_mass, crop_to_ink, fit_to_box, keep_digit, stroke_width, thin_strokes
from tests.conftest import encode


@pytest.fixture(scope="module")
def digits(sample: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """All 1,000 digits of the committed sample, (1000, 28, 28) uint8."""
    return sample[0]


def bar(height: int = 60, width: int = 40) -> np.ndarray:
    """An asymmetric shape: a vertical bar with a foot to the right (an L), white on black."""
    pixels = np.zeros((height, width), dtype=np.uint8)
    pixels[10:50, 10:16] = 255
    pixels[44:50, 10:32] = 255
    return pixels


def gray_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """to_gray_and_alpha's images as arrays: luminance in [0, 255] and alpha in [0, 1] (float32)."""
    gray, alpha = to_gray_and_alpha(image)
    return np.asarray(gray, np.float32), None if alpha is None else np.asarray(alpha, np.float32) / 255


# 1. decode ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("PNG", "L"), ("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "1"), ("PNG", "I;16"),
     ("JPEG", "L"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "L"), ("TIFF", "I;16")],
    ids=lambda v: str(v),
)  # fmt: skip
def test_decode_formats_and_modes_keep_the_shape(fmt: str, mode: str) -> None:
    source = Image.fromarray(bar())
    image = source.convert(mode) if mode != "I;16" else Image.fromarray(bar().astype(np.uint16) * 257)
    decoded = decode(encode(image, fmt), DEFAULT_MAX_PIXELS, [])
    gray, _ = gray_and_alpha(decoded)
    assert gray.shape == (60, 40)
    assert gray[30, 12] > 200 and gray[5, 5] < 50, "the bar is bright and the background dark, at any bit depth"


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    values = np.full((20, 20), 30000, dtype=np.uint16)
    gray, _ = gray_and_alpha(Image.fromarray(values))
    assert gray[0, 0] == pytest.approx(30000 / 257, abs=0.5)


def test_animated_gif_uses_the_first_frame() -> None:
    first, second = Image.fromarray(bar()), Image.fromarray(255 - bar())
    third = Image.fromarray(np.roll(bar(), 5, axis=1))
    data = encode(first, "GIF", save_all=True, append_images=[second, third])
    notes: list[str] = []
    gray, _ = gray_and_alpha(decode(data, DEFAULT_MAX_PIXELS, notes))
    assert gray[30, 12] > 200 and notes == ["used the first of 3 frames"]


def test_multipage_tiff_uses_the_first_page() -> None:
    data = encode(Image.fromarray(bar()), "TIFF", save_all=True, append_images=[Image.fromarray(255 - bar())])
    notes: list[str] = []
    gray, _ = gray_and_alpha(decode(data, DEFAULT_MAX_PIXELS, notes))
    assert gray[30, 12] > 200 and "first of 2" in notes[0]


def test_pixel_cap_is_checked_before_decoding() -> None:
    data = encode(Image.new("L", (5000, 5000)))  # 25 MP, a few KB compressed
    with pytest.raises(ImageTooLarge, match="5000x5000"):
        decode(data, 1_000_000, [])


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"", InvalidImage), (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, InvalidImage), (b"GIF89a\x01", InvalidImage),
     (b"plain text", UnsupportedImageType), (b"%PDF-1.4", UnsupportedImageType),
     (b"<?xml version='1.0'?><svg/>", UnsupportedImageType)],
    ids=["empty", "png-header-only", "gif-header-only", "text", "pdf", "svg"],
)  # fmt: skip
def test_decode_errors(data: bytes, error: type[ImageError]) -> None:
    with pytest.raises(error):
        decode(data, DEFAULT_MAX_PIXELS, [])


def test_formats_pillow_knows_but_we_refuse_are_415() -> None:
    with pytest.raises(UnsupportedImageType, match="ICO"):
        decode(encode(Image.new("RGB", (32, 32)), "ICO"), DEFAULT_MAX_PIXELS, [])


# 2. EXIF orientation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)],
    ids=["3", "6", "8"],
)
def test_exif_orientation_makes_the_photo_upright(orientation: int, stored: Image.Transpose) -> None:
    upright = Image.fromarray(bar())
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(upright.transpose(stored), "JPEG", quality=95, exif=exif.tobytes())
    notes: list[str] = []
    image = apply_exif_orientation(decode(data, DEFAULT_MAX_PIXELS, []), notes)
    gray, _ = gray_and_alpha(image)
    assert gray.shape == (60, 40)
    assert gray[30, 12] > 150 and gray[47, 28] > 150 and gray[12, 28] < 60, "the L stands upright, foot to the right"
    assert notes == [f"applied EXIF orientation {orientation}"]


# 3. transparency ------------------------------------------------------------------------------------


def canvas(ink_rgb: tuple[int, int, int]) -> tuple[Image.Image, Image.Image | None]:
    rgba = np.zeros((60, 40, 4), dtype=np.uint8)  # transparent pixels are RGB 0, as a canvas exports them
    rgba[..., :3] = ink_rgb
    rgba[..., 3] = bar()
    return to_gray_and_alpha(Image.fromarray(rgba, "RGBA"))


def test_dark_ink_on_transparent_goes_onto_white() -> None:
    notes: list[str] = []
    gray = np.asarray(flatten_transparency(*canvas((0, 0, 0)), notes))
    assert gray[5, 5] == 255 and gray[30, 12] == 0 and "onto white" in notes[0]


def test_light_ink_on_transparent_goes_onto_black() -> None:
    notes: list[str] = []
    gray = np.asarray(flatten_transparency(*canvas((255, 255, 255)), notes))
    assert gray[5, 5] == 0 and gray[30, 12] == 255 and "onto black" in notes[0]


def test_half_transparent_ink_is_blended_onto_the_background() -> None:
    rgba = np.zeros((60, 40, 4), dtype=np.uint8)
    rgba[..., 3] = bar()
    rgba[20:30, 10:16, 3] = 128  # black ink at half opacity there: halfway between black and the white background
    gray = np.asarray(flatten_transparency(*to_gray_and_alpha(Image.fromarray(rgba, "RGBA")), []))
    assert abs(int(gray[25, 12]) - 127) <= 1 and gray[40, 12] == 0 and gray[5, 5] == 255


def test_fully_transparent_is_blank() -> None:
    gray, alpha = to_gray_and_alpha(Image.new("RGBA", (20, 20)))
    with pytest.raises(BlankImage):
        flatten_transparency(gray, alpha, [])


def test_palette_transparency_is_honoured() -> None:
    image = Image.fromarray(bar()).convert("P")
    image.info["transparency"] = 0
    _, alpha = gray_and_alpha(image)
    assert alpha is not None and alpha[5, 5] == 0 and alpha[30, 12] == 1


# 4. polarity ----------------------------------------------------------------------------------------


def test_dark_on_light_is_inverted_and_light_on_dark_kept() -> None:
    light_on_dark = bar().astype(np.float32)
    notes: list[str] = []
    kept, inverted = normalise_polarity(light_on_dark, notes)
    np.testing.assert_array_equal(kept, light_on_dark)
    assert notes == [] and not inverted
    flipped, inverted = normalise_polarity(255 - light_on_dark, notes)
    np.testing.assert_array_equal(flipped, light_on_dark)
    assert notes == ["inverted dark-on-light"] and inverted


# 5. thumbnail, background, the digit's region -------------------------------------------------------


def test_thumbnail_reduces_by_a_whole_factor_keeping_the_levels() -> None:
    image = Image.fromarray(np.tile(np.array([[40, 200]], np.uint8), (600, 500)))  # 1000x600, columns 40/200
    small, scale = thumbnail(image)
    assert scale == 8 and small.shape == (75, 125) and small.dtype == np.float32
    assert abs(float(small.mean()) - 120.0) < 0.5 and float(np.ptp(small)) < 1, "box averages"
    same, one = thumbnail(Image.fromarray(bar()))
    assert one == 1 and np.array_equal(same, bar())


def test_the_background_is_the_same_surface_over_any_region() -> None:
    h, w = 300, 240
    y, x = np.mgrid[0:h, 0:w]
    gray = (60 + 80 * x / w + 40 * ((y / h - 0.5) ** 2)).astype(np.float32)
    small, _ = thumbnail(Image.fromarray(gray, "F"))
    background = fit_background(small)
    whole = background.over(Region.whole((w, h)))
    assert np.abs(whole - gray).max() < 3, "the quadratic fits the uneven light"
    part = background.over(Region((w, h), (50, 100, 150, 220), (100, 120)))
    np.testing.assert_allclose(part, whole[100:220, 50:150], atol=1e-3)
    flat = fit_background(np.full((50, 60), 17.0, np.float32))
    assert flat.coefficients is None and np.all(flat.over(Region.whole((8, 9))) == 17)


@pytest.mark.parametrize("shape", [(128, 128), (104, 119), (37, 128), (16, 16)])
def test_the_fit_uses_the_surface_terms_at_the_centres_of_its_blocks(shape: tuple[int, int]) -> None:
    """_design scales the whole image's terms to the share the blocks cover; the same as evaluating the
    terms at each block's centre, in the coordinates Background.over uses (-0.5 to 0.5 over the image)."""
    sh, sw = shape
    n = 8
    bh, bw = sh // n, sw // n
    centres_y = ((np.arange(n) + 0.5) * bh) / sh - 0.5 * (bh * n) / sh  # of the blocks, centred on the image
    centres_x = ((np.arange(n) + 0.5) * bw) / sw - 0.5 * (bw * n) / sw
    py, px = np.repeat(centres_y, n), np.tile(centres_x, n)
    expected = np.stack([np.ones_like(py), py, px, py * py, px * px, py * px], axis=1)
    np.testing.assert_allclose(_design(n, bh * n / sh, bw * n / sw), expected, atol=1e-12)


def test_the_spread_of_a_background_is_its_range_over_the_image() -> None:
    tilted = Background((100.0, 0.0, 20.0, 0.0, 0.0, 0.0), 0.0, 255.0)  # 90 at the left edge, 110 at the right
    assert tilted.spread() == pytest.approx(20.0)
    clipped = Background((100.0, 0.0, 20.0, 0.0, 0.0, 0.0), 95.0, 105.0)
    assert clipped.spread() == pytest.approx(10.0)
    assert Background(None, 40.0, 40.0).spread() == 0.0
    whole = tilted.over(Region.whole((50, 40)))
    assert float(whole.max() - whole.min()) == pytest.approx(20.0, abs=1e-4)


def test_paper_of_one_exact_level_is_flat_even_where_the_ink_crosses_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A canvas drawing whose stroke runs off the bottom: all but a few percent of the border is exactly
    the paper's level, so there is no surface to fit, and the answer is the robust fit's (EVEN_SHARE 0
    turns the shortcut off). A border with a photo's noise is never exact: fitted either way."""
    canvas = np.zeros((90, 90), np.float32)
    canvas[20:90, 40:48] = 255.0  # a stroke down to the bottom edge: a few percent of the border
    noisy = canvas + 40 + np.random.default_rng(0).normal(0, 3, canvas.shape).astype(np.float32)
    assert float(np.ptp(_border(canvas))) > 2.0, "the even-border check alone does not see it"
    quick = {name: fit_background(image) for name, image in (("canvas", canvas), ("noisy", noisy))}
    monkeypatch.setattr("app.preprocessing.background.EVEN_SHARE", 0.0)
    fitted = {name: fit_background(image) for name, image in (("canvas", canvas), ("noisy", noisy))}
    assert quick["canvas"] == Background(None, 0.0, 0.0) == fitted["canvas"]
    assert quick["noisy"] == fitted["noisy"]


def test_find_digit_boxes_the_marks_with_a_margin_at_the_working_side() -> None:
    foreground = np.zeros((100, 125), np.float32)  # a thumbnail at 8 px a pixel of a 1000x800 image
    foreground[40:60, 70:80] = 200.0  # the digit
    foreground[10, 10] = 30.0  # faint noise, under a fifth of the digit's brightness
    region = find_digit(foreground, 8, (1000, 800))
    left, top, right, bottom = region.box
    assert left <= 70 * 8 and right >= 80 * 8 and top <= 40 * 8 and bottom >= 60 * 8, "the digit is in"
    assert right - left < 25 * 8 and bottom - top < 35 * 8, "the noise and the rest of the page are not"
    assert max(region.size) == WORKING_SIDE
    blank = find_digit(np.zeros((100, 125), np.float32), 8, (1000, 800))
    assert blank.box == (0, 0, 1000, 800), "nothing stands out: the whole image"


def test_cut_out_reduces_the_region_and_applies_the_polarity() -> None:
    pixels = np.full((400, 600), 200, np.uint8)
    pixels[100:300, 250:290] = 20  # a dark bar on light paper
    region = Region((600, 400), (200, 50, 400, 350), (86, 128))
    work = cut_out(Image.fromarray(pixels), region, inverted=True)
    assert work.shape == (128, 86) and work.dtype == np.float32
    assert work[64, 30] == pytest.approx(235, abs=1) and work[5, 5] == pytest.approx(55, abs=1)  # bar at x 250-290
    whole = cut_out(Image.fromarray(pixels), Region.whole((600, 400)), inverted=False)
    assert np.array_equal(whole, pixels)


# 6. ink: background, crop, box, centre --------------------------------------------------------------


def test_uneven_light_is_removed() -> None:
    h, w = 300, 240
    y, x = np.mgrid[0:h, 0:w]
    paper = 60 + 80 * x / w + 40 * ((y / h - 0.5) ** 2)  # inverted photo: the paper is dark, unevenly
    gray = paper.astype(np.float32)
    gray[100:200, 100:115] = 250  # a stroke
    ink = remove_background(gray)
    assert ink[150, 107] > 230
    assert ink[:, :90].max() < 3 and ink[:, 130:].max() < 3, "the paper is black after removal, left and right"


def test_noise_floor_and_specks_are_dropped() -> None:
    rng = np.random.default_rng(0)
    gray = rng.normal(20, 4, (200, 200)).astype(np.float32)
    gray[50:150, 90:100] = 230  # the stroke
    gray[10, 10] = gray[190, 185] = 230  # dust
    ink = keep_digit(remove_background(gray))
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert rows[0] >= 45 and rows[-1] <= 155 and cols[0] >= 85 and cols[-1] <= 105


def test_crop_to_ink_is_the_exact_bounding_box() -> None:
    ink = np.zeros((50, 50), np.float32)
    ink[7:19, 20:23] = 1.0
    assert crop_to_ink(ink).shape == (12, 3)
    with pytest.raises(BlankImage):
        crop_to_ink(np.zeros((5, 5), np.float32))


@pytest.mark.parametrize(("shape", "expected"), [((100, 40), (20, 8)), ((40, 100), (8, 20)), ((5, 3), (20, 12))])
def test_fit_to_box_keeps_the_aspect_ratio(shape: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_to_box(np.full(shape, 200, np.float32)).shape == expected


def test_centre_by_mass_puts_the_mass_at_14_14() -> None:
    digit = np.zeros((20, 12), np.float32)
    digit[:, :4] = 255  # mass on the left of the box
    frame = centre_by_mass(digit).astype(np.float64)
    cy = (frame.sum(axis=1) * np.arange(28)).sum() / frame.sum()
    cx = (frame.sum(axis=0) * np.arange(28)).sum() / frame.sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_bold_strokes_are_thinned_mnist_sized_are_not() -> None:
    bold = np.zeros((100, 60), np.float32)
    bold[:, 10:50] = 255  # a stroke 40% of the height wide
    notes: list[str] = []
    assert stroke_width(thin_strokes(bold, notes)) < stroke_width(bold) and notes
    small = np.full((20, 12), 255, np.float32)
    assert thin_strokes(small, []) is small


def test_stroke_width_counts_the_edges_on_the_crop_border() -> None:
    crop = np.full((100, 20), 255, np.float32)  # a straight 1 fills its crop: all its edges are on the border
    assert stroke_width(crop) == pytest.approx(2 * 100 * 20 / (2 * (100 + 20)) / 100)


@pytest.mark.parametrize("width", [12, 30], ids=["mnist-width", "bold"])
def test_thinning_a_straight_one_keeps_it(width: int) -> None:
    one = np.full((100, width), 255, np.float32)  # its crop: every edge on the border
    thinned = thin_strokes(one, [])
    assert thinned.sum() >= 0.5 * one.sum(), "thinned, not erased"
    assert thinned.shape[0] >= 80 and thinned.shape[1] <= width, "still a tall bar"


def test_a_thinned_digit_is_cropped_to_its_ink_again() -> None:
    zero = np.full((100, 70), 255, np.float32)
    zero[30:70, 25:45] = 0  # a bold 0 filling its crop: erosion leaves an empty margin around it
    notes: list[str] = []
    thinned = thin_strokes(zero, notes)
    assert notes and thinned.shape[0] < 100 and crop_to_ink(thinned).shape == thinned.shape


def test_thinning_that_would_erase_the_digit_keeps_the_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    bold = np.zeros((100, 60), np.float32)
    bold[:, 10:50] = 255
    monkeypatch.setattr(
        "app.preprocessing.steps.erode", lambda values, radius: values * np.float32(0.1)
    )  # leaves 10% of the ink
    notes: list[str] = []
    assert thin_strokes(bold, notes) is bold and not notes


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 13, 40], ids=lambda r: f"r{r}")
def test_erode_is_the_minimum_over_a_square(radius: int) -> None:
    values = np.random.default_rng(radius).uniform(0, 255, (31, 17)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(values, radius), (2 * radius + 1,) * 2)
    np.testing.assert_array_equal(erode(values, radius), windows.min(axis=(-2, -1)))


def test_erode_with_a_huge_radius_uses_a_few_copies_not_one_per_shift() -> None:
    values, radius = np.full((400, 300), 255, np.float32), 3000
    padded_bytes = (400 + 2 * radius) * 300 * 4
    tracemalloc.start()
    try:
        eroded = erode(values, radius)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert eroded.shape == values.shape and not eroded.any()
    assert peak < 4 * padded_bytes, f"{peak / padded_bytes:.1f} padded copies"


# the whole pipeline ---------------------------------------------------------------------------------


def test_mnist_digits_pass_through_unchanged(digits: np.ndarray) -> None:
    for d in digits:  # as a 28x28 grayscale PNG: recognised as an MNIST digit and used as it is
        result = preprocess(encode(Image.fromarray(d)))
        assert np.array_equal(result.pixels, d) and result.notes == []


def test_the_full_steps_are_an_identity_on_mnist_digits_too(digits: np.ndarray) -> None:
    # as RGB the shortcut doesn't apply: every step runs, and still leaves (almost) every digit as it was
    same = sum(np.array_equal(preprocess(encode(Image.fromarray(d).convert("RGB"))).pixels, d) for d in digits)
    assert same >= 0.98 * len(digits), same


def test_only_mnist_form_digits_take_the_shortcut(digits: np.ndarray) -> None:
    d = digits[0]
    assert as_mnist_digit(Image.fromarray(d)) is not None
    rotated = Image.fromarray(d)
    rotated.getexif()[0x0112] = 6
    not_mnist = {
        "off centre": np.roll(d, 2, axis=1),
        "small": np.pad(np.asarray(Image.fromarray(d).resize((14, 14))), 7),
        "dark on light": 255 - d,
        "faint": d // 2,
        "blank": np.zeros_like(d),
    }
    for name, pixels in not_mnist.items():
        assert as_mnist_digit(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))) is None, name
    assert as_mnist_digit(Image.fromarray(d).convert("RGB")) is None
    assert as_mnist_digit(Image.open(io.BytesIO(encode(rotated, exif=rotated.getexif())))) is None
    # and the full steps bring an off-centre digit back to MNIST's form
    shifted = preprocess(encode(Image.fromarray(np.roll(d, 2, axis=1))))
    assert np.array_equal(shifted.pixels, d)


def test_tiny_digit_in_a_huge_frame_and_a_huge_digit_look_like_mnist(digits: np.ndarray) -> None:
    for frame, side in (((1500, 2000), 60), ((900, 900), 880)):
        canvas = Image.new("L", (frame[1], frame[0]), 255)
        digit = Image.fromarray(255 - digits[0]).resize((side, side), Image.Resampling.BICUBIC)
        canvas.paste(digit, ((frame[1] - side) // 3, (frame[0] - side) // 4))
        pixels = preprocess(encode(canvas)).pixels.astype(np.float64)
        rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21, 22)
        cy = (pixels.sum(axis=1) * np.arange(28)).sum() / pixels.sum()
        assert abs(cy - 14) <= 0.6


def test_simple_mode_is_only_grayscale_and_resize() -> None:
    image = Image.fromarray(bar()).convert("RGB")
    expected = np.asarray(
        Image.fromarray(np.asarray(image.convert("L"), np.float32), "F").resize((28, 28), Image.Resampling.BILINEAR)
    )
    pixels = preprocess(encode(image), "simple").pixels
    np.testing.assert_array_equal(pixels, np.clip(np.rint(expected), 0, 255).astype(np.uint8))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048) | st.builds(lambda b: b"\x89PNG\r\n\x1a\n" + b, st.binary(max_size=512)))
def test_any_bytes_give_a_valid_input_or_a_declared_error(data: bytes) -> None:
    try:
        x = preprocess(data).model_input
    except ImageError:
        return
    assert x.shape == (1, 784) and x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
