"""Robust PCA by the inexact augmented Lagrange multiplier method: a benchmark reference only.

Low-rank + sparse decomposition ``D = L + S`` of the frame stack as a (pixels x frames) matrix
(Lin, Chen and Ma, "The augmented Lagrange multiplier method for exact recovery of corrupted
low-rank matrices", 2010, Algorithm 5): the static background is low rank, rain is sparse.
LHP-Rain (ICCV 2023) built its real paired dataset with a low-rank tensor recovery of this
kind; ``benchmarks/quality_gt.py`` compares rainset's estimators with it. It is float, dense
SVD per iteration (O(pixels x frames^2)), so the benchmark runs it on downscaled frames. Not
used by build-gt.
"""

from __future__ import annotations

import numpy as np


def rpca_ialm(
    d: np.ndarray, *, lam: float | None = None, tol: float = 1e-7, max_iter: int = 500, rho: float = 1.5
) -> tuple[np.ndarray, np.ndarray, int]:
    """Inexact-ALM RPCA of a (m, n) matrix: ``min ||L||_* + lam ||S||_1  s.t.  D = L + S``.

    Parameters
    ----------
    d : (m, n) float ndarray
    lam : sparsity weight; default ``1 / sqrt(max(m, n))``.
    tol : stop when ``||D - L - S||_F <= tol ||D||_F``.
    max_iter : iteration cap.
    rho : growth factor of the penalty ``mu``.

    Returns
    -------
    low_rank, sparse : (m, n) float64 ndarrays
    iterations : int
    """
    d = np.asarray(d, np.float64)
    m, n = d.shape
    lam = 1.0 / np.sqrt(max(m, n)) if lam is None else float(lam)
    norm_two = np.linalg.norm(d, 2)
    norm_inf = np.abs(d).max() / lam
    y = d / max(norm_two, norm_inf)
    mu = 1.25 / norm_two
    mu_max = mu * 1e7
    d_norm = np.linalg.norm(d)
    s = np.zeros_like(d)
    low = np.zeros_like(d)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (returned)
        t = d - s + y / mu
        u, sig, vt = np.linalg.svd(t, full_matrices=False)
        keep = sig > 1.0 / mu
        low = (u[:, keep] * (sig[keep] - 1.0 / mu)) @ vt[keep]
        t = d - low + y / mu
        s = np.sign(t) * np.maximum(np.abs(t) - lam / mu, 0.0)
        z = d - low - s
        y += mu * z
        mu = min(mu * rho, mu_max)
        if np.linalg.norm(z) <= tol * d_norm:
            break
    return low, s, it


def rpca_background(frames: np.ndarray, **kw) -> np.ndarray:
    """Static background of a (T, H, W, 3) stack: the low-rank part's mean frame, (H, W, 3) float64."""
    t = frames.shape[0]
    low, _, _ = rpca_ialm(frames.reshape(t, -1).T.astype(np.float64), **kw)
    return np.clip(low.mean(axis=1), 0, 255).reshape(frames.shape[1:])
