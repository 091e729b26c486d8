"""The registration estimator behind :mod:`rainset.motion` and :mod:`rainset.stabilize`.

Per frame: BT.601 luma, an integer area downscale (:meth:`rainset.motion.MotionPolicy.factor`),
a temporal median of three consecutive frames (policy checks; stabilisation registers single
frames against a rain-free reference), then sub-pixel phase correlation of a 3 x 3 grid of
tiles against the reference tiles (:func:`phase_shifts`) and a robust similarity fit to the
tile shifts (:func:`fit_tiles`). Cost on one core: under 3 ms per 1080p frame
(``benchmarks/bench_stabilize.py``).

Its transforms run into arrays made once per :class:`Registrar` (a fresh few-hundred-kB array
per frame cost ~0.4 ms of page faults on a 720 x 480 frame; issue 14), with the numbers of
``scipy.fft`` and of fresh arrays bit for bit (tests/test_registration_speed.py).

Length (~750 lines, 180 of them docstrings): one estimator. The tiles, the shifts, the fit, the
per-frame :class:`Registrar` and the streaming :class:`MotionMeter` share its constants and
:class:`FrameMotion`, and build-gt, pairs and stabilisation all use it whole; split, its
tuning (speed is measured across all of it) would be spread over several files.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import itertools
import math
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rainset.motion import MotionPolicy

# ----------------------------------------------------------------------------- tiles, shifts


def _fft():
    """``scipy.fft``, imported on first use (under :data:`IMPORT_LOCK`): 0.13-0.35 s of CPU
    that build-gt and pairs need not spend where scipy's pocketfft binding loads
    (:func:`_pocketfft`)."""
    if "scipy.fft" not in sys.modules:
        with IMPORT_LOCK:
            import scipy.fft  # noqa: F401
    return sys.modules["scipy.fft"]


@functools.cache
def _pocketfft():
    """scipy.fft's own pocketfft binding, whose transforms write into a given array, or
    ``None`` where this scipy does not have it (:func:`_rfft2` and :func:`_irfft2` then call
    ``scipy.fft``).

    The same transforms ``scipy.fft.rfft2`` / ``irfft2`` run, bit for bit
    (tests/test_registration_speed.py), without their new output array per call: on a
    virtual machine every fresh page of a few-hundred-kB temporary costs a page fault of
    about 2 us, and the registrar's per-frame temporaries (tiles, spectra, correlations)
    cost the pairs pass ~0.4 ms per 720 x 480 frame that way (issue 14).

    The binding is loaded from its file (:func:`_load_binding`), not imported by name:
    importing it runs ``scipy.fft``'s package first (scipy.special, the array-API layer:
    0.13-0.24 s of CPU, on build-gt's main thread while the first window decodes) for a
    module that needs none of it (3.6 ms)."""
    try:
        pf = _load_binding()
        probe = np.zeros((1, 4, 4), np.float32)
        spec = pf.r2c(probe, (1, 2), True, 0, np.empty((1, 4, 3), np.complex64), 1)
        pf.c2r(spec, (1, 2), 4, False, 2, np.empty((1, 4, 4), np.float32), 1)
    except Exception:  # noqa: BLE001 - another scipy: the public functions
        return None
    return pf


#: The binding's module name in scipy (private: probed by :func:`_pocketfft`).
_BINDING = "scipy.fft._pocketfft.pypocketfft"

#: Held while a thread imports scipy by name (numba's kernel loading imports it too): two
#: threads importing one package at once failed (KeyError: 'scipy'). build-gt's warm-up
#: thread holds it while the kernels load.
IMPORT_LOCK = threading.RLock()


def _load_binding():
    """The extension module :data:`_BINDING` from its file in scipy's folder, without
    running the packages above it; the plain import (under :data:`IMPORT_LOCK`) where the
    file is not where this scipy release keeps it."""
    spec = importlib.util.find_spec("scipy")  # finds the package, does not import it
    if spec is not None and spec.origin:
        folder = Path(spec.origin).parent / "fft" / "_pocketfft"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"pypocketfft{suffix}"
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader(_BINDING, str(path))
                module = importlib.util.module_from_spec(
                    importlib.util.spec_from_loader(_BINDING, loader)
                )
                loader.exec_module(module)
                return module
    with IMPORT_LOCK:
        from scipy.fft._pocketfft import pypocketfft

    return pypocketfft


def _rfft2(tiles: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``scipy.fft.rfft2(tiles, axes=(1, 2))``, into ``out`` where it can (see :func:`_pocketfft`)."""
    pf = _pocketfft()
    if pf is None:
        return _fft().rfft2(tiles, axes=(1, 2))
    return pf.r2c(tiles, (1, 2), True, 0, out, 1)


