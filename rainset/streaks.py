"""The rain layer: streak kernel, direction labels and kernels, parameter sampling, rendering.

:mod:`rainset.synth` builds samples from it (composite, mask, tiers, datasets) and re-exports
the public names.

Angles follow the package convention: ``theta`` in degrees from vertical, 0 = a streak falling
straight down the image, positive = the streak's top leans right on screen (the rain falls
down and to the left). In image coordinates (x right, y down) the streak's axis points along
``u = (sin theta, -cos theta)`` from its centre towards its top.

The kernel
----------
A streak is what one small drop leaves during the exposure: a point moving along a segment of
length ``L`` (pixels) at angle ``theta``, blurred by an isotropic Gaussian and integrated over
each square pixel. The Gaussian's standard deviation is ``hypot(sigma, ANTIALIAS_SIGMA)``:
``sigma`` is the drop's own blur (the paper's Gaussian-blur radius, scaled to pixels by
:mod:`rainset.synth`), :data:`ANTIALIAS_SIGMA` a fixed 0.6 px point spread. The
Gaussian-times-box integral is separable in x and y, so for ``n`` evenly spaced points ``s_j``
on the segment the kernel is exactly ::

    K[r, c] = 1/n  sum_j  Y_j[r] X_j[c],
    X_j[c] = Phi((c + 1/2 - s_j u_x) / sd) - Phi((c - 1/2 - s_j u_x) / sd)

(``Phi`` the normal CDF, ``Y_j`` likewise with ``u_y``): one matrix product, no rotation of a
drawn line. Its second moments about the centre are, to Sheppard's correction (exact once the
Gaussian is wider than about half a pixel, which the anti-aliasing term guarantees),
``sd^2 + 1/12`` across the streak and ``L^2 (1 - 1/n^2) / 12 + sd^2 + 1/12`` along it, at any
angle: the width does not depend on the angle, the principal axis is the requested angle and
``sqrt(12 (lambda_max - lambda_min))`` is the requested ``L``. A line drawn into the grid and
rotated (OpenCV's ``line``, albumentations' ``RandomRain``) is 1 px wide when vertical and
about 1.4 px when diagonal.

Two normalisations: :func:`streak_kernel` sums to 1 (energy); :func:`peak_kernel` divides by the
kernel's maximum instead, so one impulse of amplitude ``a`` renders a streak whose brightest
pixel is exactly ``a`` whatever ``L``, ``sigma`` and ``theta`` are (the *peak-normalisation
factor* is ``1 / K.max()``).

Parameters and scale
--------------------
:func:`sample_params` draws a frozen :class:`RainParams` (angle, radius, length, coverage,
density class, brightness, blend, and per depth layer its kernel, streak density and seed)
from a generator seeded by :func:`sample_seed`; :func:`rain_layer` renders it, a pure
function. Sizes are given at a reference image height of :data:`REFERENCE_HEIGHT` = 512 px
and scaled by ``s = H / 512`` of the image rendered: a streak's blur ``sigma = radius * s`` px
and its length ``L = length_ref * s`` px. At the paper's Cityscapes height (1024) the radii
0.2 .. 1.0 then give streaks about 1.8 .. 5 px wide at half maximum; taking the paper's
radius literally as sigma at 1024 px would give sub-pixel streaks that look alike whatever
the radius.

About 540 lines, most of it the kernel's derivation above and the sampling's documented
choices; the compiled splatting lives in :mod:`rainset._splat_numba`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtr

from rainset.options import (  # noqa: F401 - the sampling options and constants live there
    DEFAULT_CONFIG,
    DENSITY_COVERAGE,
    PAPER_ANGLES,
    PAPER_RADII,
    REFERENCE_HEIGHT,
    SynthConfig,
)

#: Points per pixel of streak length in the kernel's quadrature: the along-streak variance is
#: ``L^2 (1 - 1/n^2) / 12``, and 4 points per pixel under a >= 0.6 px Gaussian leave no ripple.
POINTS_PER_PIXEL = 4

#: Anti-aliasing blur (px) added in quadrature to every kernel's ``sigma``. A streak thinner
#: than about half a pixel cannot have the same sampled width at every angle (a vertical one
#: falls in one column, a diagonal one smears over two), so every streak gets at least this
#: much of a camera's point spread. With it the cross-width varies < 0.5 % over angle.
ANTIALIAS_SIGMA = 0.6

#: Rendering drops kernel entries below this fraction of the peak (< 0.25 of an 8-bit level
#: for the brightest streak); the kernel functions themselves keep every entry.
SPLAT_FLOOR = 1.0 / 1024.0

#: Bins of the rain-direction dataset's labels (UDRDR, Sec. 3.1): 0, 10, ..., 170 degrees.
DIRECTION_BINS = 18


def streak_axis(theta: float) -> tuple[float, float]:
    """Unit vector ``(u_x, u_y)`` in image coordinates from a streak's centre to its top."""
    t = math.radians(theta)
    return math.sin(t), -math.cos(t)


