"""Compiled (numba) kernels behind :mod:`rainset.groundtruth`; imported only when first used.

Every kernel works on a frame stack flattened to ``x : (R, M) uint8`` (C-contiguous) with the
frames to use given as row numbers ``rows : (T,) int64`` (``frames[::2]`` becomes every other
row of its parent, without a copy and without a second compiled variant), and returns
per-element results for the ``M`` elements (channel samples) or ``M // 3`` pixels (luma). The
definitions are those of :mod:`rainset.groundtruth`; results are bit-identical to its numpy
path and to the torch path.

Kernels are plain ``@njit(nogil=True)`` functions over an interleaved share of the column tiles,
run on a few Python threads: no numba threading layer (which aborts when two threads of the
caller estimate at once) and half the compile time of ``parallel=True``.

Why it is fast (1080p x 200 frames; numbers in ``benchmarks/bench_estimator.py``):

- The stack is read in column tiles of ``T x tile`` bytes copied into a contiguous scratch
  buffer that fits in L2. Walking the stack directly down T costs a TLB miss per frame row;
  the copy reads kilobytes per row instead and made the per-pixel histogram ~7x faster.
- The mode needs counts: a 256-bin ``uint16`` histogram per element, laid out bins-major
  (``hist[v, j]``) so that finding the first most frequent value, the count below it and the
  vote range is a branch-free vectorised scan over elements.
- An order statistic needs no histogram: it is built bit by bit (8 passes that count samples
  below a per-element threshold, ``uint8`` counters over at most 255 frames at a time),
  which vectorises across elements (64 per AVX-512 instruction) and beat a second histogram
  pass by 2-3x in our runs.
- Luma is computed in float32 as ``int(n * 0.001f + 0.0005f)`` with ``n = 299R + 587G + 114B``
  (exact in float32): equal to ``n // 1000`` for every one of the 2**24 colours (tested),
  and it vectorises where numba's 64-bit integer promotion does not.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from rainset._cache import njit_cached as _njit

_F299 = np.float32(299.0)
_F587 = np.float32(587.0)
_F114 = np.float32(114.0)
_FMILLI = np.float32(0.001)
_FHALF = np.float32(0.0005)


def tiling(n_frames: int) -> tuple[int, int]:
    """Column tile (scratch ``T x tile`` <= ~512 KiB, L2-resident) and histogram sub-tile."""
    tile = (512 * 1024 // max(n_frames, 1)) // 64 * 64
    return int(min(max(tile, 64), 8192)), 256


def n_threads() -> int:
    """numba's thread count: the usable CPUs, or NUMBA_NUM_THREADS when set."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(numba.config.NUMBA_NUM_THREADS, usable or 1))


def _run(fn, parts: int) -> None:
    if parts == 1:
        fn(0)
        return
    with ThreadPoolExecutor(parts) as pool:
        list(pool.map(fn, range(parts)))


