"""Synth rendering against albumentations' RandomRain, with the pre-issue-14 path in the same run.

Per image at 1024 x 2048 (the paper's Cityscapes size), interleaved in random order each
round so load changes hit every row alike:

  RandomRain          albumentations' ``RandomRain(p=1.0)``, default arguments (the reference)
  rainset <density>   what ``bench_synth.py`` times: ``sample_params`` + ``render`` (rain layer,
                      composite, exact residual, mask, coverage) + ``labels``, kernels rebuilt
  ... old path        the same with the rendering before issue 14: the ``np.bincount`` splat
                      (``streaks.splat_reference``) and the separate OpenCV steps (composite,
                      subtract, channel maximum, threshold), which give the same bytes (tested
                      in tests/test_synth_render_fast.py)

Printed: median ms per image in wall time and in CPU time (all threads of the process:
OpenCV runs both libraries' image operations on several), and the ratios to RandomRain
(target: heavy <= 1.0). albumentations is not a rainset dependency; without it only the
rainset rows are printed.

Usage: python benchmarks/bench_randomrain.py [--repeats 21]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rainset import streaks
from rainset import synth as S
from rainset.image import MASK_THRESHOLD

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synth import H, W, background  # noqa: E402 - the same image as bench_synth


def _old_render(clean: np.ndarray, params: streaks.RainParams) -> S.Rendered:
    rain = streaks.splat_reference(clean.shape[:2], streaks._streak_groups(clean.shape, params))
    rainy = S.composite(clean, rain, blend=params.blend)
    residual = cv2.subtract(rainy, clean)
    r, g, b = cv2.split(residual)
    mask = cv2.max(cv2.max(r, g), b) >= MASK_THRESHOLD
    return S.Rendered(rainy, rain, residual, mask, float(np.count_nonzero(mask) / mask.size))


def _ours(clean: np.ndarray, seed: int, density: str | None, render=S.render) -> None:
    streaks.sparse_peak_kernel.cache_clear()  # count each image's kernel builds
    p = S.sample_params(clean.shape, rng=seed, density=density)
    out = render(clean, p)
    S.labels(p, coverage=out.coverage)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    clean = background()
    jobs: dict[str, object] = {}
    try:
        import albumentations as A

        rr = A.RandomRain(p=1.0)
        jobs["RandomRain"] = lambda i: rr(image=clean)
    except ImportError:
        print("albumentations is not installed: RandomRain rows skipped.")
    for dens in ("heavy", "light", None):
        name = dens or "all densities"
        jobs[f"rainset {name}"] = lambda i, d=dens: _ours(clean, i, d)
        jobs[f"rainset {name}, old path"] = lambda i, d=dens: _ours(clean, i, d, _old_render)
    wall: dict[str, list[float]] = {k: [] for k in jobs}
    cpu: dict[str, list[float]] = {k: [] for k in jobs}
    order = list(jobs)
    shuffle = random.Random(0).shuffle
    for i in range(-2, args.repeats):  # two warm-up rounds (numba cache, allocator)
        shuffle(order)
        for name in order:
            w, c = time.perf_counter(), time.process_time()
            jobs[name](abs(i))
            if i >= 0:
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
    ref = "RandomRain" if "RandomRain" in jobs else None
    mw = {k: statistics.median(v) for k, v in wall.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"{H}x{W}, median of {args.repeats}, OpenCV threads {cv2.getNumThreads()}")
    print(f"  {'':28s} {'wall ms':>8s} {'ratio':>6s}  {'CPU ms':>7s} {'ratio':>6s}")
    for k in jobs:
        rw = f"{mw[k] / mw[ref]:5.2f}x" if ref else ""
        rc = f"{mc[k] / mc[ref]:5.2f}x" if ref else ""
        print(f"  {k:28s} {1e3 * mw[k]:8.1f} {rw:>6s}  {1e3 * mc[k]:7.1f} {rc:>6s}")


if __name__ == "__main__":
    main()