def streak_kernel(theta: float, length: float, sigma: float) -> np.ndarray:
    """The pixel-integrated motion-blur streak kernel, summing to 1.

    Parameters
    ----------
    theta : float
        Degrees from vertical; positive = top leans right on screen.
    length : float
        Segment length in pixels (>= 0; 0 gives a single blurred drop).
    sigma : float
        Gaussian standard deviation in pixels (>= 0; 0 = only the pixel box).

    Returns
    -------
    kernel : (2 hy + 1, 2 hx + 1) float64 ndarray
        Centred on the middle pixel (the segment's midpoint), non-negative, sums to 1.
    """
    if not (math.isfinite(theta) and math.isfinite(length) and math.isfinite(sigma)):
        raise ValueError(f"theta, length, sigma must be finite, got {theta}, {length}, {sigma}")
    if length < 0 or sigma < 0:
        raise ValueError(f"length and sigma must be >= 0, got length={length}, sigma={sigma}")
    ux, uy = streak_axis(theta)
    n = max(1, math.ceil(length * POINTS_PER_PIXEL))
    s = (np.arange(n) + 0.5) / n * length - length / 2.0
    # Gaussian tails beyond 4 sigma and the half-pixel box set the margin.
    reach = 4.0 * math.hypot(sigma, ANTIALIAS_SIGMA) + 1.0
    hx = math.ceil(length / 2.0 * abs(ux) + reach)
    hy = math.ceil(length / 2.0 * abs(uy) + reach)
    sig = math.hypot(sigma, ANTIALIAS_SIGMA)
    xs = _box_gauss(hx, s * ux, sig)  # (n, 2hx+1)
    ys = _box_gauss(hy, s * uy, sig)  # (n, 2hy+1)
    k = ys.T @ xs
    return k / k.sum()


def _box_gauss(half: int, offsets: np.ndarray, sigma: float) -> np.ndarray:
    """Integral over pixels [c - 1/2, c + 1/2], c = -half..half, of Gaussians at ``offsets``."""
    edges = np.arange(-half, half + 2, dtype=np.float64) - 0.5
    cdf = ndtr((edges[None, :] - offsets[:, None]) / sigma)
    return np.diff(cdf, axis=1)


def peak_kernel(theta: float, length: float, sigma: float) -> np.ndarray:
    """:func:`streak_kernel` scaled so its maximum is 1 (an impulse ``a`` peaks at ``a``)."""
    k = streak_kernel(theta, length, sigma)
    return k / k.max()


