"""build-gt quality against the background as the camera and codec deliver it.

The yardstick (issue 16). For each of three scikit-image photos (CC0):

- the *clean clip*: the photo as a static scene, 200 frames, each with its own Gaussian sensor
  noise (sigma 2 levels, seeds fixed per frame);
- the *rainy clip*: the same photo, 200 frames with a fresh rain layer each (rainset's renderer,
  angle 10 deg, radius 0.6) at one of four densities, then sensor noise (other fixed seeds):
  synth's ``light`` / ``medium`` / ``heavy`` coverage classes and ``torrential``, heavy rain with
  its streak counts raised so that rain covers a pixel in 30 %+ of the frames;
- both clips go through the same codec: none, or libx264 at crf 18 or crf 28
  (:func:`rainset.video.write_video`: yuv420p, the encoder's default GOP), and are decoded;
- the truth is the mean (float) of the clean clip's 200 decoded frames: what a perfect
  rain remover could recover from this camera and codec (its own noise is sigma 2 / sqrt(200)).

Every method sees the first N frames (N = 20, 50, 100) of the decoded rainy clip and is scored
against the truth: PSNR dB / SSIM on RGB, data range 255 (rainset.metrics). Methods: SPA (luma
vote, rgb vote), ``robust``, ``anchored`` (issue 16's estimator), temporal median and mean,
OpenCV MOG2, the *oracle* (not a method: the float mean of the
samples the rain layer left untouched, known from the layer itself; what perfect rain rejection
plus averaging delivers from these frames), and the reference row RPCA (low-rank + sparse by
inexact ALM, the approach of LHP-Rain, ICCV 2023) on 1/4-scale frames, next to SPA and anchored on the same 1/4-scale frames
against the 1/4-scale truth.

Also the residual-rain scores and how well they rank candidates by the true error (mean
absolute error of the method's estimate against the truth): Spearman within each photo and over
the whole grid, per codec and method, for the score (rainset.review.split_half_score) and the
plain split-half disagreement it started from; and the calibration of ``--review auto``
(predicted error, what the default threshold accepts). ``--score-only`` runs just that part
(spa, anchored, robust; about 2.5 min on cached clips). The whole grid's output, one run:
benchmarks/quality_gt_results.md.

Usage:
    python benchmarks/quality_gt.py [--size 480] [--frames 20,50,100] [--codecs none,18,28]
        [--densities light,medium,heavy,torrential] [--photos coffee,astronaut,chelsea]
        [--no-rpca] [--score-only] [--cache DIR] [--out table.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rainset.demo import example_photo
from rainset.groundtruth import estimate_clean
from rainset.metrics import psnr, ssim
from rainset.options import MASK_THRESHOLD
from rainset.video import read_frames, write_video

PHOTOS = ("coffee", "astronaut", "chelsea")
DENSITIES = ("light", "medium", "heavy", "torrential")
CLIP_FRAMES = 200
NOISE_SIGMA = 2.0
#: Streak counts of ``heavy`` times this give ``torrential`` (rain on a pixel in 30 %+ of frames).
TORRENTIAL_FACTOR = 1.8


# --- the clips --------------------------------------------------------------------------------


def _noise(frame: np.ndarray, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    noisy = frame.astype(np.float32) + g.normal(0, NOISE_SIGMA, frame.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def clean_clip(photo: np.ndarray, n: int = CLIP_FRAMES) -> np.ndarray:
    """(n, H, W, 3) uint8: the static photo with per-frame sensor noise (seeds 10000 + k)."""
    return np.stack([_noise(photo, 10000 + k) for k in range(n)])


def rainy_clip(photo: np.ndarray, density: str, n: int = CLIP_FRAMES, seed: int = 7):
    """(n, H, W, 3) uint8 rainy clip and (n, H, W) uint8: the most the rain raised each pixel's channels."""
    from rainset.streaks import rain_layer, sample_params
    from rainset.synth import composite

    g = np.random.default_rng(seed)
    frames, masks = [], []
    for k in range(n):
        p = sample_params(photo.shape, rng=g, angle=10.0, radius=0.6,
                          density="heavy" if density == "torrential" else density)
        if density == "torrential":
            p = dataclasses.replace(p, layers=tuple(
                dataclasses.replace(lay, per_mpx=lay.per_mpx * TORRENTIAL_FACTOR) for lay in p.layers))
        rainy = composite(photo, rain_layer(photo.shape, p), blend=p.blend)
        masks.append((rainy.astype(np.int16) - photo).max(axis=2).clip(0, 255).astype(np.uint8))
        frames.append(_noise(rainy, 20000 + 1000 * seed + k))
    return np.stack(frames), np.stack(masks)


