"""The clean image of a static rain clip: temporal mode, percentile vote, one global percentile.

The estimator of the SPANet paper (Wang et al., CVPR 2019, Sec. 3), exactly as
ARCHITECTURE.md sec. 2 pins it. For each element (a pixel's luma, or one channel of a pixel)
with values sorted ``s_0 <= ... <= s_{N-1}``:

1. the mode: the most frequent value, ties going to the smallest (rain only brightens);
2. its percentile range ``[100 i_first / N, 100 i_last / N]``, where the mode occupies sorted
   indices ``i_first .. i_last`` (the released notebook's form of the paper's Eq. 3);
3. one global percentile ``p_hat``: on the grid ``p = 0 .. 100`` count the elements whose range
   contains ``p`` (both ends inclusive); ``p_hat`` is the most voted ``p``, the lowest on ties
   (no range can contain 100, since ``i_last <= N - 1``);
4. the clean value: the ``p_hat``-th percentile of the element's values with linear
   interpolation (``np.percentile``'s default), floored to uint8.

``select="luma"`` (the default, the released notebook's method) votes on full-range BT.601
luma (:func:`rainset.image.rgb_to_luma`) and then applies step 4 to each RGB channel with the
one ``p_hat``; the notebook's colour conversion also added 128 to Y in most columns through a
broadcasting slip, which is not reproduced. ``select="rgb"`` lets every (pixel, channel) vote.

``method="robust"`` (not the paper's) is a rain-rejecting mean: per element, drop the samples
more than ``k`` robust sigmas above the median (sigma = 1.4826 MAD, at least one level) and
average the rest. The SPA estimator keeps one order statistic per pixel, so sensor noise stays
in its result; averaging the rain-free samples removes most of it (see
``benchmarks/bench_estimator.py`` and ``tests/test_groundtruth.py`` for the measured gap).

``method="anchored"`` (not the paper's; issue 16) averages around the SPA value: the SPA image
is each element's anchor ``a``; one noise scale for the window, ``D90``, the 90th percentile of
``a - x`` over all samples at or below their anchor (:func:`anchor_window`), sets the window
``[a - wl, a + wu]`` (4 and 2.5 sigma with sigma = D90 / 1.645, at least 2 levels each); the
clean value is the mean of the samples in the window, rounded half up, except where more than
:data:`ANCHOR_MAX_RAIN` samples lie above ``a + 13`` (rain in many frames), which keep ``a``
(:func:`anchored_mean`). It keeps SPA's rain rejection in heavy rain, where the median and MAD
of ``robust`` are pulled up, and removes most of the noise that SPA's single order statistic
keeps (``benchmarks/quality_gt.py``; docs/groundtruth.md).

Exact arithmetic
    Every comparison and interpolation is integer arithmetic, so all back-ends agree bit for
    bit: ``p`` is in a range iff ``100 i_first <= p N <= 100 i_last``; the percentile is
    ``(100 s_k + r (s_{k+1} - s_k)) // 100`` with ``k, r = divmod(p (N - 1), 100)``. This is the
    true floor of the linearly interpolated percentile. ``np.percentile`` works in float64 and
    can land a hair below an exact integer (values ``[0, 100]`` at ``p = 29`` give
    ``28.999999999999996``), so ``floor(np.percentile(...))`` is occasionally one level lower;
    our result equals ``floor(np.percentile(...) + 1e-9)``.

Speed and memory
    The CPU path is compiled with numba (:mod:`rainset._gt_numba`) when numba is installed and
    falls back to numpy (:mod:`rainset._gt_numpy`: sorting over column tiles, same results,
    ~25-50x slower). At 1080p x
    200 frames the luma estimate costs ~0.68 CPU-seconds (two threads), 0.3-0.4x the wall
    time of decoding those frames of H.264 in the same run (``benchmarks/bench_estimator.py``);
    the numba kernels compile once (~15 s) into ``__pycache__``.
    ``device="cuda"`` runs the same computation with PyTorch (:mod:`rainset._gt_torch`, imported
    only then). Working memory beyond the ``(T, H, W, 3)`` uint8 stack is per pixel: 4 bytes of
    mode indices (12 for ``select="rgb"``), 1 (3) for the mode, 3 for the image, plus < 1 MiB
    of scratch per thread: 8 (18) bytes per pixel. At 4K (3840 x 2160) x 300 frames the stack
    is 7.46 GB (6.95 GiB) and the rest 66 MB (149 MB for rgb), far inside a 24 GiB budget
    (measured at 4K x 40 frames: +64 MiB luma, +143 MiB rgb; ``benchmarks/bench_estimator.py``).
    The numpy fallback instead holds one tile's temporaries (~400 MB with automatic tiles;
    ``tile_rows`` sets it), and :attr:`GTResult.ranges` builds float32 copies on request.

Length (~600 lines, 230 of them docstrings, this one stating the method): the three back-ends
are modules of their own; what stays is the method's public functions, their checks and the
choice of back-end, which read best together.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rainset._alloc import empty_large, populate_async
from rainset.errors import RainsetError
from rainset.image import rgb_to_luma  # noqa: F401 - gt.rgb_to_luma, the luma the vote uses

log = logging.getLogger(__name__)

#: Most frames one estimate takes (mode indices and counts are uint16).
MAX_FRAMES = 65535
#: MAD to Gaussian sigma.
MAD_SCALE = 1.4826
#: Smallest sigma (8-bit levels) of the robust method, so a noiseless clip keeps its median.
SIGMA_FLOOR = 1.0
#: Samples above the median by more than this many sigmas count as rain (method "robust").
ROBUST_K = 2.5
#: The estimators :func:`estimate_clean` offers.
METHODS: tuple[str, ...] = ("spa", "robust", "anchored")
#: Method "anchored": a sample this many levels above the anchor is rain (the mask threshold).
ANCHOR_RAIN_LEVEL = 13
#: Method "anchored": an element with more rain samples than this keeps its anchor (SPA value).
ANCHOR_MAX_RAIN = 15
#: Method "anchored": window ``[a - wl, a + wu]`` in units of the noise scale
#: ``sigma = D90 / 1.645`` as exact ratios ``wu = ceil(D90 * 2500 / 1645)`` (2.5 sigma) and
#: ``wl = ceil(D90 * 4000 / 1645)`` (4 sigma), each at least 2 levels.
ANCHOR_UP = 2500
ANCHOR_DOWN = 4000
ANCHOR_Z90 = 1645

# Samples per numpy/torch tile: 15-25 bytes of temporaries each, 250-420 MB measured.
_TILE_SAMPLES = 1 << 24

Engine = Literal["numba", "numpy", "torch-cpu", "torch-cuda"]


@dataclass(frozen=True)
class GTResult:
    """What :func:`estimate_clean` found.

    Attributes
    ----------
    image : (H, W, 3) uint8 ndarray
        The clean image.
    p_hat : int or None
        The voted percentile, 0..100 (None for ``method="robust"``).
    n_frames : int
        N, the number of frames used.
    votes : (101,) int64 ndarray or None
        ``votes[p]``: elements whose mode range contains ``p``.
    mode_index : (H, W, 2) or (H, W, 3, 2) uint16 ndarray or None
        ``i_first, i_last`` of each element's mode; the channel axis is there for ``"rgb"``.
    mode : (H, W) or (H, W, 3) uint8 ndarray or None
        Each element's mode (luma for ``"luma"``).
    select, method : the options used.
    """

    image: np.ndarray
    p_hat: int | None
    n_frames: int
    votes: np.ndarray | None
    mode_index: np.ndarray | None
    mode: np.ndarray | None
    select: str
    method: str

    @property
    def ranges(self) -> np.ndarray | None:
        """(H, W, 2) or (H, W, 3, 2) float32 percentile ranges ``lo, hi`` of each mode."""
        if self.mode_index is None:
            return None
        return (self.mode_index.astype(np.float32) * np.float32(100.0)) / np.float32(self.n_frames)


class FrameStack:
    """A frame stack preallocated for its cap, so growing N costs only the new frames.

    ``np.empty`` reserves address space; pages are committed as frames are written, so a
    4K x 300 capacity costs memory only as it fills.

    Parameters
    ----------
    capacity : most frames it will hold.
    height, width : frame size.
    """

    def __init__(self, capacity: int, height: int, width: int):
        if not 1 <= capacity <= MAX_FRAMES:
            raise ValueError(f"capacity must be in 1..{MAX_FRAMES}, got {capacity}")
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be positive, got {height}x{width}")
        self._buf = empty_large((capacity, height, width, 3), np.uint8)
        self._n = 0
        self._populating = None

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return self._buf.shape[0]

    @property
    def frames(self) -> np.ndarray:
        """(n, H, W, 3) uint8 view of the frames added so far (no copy)."""
        return self._buf[: self._n]

    def prefault(self, n: int) -> None:
        """Commit the memory of the frames up to ``n`` in a helper thread, while they decode.

        The frames are not changed; appending may go on meanwhile. Memory is committed only
        for the frames asked for (see :func:`rainset._alloc.populate_async`).
        """
        if self._populating is not None:
            self._populating.set()
        n = min(max(n, self._n), self.capacity)
        self._populating = populate_async(self._buf[self._n : n])
        if self._populating is not None:  # a dropped stack stops it (it holds the memory)
            weakref.finalize(self, self._populating.set)

    def append(self, frame: np.ndarray) -> None:
        """Add one (H, W, 3) uint8 frame."""
        if self._n == self.capacity:
            raise ValueError(f"the stack is full ({self.capacity} frames)")
        if frame.shape != self._buf.shape[1:] or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be {self._buf.shape[1:]} uint8, got {frame.shape} {frame.dtype}"
            )
        self._buf[self._n] = frame
        self._n += 1

    def extend(self, frames: Iterable[np.ndarray]) -> int:
        """Add frames until the iterable or the capacity ends; returns how many were added."""
        added = 0
        for f in frames if self._n < self.capacity else ():
            self.append(f)
            added += 1
            if self._n == self.capacity:
                break
        return added


def estimate_clean(
    frames: np.ndarray,
    *,
    select: Literal["luma", "rgb"] = "luma",
    method: Literal["spa", "robust", "anchored"] = "spa",
    device: Literal["auto", "cpu", "cuda"] = "cpu",
    tile_rows: int | None = None,
) -> GTResult:
    """Estimate the clean background of a static rain clip.

    Parameters
    ----------
    frames : (T, H, W, 3) uint8 ndarray
        RGB frames of a static scene, ``1 <= T <= 65535``. Views such as ``stack[:n]`` and
        ``stack[::2]`` are used without a copy; frames that are not contiguous are copied.
    select : "luma" (default: the released SPANet notebook) votes on full-range BT.601 luma;
        "rgb" votes over all three channels.
    method : "spa" (default: the paper's estimator), "robust" (rain-rejecting mean) or
        "anchored" (SPA-anchored trimmed mean, see the module notes).
    device : "cpu" (numba, else numpy), "cuda" (PyTorch on a GPU) or "auto" (cuda when
        PyTorch sees one, else cpu).
    tile_rows : rows per tile for the numpy and torch paths (bounds their working memory);
        None picks tiles of ~16 M samples. The numba path tiles itself.

    Returns
    -------
    GTResult

    Raises
    ------
    ValueError
        Bad shapes, dtypes or options.
    RainsetError
        ``device="cuda"`` without PyTorch or without a CUDA device.
    """
    if select not in ("luma", "rgb"):
        raise ValueError(f"select must be 'luma' or 'rgb', got {select!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return _estimate(
        frames, select=select, method=method, engine=_engine(device), tile_rows=tile_rows
    )


def warm_up(
    *, select: Literal["luma", "rgb"] = "luma", method: Literal["spa", "robust", "anchored"] = "spa"
) -> None:
    """Load the compiled kernels (from numba's on-disk cache, or compile them) on a tiny stack.

    Loading takes ~0.5 s even from the cache; a caller can run this in a thread while it
    decodes frames, so the first real estimate does not pay for it.
    """
    estimate_clean(np.zeros((3, 4, 4, 3), np.uint8), select=select, method=method)


def mode_ranges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each element's temporal mode (ties -> smallest) and the sorted indices it occupies.

    Parameters
    ----------
    values : (N, ...) uint8 ndarray
        N samples of every element.

    Returns
    -------
    first, last : (...) uint16 ndarrays
        ``i_first``, ``i_last``: the mode's first and last index in the sorted samples.
    mode : (...) uint8 ndarray
    """
    x = _as_2d(values, "values")
    fl, mode, _ = _mode_stats(x, luma=False, engine=_cpu_engine(), tile=None)
    shape = values.shape[1:]
    return fl[:, 0].reshape(shape), fl[:, 1].reshape(shape), mode.reshape(shape)


def vote_percentile(first: np.ndarray, last: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """The percentile that most mode ranges contain.

    Parameters
    ----------
    first, last : integer ndarrays of one shape
        Sorted indices of each element's mode, ``0 <= first <= last < n``.
    n : number of samples per element.

    Returns
    -------
    p_hat : int
        The ``p`` in 0..100 with most votes; the lowest on ties.
    votes : (101,) int64 ndarray
        ``votes[p] = #{elements : 100 first <= p n <= 100 last}``.
    """
    first = np.asarray(first).ravel()
    last = np.asarray(last).ravel()
    if first.shape != last.shape:
        raise ValueError(f"first and last must have one shape, got {first.shape} and {last.shape}")
    if not 1 <= n <= MAX_FRAMES:
        raise ValueError(f"n must be in 1..{MAX_FRAMES}, got {n}")
    diff = np.zeros(103, np.int64)
    step = 1 << 22  # bounds the int64 temporaries for 4K rgb votes
    for i in range(0, first.size, step):
        f = first[i : i + step].astype(np.int64)
        la = last[i : i + step].astype(np.int64)
        if f.size and (f.min() < 0 or la.max() >= n or (f > la).any()):
            raise ValueError(f"need 0 <= first <= last < n = {n}")
        lo = (100 * f + n - 1) // n
        hi = (100 * la) // n
        ok = lo <= hi
        diff += np.bincount(lo[ok], minlength=103)[:103]
        diff -= np.bincount(hi[ok] + 1, minlength=103)[:103]
    votes = np.cumsum(diff)[:101]
    return int(np.argmax(votes)), votes


def percentile_image(frames: np.ndarray, p: int) -> np.ndarray:
    """The ``p``-th percentile (linear interpolation) of each element over time, floored.

    Parameters
    ----------
    frames : (T, ...) uint8 ndarray, e.g. (T, H, W, 3)
    p : int, 0..100

    Returns
    -------
    image : (...) uint8 ndarray
        ``floor`` of the exact linear-interpolation percentile (see the module notes).
    """
    x = _as_2d(frames, "frames")
    if not (isinstance(p, (int, np.integer)) and 0 <= p <= 100):
        raise ValueError(f"p must be an integer in 0..100, got {p!r}")
    k, r = divmod(int(p) * (x.shape[0] - 1), 100)
    return _percentile(x, k, r, engine=_cpu_engine(), tile=None).reshape(frames.shape[1:])


def robust_mean(frames: np.ndarray, *, k: float = ROBUST_K) -> np.ndarray:
    """Rain-rejecting temporal mean of each element.

    Keeps the samples ``x <= median + k * sigma`` with ``sigma = max(1.4826 * MAD, 1)`` (MAD:
    median absolute deviation from the median; medians average the two middle values for even
    T) and returns their mean rounded half up.

    Parameters
    ----------
    frames : (T, ...) uint8 ndarray
    k : rejection threshold in sigmas, > 0.

    Returns
    -------
    image : (...) uint8 ndarray
    """
    x = _as_2d(frames, "frames")
    table = robust_threshold_table(k)
    return _robust(x, table, engine=_cpu_engine(), tile=None).reshape(frames.shape[1:])


def robust_threshold_table(k: float = ROBUST_K) -> np.ndarray:
    """Keep threshold ``floor(median + k sigma)`` for every median and MAD, as a table.

    Indexed by ``2 * median`` (0..510) and ``4 * MAD`` (0..1020), both integers for uint8
    samples, so every back-end applies the identical float64 formula.

    Returns
    -------
    table : (511, 1021) uint8 ndarray
    """
    if not (np.isfinite(k) and k > 0):
        raise ValueError(f"k must be a positive number, got {k!r}")
    med = np.arange(511) / 2.0
    sigma = np.maximum(MAD_SCALE * (np.arange(1021) / 4.0), SIGMA_FLOOR)
    thr = np.floor(med[:, None] + k * sigma[None, :])
    return np.clip(thr, 0, 255).astype(np.uint8)


def anchor_window(lowdev: np.ndarray) -> tuple[int, int]:
    """Method "anchored": the window ``wl, wu`` (levels below, above the anchor) from the counts
    ``lowdev[d]`` of samples ``d`` levels at or below their anchor (all elements together).

    ``D90`` is the smallest ``d`` with ``10 * #{dev <= d} >= 9 * #{dev >= 0}``: the 90th
    percentile of the lower deviations, 1.645 sigma for Gaussian noise around a centred anchor.
    """
    cum = np.cumsum(np.asarray(lowdev, np.int64))
    d90 = int(np.argmax(10 * cum >= 9 * cum[-1]))
    wu = max(-(-d90 * ANCHOR_UP // ANCHOR_Z90), 2)
    wl = max(-(-d90 * ANCHOR_DOWN // ANCHOR_Z90), 2)
    return wl, wu


def anchored_mean(frames: np.ndarray, anchor: np.ndarray, wl: int, wu: int) -> np.ndarray:
    """Method "anchored", step 3: each element's mean of the samples in ``[a - wl, a + wu]``.

    ``a`` is the element's anchor; an element with more than :data:`ANCHOR_MAX_RAIN` samples
    above ``a + ANCHOR_RAIN_LEVEL`` (or none in the window) keeps ``a``. The mean is rounded half
    up: ``(2 sum + n) // (2 n)``.

    Parameters
    ----------
    frames : (T, ...) uint8 ndarray
    anchor : (...) uint8 ndarray, one anchor per element
    wl, wu : window below and above the anchor, levels >= 0.

    Returns
    -------
    image : (...) uint8 ndarray
    """
    x = _as_2d(frames, "frames")
    a = np.ascontiguousarray(anchor, np.uint8).reshape(-1)
    if a.shape[0] != x.shape[1]:
        raise ValueError(f"anchor must have one value per element, got {anchor.shape} for {frames.shape}")
    return _anchored(x, a, int(wl), int(wu), engine=_cpu_engine(), tile=None).reshape(frames.shape[1:])


# --- dispatch -------------------------------------------------------------------------------


def _cpu_engine() -> Engine:
    return "numba" if importlib.util.find_spec("numba") is not None else "numpy"


def check_device(device: str) -> None:
    """Raise now what :func:`estimate_clean` would raise for ``device``, before any work.

    Raises
    ------
    ValueError
        ``device`` is not "auto", "cpu" or "cuda".
    RainsetError
        ``device="cuda"`` without PyTorch or without a CUDA device.
    """
    if device != "cpu":
        _engine(device)


def _engine(device: str) -> Engine:
    if device == "cpu":
        return _cpu_engine()
    if device not in ("auto", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    try:
        import torch
    except ImportError:
        if device == "auto":
            return _cpu_engine()
        raise RainsetError(
            "device 'cuda' needs PyTorch (pip install torch); use device 'cpu'."
        ) from None
    if torch.cuda.is_available():
        return "torch-cuda"
    if device == "auto":
        return _cpu_engine()
    raise RainsetError("device 'cuda': PyTorch sees no CUDA device here; use device 'cpu'.")


def _as_2d(frames: np.ndarray, name: str) -> np.ndarray:
    """(T, ...) uint8 -> (T, M) view (a copy only when a frame itself is not contiguous)."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(
            f"{name} must be a uint8 ndarray, got {type(frames).__name__} {getattr(frames, 'dtype', '')}"
        )
    if frames.ndim < 2 or frames.shape[0] < 1 or frames[0].size == 0:
        raise ValueError(
            f"{name} must be (T, ...) with T >= 1 and non-empty frames, got {frames.shape}"
        )
    if frames.shape[0] > MAX_FRAMES:
        raise ValueError(f"{name} has {frames.shape[0]} frames; at most {MAX_FRAMES} are supported")
    x = frames.reshape(frames.shape[0], -1)
    if x.strides[1] != 1:
        x = np.ascontiguousarray(x)
    return x


def _estimate(frames, *, select, method, engine: Engine, tile_rows=None) -> GTResult:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise ValueError(f"frames must be a (T, H, W, 3) ndarray, got {shape}")
    if tile_rows is not None and tile_rows < 1:
        raise ValueError(f"tile_rows must be >= 1, got {tile_rows}")
    x = _as_2d(frames, "frames")
    n, h, w = frames.shape[:3]
    tile = None if tile_rows is None else tile_rows * w * 3
    if method == "robust":
        image = _robust(x, robust_threshold_table(ROBUST_K), engine=engine, tile=tile)
        return GTResult(image.reshape(h, w, 3), None, n, None, None, None, select, method)
    if method == "anchored":
        spa = _estimate(frames, select=select, method="spa", engine=engine, tile_rows=tile_rows)
        anchor = spa.image.reshape(-1)
        wl, wu = anchor_window(_lowdev_hist(x, anchor, engine=engine, tile=tile))
        image = _anchored(x, anchor, wl, wu, engine=engine, tile=tile)
        log.debug("estimate: N=%d anchored p_hat=%d window -%d..+%d", n, spa.p_hat, wl, wu)
        return dataclasses.replace(spa, image=image.reshape(h, w, 3), method=method)
    luma = select == "luma"
    if tile is not None and luma:
        tile //= 3
    fl, mode, votes = _mode_stats(x, luma=luma, engine=engine, tile=tile)
    p_hat = int(np.argmax(votes))
    k, r = divmod(p_hat * (n - 1), 100)
    image = _percentile(
        x, k, r, engine=engine, tile=None if tile_rows is None else tile_rows * w * 3
    )
    ch = (h, w) if luma else (h, w, 3)
    log.debug("estimate: N=%d select=%s p_hat=%d (%d votes)", n, select, p_hat, votes[p_hat])
    return GTResult(
        image.reshape(h, w, 3),
        p_hat,
        n,
        votes,
        fl.reshape(*ch, 2),
        mode.reshape(ch),
        select,
        method,
    )


# The kernels each engine provides, on x : (T, M) uint8. `tile` is elements per tile
# (pixels for luma) or None for automatic.


def _kernel(name, x, *args, engine: Engine, tile, **kw):
    """Run kernel ``name`` of ``engine``'s back-end module on ``x``."""
    if engine == "numba":
        from rainset import _gt_numba

        return getattr(_gt_numba, name)(x, *args, **kw)
    tile = tile or _auto_tile(x)
    if engine.startswith("torch"):
        from rainset import _gt_torch

        return getattr(_gt_torch, name)(x, *args, **kw, device=engine[6:], tile=tile)
    from rainset import _gt_numpy

    return getattr(_gt_numpy, name)(x, *args, **kw, tile=tile)


def _mode_stats(x, *, luma, engine: Engine, tile):
    return _kernel("mode_stats", x, luma=luma, engine=engine, tile=tile)


def _percentile(x, k, r, *, engine: Engine, tile):
    return _kernel("percentile", x, k, r, engine=engine, tile=tile)


def _robust(x, table, *, engine: Engine, tile):
    return _kernel("robust", x, table, engine=engine, tile=tile)


def _lowdev_hist(x, anchor, *, engine: Engine, tile):
    return _kernel("lowdev_hist", x, anchor, engine=engine, tile=tile)


def _anchored(x, anchor, wl, wu, *, engine: Engine, tile):
    args = (wl, wu, ANCHOR_RAIN_LEVEL, ANCHOR_MAX_RAIN)
    return _kernel("anchored", x, anchor, *args, engine=engine, tile=tile)


def _auto_tile(x) -> int:
    return max(_TILE_SAMPLES // x.shape[0], 64)