def _irfft2(spec: np.ndarray, shape: tuple[int, int], out: np.ndarray | None) -> np.ndarray:
    """``scipy.fft.irfft2(spec, s=shape, axes=(1, 2))``, into ``out`` where it can."""
    pf = _pocketfft()
    if pf is None:
        return _fft().irfft2(spec, s=shape, axes=(1, 2), overwrite_x=True)
    return pf.c2r(spec, (1, 2), shape[1], False, 2, out, 1)


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per-pixel median of three images with four min/max operations."""
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def mean_level(img: np.ndarray) -> float:
    """``float(img.mean())``, the same float: for uint8 images OpenCV's integer sum (exact, as
    numpy's float64 one is) divided by the size, 20 times faster on an analysis image."""
    if img.dtype == np.uint8 and img.ndim == 2 and img.size:
        return cv2.sumElems(img)[0] / img.size
    return float(img.mean())


def _median(v: np.ndarray) -> float:
    """``float(np.median(v))`` of a short 1-D float64 array without NaN, the same float (the
    middle value, or the mean of the two, ``(a + b) / 2`` as numpy takes it), without
    numpy's 10 us of overhead per call."""
    s = sorted(v.tolist())
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def _fast_len(n: int) -> int:
    """Largest m <= n whose only prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while m > 1:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m -= 1
    return 1


def _grid_tiles(img: np.ndarray, grid: int = 3, out: np.ndarray | None = None) -> np.ndarray:
    """(grid*grid, th, tw) float32 tiles, mean removed, ready for the window.

    Each tile is the centre of its grid cell cropped to FFT-friendly sides (a prime side such
    as 53 makes the transform several times slower). ``out``: a (grid*grid, ch, cw) float32
    array for the cells (the tiles are a view of it), as a new one would be.
    """
    cells, ys, xs = _cells(img, grid)
    if out is None:
        t = cells.astype(np.float32, order="C").reshape(grid * grid, *cells.shape[2:])  # one copy
    else:
        t = out
        np.copyto(t.reshape(cells.shape), cells)
    t = t[:, ys, xs]
    t -= t.mean(axis=(1, 2), keepdims=True)  # in place: t is this function's copy
    return t


def _cells(img: np.ndarray, grid: int) -> tuple[np.ndarray, slice, slice]:
    """(grid, grid, ch, cw) view of the grid cells of ``img``, and the rows and columns of
    each cell's centre cropped to FFT-friendly sides (the tiles of :func:`_grid_tiles`)."""
    h, w = img.shape
    ch, cw = h // grid, w // grid
    th, tw = _fast_len(ch), _fast_len(cw)
    y0, x0 = (ch - th) // 2, (cw - tw) // 2
    cells = img[: ch * grid, : cw * grid].reshape(grid, ch, grid, cw).transpose(0, 2, 1, 3)
    return cells, slice(y0, y0 + th), slice(x0, x0 + tw)


#: Width (sigma, pixels) of the correlation peak after the spectral weighting of
#: :func:`phase_shifts`. Plain phase correlation weights all frequencies alike, the highest
#: (rain, sensor noise) included; this weighting keeps them from dominating and gives the peak
#: a Gaussian shape whose three-point fit is exact.
PEAK_SIGMA = 1.5


def phase_shifts(
    ref_fft: np.ndarray, img_fft: np.ndarray, shape: tuple[int, int], *, sigma: float = PEAK_SIGMA
) -> np.ndarray:
    """Sub-pixel shifts of a batch of tiles against reference tiles by phase correlation.

    Parameters
    ----------
    ref_fft, img_fft : (K, th, tw // 2 + 1) complex ndarray
        ``scipy.fft.rfft2`` (or ``np.fft.rfft2``) of the windowed reference and image tiles.
    shape : (th, tw), the tile size.
    sigma : width of the correlation peak, pixels (see :data:`PEAK_SIGMA`).

    Returns
    -------
    shifts : (K, 3) float ndarray
        ``(dx, dy, response)`` per tile: the image tile equals the reference moved by
        ``(dx, dy)`` pixels (+x right, +y down); ``response`` is the correlation peak (1 for
        identical tiles, near 0 for unrelated ones).

    Notes
    -----
    The normalised cross-power spectrum (a pure phase ramp for a translation) is multiplied by
    ``exp(-2 pi^2 sigma^2 |f|^2)``, so its inverse is a Gaussian of width ``sigma`` centred on
    the shift; a parabola through the logarithms of the peak and its two neighbours on each
    axis then locates the centre exactly. On area-sampled (camera-like) shifts the error is a
    few hundredths of a pixel, and on rainy static footage the estimate is several times less
    noisy than the sinc-peak formula of Foroosh et al. (2002).
    """
    return _phase_shifts(ref_fft, img_fft, shape, float(sigma), None)


