"""The IRNN's inference kernel on the CPU (numba), behind ``irnn(..., method="numba")``.

One pass per direction over a channels-last feature map ``x : (B, H, W, C)``, writing the four
directions straight into their channel blocks of one channels-last output ``(B, H, W, 4C)``
(no flips, transposes or concatenation; that buffer *is* the ``(B, 4C, H, W)`` channels-last
tensor the next convolution reads). Per scan position the work is one fused
multiply-add-clamp over a contiguous run of ``C`` (horizontal scans) or ``W x C`` (vertical
scans) values, so there is no per-position dispatch overhead: the sweep spends two torch
calls (~10 us each) per position.

The arithmetic is the sweep's: ``h_0 = max(x_0, 0)``, ``h_i = max((x_i + b) + a h_{i-1}, 0)``.

Kernels are ``@njit(nogil=True)`` functions run on a few Python threads, as in
:mod:`rainset._gt_numba` (no numba threading layer): the vertical scans split the columns,
the horizontal ones the rows; the two sets write disjoint channel blocks and run together.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rainset._cache import njit_cached as _njit


@_njit
def _vertical(x, a_dn, b_dn, a_up, b_up, out, o_dn, o_up, j0, j1):
    """down (top to bottom) into block ``o_dn`` and up (bottom to top) into ``o_up``."""
    n_b, n_h, _, n_c = x.shape
    zero = x.dtype.type(0)
    for bb in range(n_b):
        for j in range(j0, j1):
            for c in range(n_c):
                out[bb, 0, j, o_dn + c] = max(x[bb, 0, j, c], zero)
                out[bb, n_h - 1, j, o_up + c] = max(x[bb, n_h - 1, j, c], zero)
        for i in range(1, n_h):
            k = n_h - 1 - i
            # Row views and per-pixel slices: LLVM then vectorises the channel loops (2x
            # faster than indexing the 4-d arrays, which it cannot prove free of aliasing).
            xi, xk = x[bb, i], x[bb, k]
            prev, cur = out[bb, i - 1], out[bb, i]
            nxt, curk = out[bb, k + 1], out[bb, k]
            for j in range(j0, j1):
                pd, cd = prev[j, o_dn : o_dn + n_c], cur[j, o_dn : o_dn + n_c]
                pu, cu = nxt[j, o_up : o_up + n_c], curk[j, o_up : o_up + n_c]
                xa, xb = xi[j], xk[j]
                for c in range(n_c):
                    cd[c] = max((xa[c] + b_dn[c]) + a_dn[c] * pd[c], zero)
                for c in range(n_c):
                    cu[c] = max((xb[c] + b_up[c]) + a_up[c] * pu[c], zero)


@_njit
def _horizontal(x, a_rt, b_rt, a_lt, b_lt, out, o_rt, o_lt, i0, i1):
    """right (left to right) into block ``o_rt`` and left (right to left) into ``o_lt``."""
    n_b, _, n_w, n_c = x.shape
    zero = x.dtype.type(0)
    hr = np.empty(n_c, x.dtype)  # the running state of each scan, kept out of ``out``
    hl = np.empty(n_c, x.dtype)
    for bb in range(n_b):
        for i in range(i0, i1):
            xr, orow = x[bb, i], out[bb, i]
            for c in range(n_c):
                hr[c] = max(xr[0, c], zero)
                hl[c] = max(xr[n_w - 1, c], zero)
                orow[0, o_rt + c] = hr[c]
                orow[n_w - 1, o_lt + c] = hl[c]
            for j in range(1, n_w):  # both directions in one loop: two independent chains
                k = n_w - 1 - j
                q, xj = orow[j, o_rt : o_rt + n_c], xr[j]
                for c in range(n_c):
                    hr[c] = max((xj[c] + b_rt[c]) + a_rt[c] * hr[c], zero)
                    q[c] = hr[c]
                q, xk = orow[k, o_lt : o_lt + n_c], xr[k]
                for c in range(n_c):
                    hl[c] = max((xk[c] + b_lt[c]) + a_lt[c] * hl[c], zero)
                    q[c] = hl[c]


_POOL: dict[int, ThreadPoolExecutor] = {}


def _pool(n: int) -> ThreadPoolExecutor:
    if n not in _POOL:
        _POOL[n] = ThreadPoolExecutor(n, thread_name_prefix="rainset-irnn")
    return _POOL[n]


def irnn_nhwc(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, threads: int = 1) -> np.ndarray:
    """Four-direction IRNN of a C-contiguous ``(B, H, W, C)`` array.

    ``weight`` and ``bias`` are ``(4, C)`` in :data:`rainset.train.irnn.DIRECTIONS` order (up,
    right, down, left), of ``x``'s dtype. Returns the ``(B, H, W, 4C)`` output, blocks in that
    order.
    """
    n_b, n_h, n_w, n_c = x.shape
    out = np.empty((n_b, n_h, n_w, 4 * n_c), x.dtype)
    w = [np.ascontiguousarray(weight[d]) for d in range(4)]
    b = [np.ascontiguousarray(bias[d]) for d in range(4)]
    up, right, down, left = range(4)

    def vertical(j0, j1):
        _vertical(x, w[down], b[down], w[up], b[up], out, down * n_c, up * n_c, j0, j1)

    def horizontal(i0, i1):
        _horizontal(x, w[right], b[right], w[left], b[left], out, right * n_c, left * n_c, i0, i1)

    parts = max(1, int(threads))
    if parts == 1 or n_h * n_w < 4096:
        vertical(0, n_w)
        horizontal(0, n_h)
        return out
    cols = np.linspace(0, n_w, parts + 1).round().astype(int)
    rows = np.linspace(0, n_h, parts + 1).round().astype(int)
    pool = _pool(parts)
    futures = [pool.submit(vertical, cols[k], cols[k + 1]) for k in range(parts)]
    futures += [pool.submit(horizontal, rows[k], rows[k + 1]) for k in range(parts)]
    for f in futures:
        f.result()
    return out
