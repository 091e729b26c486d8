"""Directional rain synthesis: parameter sampling, rain layer, composite, labels, low-pass tiers.

The recipe follows the intensity-aware deraining paper's dataset (Xu et al., Sec. III-D:
Gaussian-blurred noise, 7 directions 0, +-15, +-30, +-40 degrees from the negative y axis, blur
radius 0.2 .. 1.0 in steps of 0.2, low-pass ground truth from Gaussian filters of 3, 5, 7 and
9) with the rain-direction paper's labels (UDRDR, Sec. 3.1 and 4.1). How the paper's Photoshop
step drew the direction is not stated; the motion-blur streak of :mod:`rainset.streaks` and
its peak normalisation are our own, documented choices (``docs/synth.md``).

Sampling is apart from rendering: :func:`sample_params` draws a frozen :class:`RainParams`
from a generator seeded by :func:`sample_seed` (global seed, the photo's relative path, the
variant number), and :func:`render` is a pure function of (clean image, params). The params
go to the manifest, so every sample can be re-rendered bit for bit.

Scale. Sizes are given at a reference image height of :data:`REFERENCE_HEIGHT` = 512 px and
scaled by ``s = H / 512`` of the image rendered: a streak's blur ``sigma = radius * s`` px and
its length ``L = length_ref * s`` px. At the paper's Cityscapes height (1024) this makes the
radius 0.2 .. 1.0 streaks about 1.5 .. 5 px wide at half maximum, what rain at that
resolution looks like; taking the paper's radius literally as sigma at 1024 px would give
sub-pixel streaks that look alike whatever the radius.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import cv2
import numpy as np

from rainset.image import MASK_THRESHOLD, rgb_to_luma
from rainset.streaks import direction_angle, direction_class, sparse_peak_kernel, splat

#: Image height (px) at which radius and length are given; see the module docstring.
REFERENCE_HEIGHT = 512
#: The paper's seven directions (degrees from vertical).
PAPER_ANGLES: tuple[float, ...] = (0.0, 15.0, -15.0, 30.0, -30.0, 40.0, -40.0)
#: The paper's Gaussian-blur radii.
PAPER_RADII: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
#: Target coverage range per density class: the expected fraction of pixels the rain mask
#: marks. Our own choice; DID-MDN's light / medium / heavy classes come with no numbers.
DENSITY_COVERAGE: dict[str, tuple[float, float]] = {
    "light": (0.02, 0.06),
    "medium": (0.06, 0.14),
    "heavy": (0.14, 0.28),
}
#: Low-pass ground-truth tiers: Gaussian kernel sizes of the paper.
TIER_SIZES: tuple[int, ...] = (3, 5, 7, 9)
#: Depth layers: (name, share of the coverage, length, sigma, brightness factors). The far
#: layer's streaks are shorter, thinner and dimmer (the paper's Sec. III-A: larger streaks are
#: nearer and brighter).
LAYERS: tuple[tuple[str, float, float, float, float], ...] = (
    ("near", 0.6, 1.0, 1.0, 1.0),
    ("far", 0.4, 0.5, 0.5, 0.6),
)
#: Rain maps are stored as 16-bit PNG: value = rain * 10000 (up to 6.55).
RAIN_MAP_SCALE = 1e-4

Blend = Literal["add", "screen"]


def tier_sigma(k: int) -> float:
    """Gaussian sigma of the k x k low-pass tier: OpenCV's rule ``0.3 ((k - 1) / 2 - 1) + 0.8``.

    k = 3, 5, 7, 9 give sigma = 0.8, 1.1, 1.4, 1.7 (what ``cv2.GaussianBlur(img, (k, k), 0)``
    uses; the paper states only the kernel sizes).
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"tier size must be odd and >= 1, got {k}")
    return round(0.3 * ((k - 1) / 2 - 1) + 0.8, 6)