def as_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (T, M) view with unit column stride -> C-contiguous (R, M) array and row numbers."""
    t_n, m = x.shape
    step = x.strides[0]
    if x.flags.c_contiguous or t_n == 1:
        return np.ascontiguousarray(x), np.arange(t_n, dtype=np.int64)
    if step > 0 and step % m == 0:
        k = step // m
        span = np.lib.stride_tricks.as_strided(x, ((t_n - 1) * k + 1, m), (m, 1))
        return span, np.arange(t_n, dtype=np.int64) * k
    return np.ascontiguousarray(x), np.arange(t_n, dtype=np.int64)


@_njit
def _luma_row(xrow, out, c):
    for j in range(c):
        n = _F299 * np.float32(xrow[3 * j]) + _F587 * np.float32(xrow[3 * j + 1])
        n = n + _F114 * np.float32(xrow[3 * j + 2])
        out[j] = np.uint8(np.int32(n * _FMILLI + _FHALF))


@_njit
def luma_of(x):
    """(T, 3P) uint8 -> (T, P) uint8 full-range BT.601 luma, floored (for the exhaustive test)."""
    t_n, m = x.shape
    out = np.empty((t_n, m // 3), np.uint8)
    for t in range(t_n):
        _luma_row(x[t], out[t], m // 3)
    return out


# Slice assignment (``a[:c] = 0``, ``s[t, :c] = x[...]``) compiles to a generic loop ~5x
# slower than these explicit ones, which LLVM turns into vector stores and copies.


@_njit
def _fill(a, c, v):
    for j in range(c):
        a[j] = v


@_njit
def _load_tile(x, rows, s, c0, ct, luma):
    for t in range(rows.shape[0]):
        if luma:
            _luma_row(x[rows[t], 3 * c0 : 3 * (c0 + ct)], s[t], ct)
        else:
            src = x[rows[t], c0 : c0 + ct]
            dst = s[t]
            for j in range(ct):
                dst[j] = src[j]


@_njit
def _mode_part(x, rows, luma, tile, sub, part, parts, fl, mode, diff):
    """Tiles part, part + parts, ...: mode indices, mode and the vote difference array."""
    t_n = rows.shape[0]
    e_n = mode.shape[0]
    s = np.empty((t_n, tile), np.uint8)
    hist = np.empty((256, sub), np.uint16)
    best = np.empty(sub, np.uint16)
    cum = np.empty(sub, np.uint16)
    below = np.empty(sub, np.uint16)
    md = np.empty(sub, np.uint8)
    for ti in range(part, (e_n + tile - 1) // tile, parts):
        c0 = ti * tile
        ct = min(tile, e_n - c0)
        _load_tile(x, rows, s, c0, ct, luma)
        for s0 in range(0, ct, sub):
            c = min(sub, ct - s0)
            for v in range(256):
                _fill(hist[v], c, 0)
            for t in range(t_n):
                row = s[t, s0 : s0 + c]
                for j in range(c):
                    hist[row[j], j] += 1
            _fill(best, c, 0)
            _fill(cum, c, 0)
            _fill(below, c, 0)
            _fill(md, c, 0)
            for v in range(256):
                hv = hist[v]
                for j in range(c):
                    h = hv[j]
                    better = h > best[j]  # strict: a tie keeps the smaller value
                    best[j] = h if better else best[j]
                    below[j] = cum[j] if better else below[j]
                    md[j] = np.uint8(v) if better else md[j]
                    cum[j] += h
            for j in range(c):
                e = c0 + s0 + j
                first = np.int64(below[j])
                last = first + np.int64(best[j]) - 1
                fl[e, 0] = first
                fl[e, 1] = last
                mode[e] = md[j]
                lo = (100 * first + t_n - 1) // t_n
                hi = (100 * last) // t_n
                if lo <= hi:
                    diff[lo] += 1
                    diff[hi + 1] -= 1


def mode_stats(x: np.ndarray, luma: bool):
    """Per element: first/last sorted index of the mode (ties -> smallest), the mode, votes.

    Parameters
    ----------
    x : (T, M) uint8 ndarray with unit column stride; elements are its M columns, or the
        M // 3 pixels when ``luma``.

    Returns
    -------
    fl : (E, 2) uint16, mode : (E,) uint8, votes : (101,) int64 (``votes[p]`` counts elements
    with ``100 * first <= p * T <= 100 * last``).
    """
    xc, rows = as_rows(x)
    e_n = x.shape[1] // 3 if luma else x.shape[1]
    tile, sub = tiling(rows.shape[0])
    parts = n_threads()
    fl = np.empty((e_n, 2), np.uint16)
    mode = np.empty(e_n, np.uint8)
    diff = np.zeros((parts, 102), np.int64)
    _run(lambda i: _mode_part(xc, rows, luma, tile, sub, i, parts, fl, mode, diff[i]), parts)
    return fl, mode, np.cumsum(diff.sum(axis=0))[:101]


@_njit
def _count_below(s, s0, c, thr, cnt, tot):
    """tot[j] = #{t : s[t, s0 + j] < thr[j]}; uint8 counters over <= 255 frames at a time."""
    t_n = s.shape[0]
    _fill(tot, c, 0)
    for t0 in range(0, t_n, 255):
        _fill(cnt, c, 0)
        for t in range(t0, min(t_n, t0 + 255)):
            row = s[t, s0 : s0 + c]
            for j in range(c):
                cnt[j] += row[j] < thr[j]
        for j in range(c):
            tot[j] += cnt[j]


@_njit
def _count_between(s, s0, c, lo, hi, cnt, tot):
    """tot[j] = #{t : lo[j] <= s[t, s0 + j] <= hi[j]}."""
    t_n = s.shape[0]
    _fill(tot, c, 0)
    for t0 in range(0, t_n, 255):
        _fill(cnt, c, 0)
        for t in range(t0, min(t_n, t0 + 255)):
            row = s[t, s0 : s0 + c]
            for j in range(c):
                v = row[j]
                cnt[j] += (v >= lo[j]) & (v <= hi[j])
        for j in range(c):
            tot[j] += cnt[j]


