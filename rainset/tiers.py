"""Low-pass ground-truth tiers of a clean photo and the choice of one (by rule or by review).

The intensity-aware paper's ground-truth tiers (Xu et al., Sec. III-D): the clean image through
Gaussian filters of 3x3, 5x5, 7x7 and 9x9, one chosen per image as the version that shows the
main content but not the details. Split out of :mod:`rainset.synth`, which re-exports every name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from rainset import sheets
from rainset.dataset import layout
from rainset.image import write_image
from rainset.options import TIER_DETAIL_KEPT, TIER_SIZES, SynthOptions, tier_sigma
from rainset.photos import Photo, load_photo
from rainset.review import Candidate, Decision, ReviewLog
from rainset.streaks import _r

__all__ = ["choose_tier", "detail_kept", "lowpass_tiers", "review_tiers", "tier_name", "tier_sheet"]


def tier_name(k: int) -> str:
    """A tier's name in records and file names: ``"<k>x<k>"``."""
    return f"{k}x{k}"


def lowpass_tiers(clean: np.ndarray, sizes: tuple[int, ...] = TIER_SIZES) -> dict[int, np.ndarray]:
    """The clean image through k x k Gaussian filters, sigma = :func:`tier_sigma` (k).

    OpenCV's 8-bit Gaussian filter (bit-exact fixed point, reflect-101 borders): within one
    level of the exact float filter, and the same bytes on every machine.

    Parameters
    ----------
    clean : (H, W, 3) uint8 ndarray
    sizes : odd kernel sizes.

    Returns
    -------
    tiers : dict k -> (H, W, 3) uint8 ndarray
    """
    if clean.dtype != np.uint8 or clean.ndim != 3:
        raise ValueError(f"clean must be (H, W, 3) uint8, got {clean.shape} {clean.dtype}")
    return {
        k: cv2.GaussianBlur(clean, (k, k), tier_sigma(k), borderType=cv2.BORDER_REFLECT_101)
        for k in sizes
    }


def detail_kept(clean: np.ndarray, tier: np.ndarray) -> float:
    """Fraction of the clean image's fine detail a tier keeps, in [0, 1].

    Fine detail is the mean absolute Laplacian of grey level (the pixel-scale structure a
    low-pass tier should drop); the ratio of the tier's to the clean image's.
    """
    return _kept(_fine_detail(clean), tier)


def _fine_detail(x: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey level of ``x`` (see :func:`detail_kept`)."""
    return float(cv2.mean(np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_16S)))[0])


def _kept(base: float, tier: np.ndarray) -> float:
    return _fine_detail(tier) / base if base > 0 else 0.0


def choose_tier(clean: np.ndarray, tiers: dict[int, np.ndarray]) -> tuple[int, list[float]]:
    """The documented rule for "main content visible, details not": the smallest k whose tier
    keeps at most :data:`TIER_DETAIL_KEPT` of the fine detail (else the largest k).

    Returns
    -------
    k : the chosen size.
    kept : detail kept by each tier, in the order of ``sorted(tiers)``.
    """
    sizes = sorted(tiers)
    base = _fine_detail(clean)  # once, not once per tier
    kept = [_r(_kept(base, tiers[k])) for k in sizes]
    for k, d in zip(sizes, kept):
        if d <= TIER_DETAIL_KEPT:
            return k, kept
    return sizes[-1], kept


def review_tiers(
    photos: list[Photo],
    root: str | os.PathLike,
    reviewer: Callable[[Candidate], Decision],
    *,
    options: SynthOptions | None = None,
) -> Iterator[tuple[str, int | None]]:
    """Let a reviewer pick each photo's tier with build-gt's review mechanism.

    The question is the paper's: which version shows the main content but not the details?
    Tiers are shown from the smallest k up: ``accept`` chooses the tier shown, ``more`` shows
    the next (blurrier) one, ``reject`` drops the photo (``more`` at 9x9 counts as reject).
    Each candidate is a :class:`rainset.review.Candidate` with ``n_frames`` = k, ``score`` =
    :func:`detail_kept` and a sheet (clean | tier, with 2x crops) under ``root/review/``;
    decisions go to ``root/review.json`` as they are made, so a rerun asks nothing twice.

    Yields
    ------
    (key, k) : the photo's key and the accepted size, or None when the photo was dropped;
        ``dict()`` of them is :func:`synthesize`'s ``tier_decisions``.
    """
    options = options or SynthOptions()
    root = Path(root)
    log_params = {
        "tool": "rainset synth --tier-choice review",
        "max_size": options.max_size,
        "tier_sigmas": {tier_name(k): tier_sigma(k) for k in TIER_SIZES},
    }
    log = ReviewLog(layout.review_path(root), params=log_params)
    for photo in photos:
        clean = load_photo(photo.path, max_size=options.max_size)
        tiers = lowpass_tiers(clean)
        sizes = sorted(tiers)
        base = _fine_detail(clean)  # once, not once per tier shown
        for i, k in enumerate(sizes):
            sheet = layout.synth_review_sheet(root, photo.stem, tier_name(k))
            cand = Candidate(
                scene=photo.key,
                window=0,
                n_frames=k,
                clean=tiers[k],
                preview=sheet,
                score=_r(_kept(base, tiers[k])),
                can_grow=i + 1 < len(sizes),
                grow_limit=f"{tier_name(sizes[-1])} is the largest tier",
                info={"tier": tier_name(k), "photo": clean, "tiers": tiers},  # photo, tiers: the review page
            )
            decision = log.get(cand.key)
            if decision is None:
                write_image(sheet, tier_sheet(clean, tiers[k], k))
                decision = reviewer(cand)
                log.record(cand, decision)
            if decision.action == "accept":
                yield photo.key, k
                break
            if decision.action == "reject" or not cand.can_grow:
                yield photo.key, None
                break


def tier_sheet(clean: np.ndarray, tier: np.ndarray, k: int, *, width: int = 1200) -> np.ndarray:
    """Review sheet for one tier: clean | tier on top, 2x centre crops of both below."""
    top = [sheets.fit_width(x, width // 2) for x in (clean, tier)]
    y0, x0, ch, cw = sheets.centre_box(clean.shape)
    zoom = sheets.zoom_for(top[0].shape[1], cw)
    texts = ("clean", f"tier {k}x{k} (sigma {tier_sigma(k):g})")
    top = [sheets.label(x, t, scale=0.6, thickness=2, at=(4, 20), antialias=False)
           for x, t in zip(top, texts)]
    crops = [sheets.magnify(x[y0 : y0 + ch, x0 : x0 + cw], zoom) for x in (clean, tier)]
    return sheets.grid([top, crops])
