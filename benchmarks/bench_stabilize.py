"""Stabilisation: exact-GT accuracy against an oracle, and the cost of the motion policy.

1. Exact-GT composite (issue 11, "Done when"). A clean static scene (a scikit-image photo)
   shot through a shaking camera: random translations up to +-3 px (``translation``), plus
   rotations up to +-0.5 deg (``similarity``), about the frame centre, the first frame
   unmoved; rainset's synthetic rain and Gaussian sensor noise (sigma 2 levels) on each frame;
   H.264 crf 18. The frames are decoded back and

   - checked by the static-camera policy without stabilisation (it must refuse them);
   - registered by ``rainset.stabilize.stabilize`` and estimated (``estimate_clean``, SPANet's
     percentile) -> "stabilised";
   - registered with the TRUE transforms by the same warp (bicubic), cropped to the same
     common area, and estimated -> "oracle";
   - and, for scale, the same rain and noise on a never-moved camera -> "never moved".

   PSNR against the true background over the common crop. The target: stabilised within
   0.5 dB of the oracle (interpolation alone costs several dB against a never-moved camera,
   so the oracle is the fair yardstick).

2. Cost, one core (OpenCV and BLAS threads set to 1): the per-frame policy measurement at
   1080p (``rainset.registration.MotionMeter``: luma, downscale, three-frame median, tile
   phase correlation, similarity fit), target ~3 ms; the per-frame registration
   (``register_frames``) and bicubic warp; and, with ``--buildgt``, the wall time of
   ``rainset build-gt`` on a 1080p clip with and without ``--stabilize`` (target: at most
   twice).

Usage: python benchmarks/bench_stabilize.py [--frames 100] [--seed 0] [--buildgt]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def camera(tx: float, ty: float, rot: float, size) -> np.ndarray:
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), -rot, 1.0)
    m[:, 2] += (tx, ty)
    return m


def shoot(bg: np.ndarray, m: np.ndarray) -> np.ndarray:
    h, w = bg.shape[:2]
    return cv2.warpAffine(bg, m, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)


def rainy(shots, seed: int):
    from rainset.demo import rainy_frames

    for k, s in enumerate(shots):
        yield next(rainy_frames(s, 1, rng=seed * 1000 + k))


def encoded(frames, tmp: Path, name: str) -> np.ndarray:
    from rainset.video import iter_frames, write_video

    path = tmp / f"{name}.mp4"
    write_video(path, frames, fps=25, crf=18)
    return np.stack(list(iter_frames(path)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def exact_gt(n: int, seed: int, tmp: Path) -> list[str]:
    from rainset.demo import example_photo
    from rainset.groundtruth import estimate_clean
    from rainset.registration import measure_motion
    from rainset.stabilize import stabilize, warp

    photo = example_photo("coffee", max_side=640)
    h, w = photo.shape[:2]
    rng = np.random.default_rng(seed)
    static = encoded(rainy([photo] * n, seed + 1), tmp, "static")
    rows = [
        f"exact-GT composite: {w} x {h} photo, {n} frames, synthetic rain + noise sigma 2, H.264 crf 18",
        "| mode | jitter | policy without --stabilize | correction (px) | residual RMS (px) | crop | "
        "max |t - true| (px) | PSNR stabilised | PSNR oracle | stabilised - oracle | PSNR never moved |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, rot in (("translation", 0.0), ("similarity", 0.5)):
        true = np.stack([rng.uniform(-3, 3, n), rng.uniform(-3, 3, n), rng.uniform(-rot, rot, n)], axis=1)
        true[0] = 0
        mats = [camera(tx, ty, r, (w, h)) for tx, ty, r in true]
        frames = encoded(rainy((shoot(photo, m) for m in mats), seed + 2), tmp, mode)
        plain = measure_motion(frames)
        stab, registered = stabilize(frames, mode)
        assert registered is not None, stab.refused
        x, y, cw, ch = stab.crop
        truth = photo[y : y + ch, x : x + cw]
        est = estimate_clean(registered).image
        oracle = estimate_clean(np.stack([warp(f, m, stab.crop) for f, m in zip(frames, mats)])).image
        never = estimate_clean(static).image[y : y + ch, x : x + cw]
        err = float(np.abs(stab.matrices[:, :, 2] - np.stack(mats)[:, :, 2]).max())
        p_s, p_o, p_n = psnr(est, truth), psnr(oracle, truth), psnr(never, truth)
        verdict = "refused" if not plain.static else "ACCEPTED"
        rows.append(
            f"| {mode} | +-3 px" + (f", +-{rot:g} deg" if rot else "") + f" | {verdict} ({plain.max_shift:.1f} px) | "
            f"{stab.correction:.2f} | {stab.residual:.3f} | {cw} x {ch} ({100 * stab.crop_share:.1f} %) | "
            f"{err:.3f} | {p_s:.2f} | {p_o:.2f} | {p_s - p_o:+.2f} | {p_n:.2f} |"
        )
    return rows


def costs(n: int, seed: int) -> list[str]:
    from rainset.demo import rainy_frames
    from rainset.registration import MotionMeter, register_frames
    from rainset.stabilize import warp

    cv2.setNumThreads(1)
    from rainset.demo import example_photo

    bg = cv2.resize(example_photo("coffee", max_side=640), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    frames = list(rainy_frames(bg, min(n, 60), rng=seed))
    meter = MotionMeter()
    for f in frames[:5]:
        meter.update(f)
    meter.report()  # warm-up (FFT plans, caches)
    best = []
    for _ in range(3):
        meter = MotionMeter()
        t0 = time.perf_counter()
        for f in frames:
            meter.update(f)
        meter.report()
        best.append((time.perf_counter() - t0) / len(frames))
    t0 = time.perf_counter()
    ms = register_frames(frames, mode="translation")
    t_reg = (time.perf_counter() - t0) / len(frames)
    from rainset.registration import model_matrix

    mats = [model_matrix(m, (1080, 1920)) for m in ms]
    crop = (4, 4, 1912, 1072)
    t0 = time.perf_counter()
    for f, m in zip(frames, mats):
        warp(f, m, crop)
    t_warp = (time.perf_counter() - t0) / len(frames)
    return [
        f"cost per 1080p frame, one core (best of 3 over {len(frames)} frames):",
        f"  policy measurement (MotionMeter, factor {meter.factor}): {1e3 * min(best):.2f} ms",
        f"  stabilisation: registration {1e3 * t_reg:.2f} ms + bicubic warp {1e3 * t_warp:.2f} ms",
    ]


def buildgt_times(n: int, seed: int, tmp: Path) -> list[str]:
    from rainset.demo import example_photo

    bg = cv2.resize(example_photo("coffee", max_side=640), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    mats = [camera(*rng.uniform(-2, 2, 2), 0.0, (1920, 1080)) for _ in range(n)]
    mats[0] = camera(0, 0, 0, (1920, 1080))
    from rainset.video import write_video

    clip = tmp / "shaky1080.mp4"
    write_video(clip, rainy((shoot(bg, m) for m in mats), seed), fps=25, crf=18)
    out = []
    for extra in ([], ["--allow-motion"], ["--stabilize"]):
        t0 = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "rainset_cli", "build-gt", str(clip), "--frames", str(n), "--review", "accept",
             "-o", str(tmp / ("gt" + "".join(extra))), *extra],
            capture_output=True, text=True,
        )  # fmt: skip
        dt = time.perf_counter() - t0
        out.append((extra, r.returncode, dt, r.stdout.strip().splitlines()[-1:] + r.stderr.strip().splitlines()[-1:]))
    base = next(dt for e, rc, dt, _ in out if e == ["--allow-motion"])
    rows = [f"build-gt wall time, 1080p shaky clip (+-2 px), {n} frames, --review accept:"]
    for extra, rc, dt, _tail in out:
        rows.append(f"  {' '.join(extra) or '(plain)':16s} exit {rc}  {dt:6.1f} s  ({dt / base:.2f} x --allow-motion)")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--buildgt", action="store_true", help="also time build-gt with and without --stabilize")
    ap.add_argument("--skip-gt", action="store_true", help="only the costs")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lines = [] if a.skip_gt else exact_gt(a.frames, a.seed, tmp)
        lines += [""] + costs(a.frames, a.seed)
        if a.buildgt:
            lines += [""] + buildgt_times(a.frames, a.seed, tmp)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
