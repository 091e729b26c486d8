"""PyTorch back-end of :mod:`rainset.groundtruth`; imported only when a torch device is asked for.

The same three kernels as the numpy path (mode statistics with votes, exact percentile, robust
mean), on column tiles of the flattened stack ``x : (T, M) uint8`` copied to the device: sort
each element's samples along time, find runs of equal values, and do every comparison in
integer arithmetic, so the result equals the CPU paths bit for bit. ``device`` is a torch
device string ("cuda", "cuda:1", or "cpu", which the tests use).
"""

from __future__ import annotations

import numpy as np
import torch


def _sorted_tile(
    x: np.ndarray, c0: int, c1: int, device: str, *, luma: bool = False
) -> torch.Tensor:
    """(E, T) int32 tensor of the tile's samples sorted along time."""
    v = torch.from_numpy(
        np.ascontiguousarray(x[:, (3 * c0 if luma else c0) : (3 * c1 if luma else c1)])
    )
    v = v.to(device, non_blocking=False).to(torch.int32)
    if luma:
        v = v.reshape(v.shape[0], -1, 3)
        v = (299 * v[..., 0] + 587 * v[..., 1] + 114 * v[..., 2]) // 1000
    return torch.sort(v.t(), dim=1).values


def _runs(s: torch.Tensor):
    """first, last (int64) and mode of each sorted row (ties -> smallest value)."""
    n = s.shape[1]
    idx = torch.arange(n, device=s.device, dtype=torch.int64).expand_as(s)
    start = torch.where(
        torch.cat([torch.ones_like(s[:, :1], dtype=torch.bool), s[:, 1:] != s[:, :-1]], dim=1),
        idx,
        0,
    )
    start = torch.cummax(start, dim=1).values
    runlen = idx - start
    # torch.argmax returns the first maximal index: the end of the earliest longest run.
    last = torch.argmax(runlen, dim=1)
    rows = torch.arange(s.shape[0], device=s.device)
    return last - runlen[rows, last], last, s[rows, last]


def mode_stats(x: np.ndarray, *, luma: bool, device: str, tile: int):
    """(E, 2) uint16 first/last, (E,) uint8 mode and (101,) int64 votes; see groundtruth."""
    n, m = x.shape
    e_n = m // 3 if luma else m
    fl = np.empty((e_n, 2), np.uint16)
    mode = np.empty(e_n, np.uint8)
    diff = torch.zeros(103, dtype=torch.int64, device=device)
    for c0 in range(0, e_n, tile):
        c1 = min(c0 + tile, e_n)
        first, last, md = _runs(_sorted_tile(x, c0, c1, device, luma=luma))
        lo = (100 * first + n - 1) // n
        hi = (100 * last) // n
        ok = lo <= hi
        diff += torch.bincount(lo[ok], minlength=103)[:103]
        diff -= torch.bincount(hi[ok] + 1, minlength=103)[:103]
        fl[c0:c1] = torch.stack([first, last], dim=1).to(torch.int32).cpu().numpy()
        mode[c0:c1] = md.cpu().numpy()
    votes = torch.cumsum(diff, 0)[:101].cpu().numpy()
    return fl, mode, votes


def percentile(x: np.ndarray, k: int, r: int, *, device: str, tile: int) -> np.ndarray:
    """(M,) uint8: floor of the exact linear-interpolation percentile (k, r = divmod(p (T-1), 100))."""
    out = np.empty(x.shape[1], np.uint8)
    for c0 in range(0, x.shape[1], tile):
        c1 = min(c0 + tile, x.shape[1])
        s = _sorted_tile(x, c0, c1, device)
        a = s[:, k]
        v = a if r == 0 else (100 * a + r * (s[:, k + 1] - a)) // 100
        out[c0:c1] = v.to(torch.uint8).cpu().numpy()
    return out


def robust(x: np.ndarray, table: np.ndarray, *, device: str, tile: int) -> np.ndarray:
    """(M,) uint8 rain-rejecting mean; ``table[2 median, 4 MAD]`` is the keep threshold."""
    n = x.shape[0]
    k, k2 = (n - 1) // 2, n // 2
    tab = torch.from_numpy(table.astype(np.int32)).to(device)
    out = np.empty(x.shape[1], np.uint8)
    for c0 in range(0, x.shape[1], tile):
        c1 = min(c0 + tile, x.shape[1])
        s = _sorted_tile(x, c0, c1, device)
        med2 = s[:, k] + s[:, k2]
        d = torch.sort(torch.abs(2 * s - med2[:, None]), dim=1).values
        keep = s <= tab[med2.long(), (d[:, k] + d[:, k2]).long()][:, None]
        cnt = keep.sum(dim=1)
        total = torch.where(keep, s, 0).sum(dim=1)
        out[c0:c1] = ((2 * total + cnt) // (2 * cnt)).to(torch.uint8).cpu().numpy()
    return out


def _tile(x: np.ndarray, c0: int, c1: int, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x[:, c0:c1])).to(device).to(torch.int32)


def lowdev_hist(x: np.ndarray, anchor: np.ndarray, *, device: str, tile: int) -> np.ndarray:
    """(256,) int64 counts of samples d = 0..255 levels at or below their element's anchor."""
    hist = torch.zeros(256, dtype=torch.int64, device=device)
    for c0 in range(0, x.shape[1], tile):
        c1 = min(c0 + tile, x.shape[1])
        a = torch.from_numpy(np.ascontiguousarray(anchor[c0:c1])).to(device).to(torch.int32)
        d = a[None, :] - _tile(x, c0, c1, device)
        hist += torch.bincount(d[d >= 0].long(), minlength=256)[:256]
    return hist.cpu().numpy()


def anchored(x: np.ndarray, anchor: np.ndarray, wl: int, wu: int, rain: int, max_rain: int, *,
             device: str, tile: int) -> np.ndarray:
    """(M,) uint8 anchored trimmed mean; see groundtruth."""
    out = np.empty(x.shape[1], np.uint8)
    for c0 in range(0, x.shape[1], tile):
        c1 = min(c0 + tile, x.shape[1])
        a = torch.from_numpy(np.ascontiguousarray(anchor[c0:c1])).to(device).to(torch.int64)
        v = _tile(x, c0, c1, device).to(torch.int64)
        keep = (v >= a - wl) & (v <= a + wu)
        n = keep.sum(dim=0)
        tot = torch.where(keep, v, 0).sum(dim=0)
        r = (v > a + rain).sum(dim=0)
        mean = torch.div(2 * tot + n, torch.clamp(2 * n, min=1), rounding_mode="floor")
        out[c0:c1] = torch.where((r > max_rain) | (n == 0), a, mean).to(torch.uint8).cpu().numpy()
    return out