@_njit
def _kth_pair(s, s0, c, k, need_next, a, b, thr, cnt, tot):
    """a[j] = s_k and b[j] = s_{k+1} (sorted order) of each element; b only if need_next."""
    t_n = s.shape[0]
    _fill(a, c, 0)
    for bit in range(7, -1, -1):
        step = np.uint8(1 << bit)
        for j in range(c):
            thr[j] = a[j] + step  # bit `bit` of a is still 0, so no overflow
        _count_below(s, s0, c, thr, cnt, tot)
        for j in range(c):
            a[j] = thr[j] if tot[j] <= k else a[j]
    if not need_next:
        return
    # s_{k+1} is s_k when more than k + 1 samples are <= s_k, else the smallest sample above it.
    _fill(tot, c, 0)
    _fill(b, c, 255)
    for t0 in range(0, t_n, 255):
        _fill(cnt, c, 0)
        for t in range(t0, min(t_n, t0 + 255)):
            row = s[t, s0 : s0 + c]
            for j in range(c):
                v = row[j]
                cnt[j] += v <= a[j]
                b[j] = v if (v > a[j]) & (v < b[j]) else b[j]
        for j in range(c):
            tot[j] += cnt[j]
    for j in range(c):
        b[j] = a[j] if tot[j] >= k + 2 else b[j]


