"""Scaling out: inputs/s of build-gt on 8 clips per executor, and the time to merge 100 shards.

The clips: 8 static rainy H.264 clips made here (a scikit-image photo, rainset's synthetic
rain, noise sigma 2 levels), --height x 16:9, --frames frames each. Every run is a fresh
process with a fresh output folder: ``rainset build-gt CLIP... --write all --review accept``
with

  local, 1 worker     --workers 1 (the default)
  local, 2 workers    --workers 2
  Ray, 2 CPUs         --executor ray --workers 2 (a local Ray started by the command: its
                      start-up, a few seconds, is part of the wall time)

and inputs/s = 8 / wall time (median of --repeat). Then the merge: --shards shards of one
clean-image dataset each (--merge-records records of 64x64 PNGs per shard), merged by
``rainset.merge.merge`` into a new folder (hard links), median of --repeat.

Usage: python benchmarks/bench_scale.py [--repeat 3] [--frames 40] [--height 360] [--shards 100]
       [--merge-only]
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
N_CLIPS = 8


def make_clips(folder: Path, n: int, height: int) -> list[Path]:
    from rainset.demo import example_photo, rainy_frames
    from rainset.video import write_video

    width = height * 16 // 9 // 2 * 2
    photo = example_photo("astronaut", max_side=4096)
    paths = []
    for i in range(N_CLIPS):
        p = folder / f"clip{i}.mp4"
        if not p.exists():
            bg = cv2.resize(np.roll(photo, 40 * i, axis=1), (width, height), interpolation=cv2.INTER_AREA)
            write_video(p, rainy_frames(bg, n, noise_sigma=2.0, rng=i, density="medium"), fps=25, crf=18)
        paths.append(p)
    return paths


def timed_run(cmd: list[str], repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        out = Path(tempfile.mkdtemp(prefix="rainset-bench-scale-")) / "out"
        t = time.perf_counter()
        subprocess.run([*cmd, "-o", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        shutil.rmtree(out.parent, ignore_errors=True)
    return statistics.median(walls)


def make_shards(folder: Path, n_shards: int, n_records: int) -> list[Path]:
    from rainset.dataset import DatasetWriter

    rng = np.random.default_rng(0)
    shards = []
    for s in range(n_shards):
        root = folder / f"shard{s:03d}"
        with DatasetWriter(root, kind="clean", params={"bench": 1}, tool="bench") as w:
            w.add_source(f"video{s:03d}.mp4", note="bench", sha256=f"{s:064x}", scene=f"scene{s:03d}")
            for r in range(n_records):
                rel = w.write_image(f"clean/scene{s:03d}/w{r:02d}", rng.integers(0, 255, (64, 64, 3), np.uint8))
                w.add({"id": f"scene{s:03d}/w{r:02d}", "scene": f"scene{s:03d}", "clean": rel})
        shards.append(root)
    return shards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--merge-records", type=int, default=10)
    ap.add_argument("--merge-only", action="store_true", help="Only measure the merge.")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not args.merge_only:
        bench_executors(args)
    bench_merge(args)


def bench_executors(args) -> None:
    cache = HERE / ".cache" / f"scale_{args.height}p_{args.frames}"
    cache.mkdir(parents=True, exist_ok=True)
    clips = [str(p) for p in make_clips(cache, args.frames, args.height)]
    n = str(args.frames)
    base = [sys.executable, "-m", "rainset_cli", "-q", "build-gt", *clips, "--frames", n, "--max-frames", n,
            "--review", "accept"]  # fmt: skip
    runs = {
        "local, 1 worker": [*base, "--workers", "1"],
        "local, 2 workers": [*base, "--workers", "2"],
        "Ray, 2 CPUs": [*base, "--executor", "ray", "--workers", "2"],
    }
    timed_run(runs["local, 1 worker"], 1)  # warm the page cache and numba's on-disk cache
    print(f"{N_CLIPS} clips of {args.frames} frames at {args.height}p; cores: {os.cpu_count()}; "
          f"medians of {args.repeat}")  # fmt: skip
    base_wall = None
    for name, cmd in runs.items():
        wall = timed_run(cmd, args.repeat)
        base_wall = base_wall or wall
        print(f"  {name:18s} {wall:7.2f} s   {N_CLIPS / wall:5.2f} inputs/s   {base_wall / wall:.2f}x")


def bench_merge(args) -> None:
    import logging

    from rainset.merge import merge

    logging.basicConfig(level=logging.ERROR)  # the shards' own "test split is empty" warnings
    work = Path(tempfile.mkdtemp(prefix="rainset-bench-merge-"))
    try:
        shards = make_shards(work / "shards", args.shards, args.merge_records)
        walls = []
        for k in range(args.repeat):
            t = time.perf_counter()
            res = merge(shards, work / f"merged{k}")
            walls.append(time.perf_counter() - t)
        t = time.perf_counter()
        merge(shards, work / "merged0")  # again: nothing new (idempotent)
        again = time.perf_counter() - t
        wall = statistics.median(walls)
        print(f"merge of {args.shards} shards ({res.records} records, {res.linked} files linked): "
              f"{wall:.2f} s ({1e3 * wall / args.shards:.1f} ms/shard); merging them again: {again:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
