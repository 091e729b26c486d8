"""Time-lapse analysis speed: scoring every frame against decoding it, on the same clips.

The issue's target: the static-segment analysis adds at most 25 % to decode-only time.

Inputs:
  real     the 13 clips of ../shared/data/realrain13 (720 x 480 H.264, 49 frames each), when
           that folder exists;
  1080p    a clip made here and cached in benchmarks/.cache/: 1080p, --frames frames, 25 fps,
           H.264 crf 18, a scikit-image photo as the static background, rainset's synthetic
           rain and Gaussian sensor noise (sigma 2 levels).

Printed per input, over --repeat alternating runs of
  decode-only        iterate rainset.video.iter_frames (RGB frames, what the pipeline needs)
  decode + analysis  the same frames through rainset.timelapse.StaticScorer, plus find_segments
the median decode time per frame, the median time analysis adds per frame, and the median of
the per-repeat ratios (decode + analysis) / decode-only, in wall time and in CPU time (all
threads of the process: FFmpeg decodes with several). CPU time is the steadier number on a busy
machine; wall time is what a user waits.

``--only real`` / ``--only synthetic`` measures one input.

Usage: python benchmarks/bench_timelapse.py [--repeat 5] [--frames 150] [--only real]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
REAL = HERE.parents[1] / "shared" / "data" / "realrain13"


def make_clip(path: Path, n: int) -> None:
    from rainset.demo import example_photo, rainy_frames
    from rainset.video import write_video

    bg = cv2.resize(
        example_photo("astronaut", max_side=4096), (1920, 1080), interpolation=cv2.INTER_CUBIC
    )
    write_video(path, rainy_frames(bg, n, noise_sigma=2.0, rng=1, density="medium"), fps=25, crf=18)


def decode_only(paths: list[Path]) -> int:
    from rainset.video import iter_frames

    n = 0
    for p in paths:
        for _ in iter_frames(p):
            n += 1
    return n


def decode_and_analyse(paths: list[Path]) -> int:
    from rainset.timelapse import StaticScorer, find_segments
    from rainset.video import iter_frames

    n = 0
    for p in paths:
        scorer = StaticScorer()
        rows = []
        for frame in iter_frames(p):
            rows += scorer.update(frame)
        rows += scorer.finish()
        find_segments(rows, min_length=30)
        n += len(rows)
    return n


def measure(paths: list[Path], repeat: int) -> dict[str, float]:
    """Alternate decode-only and decode + analysis runs; medians of times and of the ratios of
    each adjacent pair (so a load change on a shared machine hits both sides of a ratio)."""
    rows = []
    n = 0
    for _ in range(repeat):
        pair = []
        for fn in (decode_only, decode_and_analyse):
            w, c = time.perf_counter(), time.process_time()
            n = fn(paths)
            pair += [time.perf_counter() - w, time.process_time() - c]
        rows.append(pair)
    dw, dc, aw, ac = (statistics.median(r[i] for r in rows) for i in range(4))
    return {
        "n": n, "decode_ms": 1e3 * dw / n, "added_ms": 1e3 * (aw - dw) / n,
        "wall": statistics.median(r[2] / r[0] for r in rows),
        "cpu": statistics.median(r[3] / r[1] for r in rows),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--only", choices=("real", "synthetic"))
    args = ap.parse_args()
    inputs: dict[str, list[Path]] = {}
    if REAL.is_dir() and args.only != "synthetic":
        inputs["real 720x480 (13 clips)"] = sorted(REAL.glob("*.mp4"))
    if args.only != "real":
        cache = HERE / ".cache"
        cache.mkdir(exist_ok=True)
        clip = cache / f"timelapse_1080p_{args.frames}.mp4"
        if not clip.exists():
            print(f"making {clip} ...")
            make_clip(clip, args.frames)
        inputs["synthetic 1080p"] = [clip]
    print(f"{'input':26s} {'frames':>6s} {'decode ms/f':>11s} {'+analysis':>10s} {'wall ratio':>10s} "
          f"{'CPU ratio':>9s}")  # fmt: skip
    for name, paths in inputs.items():
        decode_only(paths[:1])  # warm the page cache and the imports
        m = measure(paths, args.repeat)
        print(f"{name:26s} {m['n']:6d} {m['decode_ms']:11.2f} {m['added_ms']:10.2f} "
              f"{m['wall']:10.2f} {m['cpu']:9.2f}")  # fmt: skip
    print("ratio = (decode + analysis) / decode-only; target <= 1.25 (analysis adds <= 25 %).")


if __name__ == "__main__":
    main()