def through_codec(frames: np.ndarray, codec: str, tmp: Path, name: str) -> np.ndarray:
    """The frames after the codec: ``none`` (as they are) or a libx264 crf (``18``, ``28``)."""
    if codec == "none":
        return frames
    path = tmp / f"{name}_crf{codec}.mp4"
    write_video(path, iter(frames), fps=25, crf=int(codec), codec="libx264")
    out = read_frames(path)
    path.unlink()
    return out


#: Part of every cache file name: a clip made with other constants is never reused.
CACHE_KEY = f"s{NOISE_SIGMA:g}_t{TORRENTIAL_FACTOR:g}_m{MASK_THRESHOLD}"


def composites(photos, densities, codecs, size, tmp: Path, n_clip: int = CLIP_FRAMES, keep: int | None = None,
               cache: Path | None = None):
    """Yield (photo, density, codec, decoded rainy clip, truth (H, W, 3) float64, rain share, touched).

    ``touched`` (bool, one per kept frame and pixel) is where the rain layer changed the pixel at
    all (the oracle's masks); the rain share counts the samples it raised by MASK_THRESHOLD or
    more, over the whole clip. ``keep`` frames of the rainy clip are kept (all when None). With
    ``cache``, each decoded clip, truth and mask stack is saved there (``.npy``) and loaded on a
    later run with the same arguments and constants instead of being made and encoded again.
    """
    keep = keep or n_clip
    for name in photos:
        photo = None
        tag = f"{name}_{size}_{n_clip}_{CACHE_KEY}"
        truths = {}
        for c in codecs:
            f = cache / f"{tag}_truth_{c}.npy" if cache else None
            if f is not None and f.exists():
                truths[c] = np.load(f)
                continue
            if photo is None:
                photo = example_photo(name, max_side=size)
                clean = clean_clip(photo, n_clip)
            truths[c] = through_codec(clean, c, tmp, f"{name}_clean").mean(axis=0)
            if f is not None:
                np.save(f, truths[c])
        clean = None
        for d in densities:
            files = {c: cache / f"{tag}_{d}_{keep}_{c}.npy" for c in codecs} if cache else {}
            fmask = cache / f"{tag}_{d}_{keep}_touched.npy" if cache else None
            fshare = cache / f"{tag}_{d}_share.npy" if cache else None
            if cache and fmask.exists() and fshare.exists() and all(f.exists() for f in files.values()):
                touched, share = np.load(fmask), float(np.load(fshare))
                for c in codecs:
                    yield name, d, c, np.load(files[c]), truths[c], share, touched
                continue
            if photo is None:
                photo = example_photo(name, max_side=size)
            rainy, amount = rainy_clip(photo, d, n_clip)
            share = float((amount >= MASK_THRESHOLD).mean())
            touched = amount[:keep] > 0
            del amount
            if cache:
                np.save(fmask, touched)
                np.save(fshare, np.float64(share))
            for c in codecs:
                out = through_codec(rainy, c, tmp, f"{name}_{d}")[:keep]
                if cache:
                    np.save(files[c], out)
                yield name, d, c, out, truths[c], share, touched


# --- methods ----------------------------------------------------------------------------------