def kernel_moments(kernel: np.ndarray) -> tuple[float, float, float]:
    """Principal-axis angle and widths of a kernel from its intensity-weighted second moments.

    Parameters
    ----------
    kernel : (h, w) float ndarray, non-negative

    Returns
    -------
    theta : float
        Angle of the major axis in the package convention (degrees from vertical, positive =
        top leans right), in (-90, 90].
    major, minor : float
        Standard deviations along and across the major axis, in pixels.
    """
    k = np.asarray(kernel, np.float64)
    total = k.sum()
    if k.ndim != 2 or total <= 0:
        raise ValueError(
            f"kernel must be a non-negative 2-D array with a positive sum, got {k.shape}"
        )
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]].astype(np.float64)
    mx, my = (k * xx).sum() / total, (k * yy).sum() / total
    dx, dy = xx - mx, yy - my
    cov = (
        np.array(
            [[(k * dx * dx).sum(), (k * dx * dy).sum()], [(k * dx * dy).sum(), (k * dy * dy).sum()]]
        )
        / total
    )
    evals, evecs = np.linalg.eigh(cov)
    vx, vy = evecs[:, 1]
    if vy > 0 or (vy == 0 and vx < 0):  # point the axis towards the streak's top (y up)
        vx, vy = -vx, -vy
    theta = math.degrees(math.atan2(vx, -vy))
    if theta <= -90.0:
        theta += 180.0
    return theta, math.sqrt(max(evals[1], 0.0)), math.sqrt(max(evals[0], 0.0))


@dataclass(frozen=True)
class SparseKernel:
    """A peak-normalised kernel as offsets and values, for splatting (entries >= floor)."""

    dy: np.ndarray  # (K,) int64 row offsets from the streak's centre pixel
    dx: np.ndarray  # (K,) int64 column offsets
    values: np.ndarray  # (K,) float64, maximum 1
    half: tuple[int, int]  # (hy, hx): how far a streak reaches from its centre pixel


@functools.lru_cache(maxsize=32)
def sparse_peak_kernel(theta: float, length: float, sigma: float) -> SparseKernel:
    """:func:`peak_kernel` without its negligible entries (below :data:`SPLAT_FLOOR`).

    Cached: sampling and rendering one sample ask for the same kernels.
    """
    k = peak_kernel(theta, length, sigma)
    hy, hx = k.shape[0] // 2, k.shape[1] // 2
    rows, cols = np.nonzero(k >= SPLAT_FLOOR)
    parts = [rows - hy, cols - hx, k[rows, cols]]
    for a in parts:
        a.flags.writeable = False
    return SparseKernel(*parts, (hy, hx))


def splat(
    shape: tuple[int, int],
    streaks: list[tuple[np.ndarray, np.ndarray, SparseKernel]],
) -> np.ndarray:
    """Sum of peak-normalised kernels placed at integer centres: a sparse convolution.

    Parameters
    ----------
    shape : (H, W) of the output.
    streaks : list of (centres, amplitudes, kernel)
        ``centres`` (N, 2) int ndarray of (row, col) streak centres, which may lie up to the
        kernel's ``half`` outside the image (their streaks enter from the border);
        ``amplitudes`` (N,) float ndarray, each streak's peak; one kernel per group.

    Returns
    -------
    layer : (H, W) float32 ndarray
    """
    from rainset._splat_numba import splat as compiled

    layer = compiled(shape, streaks)
    return splat_reference(shape, streaks) if layer is None else layer


def splat_reference(
    shape: tuple[int, int],
    streaks: list[tuple[np.ndarray, np.ndarray, SparseKernel]],
) -> np.ndarray:
    """:func:`splat` with one ``np.bincount``: the definition the compiled path matches bit for bit."""
    h, w = shape
    # Splat onto a canvas padded by the largest reach so no index needs a bounds check.
    py = 2 * max((k.half[0] for _, _, k in streaks), default=0)
    px = 2 * max((k.half[1] for _, _, k in streaks), default=0)
    cw = w + 2 * px
    total = sum(len(c) * len(k.values) for c, _, k in streaks)
    flat = np.empty(total, np.intp)
    weights = np.empty(total, np.float64)
    at = 0
    for centres, amps, k in streaks:
        n, m = len(centres), len(k.values)
        base = (centres[:, 0].astype(np.intp) + py) * cw + (centres[:, 1] + px)
        # Streaks in memory order make the scatter below nearly sequential (several x faster).
        order = np.argsort(base, kind="stable")
        offs = k.dy * cw + k.dx
        np.add(base[order, None], offs[None, :], out=flat[at : at + n * m].reshape(n, m))
        amp = np.asarray(amps, np.float64)[order]
        np.multiply(amp[:, None], k.values[None, :], out=weights[at : at + n * m].reshape(n, m))
        at += n * m
    acc = np.bincount(flat, weights=weights, minlength=(h + 2 * py) * cw)
    return acc.reshape(h + 2 * py, cw)[py : py + h, px : px + w].astype(np.float32)


