"""build-gt speed: whole-process wall time against decode-only, on a clip made here.

The clip: 1080p, 200 frames, 25 fps, H.264 (libx264, crf 18): a static textured background
(a scikit-image photo), rainset's synthetic rain, Gaussian sensor noise sigma 2 levels.

Printed: medians over --repeat runs of
  decode-only        python -c "iterate rainset.video.iter_frames over the clip"
  build-gt clean     rainset build-gt CLIP --frames 200 --write clean --review accept
  build-gt all       the same with rainy frames and masks written (frames/s)
and their ratios to decode-only (target on 2 cores: build-gt clean <= 1.5x). Then the
estimator on a small crop against a plain per-pixel Python loop (the released notebook took
~187 s per 100-frame video with such loops).

Usage: python benchmarks/bench_buildgt.py [--repeat 3] [--frames 200] [--height 1080]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent


def make_clip(path: Path, n: int, height: int) -> None:
    from rainset.demo import example_photo, rainy_frames
    from rainset.video import write_video

    width = height * 16 // 9 // 2 * 2
    bg = cv2.resize(example_photo("astronaut", max_side=4096), (width, height), interpolation=cv2.INTER_CUBIC)
    write_video(path, rainy_frames(bg, n, noise_sigma=2.0, rng=1, density="medium"), fps=25, crf=18)


def timed(cmd: list[str], repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def loop_reference(stack: np.ndarray) -> np.ndarray:
    """The notebook's way: a Python loop over pixels (luma vote, then percentiles)."""
    from rainset.image import rgb_to_luma

    t, h, w, _ = stack.shape
    luma = rgb_to_luma(stack)
    votes = np.zeros(101, np.int64)
    for y in range(h):
        for x in range(w):
            v = np.sort(luma[:, y, x])
            vals, counts = np.unique(v, return_counts=True)
            mode = vals[np.argmax(counts)]
            idx = np.nonzero(v == mode)[0]
            lo, hi = 100 * idx[0] / t, 100 * idx[-1] / t
            for p in range(101):
                votes[p] += lo <= p <= hi
    p_hat = int(np.argmax(votes))
    return np.floor(np.percentile(stack, p_hat, axis=0)).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--height", type=int, default=1080)
    args = ap.parse_args()
    cache = HERE / ".cache"
    cache.mkdir(exist_ok=True)
    clip = cache / f"static_{args.height}p_{args.frames}.mp4"
    if not clip.exists():
        print(f"making {clip} ...", flush=True)
        make_clip(clip, args.frames, args.height)
    py = sys.executable
    rainset = [py, "-m", "rainset_cli"]
    decode = [py, "-c", f"from rainset.video import iter_frames\nfor f in iter_frames({str(clip)!r}): pass"]
    work = Path(tempfile.mkdtemp(prefix="rainset-bench-"))
    n = str(args.frames)
    common = [*rainset, "-q", "build-gt", str(clip), "--frames", n, "--max-frames", n, "--review", "accept"]

    def build(write: str) -> list[str]:
        out = work / f"out-{write}-{time.monotonic_ns()}"
        return [*common, "--write", write, "-o", str(out)]

    # Each build-gt run needs a fresh output folder (a finished one would resume instantly).
    def timed_build(write: str) -> float:
        walls = []
        for _ in range(args.repeat):
            cmd = build(write)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - t)
        return statistics.median(walls)

    timed(decode, 1)  # warm the page cache and numba's on-disk cache
    timed_build("clean")
    t_dec = timed(decode, args.repeat)
    t_clean = timed_build("clean")
    t_all = timed_build("all")
    shutil.rmtree(work, ignore_errors=True)
    print(f"clip: {clip.name}  cores: {os.cpu_count()}  repeat: {args.repeat} (medians)")
    print(f"decode-only                 {t_dec:7.2f} s   1.00x")
    print(f"build-gt --write clean      {t_clean:7.2f} s   {t_clean / t_dec:.2f}x   (target <= 1.5x)")
    print(f"build-gt --write all        {t_all:7.2f} s   {t_all / t_dec:.2f}x   {args.frames / t_all:.1f} frames/s with pairs written")

    from rainset.groundtruth import estimate_clean
    from rainset.video import read_frames

    stack = read_frames(clip, stop=100)[:, :24, :32].copy()
    t = time.perf_counter()
    ref = loop_reference(stack)
    t_loop = time.perf_counter() - t
    estimate_clean(stack)
    t = time.perf_counter()
    fast = estimate_clean(stack).image
    t_fast = time.perf_counter() - t
    assert np.array_equal(ref, fast), "the estimator disagrees with the loop reference"
    print(f"24x32 crop, 100 frames: per-pixel loop {t_loop * 1e3:.1f} ms, estimator {t_fast * 1e3:.2f} ms "
          f"-> {t_loop / t_fast:.0f}x faster (same image)")


if __name__ == "__main__":
    main()