def mog2(stack: np.ndarray) -> np.ndarray:
    sub = cv2.createBackgroundSubtractorMOG2(history=len(stack), detectShadows=False)
    for f in stack:
        sub.apply(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return cv2.cvtColor(sub.getBackgroundImage(), cv2.COLOR_BGR2RGB)


METHODS = {
    "SPA (luma)": lambda s: estimate_clean(s, select="luma").image,
    "SPA (rgb)": lambda s: estimate_clean(s, select="rgb").image,
    "robust": lambda s: estimate_clean(s, method="robust").image,
    "anchored": lambda s: estimate_clean(s, method="anchored").image,
    "temporal median": lambda s: np.floor(np.median(s, axis=0)).astype(np.uint8),
    "temporal mean": lambda s: np.rint(s.mean(axis=0)).astype(np.uint8),
    "MOG2": mog2,
    # a ceiling, not a method: it knows where the rain is (excluded from "best other method")
    "oracle": None,
}
ORACLE = "oracle"


def mask_oracle(stack: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The float mean of each pixel's rain-free samples, known from the rain layer itself.

    What a rain remover that never mistakes rain for background, nor background for rain, and
    averages everything else could deliver from these frames (the temporal median where every
    sample is rainy). Float, so no rounding to integers either.
    """
    keep = ~masks[..., None]
    count = keep.sum(axis=0)
    total = (stack.astype(np.float64) * keep).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.median(stack, axis=0))


#: Methods also run at 1/4 scale beside the RPCA reference.
SMALL_METHODS = ("SPA (luma)", "anchored")
SCALE = 4


def downscale(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)


def rpca_background(stack: np.ndarray) -> np.ndarray:
    """RPCA reference: the low-rank part's mean frame (rainset._rpca), float64."""
    from rainset._rpca import rpca_background as bg

    return bg(stack)


# --- scores -----------------------------------------------------------------------------------


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable")
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable")
    return float(np.corrcoef(ra, rb)[0, 1])


def mae(img: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(img.astype(np.float64) - truth).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=480, help="longer side of the photos (px)")
    ap.add_argument("--frames", default="20,50,100")
    ap.add_argument("--codecs", default="none,18,28")
    ap.add_argument("--densities", default=",".join(DENSITIES))
    ap.add_argument("--photos", default=",".join(PHOTOS))
    ap.add_argument("--clip-frames", type=int, default=CLIP_FRAMES)
    ap.add_argument("--no-rpca", action="store_true")
    ap.add_argument("--no-score", action="store_true")
    ap.add_argument("--score-only", action="store_true",
                    help="only the residual-rain score part: spa, anchored and robust, no PSNR tables, no RPCA")
    ap.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    ap.add_argument("--cache", type=Path, help="keep the decoded clips here (.npy) and reuse them on a later run")
    args = ap.parse_args()
    counts = [int(x) for x in args.frames.split(",")]
    codecs = args.codecs.split(",")
    densities = args.densities.split(",")
    photos = args.photos.split(",")
    from rainset.review import frozen_share, predicted_error

    rows = []  # dict per (photo, density, codec, n, method)
    cand = []  # dict per (photo, density, codec, n, method): score and true error
    shares = {}
    rpca = not args.no_rpca and not args.score_only
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for photo, d, c, full, truth, share, touched in composites(
            photos, densities, codecs, args.size, Path(tmp), args.clip_frames, keep=max(counts),
            cache=args.cache,
        ):
            shares.setdefault(d, []).append(share)
            small_truth = downscale(truth) if rpca else None
            small_full = np.stack([downscale(f) for f in full]) if rpca else None  # each frame once, for every N
            for n in counts:
                stack = full[:n]
                share = frozen_share(stack) if not args.no_score else None  # the same for every scored method
                for name, fn in METHODS.items():
                    if args.score_only and name not in SCORED:
                        continue
                    img = fn(stack) if name != ORACLE else mask_oracle(stack, touched[:n])
                    rows.append(dict(photo=photo, d=d, c=c, n=n, m=name, psnr=psnr(img, truth, data_range=255),
                                     ssim=ssim(img, truth, data_range=255)))
                    if name in SCORED and not args.no_score:
                        cand.append(dict(photo=photo, d=d, c=c, n=n, m=name, err=mae(img, truth),
                                         **score_parts(stack, SCORED[name], share)))
                if rpca:
                    small = small_full[:n]
                    imgs = {"RPCA": rpca_background(small)}
                    for name in SMALL_METHODS:
                        imgs[name] = METHODS[name](small)
                    for name, img in imgs.items():
                        rows.append(dict(photo=photo, d=d, c=c, n=n, m=f"{name} 1/4",
                                         psnr=psnr(img, small_truth, data_range=255),
                                         ssim=ssim(img, small_truth, data_range=255)))
            print(f"{photo} {d} codec {c}: done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.score_only:
        lines = score_report(cand, codecs, photos, predicted_error)
    else:
        lines = report(rows, cand, shares, counts, codecs, densities, photos, predicted_error)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def report(rows, cand, shares, counts, codecs, densities, photos, predicted_error):
    out = []
    names = list(dict.fromkeys(r["m"] for r in rows))
    big = [m for m in names if not m.endswith("1/4")]
    small = [m for m in names if m.endswith("1/4")]
    out.append("Rain share (fraction of (pixel, frame) samples the rain changes by >= 13 levels): "
               + ", ".join(f"{d} {np.mean(shares[d]):.3f}" for d in densities))
    for c in codecs:
        label = "no codec" if c == "none" else f"H.264 (libx264) crf {c}"
        for cols, what in ((big, "full size"), (small, "1/4 scale, RPCA reference")):
            if not cols:
                continue
            out.append(f"\n**{label}**, {what}: mean over {', '.join(photos)}; PSNR dB / SSIM against the "
                       "mean of the clean clip's decoded frames\n")
            out.append("| density | N | " + " | ".join(cols) + " |")
            out.append("|" + "---|" * (2 + len(cols)))
            for d in densities:
                for n in counts:
                    cells = []
                    for m in cols:
                        sel = [r for r in rows if r["c"] == c and r["d"] == d and r["n"] == n and r["m"] == m]
                        cells.append(f"{np.mean([r['psnr'] for r in sel]):.2f} / {np.mean([r['ssim'] for r in sel]):.4f}")
                    out.append(f"| {d} | {n} | " + " | ".join(cells) + " |")
    # anchored against the best other method on every composite
    out.append("\nanchored on every composite (photo x density x N x codec): margin to the best other "
               "full-size method, and gain over SPA (luma), dB")
    worst, gains = [], {}
    for c in codecs:
        for d in densities:
            for n in counts:
                for p in photos:
                    sel = {r["m"]: r["psnr"] for r in rows if (r["c"], r["d"], r["n"], r["photo"]) == (c, d, n, p)}
                    if "anchored" not in sel:
                        continue
                    best = max(v for m, v in sel.items() if m in big and m not in ("anchored", ORACLE))
                    worst.append((sel["anchored"] - best, p, d, n, c))
                    gains.setdefault((c, d, n), []).append(
                        (sel["anchored"] - sel["SPA (luma)"], sel.get(ORACLE, math.nan) - sel["SPA (luma)"]))
    worst.sort()
    out.append(f"  worst margin {worst[0][0]:+.2f} dB ({worst[0][1]} {worst[0][2]} N={worst[0][3]} codec {worst[0][4]}); "
               f"composites within 0.2 dB of the best or better: {sum(w[0] >= -0.2 for w in worst)} / {len(worst)}")
    for w in worst[:8]:
        out.append(f"    {w[0]:+.2f} dB  {w[1]} {w[2]} N={w[3]} codec {w[4]}")
    out.append("  gain over SPA (luma), mean over photos (min); beside it the ceiling: the true-mask oracle's gain")
    out.append("  (the oracle knows where the rain is and averages the rest in float; with the codec it is the most any")
    out.append("  rain-rejecting temporal mean can gain; without it, rounding to integers near the integer photo helps more)")
    for (c, d, n), g in gains.items():
        a, o = np.array(g).T
        out.append(f"    codec {c:4s} {d:10s} N={n:3d}  {a.mean():+.2f} ({a.min():+.2f})   oracle {o.mean():+.2f} ({o.min():+.2f})")
    if cand:
        out += score_report(cand, codecs, photos, predicted_error)
    return out


# --- the residual-rain score against the true error (issue 16 item 3) ----------------------------

#: The methods ``--review auto`` accepts, scored with their own estimator.
SCORED = {"SPA (luma)": "spa", "anchored": "anchored", "robust": "robust"}
#: What the codec alone costs (docs/groundtruth.md, "What the codec leaves to recover"): the mean
#: of a second clean clip (independent noise, same codec) against the truth, 480 px, 200 frames.
#: With a codec the score predicts the error beyond this.
CODEC_FLOOR = {"none": {"coffee": 0.160, "astronaut": 0.153, "chelsea": 0.161},
               "18": {"coffee": 1.377, "astronaut": 1.252, "chelsea": 1.196},
               "28": {"coffee": 2.746, "astronaut": 2.322, "chelsea": 2.582}}


def score_parts(stack: np.ndarray, method: str, share: float) -> dict:
    """The score of ``stack`` for ``method`` (rainset.review.split_half_score, given the stack's
    frozen share) and its parts: split-half disagreement (the score before issue 16), its rain
    part, the frozen share."""
    from rainset.review import combine_score, split_half_parts

    rain, rest = split_half_parts(stack, lambda x: estimate_clean(x, method=method).image)
    return dict(split=rain + rest, rain=rain, share=share, score=combine_score(rain, rest, share, len(stack)))


def _spearman_rows(cand, codecs, photos, key):
    out = []
    for c in codecs:
        for m in dict.fromkeys(x["m"] for x in cand):
            sel = [x for x in cand if x["c"] == c and x["m"] == m]
            if not sel:
                continue
            per = [spearman([x[key] for x in sel if x["photo"] == p], [x["err"] for x in sel if x["photo"] == p])
                   for p in photos]
            out.append((c, m, spearman([x[key] for x in sel], [x["err"] for x in sel]), per))
    return out


def score_report(cand, codecs, photos, predicted_error):
    """Spearman of the score (and of the plain split-half disagreement) against the true error,
    within each photo and over the grid, per codec and method; the calibration of
    ``predicted_error`` and what ``--review auto``'s default threshold accepts."""
    from rainset.options import AUTO_THRESHOLD

    out = ["\nResidual-rain score vs true error (MAE of the method's estimate against the truth), Spearman "
           "within each photo (12 candidates) and overall (36); before: the split-half disagreement alone",
           "| codec | method | overall | " + " | ".join(photos) + " | before: overall | " + " | ".join(photos) + " |",
           "|" + "---|" * (4 + 2 * len(photos))]
    after = _spearman_rows(cand, codecs, photos, "score")
    before = _spearman_rows(cand, codecs, photos, "split")
    for (c, m, o, per), (_, _, ob, perb) in zip(after, before):
        out.append(f"| {c} | {m} | {o:.3f} | " + " | ".join(f"{v:.3f}" for v in per) + f" | {ob:.3f} | "
                   + " | ".join(f"{v:.3f}" for v in perb) + " |")
    worst = min(min(o, *per) for _, _, o, per in after)
    worst_in = min(min(per) for _, _, _, per in after)
    out.append(f"\nworst Spearman of the score: {worst:.3f} (within a photo: {worst_in:.3f})")
    shares = {c: [x["share"] for x in cand if x["c"] == c] for c in codecs}
    out.append("frozen share (review.frozen_share) per codec: " + ", ".join(
        f"{c} {min(v):.4f}-{max(v):.4f}" for c, v in shares.items() if v))
    nc = [x for x in cand if x["c"] == "none"]
    if len(nc) > 2:
        power, scale = np.polyfit(np.log([x["score"] for x in nc]), np.log([x["err"] for x in nc]), 1)
        out.append(f"\nLog-log fit over the uncompressed candidates: error = {np.exp(scale):.3f} * score ** {power:.3f}")
    out.append(f"\nPredicted error (review.predicted_error) against the true error, per codec; with a codec also "
               f"against the error beyond the codec's own loss (true error - CODEC_FLOOR); accepted: score <= "
               f"{AUTO_THRESHOLD:g} (the default --auto-threshold, predicted {predicted_error(AUTO_THRESHOLD):.2f})")
    for c in codecs:
        sel = [x for x in cand if x["c"] == c]
        if not sel:
            continue
        pred = np.array([predicted_error(x["score"]) for x in sel])
        err = np.array([x["err"] for x in sel])
        beyond = err - np.array([CODEC_FLOOR.get(c, {}).get(x["photo"], math.nan) for x in sel])
        acc = np.array([x["score"] <= AUTO_THRESHOLD for x in sel])

        def spread(v):
            v = v[np.isfinite(v)]
            return f"median {np.median(v):.2f} (10-90 % {np.percentile(v, 10):.2f}-{np.percentile(v, 90):.2f})" if len(v) else "-"

        def rng(v):
            return f"{v.min():.2f}-{v.max():.2f}" if len(v) else "-"

        out.append(f"  codec {c}: true / predicted {spread(err / pred)}; beyond the floor / predicted "
                   f"{spread(beyond / pred)}")
        by_m = ", ".join(f"{m} {int(sum(a for a, x in zip(acc, sel) if x['m'] == m))}"
                         for m in dict.fromkeys(x["m"] for x in sel))
        out.append(f"    accepted {int(acc.sum())} of {len(sel)} ({by_m}): true error {rng(err[acc])}, beyond the "
                   f"floor {rng(beyond[acc])}; refused: true error {rng(err[~acc])}")
    out.append("\n| codec | method | photo | density | N | split | of it rain | frozen share | score | predicted | true error |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for x in cand:
        out.append(f"| {x['c']} | {x['m']} | {x['photo']} | {x['d']} | {x['n']} | {x['split']:.3f} | {x['rain']:.3f} | "
                   f"{x['share']:.4f} | "
                   f"{x['score']:.3f} | {predicted_error(x['score']):.3f} | {x['err']:.3f} |")
    return out


if __name__ == "__main__":
    main()
