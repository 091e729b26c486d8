"""build-gt quality on composites whose clean image is known exactly.

Each composite: a clean scikit-image photo (CC0) as the static background, rainset's rain layer
drawn afresh every frame at a density, Gaussian sensor noise sigma 2 levels, then H.264 (crf 18)
encoding and decoding, as a real camera clip would be. Each method's clean image is scored
against the true photo (PSNR and SSIM on RGB, data range 255, rainset.metrics conventions).

Methods: SPA estimator (luma vote; rgb vote), robust rain-rejecting mean, temporal median,
temporal mean, OpenCV MOG2 background model. Also the residual-rain score of --review auto
(split-half disagreement) and how well it ranks the composites by the true error (Spearman).

Usage: python benchmarks/quality_gt.py [--frames 20,50,100] [--size 480] [--markdown]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rainset.demo import example_photo, rainy_frames
from rainset.groundtruth import estimate_clean
from rainset.metrics import psnr, ssim
from rainset.review import split_half_score
from rainset.video import read_frames, write_video

PHOTOS = ("coffee", "astronaut", "chelsea")
DENSITIES = ("light", "medium", "heavy")


def mog2(stack: np.ndarray) -> np.ndarray:
    sub = cv2.createBackgroundSubtractorMOG2(history=len(stack), detectShadows=False)
    for f in stack:
        sub.apply(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return cv2.cvtColor(sub.getBackgroundImage(), cv2.COLOR_BGR2RGB)


METHODS = {
    "SPA (luma)": lambda s: estimate_clean(s, select="luma").image,
    "SPA (rgb)": lambda s: estimate_clean(s, select="rgb").image,
    "robust": lambda s: estimate_clean(s, method="robust").image,
    "temporal median": lambda s: np.floor(np.median(s, axis=0)).astype(np.uint8),
    "temporal mean": lambda s: np.rint(s.mean(axis=0)).astype(np.uint8),
    "MOG2": mog2,
}


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", default="20,50,100")
    ap.add_argument("--size", type=int, default=480)
    ap.add_argument("--no-codec", action="store_true", help="skip H.264: frames straight from the renderer")
    args = ap.parse_args()
    counts = [int(x) for x in args.frames.split(",")]
    rows = []  # (density, n, method, psnr, ssim)
    scores, errors, groups = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in PHOTOS:
            clean = example_photo(photo, max_side=args.size)
            # The background as this camera and codec deliver it: the mean of a rain-free clip
            # with the same noise and encoding. The residual-rain score is judged against it,
            # so codec loss (which no estimator can undo) does not mask the rain residual.
            dry = Path(tmp) / f"{photo}_dry.mp4"
            noise_only = (np.clip(np.rint(clean + np.random.default_rng(k).normal(0, 2.0, clean.shape)), 0, 255).astype(np.uint8)
                          for k in range(max(counts)))
            if args.no_codec:
                codec_ref = clean.astype(np.float64)
            else:
                write_video(dry, noise_only, fps=25, crf=18)
                codec_ref = read_frames(dry).mean(axis=0)
            for d in DENSITIES:
                clip = Path(tmp) / f"{photo}_{d}.mp4"
                frames = rainy_frames(clean, max(counts), noise_sigma=2.0, rng=7, density=d)
                if args.no_codec:
                    full = np.stack(list(frames))
                else:
                    write_video(clip, frames, fps=25, crf=18)
                    full = read_frames(clip)
                for n in counts:
                    stack = full[:n]
                    for name, fn in METHODS.items():
                        img = fn(stack)
                        rows.append((d, n, name, psnr(img, clean), ssim(img, clean)))
                    spa = estimate_clean(stack).image
                    scores.append(split_half_score(stack, lambda s: estimate_clean(s).image))
                    errors.append(float(np.abs(spa - codec_ref).mean()))
                    groups.append(photo)
                print(f"{photo} {d}: done", flush=True)
    codec = "no codec" if args.no_codec else "H.264 crf 18"
    print(f"\nMean over photos ({', '.join(PHOTOS)}), noise sigma 2, {codec}; PSNR dB / SSIM, RGB, data range 255\n")
    header = "| density | N | " + " | ".join(METHODS) + " |"
    print(header)
    print("|" + "---|" * (2 + len(METHODS)))
    for d in DENSITIES:
        for n in counts:
            cells = []
            for name in METHODS:
                sel = [(p, s) for dd, nn, m, p, s in rows if dd == d and nn == n and m == name]
                cells.append(f"{np.mean([p for p, _ in sel]):.2f} / {np.mean([s for _, s in sel]):.4f}")
            print(f"| {d} | {n} | " + " | ".join(cells) + " |")
    print("\nAll composites, mean PSNR per method:")
    for name in METHODS:
        print(f"  {name:16s} {np.mean([p for _, _, m, p, _ in rows if m == name]):.2f} dB")
    per_photo = {
        p: spearman([s for s, g in zip(scores, groups) if g == p], [e for e, g in zip(errors, groups) if g == p])
        for p in PHOTOS
    }
    print(
        f"\nresidual-rain score vs true error (mean absolute error of the SPA image against the "
        f"rain-free clip's mean, levels): Spearman over all {len(scores)} composites "
        f"{spearman(scores, errors):.3f}; within each photo (3 densities x {len(counts)} N): "
        + ", ".join(f"{p} {r:.3f}" for p, r in per_photo.items())
    )
    for s, e in sorted(zip(scores, errors)):
        print(f"  score {s:6.3f}   true error {e:6.3f}")


if __name__ == "__main__":
    main()