#: numpy's NPY_MIN_ELIDE_BYTES: the size from which it reuses a temporary operand as the
#: result of an arithmetic operator (see :func:`_phase_shifts`).
_ELIDE_BYTES = 256 * 1024


class _Work:
    """The registrar's per-frame arrays, made once (see :func:`_pocketfft`). The tiles, the
    spectral magnitudes and the correlations share one array, each dead before the next is
    written: a smaller working set stays in the core's cache beside the decoder's."""

    def __init__(self, cells: tuple[int, int], tile: tuple[int, int]):
        spec = (9, tile[0], tile[1] // 2 + 1)
        flat = np.empty(9 * cells[0] * cells[1], np.float32)  # the largest of the three
        self.cells = flat.reshape(9, *cells)
        self.mag = flat[: math.prod(spec)].reshape(spec)
        self.corr = flat[: 9 * tile[0] * tile[1]].reshape(9, *tile)
        self.spec = np.empty(spec, np.complex64)
        self.cross = np.empty(spec, np.complex64)
        self.conj = np.empty(spec, np.complex64) if self.cross.nbytes < _ELIDE_BYTES else None


def _phase_shifts(ref_fft, img_fft, shape, sigma: float, work: _Work | None) -> np.ndarray:
    """:func:`phase_shifts`, its large temporaries in ``work`` when given (the same numbers)."""
    weight, total = _peak_weight(shape[0], shape[1], sigma)
    # Bit for bit the products of earlier releases, ``a * np.conj(b)``: numpy writes a
    # temporary of 256 kB or more (720 x 480 frames' spectra) in place, as
    # ``np.multiply(conj, a, out=conj)``, and smaller ones to a new array as
    # ``np.multiply(a, conj)``; the two loops round differently.
    if work is None or img_fft.shape != work.cross.shape:
        cross = img_fft * np.conj(ref_fft)
        mag = np.abs(cross)
    else:
        if work.cross.nbytes >= _ELIDE_BYTES:
            cross = np.conjugate(ref_fft, out=work.cross)
            np.multiply(cross, img_fft, out=cross)
        else:
            cross = np.multiply(img_fft, np.conjugate(ref_fft, out=work.conj), out=work.cross)
        mag = np.abs(cross, out=work.mag)
    mag += 1e-12
    cross *= np.divide(weight, mag, out=mag)
    r = _irfft2(cross, shape, None if work is None else work.corr)
    k, h, w = r.shape
    flat = r.reshape(k, -1)
    py, px = np.divmod(flat.argmax(axis=1), w)
    # The peak and its neighbours below/above and left/right, gathered at once: (K, 5).
    at = ((py[:, None] + _NEAR_Y) % h) * w + (px[:, None] + _NEAR_X) % w
    v = flat.ravel().take(at + np.arange(0, k * h * w, h * w)[:, None])
    out = np.empty((k, 3))
    out[:, 2] = v[:, 0] / total
    # A parabola through the logarithms: y offsets in column 0, x offsets in column 1.
    lg = np.log(np.maximum(v, 1e-12, out=v), out=v)
    lc, ll, lh = lg[:, :1], lg[:, 1::2], lg[:, 2::2]
    den = ll - 2 * lc + lh
    curved = den < 0
    off = ll - lh
    off *= 0.5
    off /= np.where(curved, den, -1.0)
    off[~curved] = 0.0
    np.clip(off, -1, 1, out=off)
    out[:, 0] = px + off[:, 1]
    out[:, 1] = py + off[:, 0]
    f = out[:, :2]
    f -= np.where(f > (w / 2, h / 2), (w, h), 0)  # past half the tile: the other way round
    return out


#: The peak's neighbours in :func:`_phase_shifts`: itself, above, below, left, right.
_NEAR_Y = np.array([0, -1, 1, 0, 0])
_NEAR_X = np.array([0, 0, 0, -1, 1])


@functools.lru_cache(maxsize=8)
def _peak_weight(th: int, tw: int, sigma: float) -> tuple[np.ndarray, float]:
    """The spectral weight on the rfft grid, and the peak it gives two identical tiles."""
    g = -2.0 * np.pi**2 * sigma**2
    weight = np.exp(g * (np.fft.fftfreq(th)[:, None] ** 2 + np.fft.rfftfreq(tw)[None, :] ** 2))
    full = np.exp(g * (np.fft.fftfreq(th)[:, None] ** 2 + np.fft.fftfreq(tw)[None, :] ** 2))
    return weight.astype(np.float32), float(full.sum()) / (th * tw)




def analysis_luma(frame: np.ndarray, factor: int) -> np.ndarray:
    """``(h // factor, w // factor)`` uint8 BT.601 luma of an (H, W, 3) uint8 RGB frame,
    ``factor`` a power of two: repeated 2 x 2 area averages (OpenCV's fast path, 0.2 ms for
    1080p against 1.6 ms for one 4 x 4 area resize)."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    return halve(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY), factor)


def halve(grey: np.ndarray, factor: int) -> np.ndarray:
    """``grey`` downscaled by ``factor``, a power of two: repeated 2 x 2 area averages (the
    analysis images of :func:`analysis_luma` and of decoder luma planes alike)."""
    while factor > 1:
        h, w = grey.shape
        grey = cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        factor //= 2
    return grey


def tile_texture(img: np.ndarray) -> np.ndarray:
    """(9,) texture of each tile of :func:`_grid_tiles`: the median of ``|d/dx| + |d/dy|``,
    levels per pixel. A median, so the rain a three-frame median leaves (a few per cent of
    the pixels) does not count as texture: a near-featureless wall under dense rain scores 2,
    textured scenes 4-40."""
    return _texture(_grid_tiles(img))


def _texture(t: np.ndarray) -> np.ndarray:
    """(K,) median of ``|d/dx| + |d/dy|`` of each of the (K, th, tw) tiles ``t``."""
    g = np.abs(np.diff(t, axis=2))[:, :-1, :] + np.abs(np.diff(t, axis=1))[:, :, :-1]
    return np.median(g.reshape(len(t), -1), axis=1)


def textured_tiles(img: np.ndarray, min_texture: float) -> np.ndarray:
    """(9,) bool: ``tile_texture(img) >= min_texture``, computed exactly in integers.

    On uint8 images every ``|d/dx| + |d/dy|`` is an integer, so the median of a tile is one
    (or the mean of two) and a count of the values gives it without sorting floats; where it
    lies within 0.01 of ``min_texture`` the float computation of :func:`tile_texture` decides
    (its mean-removed float32 tiles put it a few 1e-5 off the integer), so the answer is
    always that function's. About 0.06 ms for a 360 x 240 image against 0.35-1 ms.
    """
    if img.dtype != np.uint8:
        return tile_texture(img) >= min_texture
    cells, ys, xs = _cells(img, 3)
    t = cells[:, :, ys, xs]
    t = t.reshape(9, *t.shape[2:]).astype(np.int16)
    g = np.abs(np.diff(t, axis=2))[:, :-1, :]
    g += np.abs(np.diff(t, axis=1))[:, :, :-1]
    g = g.reshape(9, -1)
    n = g.shape[1]
    ks = sorted({(n - 1) // 2, n // 2})  # the order statistics the median averages
    g = np.partition(g, ks, axis=1)
    med = (g[:, (n - 1) // 2] + g[:, n // 2]) / 2
    out = med >= min_texture
    near = np.abs(med - min_texture) < 0.01
    if near.any():  # tile_texture's float values, for these tiles only
        out[near] = _texture(_grid_tiles(img)[near]) >= min_texture
    return out


def tile_centres(shape: tuple[int, int], grid: int = 3) -> np.ndarray:
    """(grid*grid, 2) centres (x, y) of the tiles of :func:`_grid_tiles`, relative to the
    image centre, in the image's pixels."""
    h, w = shape
    ch, cw = h // grid, w // grid
    ys, xs = np.divmod(np.arange(grid * grid), grid)
    return np.stack([(xs + 0.5) * cw - w / 2, (ys + 0.5) * ch - h / 2], axis=1).astype(float)


#: Largest disagreement (analysis pixels) of a tile's shift with the fitted model for the tile
#: to count as agreeing: several times the estimate's noise on rainy static tiles (0.02-0.06
#: px), far below what a passing car or a mis-locked rain tile gives.
INLIER_TOL = 0.5

_PAIRS = {}


def _pairs(n: int) -> np.ndarray:
    if n not in _PAIRS:
        _PAIRS[n] = np.array(list(itertools.combinations(range(n), 2)), int).reshape(-1, 2)
    return _PAIRS[n]


def _apply(params: np.ndarray, p: np.ndarray) -> np.ndarray:
    tx, ty, a, b = params
    return np.stack([tx + a * p[:, 0] - b * p[:, 1], ty + b * p[:, 0] + a * p[:, 1]], axis=1)


def fit_tiles(
    centres: np.ndarray, shifts: np.ndarray, usable: np.ndarray, *, min_tiles: int, tol: float = INLIER_TOL
) -> tuple[np.ndarray | None, np.ndarray]:
    """Robust similarity fit to tile shifts: every pair of usable tiles proposes a model, the
    one most tiles agree with (within ``tol``) wins, and a least-squares refit on those tiles
    gives the answer.

    Returns ``(params, inliers)``: ``params = (tx, ty, a, b)`` with displacement
    ``d(p) = t + [[a, -b], [b, a]] p`` (``None`` when fewer than ``min_tiles`` tiles agree),
    and the boolean inlier mask.
    """
    idx = np.flatnonzero(usable)
    inl = np.zeros(len(shifts), bool)
    if len(idx) < max(2, min_tiles):
        return None, inl
    p, d = centres[idx], shifts[idx]
    # In complex numbers a similarity is d = t + z p (z = a + ib): two tiles fix it in closed
    # form, for every pair at once (a batched 4 x 4 solve gave the same choices, slower,
    # except where a residual is within rounding of ``tol``: exact integer shifts can do that).
    pc, dc = p[:, 0] + 1j * p[:, 1], d[:, 0] + 1j * d[:, 1]
    i, j = _pairs(len(idx)).T
    z = (dc[i] - dc[j]) / (pc[i] - pc[j])
    res = np.abs((dc[i] - z * pc[i])[:, None] + z[:, None] * pc[None, :] - dc[None, :])  # (P, K)
    ok = res < tol
    score = ok.sum(1) * 1e3 - np.where(ok, res, tol).sum(1)
    best = ok[int(np.argmax(score))]
    if best.sum() < min_tiles:
        return None, inl
    params = _similarity_lsq(pc[best], dc[best])
    inl[idx[best]] = True
    return params, inl


def _similarity_lsq(p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Least-squares ``(tx, ty, a, b)`` of ``d = t + z p`` for complex points ``p`` and shifts
    ``d`` (``z = a + ib``), in closed form: ``z`` from the centred points, then ``t`` from the
    means: the least-squares solution of the 2K x 4 real system ``d = t + [[a, -b], [b, a]] p``
    to rounding (1e-13 px; tests/test_registration_speed.py solves that system), at a third of
    ``np.linalg.lstsq``'s cost."""
    pm, dm = p.mean(), d.mean()
    q = p - pm
    z = np.vdot(q, d - dm) / np.vdot(q, q).real
    t = dm - z * pm
    return np.array([t.real, t.imag, z.real, z.imag])


@dataclass(frozen=True)
class FrameMotion:
    """The camera motion of one frame against its reference (full-resolution pixels).

    Attributes
    ----------
    index : frame index (in the window, segment or source, as the caller counts).
    dx, dy : translation of the image content at the frame centre (+x right, +y down).
    rotation : degrees, positive clockwise on screen; ``scale`` : 1 = no zoom.
    displacement : largest movement the fitted model gives any tile centre, px: the figure
        the policy's ``max_shift`` bounds; ``inf`` when the picture changed beyond measuring
        (a textured reference whose tiles no longer match).
    response : median correlation peak of the agreeing tiles (0 when unmeasured).
    confidence : share of the 9 tiles that agree with the model (textured, not rain-locked).
    measured : whether at least ``min_tiles`` tiles agree (or the picture changed, see
        ``displacement``); an unmeasured frame does not count as motion.
    brightness : mean luma of the analysis image, 0..255.
    drift : relative change of ``brightness`` against the reference (floored at 16 levels).
    """

    index: int
    dx: float
    dy: float
    rotation: float
    scale: float
    displacement: float
    response: float
    confidence: float
    measured: bool
    brightness: float
    drift: float


def counts_as_moving(m: FrameMotion, policy: MotionPolicy) -> bool:
    """The policy's one motion test: measured, and displaced by more than ``max_shift``."""
    return m.measured and m.displacement > policy.max_shift


#: Frames right after the reference whose three-frame medians share two raw frames with the
#: reference's (the first frame of a clip takes the median of frames 0-2, like frame 1). On a
#: featureless scene their common rain correlates into a confident shift biased toward the
#: reference (up to 0.5 px on a static wall; 1.3 px when the reference was a raw frame), so
#: they count only when they move beyond the limit all the same, and are left out of the
#: confidence figures. Sharing one raw frame no longer shows in the measurements.
SHARED = 2


class Registrar:
    """Measures analysis images against a reference (see :mod:`rainset.motion`).

    Its per-frame arrays are made once and reused (:class:`_Work`): one registrar serves one
    thread at a time."""

    def __init__(self, policy: MotionPolicy, factor: int, shape: tuple[int, int]):
        self.policy = policy
        self.factor = factor
        self.shape = shape
        self._window: np.ndarray | None = None
        self._ref_fft: np.ndarray | None = None
        self.ref_brightness = 0.0
        self.centres = tile_centres(shape)
        self._work: _Work | None = None
        self._ref_img: np.ndarray | None = None
        self._ref_textured: int | None = None

    def transform(self, img: np.ndarray) -> np.ndarray:
        """The spectra of the windowed tiles of ``img``: the registrar's own array, which the
        next call overwrites (:meth:`set_reference` keeps a copy of the one it is given)."""
        if self._work is None:
            cells, ys, xs = _cells(img, 3)
            th, tw = ys.stop - ys.start, xs.stop - xs.start
            self._window = np.outer(np.hanning(th), np.hanning(tw)).astype(np.float32)
            self._tile = (th, tw)
            self._work = _Work(cells.shape[2:], self._tile)
        tiles = _grid_tiles(img, out=self._work.cells)
        tiles *= self._window  # in place: the same products as tiles * window
        return _rfft2(tiles, self._work.spec)

    def set_reference(self, img: np.ndarray, fft: np.ndarray | None = None) -> None:
        fft = self.transform(img) if fft is None else fft
        if self._ref_fft is None or self._ref_fft.shape != fft.shape:
            self._ref_fft = fft.copy()
        else:
            np.copyto(self._ref_fft, fft)
        self.ref_brightness = mean_level(img)
        self._ref_img, self._ref_textured = img.copy(), None

    @property
    def ref_textured(self) -> int:
        """Textured tiles of the reference (:func:`textured_tiles`), counted when first asked
        for: only a frame whose fit fails needs it."""
        if self._ref_textured is None:
            self._ref_textured = int(textured_tiles(self._ref_img, self.policy.min_texture).sum())
        return self._ref_textured

    def tile_shifts(self, img: np.ndarray, fft: np.ndarray | None = None) -> np.ndarray:
        """(9, 3) ``(dx, dy, response)`` per tile, analysis pixels (:func:`phase_shifts`)."""
        fft = self.transform(img) if fft is None else fft
        return _phase_shifts(self._ref_fft, fft, self._tile, PEAK_SIGMA, self._work)

    def measure(
        self,
        img: np.ndarray,
        index: int = 0,
        fft: np.ndarray | None = None,
        *,
        shared: bool = False,
        brightness: float | None = None,
    ) -> FrameMotion:
        """Measure one analysis image. ``shared``: its temporal median shares raw frames with
        the reference's (see :data:`SHARED`), whose common rain correlates: it counts as
        measured only when it moves beyond the policy's limit all the same. ``fft`` and
        ``brightness``: :meth:`transform` and :func:`mean_level` of ``img``, when the caller
        has them."""
        pol, k = self.policy, self.factor
        s = self.tile_shifts(img, fft)
        brightness = mean_level(img) if brightness is None else brightness
        drift = (brightness - self.ref_brightness) / max(self.ref_brightness, 16.0)
        usable = s[:, 2] >= pol.min_response
        params, inl = fit_tiles(self.centres, s[:, :2], usable, min_tiles=pol.min_tiles)
        if params is None:
            med = np.median(s, axis=0)
            # A textured reference whose tiles no longer match, none of them in place: the
            # picture changed (a pan beyond the tiles' reach, moving foreground filling the
            # frame), which is motion. Tiles still matching in place mean a still camera with
            # foreground over the rest; a featureless or rain-dominated reference tells nothing.
            in_place = usable & (np.hypot(s[:, 0], s[:, 1]) * k <= pol.max_shift)
            changed = int(in_place.sum()) < 2 and self.ref_textured >= pol.min_tiles
            return FrameMotion(
                index, float(med[0]) * k, float(med[1]) * k, 0.0, 1.0,
                math.inf if changed else float(math.hypot(*med[:2])) * k,
                0.0, float(inl.mean()), changed, brightness, drift,
            )  # fmt: skip
        disp = float(np.hypot(*_apply(params, self.centres).T).max()) * k
        tx, ty, a, b = params
        # Shared rain pulls the estimate toward the reference, never away: a shared frame that
        # still moves beyond the limit is measured (a pan is seen at once), one that does not
        # tells nothing.
        measured = not shared or disp > pol.max_shift
        return FrameMotion(
            index, float(tx) * k, float(ty) * k, math.degrees(math.atan2(b, 1 + a)),
            float(math.hypot(1 + a, b)), disp, _median(s[inl, 2]), float(inl.mean()),
            measured, brightness, drift,
        )  # fmt: skip


# ----------------------------------------------------------------------------- streams, summary


class AnalysisStream:
    """Analysis images of frames (validation, the downscale factor)."""

    def __init__(self, policy: MotionPolicy):
        self.policy = policy
        self.factor: int | None = None
        self.shape: tuple[int, int, int] | None = None
        self.n_in = 0

    def small(self, frame: np.ndarray) -> np.ndarray:
        """The analysis image of an (H, W, 3) uint8 RGB frame, or of a
        :class:`rainset._analysis_frames.DecodedFrame` (from its luma plane when it has one)."""
        if not isinstance(frame, np.ndarray):
            self._check(frame.shape)
            return frame.analysis_luma(self.factor)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        self._check(frame.shape)
        return analysis_luma(frame, self.factor)

    def _check(self, shape: tuple[int, int, int]) -> None:
        if self.shape is None:
            self.shape = shape
            self.factor = self.policy.factor(shape[0], shape[1])
        elif shape != self.shape:
            raise ValueError(f"frame {self.n_in} is {shape}, earlier ones {self.shape}")


@dataclass(frozen=True)
class MotionSummary:
    """The policy's verdict over a run of frames (a build-gt window, a pairs segment).

    Attributes
    ----------
    frames : the per-frame measurements, the first being the reference.
    max_shift : largest displacement of a measured frame, px (0 when none is measured).
    worst : index of that frame (``None`` when none is measured).
    unmeasured : frames too featureless or rain-dominated to measure (not counted as motion),
        of the ``len(frames) - 3`` after the reference and the two that share its rain.
    confidence : median confidence over those frames (1 when there are none).
    drift : largest absolute light drift against the reference.
    static : no measured frame moves more than the policy's ``max_shift``.
    """

    frames: tuple[FrameMotion, ...]
    max_shift: float
    worst: int | None
    unmeasured: int
    confidence: float
    drift: float
    static: bool

    @property
    def shifts(self) -> np.ndarray:
        return np.array([(m.dx, m.dy) for m in self.frames])

    def is_static(self, max_shift: float | None = None) -> bool:
        if max_shift is None:
            return self.static
        return self.max_shift <= max_shift

    def describe(self) -> str:
        """The figures in a few words, for messages."""
        conf = f"confidence {self.confidence:.2f}"
        if self.unmeasured:
            conf += f", {self.unmeasured} of {len(self.frames) - 1 - SHARED} frames unmeasured (too little texture or too much rain)"
        return f"largest shift {self.max_shift:.2f} px ({conf})"


def summarize(motions: Iterable[FrameMotion], policy: MotionPolicy) -> MotionSummary:
    ms = tuple(motions)
    if not ms:
        raise ValueError("a motion summary needs at least one frame")
    worst = max((m for m in ms[1:] if m.measured), key=lambda m: m.displacement, default=None)
    top = worst.displacement if worst is not None else 0.0
    rest = ms[1 + SHARED :]  # the frames whose rain the reference does not share
    return MotionSummary(
        frames=ms,
        max_shift=top,
        worst=None if worst is None else worst.index,
        unmeasured=sum(not m.measured for m in rest),
        confidence=float(np.median([m.confidence for m in rest])) if rest else 1.0,
        drift=max((abs(m.drift) for m in ms[1:]), default=0.0),
        static=top <= policy.max_shift,
    )


class MotionMeter:
    """Streaming policy check for a growing window (build-gt): feed frames as they decode, ask
    for the summary over the first ``n`` at any time. Keeps one analysis image per frame."""

    def __init__(self, policy: MotionPolicy | None = None):
        self.policy = policy or MotionPolicy()
        self._stream = AnalysisStream(self.policy)
        self._small: list[np.ndarray] = []
        self._done: dict[int, FrameMotion] = {}
        self._reg: Registrar | None = None
        self._ref_n: int | None = None

    def __len__(self) -> int:
        return len(self._small)

    @property
    def factor(self) -> int:
        return self._stream.factor or 1

    def update(self, frame: np.ndarray) -> None:
        self._small.append(self._stream.small(frame))
        self._stream.n_in += 1

    def _smoothed(self, i: int, n: int) -> np.ndarray:
        """Frame ``i`` of the first ``n``, smoothed as :class:`rainset.timelapse.StaticScorer`
        does: with its neighbours, the first and last with the first and last three."""
        s = self._small
        if n < 3:
            return s[i]
        j = min(max(i, 1), n - 2)
        return _median3(s[j - 1], s[j], s[j + 1])

    def report(self, n: int | None = None) -> MotionSummary:
        """The summary over the first ``n`` frames fed (all by default)."""
        n = len(self._small) if n is None else min(n, len(self._small))
        if n < 1:
            raise ValueError("measure_motion needs at least one frame")
        if self._reg is None:
            self._reg = Registrar(self.policy, self.factor, self._small[0].shape)
        if self._ref_n is None or (self._ref_n < 3 <= n):
            # The reference is frame 0 smoothed with frames 1 and 2 (alone until they come).
            self._reg.set_reference(self._smoothed(0, n))
            self._ref_n = n
            self._done.clear()
        out = []
        for i in range(n):
            m = self._done.get(i) if i < n - 1 else None
            if m is None:
                m = self._reg.measure(self._smoothed(i, n), i, shared=0 < i <= SHARED)
                if i < n - 1:  # final: its neighbours are all fed
                    self._done[i] = m
            out.append(m)
        return summarize(out, self.policy)


def measure_motion(frames: Iterable[np.ndarray], policy: MotionPolicy | None = None) -> MotionSummary:
    """The policy's verdict on ``frames`` (an iterable of (H, W, 3) uint8 RGB frames or a
    (T, H, W, 3) stack) against the first one."""
    meter = MotionMeter(policy)
    for f in frames:
        meter.update(f)
    return meter.report()


# ----------------------------------------------------------------------------- single frames


def model_matrix(m: FrameMotion, shape: tuple[int, int]) -> np.ndarray:
    """2 x 3 matrix of a frame's fitted motion, full-resolution pixel coordinates: it takes a
    point of the reference to where the frame shows it (invert it to register the frame)."""
    h, w = shape
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    th = math.radians(m.rotation)
    a = m.scale * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    t = np.array([m.dx, m.dy]) + c - a @ c
    return np.hstack([a, t[:, None]])


def register_frames(
    frames, policy: MotionPolicy | None = None, *, mode: str = "similarity", passes: int = 2
) -> list[FrameMotion]:
    """Per-frame camera motion of single frames (no temporal smoothing: shake differs from one
    frame to the next) against the first frame.

    The first pass measures each frame against the first one, rain and all; each later pass
    registers the analysis images with the previous estimates, takes their temporal median (a
    rain-free reference in the first frame's geometry) and measures every frame against it.
    ``mode="translation"`` keeps only the translation of each fit; a frame that cannot be
    measured (too little texture) is left where it is (identity, ``measured=False``).

    Parameters
    ----------
    frames : (T, H, W, 3) uint8 stack or sequence of frames.
    policy : the motion policy (analysis factor, tile thresholds).
    """
    policy = policy or MotionPolicy()
    h, w = frames[0].shape[:2]
    k = policy.factor(h, w)
    small = [analysis_luma(f, k) for f in frames]
    reg = Registrar(policy, k, small[0].shape)
    reg.set_reference(small[0])
    out = [reg.measure(s, i) for i, s in enumerate(small)]
    for _ in range(1, passes):
        warped = [register_analysis(s, m, k, mode) for s, m in zip(small, out)]
        ref = np.median(np.stack(warped), axis=0).astype(np.uint8)
        reg.set_reference(ref)
        reg.ref_brightness = float(small[0].mean())
        out = [reg.measure(s, i) for i, s in enumerate(small)]
    return [keep_model(m, mode) for m in out]


def register_analysis(img: np.ndarray, m: FrameMotion, k: int, mode: str) -> np.ndarray:
    """An analysis image (``k`` full-resolution pixels per pixel) moved back by its frame's
    measured motion (the part ``mode`` undoes), bilinear."""
    h, w = img.shape
    mat = model_matrix(keep_model(m, mode), (h * k, w * k))
    mat[:, 2] /= k  # to analysis pixels (a power-of-two area average keeps centres)
    return cv2.warpAffine(
        img, mat, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    )


def keep_model(m: FrameMotion, mode: str) -> FrameMotion:
    """The part of a measured motion a stabilisation mode undoes (identity when unmeasured)."""
    if not m.measured:  # no estimate to trust: leave the frame where it is
        return FrameMotion(m.index, 0.0, 0.0, 0.0, 1.0, 0.0, m.response, m.confidence, False, m.brightness, m.drift)
    if mode == "similarity" or math.isinf(m.displacement):
        return m
    if mode != "translation":
        raise ValueError(f"mode must be 'translation' or 'similarity', got {mode!r}")
    return FrameMotion(
        m.index, m.dx, m.dy, 0.0, 1.0, math.hypot(m.dx, m.dy), m.response, m.confidence, True,
        m.brightness, m.drift,
    )  # fmt: skip