@_njit
def _percentile_part(x, rows, k, r, tile, sub, part, parts, out):
    t_n = rows.shape[0]
    m = out.shape[0]
    s = np.empty((t_n, tile), np.uint8)
    a = np.empty(sub, np.uint8)
    b = np.empty(sub, np.uint8)
    thr = np.empty(sub, np.uint8)
    cnt = np.empty(sub, np.uint8)
    tot = np.empty(sub, np.int32)
    for ti in range(part, (m + tile - 1) // tile, parts):
        c0 = ti * tile
        ct = min(tile, m - c0)
        _load_tile(x, rows, s, c0, ct, False)
        for s0 in range(0, ct, sub):
            c = min(sub, ct - s0)
            _kth_pair(s, s0, c, k, r > 0, a, b, thr, cnt, tot)
            for j in range(c):
                if r > 0:
                    lo = np.int64(a[j])
                    out[c0 + s0 + j] = (100 * lo + r * (np.int64(b[j]) - lo)) // 100
                else:
                    out[c0 + s0 + j] = a[j]


def percentile(x: np.ndarray, k: int, r: int) -> np.ndarray:
    """(M,) uint8: ``(100 s_k + r (s_{k+1} - s_k)) // 100`` per column of ``x (T, M)``."""
    xc, rows = as_rows(x)
    tile, _ = tiling(rows.shape[0])
    parts = n_threads()
    out = np.empty(x.shape[1], np.uint8)
    _run(lambda i: _percentile_part(xc, rows, k, r, tile, tile, i, parts, out), parts)
    return out


@_njit
def _dev_kth(s, s0, c, k, med2, lo, hi, cnt, tot, ans):
    """ans[j] = k-th smallest of |2 x - med2[j]| (0..510), by 9 passes of range counts."""
    _fill(ans, c, 0)
    for bit in range(8, -1, -1):
        step = 1 << bit
        for j in range(c):
            # |2x - m| < th  <=>  floor((m - th) / 2) + 1 <= x <= ceil((m + th) / 2) - 1
            th = ans[j] + step
            m2 = np.int64(med2[j])
            a = max((m2 - th) // 2 + 1, 0)
            z = min((m2 + th + 1) // 2 - 1, 255)
            if a > z:
                lo[j] = 1
                hi[j] = 0
            else:
                lo[j] = a
                hi[j] = z
        _count_between(s, s0, c, lo, hi, cnt, tot)
        for j in range(c):
            ans[j] = ans[j] + step if tot[j] <= k else ans[j]


@_njit
def _robust_part(x, rows, table, tile, sub, part, parts, out):
    t_n = rows.shape[0]
    m = out.shape[0]
    k = (t_n - 1) // 2
    even = t_n % 2 == 0
    s = np.empty((t_n, tile), np.uint8)
    a = np.empty(sub, np.uint8)
    b = np.empty(sub, np.uint8)
    thr = np.empty(sub, np.uint8)
    lo = np.empty(sub, np.uint8)
    hi = np.empty(sub, np.uint8)
    cnt = np.empty(sub, np.uint8)
    tot = np.empty(sub, np.int32)
    med2 = np.empty(sub, np.int32)
    d1 = np.empty(sub, np.int32)
    d2 = np.empty(sub, np.int32)
    keep = np.empty(sub, np.uint8)
    total = np.empty(sub, np.int32)
    for ti in range(part, (m + tile - 1) // tile, parts):
        c0 = ti * tile
        ct = min(tile, m - c0)
        _load_tile(x, rows, s, c0, ct, False)
        for s0 in range(0, ct, sub):
            c = min(sub, ct - s0)
            _kth_pair(s, s0, c, k, even, a, b, thr, cnt, tot)
            for j in range(c):
                med2[j] = np.int32(a[j]) + (np.int32(b[j]) if even else np.int32(a[j]))
            _dev_kth(s, s0, c, k, med2, lo, hi, cnt, tot, d1)
            if even:
                _dev_kth(s, s0, c, k + 1, med2, lo, hi, cnt, tot, d2)
            else:
                for j in range(c):
                    d2[j] = d1[j]
            for j in range(c):
                keep[j] = table[med2[j], d1[j] + d2[j]]
            _fill(total, c, 0)
            _fill(tot, c, 0)
            for t in range(t_n):
                row = s[t, s0 : s0 + c]
                for j in range(c):
                    v = row[j]
                    ok = v <= keep[j]
                    total[j] += np.int32(v) if ok else 0
                    tot[j] += ok
            for j in range(c):
                out[c0 + s0 + j] = (2 * np.int64(total[j]) + tot[j]) // (2 * np.int64(tot[j]))


def robust(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(M,) uint8 rain-rejecting mean per column; ``table[2 median, 4 MAD]`` keeps samples."""
    xc, rows = as_rows(x)
    tile, _ = tiling(rows.shape[0])
    parts = n_threads()
    out = np.empty(x.shape[1], np.uint8)
    _run(lambda i: _robust_part(xc, rows, table, tile, tile, i, parts, out), parts)
    return out


@_njit
def _lowdev_part(x, rows, anchor, tile, part, parts, hist):
    """hist[d] += #{(t, j) : anchor[j] - x[t, j] = d >= 0} over this part's tiles."""
    t_n = rows.shape[0]
    m = anchor.shape[0]
    s = np.empty((t_n, tile), np.uint8)
    for ti in range(part, (m + tile - 1) // tile, parts):
        c0 = ti * tile
        ct = min(tile, m - c0)
        _load_tile(x, rows, s, c0, ct, False)
        for t in range(t_n):
            row = s[t]
            for j in range(ct):
                d = np.int32(anchor[c0 + j]) - np.int32(row[j])
                if d >= 0:
                    hist[d] += 1


def lowdev_hist(x: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """(256,) int64: how many samples lie d = 0..255 levels at or below their element's anchor."""
    xc, rows = as_rows(x)
    tile, _ = tiling(rows.shape[0])
    parts = n_threads()
    hist = np.zeros((parts, 256), np.int64)
    _run(lambda i: _lowdev_part(xc, rows, anchor, tile, i, parts, hist[i]), parts)
    return hist.sum(axis=0)


@_njit
def _anchored_part(x, rows, anchor, wl, wu, rain, max_rain, tile, part, parts, out):
    t_n = rows.shape[0]
    m = out.shape[0]
    s = np.empty((t_n, tile), np.uint8)
    lo = np.empty(tile, np.int32)
    hi = np.empty(tile, np.int32)
    rl = np.empty(tile, np.int32)
    n = np.empty(tile, np.int32)
    tot = np.empty(tile, np.int32)
    r = np.empty(tile, np.int32)
    for ti in range(part, (m + tile - 1) // tile, parts):
        c0 = ti * tile
        ct = min(tile, m - c0)
        _load_tile(x, rows, s, c0, ct, False)
        for j in range(ct):
            a = np.int32(anchor[c0 + j])
            lo[j] = a - wl
            hi[j] = a + wu
            rl[j] = a + rain
        _fill(n, ct, 0)
        _fill(tot, ct, 0)
        _fill(r, ct, 0)
        for t in range(t_n):
            row = s[t]
            for j in range(ct):
                v = np.int32(row[j])
                ok = (v >= lo[j]) & (v <= hi[j])
                n[j] += ok
                tot[j] += v if ok else 0
                r[j] += v > rl[j]
        for j in range(ct):
            if r[j] > max_rain or n[j] == 0:
                out[c0 + j] = anchor[c0 + j]
            else:
                out[c0 + j] = (2 * np.int64(tot[j]) + n[j]) // (2 * np.int64(n[j]))


def anchored(x: np.ndarray, anchor: np.ndarray, wl: int, wu: int, rain: int, max_rain: int) -> np.ndarray:
    """(M,) uint8 anchored trimmed mean per column of ``x (T, M)``; see groundtruth."""
    xc, rows = as_rows(x)
    tile, _ = tiling(rows.shape[0])
    parts = n_threads()
    out = np.empty(x.shape[1], np.uint8)
    _run(lambda i: _anchored_part(xc, rows, anchor, wl, wu, rain, max_rain, tile, i, parts, out), parts)
    return out
