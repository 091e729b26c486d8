"""Compiled (numba) streak splatting behind :func:`rainset.streaks.splat`; imported on first use.

The result is bit-identical to the ``np.bincount`` formulation kept as
:func:`rainset.streaks.splat_reference`: every output pixel receives the same float64 products
``amplitude * kernel value`` added in the same order (group by group, streaks in memory order of
their centres, kernel entries in row-major order), and the float64 sum is rounded to float32
once at the end.

Why it is faster (1024 x 2048 heavy rain: ~1M kernel entries, 20-50 ms with ``bincount``):
no (entries,) index and weight arrays are built, and no float64 canvas of the padded image is
allocated, zeroed and cropped. The sum is accumulated in bands of :data:`BAND` rows in a small
float64 buffer that stays in cache and is rounded into the float32 output band by band;
streaks are visited for each band their kernel reaches, and only the kernel rows inside the
band are walked (each kernel row is a contiguous run of entries).
"""

from __future__ import annotations

import numpy as np

from rainset._cache import njit_cached as _njit

_MAGIC = np.float32(2.0**23)  # x + 2**23 - 2**23 rounds 0 <= x < 2**23 to an integer, ties to even

#: Output rows per accumulation band (float64 band of BAND x W: 512 KiB at W = 2048).
BAND = 32


def _keep_freed_memory() -> None:
    """Make glibc keep freed rendering outputs for reuse instead of handing them back.

    A render allocates ~22 MB of outputs at 1024 x 2048 (rain map, rainy image, residual,
    mask). glibc's malloc raises its mmap threshold to the size of the largest mmapped block
    freed so far (up to 32 MiB) and returns free heap memory to the system once more than
    twice that is free. With an 8 MB largest block, freeing one sample's outputs crossed that
    line every time, and the next sample paid ~2200 page faults for fresh memory (8-10 ms of
    a 20 ms render on the development VM). Freeing one 30 MiB block once raises both
    thresholds (free memory kept up to 60 MiB): no fault after the first sample. Other
    allocators ignore this; a user-set ``MALLOC_MMAP_THRESHOLD_`` disables the dynamic
    threshold and wins.
    """
    np.empty(30 << 20, np.uint8)  # mmapped (above the threshold) and freed at once


_keep_freed_memory()


@_njit
def y_of(cy, dy, r0):
    return cy + dy - r0


@_njit
def _splat_bands(out, rows, cols, amps, starts, kdy, kdx, kval, krow0, kreach, clean, rainy, residual, mask, thr):
    """Accumulate every group's streaks into ``out`` (H, W) float32.

    Group ``g`` has streaks ``starts[g]:starts[g+1]`` (sorted by centre, row-major) with
    centres ``rows``/``cols`` and peaks ``amps``, and kernel entries
    ``krow0[g, 0]:krow0[g, -1]`` of ``kdy``/``kdx``/``kval`` grouped by kernel row:
    ``krow0[g, r]`` is where kernel row ``dy = r - big`` starts (``big`` the largest reach);
    ``kreach[g]`` is group ``g``'s own reach in rows.

    With ``thr >= 1`` each finished band is also put over ``clean`` (H, W, 3) uint8 as
    :func:`rainset.synth.composite`'s ``"add"`` blend does with OpenCV: ``level =
    saturate(rint(|float32(R) * 255f|))`` (float32, ties to even: OpenCV's
    ``convertScaleAbs``), ``rainy = min(clean + level, 255)``, ``residual = rainy - clean``,
    ``mask = max_c residual >= thr``; the mask's count is returned. With ``thr == 0`` those
    arrays are not touched (1-pixel stand-ins) and 0 is returned.
    """
    h, w = out.shape
    n_groups = starts.shape[0] - 1
    big = (krow0.shape[1] - 2) // 2  # kernel row dy is at column dy + big of krow0
    acc = np.zeros((BAND, w), np.float64)
    lv = np.empty(w, np.int16)
    lv3 = np.empty(3 * w, np.int16)
    count = 0
    for r0 in range(0, h, BAND):
        r1 = min(r0 + BAND, h)
        acc[:, :] = 0.0
        for g in range(n_groups):
            reach = kreach[g]
            s0, s1 = starts[g], starts[g + 1]
            # streaks sorted by row: the first whose centre row >= r0 - reach
            lo, hi = s0, s1
            while lo < hi:
                mid = (lo + hi) // 2
                if rows[mid] < r0 - reach:
                    lo = mid + 1
                else:
                    hi = mid
            for s in range(lo, s1):
                cy = rows[s]
                if cy >= r1 + reach:
                    break
                cx = cols[s]
                a = amps[s]
                # kernel rows dy with r0 <= cy + dy < r1
                d0 = max(r0 - cy, -reach)
                d1 = min(r1 - cy, reach + 1)
                for dy in range(d0, d1):
                    row = acc[y_of(cy, dy, r0)]
                    e0, e1 = krow0[g, dy + big], krow0[g, dy + big + 1]
                    if e0 == e1:
                        continue
                    x0 = cx + kdx[e0]  # a kernel row is a run of consecutive columns
                    if x0 >= 0 and x0 + (e1 - e0) <= w:
                        for j in range(e1 - e0):  # contiguous: vectorises
                            row[x0 + j] += a * kval[e0 + j]
                    else:
                        for j in range(e1 - e0):
                            x = x0 + j
                            if 0 <= x < w:
                                row[x] += a * kval[e0 + j]
        if thr == 0:
            for y in range(r1 - r0):
                for x in range(w):
                    out[r0 + y, x] = np.float32(acc[y, x])
            continue
        for y in range(r1 - r0):
            yy = r0 + y
            row = acc[y]
            dst = out[yy]
            for x in range(w):  # float32 rain, then its level: vectorises
                r = np.float32(row[x])
                dst[x] = r
                v = min(abs(r * np.float32(255.0)), np.float32(255.0))
                lv[x] = np.int16((v + _MAGIC) - _MAGIC)  # rint, ties to even, for 0 <= v < 2**23
            for x in range(w):
                lv3[3 * x] = lv[x]
                lv3[3 * x + 1] = lv[x]
                lv3[3 * x + 2] = lv[x]
            cr = clean[yy].reshape(-1)
            ro = rainy[yy].reshape(-1)
            re = residual[yy].reshape(-1)
            for i in range(3 * w):
                b = np.int16(cr[i])
                o = min(b + lv3[i], np.int16(255))
                ro[i] = o
                re[i] = o - b
            mr = mask[yy]
            for x in range(w):
                hit = (re[3 * x] >= thr) | (re[3 * x + 1] >= thr) | (re[3 * x + 2] >= thr)
                mr[x] = hit
                count += hit
    return count