def sample_seed(seed: int, key: str, variant: int = 0) -> int:
    """The per-sample seed: first 8 bytes of ``sha256("<seed>/<key>/<variant>")``, 63 bits.

    ``key`` is the photo's relative path, so adding or removing photos reseeds nothing and no
    worker schedule changes a sample.
    """
    digest = hashlib.sha256(f"{int(seed)}/{key}/{int(variant)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`sample_params` draws from (each choice uniform).

    Parameters
    ----------
    angles : signed directions in degrees from vertical (positive: top leans right).
    radii : the paper's blur radii; sigma = radius * H / reference_height px.
    densities : density classes, keys of :data:`DENSITY_COVERAGE`.
    length : (min, max) streak length in px at the reference height (near layer).
    brightness : (min, max) peak brightness of the near layer's brightest streak, in [0, 1].
    jitter : each streak's peak is ``brightness * (1 - jitter * u)``, u ~ U[0, 1).
    layers : 1 (near only) or 2 (near and far).
    blend : ``"add"`` (O = B + R, clipped) or ``"screen"`` (O = 1 - (1 - B)(1 - R)).
    reference_height : image height at which radius and length are meant.
    mask_threshold : the rain-mask threshold in 8-bit levels; coverage targets refer to it.
    """

    angles: tuple[float, ...] = PAPER_ANGLES
    radii: tuple[float, ...] = PAPER_RADII
    densities: tuple[str, ...] = ("light", "medium", "heavy")
    length: tuple[float, float] = (12.0, 40.0)
    brightness: tuple[float, float] = (0.45, 0.85)
    jitter: float = 0.4
    layers: int = 2
    blend: Blend = "add"
    reference_height: int = REFERENCE_HEIGHT
    mask_threshold: int = MASK_THRESHOLD

    def __post_init__(self) -> None:
        if not self.angles or any(not -90.0 < float(a) <= 90.0 for a in self.angles):
            raise ValueError(f"angles must be a non-empty list in (-90, 90], got {self.angles}")
        if not self.radii or any(float(r) < 0 for r in self.radii):
            raise ValueError(f"radii must be a non-empty list of values >= 0, got {self.radii}")
        bad = [d for d in self.densities if d not in DENSITY_COVERAGE]
        if not self.densities or bad:
            raise ValueError(f"densities must be among {list(DENSITY_COVERAGE)}, got {self.densities}")
        if not 0 <= self.length[0] <= self.length[1]:
            raise ValueError(f"length must be (min, max) with 0 <= min <= max, got {self.length}")
        if not 0 <= self.brightness[0] <= self.brightness[1] <= 1:
            raise ValueError(f"brightness must be (min, max) in [0, 1], got {self.brightness}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {self.layers}")
        if self.blend not in ("add", "screen"):
            raise ValueError(f"blend must be 'add' or 'screen', got {self.blend!r}")
        if not 1 <= self.mask_threshold <= 255:
            raise ValueError(f"mask_threshold must be in 1..255 levels, got {self.mask_threshold}")
        if self.reference_height < 1:
            raise ValueError(f"reference_height must be >= 1, got {self.reference_height}")
        for name in ("angles", "radii", "densities", "length", "brightness"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


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
    config: SynthConfig = SynthConfig(),
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
        share of ``lambda = -ln(1 - coverage)`` over the kernel's half-maximum footprint
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
    h, w = int(shape[0]), int(shape[1])
    groups = []
    for layer in params.layers:
        k = sparse_peak_kernel(params.angle, layer.length, layer.sigma)
        hy, hx = k.half
        area = (h + 2 * hy) * (w + 2 * hx)
        n = int(round(layer.per_mpx * area / 1e6))
        g = np.random.default_rng(layer.seed)
        centres = np.stack([g.integers(-hy, h + hy, n), g.integers(-hx, w + hx, n)], axis=1)
        amps = layer.brightness * (1.0 - layer.jitter * g.random(n))
        groups.append((centres, amps, k))
    return splat((h, w), groups)


@dataclass(frozen=True)
class Rendered:
    """One rendered sample.

    Attributes
    ----------
    rainy : (H, W, 3) uint8, the composite O.
    rain : (H, W) float32, the rain layer R before any clipping.
    residual : (H, W, 3) uint8, exactly ``rainy - clean`` (rain only brightens).
    mask : (H, W) bool, :func:`rainset.image.rain_mask` of (rainy, clean).
    coverage : float, measured: the mask's fraction of pixels.
    """

    rainy: np.ndarray
    rain: np.ndarray
    residual: np.ndarray
    mask: np.ndarray
    coverage: float


def composite(clean: np.ndarray, rain: np.ndarray, *, blend: Blend = "add") -> np.ndarray:
    """Put a rain layer over a clean image; never darkens or blurs the background.

    Parameters
    ----------
    clean : (H, W, 3) uint8 ndarray
    rain : (H, W) float ndarray, >= 0
    blend : ``"add"``: ``O = min(B + round(255 R), 255)`` per channel; ``"screen"``:
        ``O = B + round(min(R, 1) (255 - B))``.

    Returns
    -------
    rainy : (H, W, 3) uint8 ndarray, >= clean everywhere
    """
    if clean.ndim != 3 or clean.shape[2] != 3 or clean.dtype != np.uint8:
        raise ValueError(f"clean must be (H, W, 3) uint8, got {clean.shape} {clean.dtype}")
    if rain.shape != clean.shape[:2]:
        raise ValueError(f"rain must be {clean.shape[:2]}, got {rain.shape}")
    if blend == "add":
        levels = cv2.convertScaleAbs(np.asarray(rain, np.float32), alpha=255.0)
        return cv2.add(clean, cv2.cvtColor(levels, cv2.COLOR_GRAY2RGB))
    if blend == "screen":
        r = np.minimum(np.asarray(rain, np.float32), 1.0)[:, :, None]
        add = np.rint(r * (255.0 - clean.astype(np.float32)))
        return (clean + add.astype(np.uint8)).astype(np.uint8)
    raise ValueError(f"blend must be 'add' or 'screen', got {blend!r}")


def render(
    clean: np.ndarray, params: RainParams, *, mask_threshold: int = MASK_THRESHOLD
) -> Rendered:
    """Render one sample: rain layer, composite, exact residual, mask, measured coverage.

    A pure function of ``(clean, params)``: the same inputs give the same bytes.

    Parameters
    ----------
    clean : (H, W, 3) uint8 ndarray
    params : from :func:`sample_params` or :meth:`RainParams.from_dict`.
    mask_threshold : in 8-bit levels (the shared rain-mask definition, default 13).
    """
    if not 1 <= int(mask_threshold) <= 255:
        raise ValueError(f"mask_threshold must be in 1..255 levels, got {mask_threshold}")
    rain = rain_layer(clean.shape, params)
    rainy = composite(clean, rain, blend=params.blend)
    residual = cv2.subtract(rainy, clean)
    # rain_mask(rainy, clean) exactly (tested): rainy >= clean, so max_c(rainy - clean) is
    # the residual's channel maximum, computed on contiguous planes (4x faster).
    r, g, b = cv2.split(residual)
    mask = cv2.max(cv2.max(r, g), b) >= int(mask_threshold)
    return Rendered(rainy, rain, residual, mask, float(np.count_nonzero(mask) / mask.size))


def labels(params: RainParams, *, coverage: float | None = None) -> dict:
    """The label set of a sample, JSON-ready.

    Keys: ``theta`` (degrees from vertical, positive = top leans right), ``direction_angle``
    (the rain-direction dataset's angle, (90 - theta) mod 180), ``direction_class`` (its 18-bin
    class; ties go to the bin nearer vertical) and ``direction_soft`` ([bin, weight] pairs),
    ``radius``, ``sigma_px``, ``length_px``, ``coverage_target``, ``coverage`` (measured, when
    given), ``density``, ``brightness``, ``blend``, ``seed``.
    """
    hard, soft = direction_class(params.angle)
    out = {
        "theta": params.angle,
        "direction_angle": _r(direction_angle(params.angle)),
        "direction_class": hard,
        "direction_soft": [[b, w] for b, w in soft],
        "radius": params.radius,
        "sigma_px": params.sigma,
        "length_px": params.length,
        "coverage_target": params.coverage,
        "density": params.density,
        "brightness": params.brightness,
        "blend": params.blend,
        "seed": params.seed,
    }
    if coverage is not None:
        out["coverage"] = _r(coverage)
    return out


# ----------------------------------------------------------------------------- tiers


def lowpass_tiers(clean: np.ndarray, sizes: tuple[int, ...] = TIER_SIZES) -> dict[int, np.ndarray]:
    """The clean image through k x k Gaussian filters, sigma = :func:`tier_sigma` (k).

    Parameters
    ----------
    clean : (H, W, 3) uint8 ndarray
    sizes : odd kernel sizes.

    Returns
    -------
    tiers : dict k -> (H, W, 3) uint8 ndarray (reflect-101 borders, rounded).
    """
    f = clean.astype(np.float32)
    return {
        k: np.clip(
            np.rint(cv2.GaussianBlur(f, (k, k), tier_sigma(k), borderType=cv2.BORDER_REFLECT_101)),
            0,
            255,
        ).astype(np.uint8)
        for k in sizes
    }


#: Rule for the tier choice: the smallest k that removes at least this fraction of the fine
#: detail (see :func:`detail_kept`).
TIER_DETAIL_KEPT = 0.3


def detail_kept(clean: np.ndarray, tier: np.ndarray) -> float:
    """Fraction of the clean image's fine detail a tier keeps, in [0, 1].

    Fine detail is the mean absolute Laplacian of luma (the pixel-scale structure a low-pass
    tier should drop); the ratio of the tier's to the clean image's.
    """
    lap = [
        float(np.abs(cv2.Laplacian(rgb_to_luma(x).astype(np.float32), cv2.CV_32F)).mean())
        for x in (clean, tier)
    ]
    return lap[1] / lap[0] if lap[0] > 0 else 0.0


def choose_tier(clean: np.ndarray, tiers: dict[int, np.ndarray]) -> tuple[int, list[float]]:
    """The documented rule for "main content visible, details not": the smallest k whose tier
    keeps at most :data:`TIER_DETAIL_KEPT` of the fine detail (else the largest k).

    Returns
    -------
    k : the chosen size.
    kept : detail kept by each tier, in the order of ``sorted(tiers)``.
    """
    sizes = sorted(tiers)
    kept = [_r(detail_kept(clean, tiers[k])) for k in sizes]
    for k, d in zip(sizes, kept):
        if d <= TIER_DETAIL_KEPT:
            return k, kept
    return sizes[-1], kept


# ----------------------------------------------------------------------------- video frames


def render_rain_frames(
    background: np.ndarray,
    n_frames: int,
    *,
    angle: float = 0.0,
    radius: float = 0.6,
    density: str = "light",
    config: SynthConfig = SynthConfig(),
    rng: np.random.Generator | int | None = None,
) -> Iterator[np.ndarray]:
    """Rainy video frames over a static background: a fresh rain layer per frame.

    Parameters
    ----------
    background : (H, W, 3) uint8 ndarray
    n_frames : number of frames.
    angle, radius, density : pinned for every frame; length and brightness are drawn per
        frame from ``config``.
    rng : generator or seed.

    Yields
    ------
    frame : (H, W, 3) uint8 ndarray
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    rng = np.random.default_rng(rng)
    for _ in range(n_frames):
        p = sample_params(
            background.shape, config=config, rng=rng, angle=angle, radius=radius, density=density
        )
        yield composite(background, rain_layer(background.shape, p), blend=p.blend)


# ----------------------------------------------------------------------------- preview


def preview_sheet(
    image: np.ndarray,
    *,
    angles: tuple[float, ...] = PAPER_ANGLES,
    radii: tuple[float, ...] = PAPER_RADII,
    density: str = "medium",
    config: SynthConfig = SynthConfig(),
    seed: int = 0,
    cell: int = 240,
) -> np.ndarray:
    """A contact sheet of the angle x radius grid on one image (rows: angles, columns: radii).

    Every cell renders the whole image with the same seed (only angle and radius change), then
    shows a central crop of ``cell`` px at full resolution so streak widths can be compared.

    Returns
    -------
    sheet : (H', W', 3) uint8 ndarray
    """
    h, w = image.shape[:2]
    ch, cw = min(cell, h), min(cell, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    head = 28
    rows = []
    for a in sorted(angles, key=lambda t: (abs(t), t)):
        row = []
        for r in radii:
            p = sample_params(image.shape, config=config, rng=seed, angle=a, radius=r, density=density)
            out = composite(image, rain_layer(image.shape, p), blend=p.blend)[y0 : y0 + ch, x0 : x0 + cw]
            tile = np.zeros((ch + head, cw + 4, 3), np.uint8)
            tile[head:, 2 : 2 + cw] = out
            cv2.putText(tile, f"{a:+g} deg r={r:g}", (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1, cv2.LINE_AA)
            row.append(tile)
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)
