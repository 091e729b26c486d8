"""Ground truth from a rainy clip, with the Python API.

SPANet's recipe (CVPR 2019) for real rain: film a static scene while it rains; every pixel is
covered by a streak only now and then, so over enough frames each pixel's clean value is the
one it shows most of the time. ``rainset.build_gt`` does this for whole videos: it cuts the
clip into windows, estimates a clean image per window (a per-pixel percentile chosen by a
vote), lets a reviewer accept it, ask for more frames or reject it, and writes the accepted
windows -- every rainy frame, the clean image and a rain mask per frame -- as a dataset.

This script needs no footage: it renders its own rainy clip over a photo that scikit-image
ships, so the true clean image is known and the estimate can be scored.

1. render 60 frames of light rain over the photo (rainset's own streak renderer plus a little
   sensor noise) and encode them as an H.264 clip, as a camera would;
2. call ``rainset.build_gt(clip, out, review="auto", frames=20)``: one window of 20 frames;
   the ``auto`` reviewer accepts a candidate whose residual-rain score is low enough and
   asks for more frames otherwise (``review="accept"`` takes every first candidate; a
   reviewer may also be any callable ``candidate -> rainset.review.Decision``);
3. print what the result object says (written windows, refusals, counts) and the progress
   events seen on the way;
4. open the dataset with ``rainset.dataset.open_dataset``, check it with
   ``rainset.dataset.check``, and compare the estimated clean image with the true photo and
   with a single rainy frame (PSNR, ``rainset.metrics.psnr``).

The review preview of each candidate (rainy | clean | amplified difference, zoomed crops) is
in ``OUT/gt/previews/``.

Run::

    python examples/ground_truth_from_a_clip.py            # in a temporary folder
    python examples/ground_truth_from_a_clip.py --out work # keep the clip and the dataset
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import rainset
from rainset.dataset import check, open_dataset
from rainset.demo import example_photo, rainy_frames
from rainset.metrics import psnr
from rainset.video import write_video


def main(out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    # 1. a rainy clip whose clean image is known (160 px on the long side: seconds, not minutes)
    clean = example_photo("coffee", max_side=160)
    clip = out_dir / "rainy_coffee.mp4"
    write_video(clip, rainy_frames(clean, 60, rng=0, density="light"), fps=25, crf=18)
    print(f"wrote {clip} ({clean.shape[1]}x{clean.shape[0]}, 60 frames)")

    # 2. one call builds the dataset; progress events arrive through the callback
    events = Counter()
    result = rainset.build_gt(
        clip, out_dir / "gt", review="auto", frames=20, progress=lambda e: events.update([e.kind])
    )
    # 3. what was written, refused and why
    print(f"written windows: {result.written}, refused: {result.refused}")
    print(f"counts: {result.counts}")
    print(f"events: {dict(events)}")

    # 4. read it back, check it, score the estimate
    ds = open_dataset(out_dir / "gt")
    problems = check(out_dir / "gt")
    print(f"check: {len(problems)} problem(s)")
    samples = list(ds.samples())
    estimate = ds.load(samples[0], "clean")
    rainy = ds.load(samples[0], "rainy")
    scores = {"rainy frame": psnr(rainy, clean), "estimated clean image": psnr(estimate, clean)}
    for name, value in scores.items():
        print(f"PSNR against the true photo, {name}: {value:.2f} dB")
    return {"result": result, "samples": len(samples), "problems": problems, "psnr": scores}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: temporary).")
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        main(args.out)
