"""rainset.metrics against scikit-image, hand arithmetic and MATLAB's known values."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rainset.metrics import psnr, rgb_to_y, ssim

TOL = 1e-4


def _pair(shape, kind, seed):
    """A correlated random pair (a noisy, shifted copy), as a derainer's output and target."""
    rng = np.random.default_rng(seed)
    base = rng.random(shape)
    # Smooth structure plus noise so SSIM sits well inside (0, 1).
    base = (base + np.roll(base, 1, axis=0) + np.roll(base, 1, axis=1)) / 3.0
    other = np.clip(base + rng.normal(0.0, 0.08, shape), 0.0, 1.0)
    if kind == "uint8":
        return (base * 255).round().astype(np.uint8), (other * 255).round().astype(np.uint8), 255.0
    if kind == "uint16":
        return (
            (base * 65535).round().astype(np.uint16),
            (other * 65535).round().astype(np.uint16),
            65535.0,
        )
    dr = {"float1": 1.0, "float2": 2.0}[kind]
    return base.astype(np.float32), other.astype(np.float32), dr


def _skimage_ssim(a, b, dr):
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=dr,
        channel_axis=2 if a.ndim == 3 else None,
    )


def _y_by_formula(rgb, dr):
    """Studio-range Y written out independently of rgb_to_y."""
    r, g, b = (rgb[..., i].astype(np.float64) * 255.0 / dr for i in range(3))
    return (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0) * dr / 255.0


@pytest.mark.parametrize("shape", [(11, 11, 3), (23, 37, 3), (64, 48, 3), (30, 20)])
@pytest.mark.parametrize("kind", ["uint8", "float1", "float2"])
def test_rgb_matches_skimage(shape, kind):
    a, b, dr = _pair(shape, kind, seed=sum(shape) * 10 + len(kind))
    explicit = {} if kind == "uint8" else {"data_range": dr}
    assert ssim(a, b, **explicit) == pytest.approx(_skimage_ssim(a, b, dr), abs=TOL)
    expected_psnr = peak_signal_noise_ratio(
        a.astype(np.float64), b.astype(np.float64), data_range=dr
    )
    assert psnr(a, b, **explicit) == pytest.approx(expected_psnr, abs=TOL)
    assert 0.0 < ssim(a, b, **explicit) < 1.0


@pytest.mark.parametrize("kind", ["uint8", "float1"])
def test_y_matches_skimage_on_formula_y(kind):
    a, b, dr = _pair((40, 33, 3), kind, seed=7)
    ya, yb = _y_by_formula(a, dr), _y_by_formula(b, dr)
    assert ssim(a, b, data_range=dr, channel="y") == pytest.approx(
        _skimage_ssim(ya, yb, dr), abs=TOL
    )
    assert psnr(a, b, data_range=dr, channel="y") == pytest.approx(
        peak_signal_noise_ratio(ya, yb, data_range=dr), abs=TOL
    )


def test_y_psnr_hand_computed():
    pixels_a = [(255, 0, 0), (10, 128, 255), (0, 0, 0), (200, 100, 50)]
    pixels_b = [(250, 8, 0), (10, 120, 250), (3, 3, 3), (200, 100, 50)]
    a = np.array(pixels_a, dtype=np.uint8).reshape(2, 2, 3)
    b = np.array(pixels_b, dtype=np.uint8).reshape(2, 2, 3)

    def y(r, g, b_):
        return 16 + (65.481 * r + 128.553 * g + 24.966 * b_) / 255

    sq = [(y(*pa) - y(*pb)) ** 2 for pa, pb in zip(pixels_a, pixels_b, strict=True)]
    mse = sum(sq) / 4
    expected = 10 * math.log10(255**2 / mse)
    assert psnr(a, b, channel="y") == pytest.approx(expected, abs=1e-9)
    # The same images on the [0, 1] float scale give the same dB.
    assert psnr(a / 255.0, b / 255.0, data_range=1.0, channel="y") == pytest.approx(
        expected, abs=1e-9
    )
    # Y and RGB PSNR are different quantities.
    assert abs(psnr(a, b) - expected) > 0.1


def test_rgb_to_y_values_and_scale():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    y = rgb_to_y(rgb)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, [[235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966]])
    np.testing.assert_allclose(rgb_to_y(rgb / 255.0, data_range=1.0), y / 255.0)
    np.testing.assert_allclose(rgb_to_y(rgb.astype(np.uint16) * 257, data_range=65535.0), y * 257.0)


def test_round_y_is_matlab_uint8():
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) has Y = 81, green 145, blue 41, white 235, black 16.
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_y(rgb, round_y=True), [[81, 145, 41, 235, 16]])
    # Exact half levels (in exact arithmetic Y = 125.5 and 52.5) round up, as MATLAB's round
    # (half away from zero) does, not to even as np.round would.
    halves = np.array([[[1, 173, 225], [5, 65, 25]]], np.uint8)
    for (r, g, b_), want in zip(halves[0].tolist(), (125.5, 52.5), strict=True):
        assert Fraction(4080000 + 65481 * r + 128553 * g + 24966 * b_, 255000) == Fraction(want)
    np.testing.assert_array_equal(rgb_to_y(halves, round_y=True), [[126, 53]])
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
    yr = rgb_to_y(img, round_y=True)
    np.testing.assert_array_equal(yr, np.round(yr))
    np.testing.assert_array_equal(yr, np.floor(_y_by_formula(img, 255.0) + 0.5))
    # On a [0, 1] float image the rounding is still at 8-bit levels.
    yf = rgb_to_y(img / 255.0, data_range=1.0, round_y=True)
    np.testing.assert_allclose(yf * 255.0, yr, atol=1e-9)