def direction_angle(theta: float) -> float:
    """The rain-direction dataset's angle for our ``theta``: ``(90 - theta) mod 180``.

    Its public labels put 0 degrees pointing right and count counter-clockwise on screen, so a
    vertical streak is 90 and a streak whose top leans right by 15 degrees is 75.
    """
    return (90.0 - theta) % 180.0


def direction_class(theta: float) -> tuple[int, list[tuple[int, float]]]:
    """The 18-bin direction class of ``theta`` and its soft label.

    Bin ``i`` is centred on ``10 i`` degrees of :func:`direction_angle` (circular: 175 sits
    between bins 17 and 0).

    Returns
    -------
    hard : int
        The nearest bin; on an exact tie (the paper's +-15 degrees land on 75 and 105, half-way
        between two bins) the bin nearer to vertical (90 degrees) wins, so +-15 map to 80 / 100
        symmetrically.
    soft : list of (bin, weight)
        Linear interpolation between the two nearest bins (one entry when the angle is a bin
        centre); weights sum to 1.
    """
    phi = direction_angle(theta)
    pos = phi / 10.0
    lo = math.floor(pos + 1e-9)
    frac = pos - lo
    lo_bin, hi_bin = lo % DIRECTION_BINS, (lo + 1) % DIRECTION_BINS
    if frac < 1e-9:
        return lo_bin, [(lo_bin, 1.0)]
    soft = [(lo_bin, round(1.0 - frac, 6)), (hi_bin, round(frac, 6))]
    if abs(frac - 0.5) < 1e-9:
        hard = lo_bin if abs(10.0 * lo - 90.0) < abs(10.0 * (lo + 1) - 90.0) else hi_bin
    else:
        hard = lo_bin if frac < 0.5 else hi_bin
    return hard, soft


