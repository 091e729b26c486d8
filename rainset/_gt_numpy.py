"""NumPy back-end of :mod:`rainset.groundtruth`: the fallback without numba, the reference
the compiled paths are tested against.

The same kernels as :mod:`rainset._gt_numba` and :mod:`rainset._gt_torch` (mode statistics
with votes, exact percentile, robust mean, and the anchored method's histogram and mean), on
column tiles of the flattened stack ``x : (T, M) uint8``: sort each tile's samples along time
and read the answer off the sorted rows, in integer arithmetic, so every back-end gives the
same bytes. ``tile`` is elements (pixels, for luma mode statistics) per tile; one tile's
temporaries are the memory this path needs beyond the stack.
"""

from __future__ import annotations

import numpy as np

from rainset.image import rgb_to_luma


def percentile(x, k, r, *, tile):
    """The ``p``-th percentile per element, ``k, r = divmod(p (T - 1), 100)``: (M,) uint8."""
    return _tiles(x, tile, lambda s: _np_pct(s, k, r))


def robust(x, table, *, tile):
    """The robust mean per element (``table``: :func:`rainset.groundtruth.robust_threshold_table`)."""
    return _tiles(x, tile, lambda s: _np_robust(s, table))


def lowdev_hist(x, anchor, *, tile):
    """(256,) int64 histogram of ``anchor - x`` over the samples at or below their anchor."""
    hist = np.zeros(256, np.int64)
    for c0 in range(0, x.shape[1], tile):
        d = anchor[None, c0 : c0 + tile].astype(np.int16) - x[:, c0 : c0 + tile]
        hist += np.bincount(d[d >= 0].ravel(), minlength=256)[:256]
    return hist


def anchored(x, anchor, wl, wu, rain, max_rain, *, tile):
    """The anchored mean per element (:func:`rainset.groundtruth.anchored_mean`): (M,) uint8."""
    out = np.empty(x.shape[1], np.uint8)
    for c0 in range(0, x.shape[1], tile):
        out[c0 : c0 + tile] = _np_anchored(
            x[:, c0 : c0 + tile], anchor[c0 : c0 + tile], wl, wu, rain, max_rain
        )
    return out


def _np_anchored(v, a, wl, wu, rain, max_rain):
    v = v.astype(np.int32)
    a = a.astype(np.int32)
    keep = (v >= a - wl) & (v <= a + wu)
    n = keep.sum(axis=0)
    tot = np.where(keep, v, 0).sum(axis=0).astype(np.int64)
    r = (v > a + rain).sum(axis=0)
    mean = (2 * tot + n) // np.maximum(2 * n, 1)
    return np.where((r > max_rain) | (n == 0), a, mean).astype(np.uint8)


def _tiles(x, tile, fn) -> np.ndarray:
    out = np.empty(x.shape[1], np.uint8)
    for c0 in range(0, x.shape[1], tile):
        out[c0 : c0 + tile] = fn(np.sort(x[:, c0 : c0 + tile].T, axis=1))
    return out


def _np_pct(s, k, r):
    a = s[:, k].astype(np.int32)
    if r == 0:
        return a.astype(np.uint8)
    return ((100 * a + r * (s[:, k + 1] - a)) // 100).astype(np.uint8)


def _np_robust(s, table):
    n = s.shape[1]
    k, k2 = (n - 1) // 2, n // 2
    si = s.astype(np.int32)
    med2 = si[:, k] + si[:, k2]
    d = np.abs(2 * si - med2[:, None])
    d.sort(axis=1)
    keep_at = table[med2, d[:, k] + d[:, k2]].astype(np.int32)
    keep = si <= keep_at[:, None]
    cnt = keep.sum(axis=1)
    total = np.where(keep, si, 0).sum(axis=1)
    return ((2 * total + cnt) // (2 * cnt)).astype(np.uint8)


def _np_mode_sorted(s):
    """Mode of each row of sorted ``s (E, T)``: (first, last, mode)."""
    e_n, n = s.shape
    idx = np.arange(n, dtype=np.int32)
    start = np.zeros((e_n, n), np.int32)
    start[:, 1:] = np.where(s[:, 1:] != s[:, :-1], idx[1:], 0)
    np.maximum.accumulate(start, axis=1, out=start)
    runlen = idx - start  # length - 1 of the run so far
    # The first position reaching the longest run ends the earliest (smallest) longest run.
    last = runlen.argmax(axis=1)
    rows = np.arange(e_n)
    return last - runlen[rows, last], last, s[rows, last]


def mode_stats(x, *, luma, tile):
    """(E, 2) uint16 first/last, (E,) uint8 mode and (101,) int64 votes; see groundtruth."""
    from rainset.groundtruth import vote_percentile

    n, m = x.shape
    e_n = m // 3 if luma else m
    fl = np.empty((e_n, 2), np.uint16)
    mode = np.empty(e_n, np.uint8)
    votes = np.zeros(101, np.int64)
    for c0 in range(0, e_n, tile):
        c1 = min(c0 + tile, e_n)
        v = rgb_to_luma(x[:, 3 * c0 : 3 * c1].reshape(n, -1, 3)) if luma else x[:, c0:c1]
        first, last, mode[c0:c1] = _np_mode_sorted(np.sort(v.T, axis=1))
        fl[c0:c1, 0] = first
        fl[c0:c1, 1] = last
        votes += vote_percentile(first, last, n)[1]
    return fl, mode, votes
