"""PSNR and SSIM on RGB and on Y, with the conventions stated rather than implied.

- Y is BT.601 *studio range* (16-235 on the 8-bit scale), the ``rgb2ycbcr`` of MATLAB and of
  BasicSR's ``y_only`` conversion; ``round_y=True`` rounds it to whole 8-bit levels as
  MATLAB's uint8 ``rgb2ycbcr`` does. This is not :func:`rainset.image.rgb_to_luma` (full-range
  luma used by the ground-truth vote).
- The data range L is explicit: 255 for uint8, 65535 for uint16, and float images must be given
  one (a float image's range is ambiguous, and guessing it is how published SSIM numbers came to
  use L = 2).
- SSIM: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03 (Wang et al. 2004), population
  statistics, "valid" region only (no padded borders), mean over the map, then over channels.
- Everything is computed in float64.

``docs/metrics.md`` compares these with scikit-image's defaults, BasicSR, MATLAB and the numbers
SPANet published.
"""

from __future__ import annotations

import math
import operator
from typing import Literal

import numpy as np
from scipy import ndimage

__all__ = ["rgb_to_y", "psnr", "ssim"]

# ITU-R BT.601 studio-range luma on the 8-bit scale: Y = 16 + (65.481 R + 128.553 G +
# 24.966 B) / 255 with R, G, B in 0..255 (MATLAB rgb2ycbcr; BasicSR rgb2ycbcr with y_only).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0

# SSIM constants: Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004, sec. III-C.
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # 11x11 window, as in the paper's reference code


def _gaussian_1d(radius: int, sigma: float) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


_SSIM_WINDOW_1D = _gaussian_1d(_SSIM_RADIUS, _SSIM_SIGMA)


def _check_data_range(data_range: float) -> float:
    value = float(data_range)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    return value


def rgb_to_y(rgb: np.ndarray, *, data_range: float = 255.0, round_y: bool = False) -> np.ndarray:
    """BT.601 studio-range luma Y (16-235 on the 8-bit scale), as MATLAB's ``rgb2ycbcr``.

    Parameters
    ----------
    rgb : (..., 3) uint8, uint16 or float ndarray
        RGB image(s) with values in ``[0, data_range]``.
    data_range : float
        The value of full-scale white in ``rgb`` (255 for uint8, 65535 for uint16, 1.0 for
        floats in [0, 1]).
    round_y : bool
        Round Y to whole levels on the 8-bit scale (half away from zero), as MATLAB's uint8
        ``rgb2ycbcr`` does; the rounding is at 8-bit levels whatever ``data_range`` is.

    Returns
    -------
    y : (...) float64 ndarray
        ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` computed on the 0..255 scale and
        returned on the scale of ``data_range``: 16..235 for ``data_range=255``,
        16/255..235/255 for ``data_range=1``.

    Raises
    ------
    ValueError
        ``rgb`` does not end in 3 channels, or ``data_range`` is not positive.

    Notes
    -----
    BasicSR's PSNR/SSIM on Y use the unrounded value (``round_y=False``); MATLAB deraining
    scripts that call ``rgb2ycbcr`` on uint8 images get the rounded one (``round_y=True``).
    Inputs are not clipped; values outside ``[0, data_range]`` give Y outside 16..235.

    Examples
    --------
    >>> rgb_to_y(np.array([[[255, 255, 255], [0, 0, 0]]], dtype=np.uint8))
    array([[235.,  16.]])
    """
    rgb = np.asarray(rgb)
    if rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be (..., 3), got {rgb.shape}")
    if rgb.dtype == bool or not (
        np.issubdtype(rgb.dtype, np.integer) or np.issubdtype(rgb.dtype, np.floating)
    ):
        raise ValueError(f"rgb must be an integer or float array, got {rgb.dtype}")
    scale = _check_data_range(data_range) / 255.0
    rgb8 = rgb.astype(np.float64) / scale  # on the 0..255 scale
    # Written out in MATLAB's order (T(1)*R + T(2)*G + T(3)*B + offset) rather than as a
    # matrix product, so exact half-level ties round the same way on every BLAS.
    w_r, w_g, w_b = _Y_WEIGHTS
    y = w_r * rgb8[..., 0] + w_g * rgb8[..., 1] + w_b * rgb8[..., 2] + _Y_OFFSET
    if round_y:
        # MATLAB's round is half away from zero (np.round is half to even); Y >= 0 here.
        y = np.floor(y + 0.5)
    return y * scale