def direction_kernels(n: int = DIRECTION_BINS, size: int = 5) -> np.ndarray:
    """Directional first-difference kernels for the rain-direction regulariser (UDRDR Sec. 3.1).

    Kernel ``i`` differentiates along the direction ``180 i / n`` degrees (0 = pointing right,
    counter-clockwise on screen, as :func:`direction_angle`). Each samples the image at points
    ``+-t`` pixels along that direction (t = 1 .. size // 2) with bilinear weights; it is
    scaled so that on a linear ramp ``f(p) = g . p`` it returns the directional derivative
    ``g . d`` exactly. With ``size=3`` at 0 and 90 degrees it is the central difference along x
    and -y. For a streak with class ``c`` use kernel ``c`` (parallel) and ``(c + n/2) % n``
    (perpendicular).

    The kernels are for cross-correlation (``cv2.filter2D``, ``torch.nn.functional.conv2d``).

    Returns
    -------
    kernels : (n, size, size) float32 ndarray
        Each sums to 0 and is antisymmetric about the centre.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size}")
    m = size // 2
    out = np.zeros((n, size, size), np.float64)
    for i in range(n):
        a = math.radians(180.0 * i / n)
        dx, dy = math.cos(a), -math.sin(a)  # counter-clockwise on screen: y points down
        for t in range(1, m + 1):
            for sign in (1.0, -1.0):
                _bilinear_add(out[i], m + sign * t * dx, m + sign * t * dy, sign * t)
        # Response to the ramp g . p along d is sum_t 2 t^2 (g . d); normalise it to g . d.
        out[i] /= 2.0 * sum(t * t for t in range(1, m + 1))
    return out.astype(np.float32)


def _bilinear_add(k: np.ndarray, x: float, y: float, weight: float) -> None:
    x0, y0 = math.floor(x + 1e-12), math.floor(y + 1e-12)
    fx, fy = x - x0, y - y0
    for yy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
        for xx, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
            if wx * wy > 1e-12:
                k[yy, xx] += weight * wx * wy


# ----------------------------------------------------------------------------- rain layer

#: Depth layers: (name, share of the coverage, length, sigma, brightness factors). The far
#: layer's streaks are shorter, thinner and dimmer (the paper's Sec. III-A: larger streaks are
#: nearer and brighter).
LAYERS: tuple[tuple[str, float, float, float, float], ...] = (
    ("near", 0.6, 1.0, 1.0, 1.0),
    ("far", 0.4, 0.5, 0.5, 0.6),
)
Blend = Literal["add", "screen"]


def sample_seed(seed: int, key: str, variant: int = 0) -> int:
    """The per-sample seed: first 8 bytes of ``sha256("<seed>/<key>/<variant>")``, 63 bits.

    ``key`` is the photo's relative path, so adding or removing photos reseeds nothing and no
    worker schedule changes a sample.
    """
    digest = hashlib.sha256(f"{int(seed)}/{key}/{int(variant)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class StreakLayer:
    """One depth layer: streaks of one kernel at random centres (fully determined by seed)."""

    name: str
    sigma: float  # px, the drop's blur before anti-aliasing
    length: float  # px
    brightness: float  # peak of the brightest streak, [0, 1]
    jitter: float
    per_mpx: float  # streak centres per million pixels of the padded canvas
    seed: int


@dataclass(frozen=True)
class RainParams:
    """Everything needed to render one sample's rain; stored in the manifest as ``params``."""

    angle: float
    radius: float
    length: float  # px, near layer
    sigma: float  # px, near layer
    coverage: float  # target, see DENSITY_COVERAGE
    density: str
    brightness: float
    blend: Blend
    layers: tuple[StreakLayer, ...]
    seed: int | None = None  # the int seed it was drawn from, when drawn from one

    def to_dict(self) -> dict:
        """A JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        d = asdict(self)
        d["layers"] = [asdict(layer) for layer in self.layers]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> RainParams:
        """Rebuild from :meth:`to_dict` output (e.g. a manifest record's ``params``)."""
        try:
            d = dict(data)
            d["layers"] = tuple(StreakLayer(**layer) for layer in d["layers"])
            return cls(**d)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not a RainParams dict ({exc}): {data!r}") from None


def _r(x: float) -> float:
    """Round to 6 decimals so manifests read well; rendering uses the rounded value."""
    return round(float(x), 6)


def streak_footprint(theta: float, length: float, sigma: float, level: float) -> int:
    """Pixels of one streak at or above ``level`` (as a fraction of its peak)."""
    k = sparse_peak_kernel(theta, length, sigma)
    return max(1, int(np.count_nonzero(k.values >= level)))


def sample_params(
    shape: tuple[int, ...],
    *,
    config: SynthConfig = DEFAULT_CONFIG,
    rng: np.random.Generator | int | None = None,
    angle: float | None = None,
    radius: float | None = None,
    density: str | None = None,
) -> RainParams:
    """Draw one sample's rain parameters.

    Parameters
    ----------
    shape : (H, W, ...) of the image the rain is for; H sets the scale.
    config : the ranges to draw from.
    rng : generator or seed (use :func:`sample_seed` for dataset samples).
    angle, radius, density : pin one value instead of drawing it (the other draws still
        happen, so pinning one leaves the rest unchanged).

    Returns
    -------
    params : RainParams
        The coverage target is met in expectation: each layer's streak count comes from its
        share of ``lambda = -ln(1 - coverage)`` over one streak's mask footprint
        (streaks overlap as a Poisson process does).
    """
    seed = int(rng) if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    scale = shape[0] / config.reference_height
    a = float(config.angles[rng.integers(len(config.angles))])
    r = float(config.radii[rng.integers(len(config.radii))])
    dens = str(config.densities[rng.integers(len(config.densities))])
    u_cov, u_len, u_bri = rng.random(3)
    seeds = rng.integers(0, 2**62, size=len(LAYERS))
    a = a if angle is None else float(angle)
    r = r if radius is None else float(radius)
    if density is not None:
        if density not in DENSITY_COVERAGE:
            raise ValueError(f"density must be one of {list(DENSITY_COVERAGE)}, got {density!r}")
        dens = density
    lo, hi = DENSITY_COVERAGE[dens]
    coverage = _r(lo + (hi - lo) * u_cov)
    length = _r((config.length[0] + (config.length[1] - config.length[0]) * u_len) * scale)
    bright = _r(config.brightness[0] + (config.brightness[1] - config.brightness[0]) * u_bri)
    sigma = _r(r * scale)
    lam = -math.log1p(-coverage)
    layers = []
    for (name, share, f_len, f_sig, f_bri), s in zip(LAYERS[: config.layers], seeds):
        share = share if config.layers > 1 else 1.0
        ls, ll, lb = _r(sigma * f_sig), _r(length * f_len), _r(bright * f_bri)
        # A streak's mask footprint: pixels where a streak of mean peak reaches the threshold.
        level = config.mask_threshold / 255.0 / max(lb * (1.0 - config.jitter / 2.0), 1e-6)
        per_mpx = _r(lam * share / streak_footprint(a, ll, ls, level) * 1e6)
        layers.append(StreakLayer(name, ls, ll, lb, config.jitter, per_mpx, int(s)))
    return RainParams(
        a, r, length, sigma, coverage, dens, bright, config.blend, tuple(layers), seed
    )


def rain_layer(shape: tuple[int, ...], params: RainParams) -> np.ndarray:
    """The rain layer R of ``params`` for an image of ``shape``: pure, deterministic.

    Each layer's streak centres are drawn uniformly on the image padded by the kernel's reach
    (so streaks enter from the borders), ``round(per_mpx * padded area / 1e6)`` of them, with
    peaks ``brightness * (1 - jitter * u)``; all streaks of a layer share one kernel
    (:func:`rainset.streaks.sparse_peak_kernel`), so an isolated streak peaks exactly at its
    amplitude. Overlaps add.

    Parameters
    ----------
    shape : (H, W, ...)
    params : RainParams

    Returns
    -------
    rain : (H, W) float32 ndarray, >= 0, not clipped (may exceed 1 where streaks overlap)
    """
    return splat((int(shape[0]), int(shape[1])), _streak_groups(shape, params))


def rain_layer_add(
    clean: np.ndarray, params: RainParams, threshold: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None:
    """:func:`rain_layer` put over ``clean`` with the ``"add"`` blend, in one compiled pass.

    Returns ``(rain, rainy, residual, mask, mask count)``: the same arrays as
    :func:`rain_layer`, then :func:`rainset.synth.composite`, ``rainy - clean`` and
    ``max_c residual >= threshold`` (tested), without their intermediate images; or None when
    ``clean`` is not a C-contiguous (H, W, 3) uint8 array (the caller then takes those steps).
    """
    ok = clean.ndim == 3 and clean.shape[2] == 3 and clean.dtype == np.uint8
    if not (ok and clean.flags.c_contiguous and 1 <= threshold <= 255):
        return None
    from rainset._splat_numba import splat_add

    return splat_add(clean, _streak_groups(clean.shape, params), threshold)


def _streak_groups(
    shape: tuple[int, ...], params: RainParams
) -> list[tuple[np.ndarray, np.ndarray, SparseKernel]]:
    """Each layer's streak centres, peaks and kernel (see :func:`rain_layer`)."""
    h, w = int(shape[0]), int(shape[1])
    groups = []
    for layer in params.layers:
        k = sparse_peak_kernel(params.angle, layer.length, layer.sigma)
        hy, hx = k.half
        area = (h + 2 * hy) * (w + 2 * hx)
        n = int(round(layer.per_mpx * area / 1e6))
        # One row of three uniforms per streak: streak i is the same whatever n is, so changing
        # only the kernel (a preview's radius) keeps the streaks where they were.
        u = np.random.default_rng(layer.seed).random((n, 3))
        rows = np.floor(u[:, 0] * (h + 2 * hy)).astype(np.intp) - hy
        cols = np.floor(u[:, 1] * (w + 2 * hx)).astype(np.intp) - hx
        centres = np.stack([rows, cols], axis=1)
        amps = layer.brightness * (1.0 - layer.jitter * u[:, 2])
        groups.append((centres, amps, k))
    return groups