def _pack(shape, streaks):
    """The kernel's arguments for ``streaks`` (see :func:`_splat_bands`), or None."""
    reach = max([int(k.half[0]) for _, _, k in streaks] + [0])
    rows_l, cols_l, amps_l, starts = [], [], [], [0]
    kdy_l, kdx_l, kval_l = [], [], []
    krow0 = np.zeros((max(len(streaks), 1), 2 * reach + 2), np.int64)
    at = 0
    for g, (centres, amps, k) in enumerate(streaks):
        c = np.asarray(centres).astype(np.int64, copy=False).reshape(-1, 2)
        # the reference's memory order: by row, then column, ties in input order
        order = np.lexsort((c[:, 1], c[:, 0]))
        rows_l.append(c[order, 0])
        cols_l.append(c[order, 1])
        amps_l.append(np.asarray(amps, np.float64)[order])
        starts.append(starts[-1] + len(c))
        dy = np.asarray(k.dy, np.int64)
        dx = np.asarray(k.dx, np.int64)
        if dy.size and (
            np.abs(dy).max() > k.half[0]
            or np.any(np.diff(dy) < 0)
            or np.any((np.diff(dy) == 0) & (np.diff(dx) != 1))
        ):  # rows ascending, each a run of consecutive columns (sparse_peak_kernel's layout)
            return None
        kdy_l.append(dy)
        kdx_l.append(dx)
        kval_l.append(np.asarray(k.values, np.float64))
        # krow0[g, r]: first entry with dy >= r - reach (so row dy spans krow0[dy+reach : +1])
        krow0[g] = at + np.searchsorted(dy, np.arange(-reach, reach + 2), side="left")
        at += len(dy)
    if not streaks:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.float64), np.zeros(1, np.int64), z, z, np.zeros(0), krow0, z
    cat = np.concatenate
    halves = np.asarray([int(k.half[0]) for _, _, k in streaks], np.int64)
    return (cat(rows_l), cat(cols_l), cat(amps_l), np.asarray(starts, np.int64), cat(kdy_l),
            cat(kdx_l), cat(kval_l), krow0, halves)  # fmt: skip


_NO_IMAGE = np.zeros((1, 1, 3), np.uint8)
_NO_MASK = np.zeros((1, 1), np.bool_)


def splat(shape, streaks):
    """:func:`rainset.streaks.splat`'s computation (same arguments, same float32 result).

    Returns None for a kernel whose entries are not row-major runs of consecutive columns
    within its ``half`` (never the case for :func:`rainset.streaks.sparse_peak_kernel`'s,
    whose rows are intervals of one unimodal profile; the caller then uses the reference).
    """
    args = _pack(shape, streaks)
    if args is None:
        return None
    out = np.empty(shape, np.float32)
    _splat_bands(out, *args, _NO_IMAGE, _NO_IMAGE, _NO_IMAGE, _NO_MASK, 0)
    return out


def splat_add(clean, streaks, threshold):
    """:func:`splat` put over ``clean`` with the ``"add"`` blend, in the same pass.

    ``clean`` (H, W, 3) uint8, C-contiguous; ``threshold`` in 1..255. Returns ``(rain, rainy,
    residual, mask, mask count)``, equal to :func:`splat`, :func:`rainset.synth.composite`,
    ``cv2.subtract(rainy, clean)`` and ``max_c residual >= threshold``; or None as
    :func:`splat`.
    """
    h, w = clean.shape[:2]
    args = _pack((h, w), streaks)
    if args is None:
        return None
    rain = np.empty((h, w), np.float32)
    rainy = np.empty((h, w, 3), np.uint8)
    residual = np.empty((h, w, 3), np.uint8)
    mask = np.empty((h, w), np.bool_)
    count = _splat_bands(rain, *args, clean, rainy, residual, mask, int(threshold))
    return rain, rainy, residual, mask, int(count)


def warm_up() -> None:
    """Load the compiled kernel (numba's import and cache: ~0.45 s of CPU). Called before
    worker processes fork, so that they inherit it instead of each loading it again."""
    from rainset.streaks import sparse_peak_kernel

    k = sparse_peak_kernel(0.0, 2.0, 0.5)
    clean = np.zeros((4, 4, 3), np.uint8)
    splat_add(clean, [(np.array([[2, 2]]), np.array([0.5]), k)], 13)