def test_round_y_changes_psnr_as_matlab_would():
    a, b, _ = _pair((16, 16, 3), "uint8", seed=11)
    ya = np.floor(_y_by_formula(a, 255.0) + 0.5)
    yb = np.floor(_y_by_formula(b, 255.0) + 0.5)
    expected = 10 * math.log10(255.0**2 / np.mean((ya - yb) ** 2))
    rounded = psnr(a, b, channel="y", round_y=True)
    assert rounded == pytest.approx(expected, abs=1e-9)
    assert abs(rounded - psnr(a, b, channel="y")) > 1e-3
    assert ssim(a, b, channel="y", round_y=True) == pytest.approx(
        _skimage_ssim(ya, yb, 255.0), abs=TOL
    )


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float1"])
@pytest.mark.parametrize("channel", ["rgb", "y"])
def test_identical_images(kind, channel):
    a, _, dr = _pair((20, 24, 3), kind, seed=5)
    assert psnr(a, a.copy(), data_range=dr, channel=channel) == math.inf
    assert ssim(a, a.copy(), data_range=dr, channel=channel) == 1.0


def test_crop_border_removes_exactly_the_border():
    a, _, _ = _pair((32, 30, 3), "uint8", seed=9)
    b = a.copy()
    b[:3] = 0
    b[:, -3:] = 255
    assert psnr(a, b) < math.inf
    assert ssim(a, b) < 1.0
    assert psnr(a, b, crop_border=3) == math.inf
    assert ssim(a, b, crop_border=3) == 1.0
    # One pixel just inside the crop counts.
    b[3, 3] ^= 0xFF
    assert psnr(a, b, crop_border=3) < math.inf
    c, d, _ = _pair((32, 30, 3), "uint8", seed=10)
    assert psnr(c, d, crop_border=4) == psnr(c[4:-4, 4:-4], d[4:-4, 4:-4])
    assert ssim(c, d, crop_border=4, channel="y") == ssim(c[4:-4, 4:-4], d[4:-4, 4:-4], channel="y")


def test_default_data_range_follows_dtype():
    a, b, _ = _pair((20, 20, 3), "uint16", seed=2)
    assert ssim(a, b) == ssim(a, b, data_range=65535.0)
    assert psnr(a, b) == psnr(a, b, data_range=65535.0)
    c, d, _ = _pair((20, 20, 3), "uint8", seed=2)
    assert ssim(c, d) == ssim(c, d, data_range=255.0)


def test_data_range_two_inflates_float_scores():
    # SPANet's published SSIM: float images in [0, 1] measured with L = 2.
    a, b, _ = _pair((48, 48, 3), "float1", seed=4)
    assert ssim(a, b, data_range=2.0) > ssim(a, b, data_range=1.0)
    assert psnr(a, b, data_range=2.0) - psnr(a, b, data_range=1.0) == pytest.approx(
        20 * math.log10(2.0)
    )


def test_skimage_default_ssim_differs():
    # skimage's defaults (7x7 uniform window, sample covariance) are another number: the docs'
    # warning that conventions must be stated rests on this.
    a, b, _ = _pair((64, 64, 3), "uint8", seed=8)
    default = structural_similarity(a, b, channel_axis=2, data_range=255)
    assert abs(default - ssim(a, b)) > 1e-3


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "match"),
    [
        (np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), {}, "data_range is required"),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3)), {}, "different dtypes"),
        (
            np.zeros((16, 16, 3), np.uint8),
            np.zeros((16, 15, 3), np.uint8),
            {},
            r"\(16, 16, 3\) and \(16, 15, 3\)",
        ),
        (np.zeros((16, 16, 4), np.uint8), np.zeros((16, 16, 4), np.uint8), {}, r"\(H, W, 3\)"),
        (np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8), {"channel": "y"}, "RGB"),
        (
            np.zeros((16, 16, 3), np.uint8),
            np.zeros((16, 16, 3), np.uint8),
            {"channel": "Y"},
            "channel",
        ),
        (
            np.zeros((16, 16, 3), np.uint8),
            np.zeros((16, 16, 3), np.uint8),
            {"round_y": True},
            "round_y",
        ),
        (
            np.zeros((16, 16, 3), np.uint8),
            np.zeros((16, 16, 3), np.uint8),
            {"crop_border": 8},
            "crop_border",
        ),
        (
            np.zeros((16, 16, 3), np.uint8),
            np.zeros((16, 16, 3), np.uint8),
            {"crop_border": -1},
            "crop_border",
        ),
        (
            np.zeros((16, 16, 3), np.uint8),
            np.zeros((16, 16, 3), np.uint8),
            {"data_range": 0},
            "data_range",
        ),
    ],
)
@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_arguments(metric, a, b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metric(a, b, **kwargs)


def test_ssim_needs_a_whole_window():
    a = np.zeros((12, 40, 3), np.uint8)
    assert ssim(a, a) == 1.0
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a, crop_border=1)
    assert psnr(a, a, crop_border=1) == math.inf
