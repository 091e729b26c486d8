"""Time-lapse analysis speed: scoring every frame against decoding it, on the same clips.

The issue's target: the static-segment analysis adds at most 25 % to decode-only time.

Inputs:
  real     the 13 clips of ../shared/data/realrain13 (720 x 480 H.264, 49 frames each), when
           that folder exists;
  1080p    a clip made here and cached in benchmarks/.cache/: 1080p, --frames frames, 25 fps,
           H.264 crf 18, a scikit-image photo as the static background, rainset's synthetic
           rain and Gaussian sensor noise (sigma 2 levels).

Printed per input, over --repeat alternating runs of
  decode-only   iterate rainset.video.iter_frames: RGB frames, what a user who only decodes
                the clip runs (the baseline of every ratio; it stays RGB although the analysis
                pass below does not convert most frames, because RGB frames are what the
                pipeline writes and what a user would otherwise decode)
  pairs pass    rainset.pairs.analysis_pass, the first read of `rainset pairs`: every frame
                scored on its luma plane (rainset._analysis_frames, no RGB conversion, decoded
                on a thread a few frames ahead; standard-definition frames on one FFmpeg
                thread fewer than the cores), find_segments, and the contact-sheet thumbnails
                (RGB for three frames)
  RGB frames    iter_frames through rainset.timelapse.StaticScorer and find_segments: the
                analysis of RGB frames (the pairs pass before it read luma planes, and what
                score_frames(iter_frames(...)) costs a library user)
  pass decoding the pairs pass's decoding alone, no scoring: iter_decoded as the pass calls
                it (its decoding thread, its FFmpeg thread count, its read-ahead) and each
                frame's analysis luma. The pass decodes exactly this way, so it cannot take
                less time; the gap between the two rows is what scoring costs, most of it
                the decoding thread's slowdown while the scorer keeps the other core busy
the median decode time per frame, the median time each analysis adds per frame, and the median
of the per-repeat ratios analysis / decode-only, in wall time and in CPU time (all threads of
the process: FFmpeg decodes with several). CPU time is the steadier number on a busy machine;
wall time is what a user waits. The frame counts the pass is given (for its thumbnails) are
probed before timing, as the pipeline has them from its own probe.

``--only real`` / ``--only synthetic`` measures one input. The load average before and after
is printed too (other work on the machine moves every figure).

Usage: python benchmarks/bench_timelapse.py [--repeat 5] [--frames 150] [--only real]
"""

from __future__ import annotations

import argparse
import os
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


def rgb_analysis(paths: list[Path]) -> int:
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


def pairs_pass(paths: list[Path], counts: dict[Path, int]) -> int:
    from rainset.pairs import analysis_pass

    n = 0
    for p in paths:
        scores, *_, thumbs = analysis_pass(p, min_length=30, expected=counts[p])
        thumbs.three()  # what a scene without segments shows
        n += len(scores)
    return n


def pass_decoding(paths: list[Path], factors: dict[Path, int]) -> int:
    from rainset._analysis_frames import iter_decoded
    from rainset.pairs import _AHEAD

    n = 0
    for p in paths:
        for frame in iter_decoded(p, ahead=_AHEAD):
            frame.analysis_luma(factors[p])
            n += 1
    return n


def measure(paths: list[Path], repeat: int) -> dict[str, dict[str, float]]:
    """Alternate decode-only and the analyses (which of them follows the decode run alternates
    too); medians of times and of the ratios of each analysis to the decode-only run of its
    repeat (so a load change on a shared machine hits both sides of a ratio)."""
    from rainset.motion import MotionPolicy
    from rainset.video import probe

    infos = {p: probe(p) for p in paths}
    counts = {p: i.frame_count for p, i in infos.items()}
    policy = MotionPolicy()
    factors = {p: policy.factor(i.height, i.width) for p, i in infos.items()}
    fns = {
        "decode": decode_only,
        "pairs pass": lambda ps: pairs_pass(ps, counts),
        "RGB frames": rgb_analysis,
        "pass decoding": lambda ps: pass_decoding(ps, factors),
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    n = 0
    for r in range(repeat):
        rest = list(fns)[1:]  # the analyses, in turn first after the decode run
        for name in ["decode", *(rest if r % 2 == 0 else rest[::-1])]:
            w, c = time.perf_counter(), time.process_time()
            n = fns[name](paths)
            runs[name].append((time.perf_counter() - w, time.process_time() - c))
    dw = statistics.median(w for w, _ in runs["decode"])
    out = {}
    for name in fns:
        if name == "decode":
            continue
        aw = statistics.median(w for w, _ in runs[name])
        out[name] = {
            "n": n, "decode_ms": 1e3 * dw / n, "added_ms": 1e3 * (aw - dw) / n,
            "wall": statistics.median(a[0] / d[0] for a, d in zip(runs[name], runs["decode"])),
            "cpu": statistics.median(a[1] / d[1] for a, d in zip(runs[name], runs["decode"])),
        }  # fmt: skip
    return out


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
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'input':26s} {'analysis':13s} {'frames':>6s} {'decode ms/f':>11s} {'+analysis':>10s} "
          f"{'wall ratio':>10s} {'CPU ratio':>9s}")  # fmt: skip
    for name, paths in inputs.items():
        decode_only(paths[:1])  # warm the page cache and the imports
        pairs_pass(paths[:1], {paths[0]: 0})
        for kind, m in measure(paths, args.repeat).items():
            print(f"{name:26s} {kind:13s} {m['n']:6d} {m['decode_ms']:11.2f} {m['added_ms']:10.2f} "
                  f"{m['wall']:10.2f} {m['cpu']:9.2f}")  # fmt: skip
    print("ratio = (decode + analysis) / decode-only; target <= 1.25 (analysis adds <= 25 %).")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