def _resolve_data_range(a: np.ndarray, b: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        return _check_data_range(data_range)
    if a.dtype != b.dtype:
        raise ValueError(
            f"images have different dtypes ({a.dtype} and {b.dtype}); pass data_range explicitly"
        )
    if a.dtype == np.uint8:
        return 255.0
    if a.dtype == np.uint16:
        return 65535.0
    raise ValueError(
        f"data_range is required for {a.dtype} images (a float image's range is ambiguous: "
        "pass data_range=1.0 for [0, 1] images, 255.0 for [0, 255])"
    )


def _prepare(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float | None,
    crop_border: int,
    channel: str,
    round_y: bool,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate, crop and convert both images; return ``(H', W', C)`` float64 arrays and L."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"images must be (H, W, 3) or (H, W), got {a.shape}")
    for img in (a, b):
        if img.dtype == bool or not (
            np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)
        ):
            raise ValueError(f"images must be integer or float arrays, got {img.dtype}")
    if channel not in ("rgb", "y"):
        raise ValueError(f"channel must be 'rgb' or 'y', got {channel!r}")
    if channel == "y" and a.ndim != 3:
        raise ValueError(f"channel='y' needs (H, W, 3) RGB images, got {a.shape}")
    if round_y and channel != "y":
        raise ValueError("round_y applies only to channel='y'")
    crop = operator.index(crop_border)
    if crop < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    h, w = a.shape[:2]
    if 2 * crop >= h or 2 * crop >= w:
        raise ValueError(f"crop_border={crop} leaves nothing of a {h}x{w} image")
    L = _resolve_data_range(a, b, data_range)
    if crop:
        a = a[crop:-crop, crop:-crop]
        b = b[crop:-crop, crop:-crop]
    if channel == "y":
        a = rgb_to_y(a, data_range=L, round_y=round_y)[:, :, None]
        b = rgb_to_y(b, data_range=L, round_y=round_y)[:, :, None]
    else:
        a = a.astype(np.float64)
        b = b.astype(np.float64)
        if a.ndim == 2:
            a, b = a[:, :, None], b[:, :, None]
    return a, b, L


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    *,
    data_range: float | None = None,
    crop_border: int = 0,
    channel: Literal["rgb", "y"] = "rgb",
    round_y: bool = False,
) -> float:
    """Peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` in dB.

    Parameters
    ----------
    a, b : (H, W, 3) or (H, W) uint8, uint16 or float ndarray
        The two images (order does not matter); same shape.
    data_range : float or None
        L, the peak value. None: 255 for uint8, 65535 for uint16; float images must pass it.
    crop_border : int
        Pixels removed from each edge before measuring (BasicSR's ``crop_border``, often the
        super-resolution scale).
    channel : {"rgb", "y"}
        ``"rgb"``: MSE over all pixels and channels. ``"y"``: MSE of studio-range Y
        (:func:`rgb_to_y`), with the same L.
    round_y : bool
        With ``channel="y"``, round Y to 8-bit levels first (MATLAB's uint8 ``rgb2ycbcr``).

    Returns
    -------
    psnr : float
        In dB; ``inf`` when the (cropped) images are identical.

    Raises
    ------
    ValueError
        Shapes differ or are not (H, W[, 3]); a float image without ``data_range``; bad options.

    Examples
    --------
    >>> a = np.zeros((4, 4, 3), np.uint8)
    >>> b = a.copy(); b[0, 0, 0] = 16
    >>> round(psnr(a, b), 2)
    40.86
    """
    x, y, L = _prepare(a, b, data_range, crop_border, channel, round_y)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(L * L / mse)


def _ssim_channel(x: np.ndarray, y: np.ndarray, L: float) -> float:
    """Mean SSIM of two (H, W) float64 images over the valid region of the window."""
    r = _SSIM_RADIUS

    def local_mean(img: np.ndarray) -> np.ndarray:
        # Separable Gaussian; the padded border (mode is irrelevant) is cropped, leaving
        # exactly the positions where the 11x11 window lies inside the image.
        out = ndimage.correlate1d(img, _SSIM_WINDOW_1D, axis=0, mode="reflect")
        out = ndimage.correlate1d(out, _SSIM_WINDOW_1D, axis=1, mode="reflect")
        return out[r:-r, r:-r]

    c1 = (_SSIM_K1 * L) ** 2
    c2 = (_SSIM_K2 * L) ** 2
    mu_x = local_mean(x)
    mu_y = local_mean(y)
    # Population (weights sum to 1) variances and covariance, as in Wang et al.'s code.
    var_x = local_mean(x * x) - mu_x * mu_x
    var_y = local_mean(y * y) - mu_y * mu_y
    cov_xy = local_mean(x * y) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return float(np.mean(num / den))


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    data_range: float | None = None,
    crop_border: int = 0,
    channel: Literal["rgb", "y"] = "rgb",
    round_y: bool = False,
) -> float:
    """Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5.

    Parameters
    ----------
    a, b : (H, W, 3) or (H, W) uint8, uint16 or float ndarray
        The two images; same shape, at least 11x11 after cropping.
    data_range : float or None
        L in ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``. None: 255 for uint8, 65535 for uint16;
        float images must pass it.
    crop_border : int
        Pixels removed from each edge before measuring.
    channel : {"rgb", "y"}
        ``"rgb"``: SSIM of each channel, averaged. ``"y"``: SSIM of studio-range Y.
    round_y : bool
        With ``channel="y"``, round Y to 8-bit levels first (MATLAB's uint8 ``rgb2ycbcr``).

    Returns
    -------
    ssim : float
        Mean of the SSIM map over the valid region (window wholly inside the image), averaged
        over channels; 1.0 for identical images.

    Raises
    ------
    ValueError
        As :func:`psnr`, or the cropped image is smaller than the 11x11 window.

    Notes
    -----
    Local statistics are Gaussian-weighted population moments (no ``N / (N - 1)`` factor).
    This equals ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=L, channel_axis=2)`` and BasicSR's
    ``calculate_ssim``; it is not scikit-image's default (7x7 uniform window, sample
    covariance).
    """
    x, y, L = _prepare(a, b, data_range, crop_border, channel, round_y)
    size = 2 * _SSIM_RADIUS + 1
    if x.shape[0] < size or x.shape[1] < size:
        raise ValueError(
            f"SSIM needs images of at least {size}x{size} after cropping, got "
            f"{x.shape[0]}x{x.shape[1]}"
        )
    return float(np.mean([_ssim_channel(x[:, :, c], y[:, :, c], L) for c in range(x.shape[2])]))
