"""Benchmark of ``rainset synth``: in-memory speed against albumentations, and end to end.

1. In memory, 1024 x 2048 (the paper's Cityscapes size): ms per image for
   ``sample_params`` + ``render`` (rainy image, rain map, exact residual, mask, measured
   coverage) + ``labels``, against albumentations' ``RandomRain`` (default arguments) on the
   same image, interleaved in the same run; the ratio is ours / theirs (target <= 1.0).
   albumentations is not a rainset dependency: when it is missing the comparison is skipped.
   The low-pass tiers (four Gaussian filters of the clean image, once per photo) are timed
   apart.
2. End to end: samples per second written by :func:`rainset.synth.synthesize` (PNG images,
   masks, 16-bit rain maps, residuals, tiers, manifest) with 1 and 2 workers.

Run: ``python benchmarks/bench_synth.py [--repeats 15] [--photos 4]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rainset import synth as S
from rainset.image import write_image
from rainset.streaks import sparse_peak_kernel

H, W = 1024, 2048


def background() -> np.ndarray:
    photo = S.load_photo(S.bundled_photos()[0].path)
    return cv2.resize(photo, (W, H), interpolation=cv2.INTER_CUBIC)


def ours(clean: np.ndarray, seed: int, density: str | None) -> None:
    p = S.sample_params(clean.shape, rng=seed, density=density)
    out = S.render(clean, p)
    S.labels(p, coverage=out.coverage)


def in_memory(repeats: int) -> None:
    clean = background()
    try:
        import albumentations as A
    except ImportError:
        A = None
        print("albumentations is not installed: comparison skipped.")
        print(f"  to run it: {sys.executable} -m pip install albumentations")
    rows = {
        "rainset (all densities)": None,
        "rainset light": "light",
        "rainset medium": "medium",
        "rainset heavy": "heavy",
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    theirs = {}
    if A is not None:  # the default is the reference; heavier rain types for comparison
        theirs = {"albumentations RandomRain": A.RandomRain(p=1.0)}
        for kind in ("heavy", "torrential"):
            theirs[f"  RandomRain rain_type={kind}"] = A.RandomRain(p=1.0, rain_type=kind)
    times.update({name: [] for name in theirs})
    for dens in rows.values():  # warm up (allocator, caches)
        ours(clean, 0, dens)
    for t in theirs.values():
        t(image=clean)
    for i in range(repeats):  # interleave so load changes hit every row alike
        for name, dens in rows.items():
            sparse_peak_kernel.cache_clear()  # count each image's kernel builds
            t0 = time.perf_counter()
            ours(clean, i, dens)
            times[name].append(time.perf_counter() - t0)
        for name, t in theirs.items():
            t0 = time.perf_counter()
            t(image=clean)
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times["albumentations RandomRain"]) if theirs else None
    print(f"\nIn memory, {H}x{W}, median of {repeats} (ms per image; ratio to RandomRain):")
    for name, ts in times.items():
        ms = 1e3 * statistics.median(ts)
        ratio = f"   {statistics.median(ts) / ref:.2f}x" if ref else ""
        print(f"  {name:32s} {ms:8.1f}{ratio}")
    t = []
    for _ in range(max(3, repeats // 3)):
        t0 = time.perf_counter()
        S.choose_tier(clean, S.lowpass_tiers(clean))
        t.append(time.perf_counter() - t0)
    print(f"  {'low-pass tiers + rule':32s} {1e3 * statistics.median(t):8.1f}   (once per photo)")


def end_to_end(n_photos: int) -> None:
    clean = background()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        for i in range(n_photos):
            write_image(folder / f"p{i}.png", np.roll(clean, 97 * i, axis=1))
        photos = S.find_photos(folder)
        print(f"\nEnd to end, {n_photos} photos of {H}x{W}, 2 variants each, PNG:")
        for workers in (1, 2):
            t0 = time.perf_counter()
            n = sum(
                1
                for _ in S.synthesize(
                    photos,
                    Path(tmp) / f"out{workers}",
                    options=S.SynthOptions(per_image=2),
                    workers=workers,
                )
            )
            dt = time.perf_counter() - t0
            print(f"  workers={workers}: {n / dt:6.2f} samples/s ({dt:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--photos", type=int, default=4)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, OpenCV threads {cv2.getNumThreads()}")
    in_memory(args.repeats)
    end_to_end(args.photos)


if __name__ == "__main__":
    main()
