"""Speed, memory and quality of the ground-truth estimator (rainset.groundtruth).

Run ``python benchmarks/bench_estimator.py`` (``--quick`` for a small size). All timings are
taken in this run, on this machine, and printed with ratios against a baseline measured here:

1. speed, 1080p x 200 frames (synthetic, in memory: textured background + noise + rain):
   numba path (luma, rgb, robust), numpy sort path, torch (CPU; CUDA when present), and a
   plain per-pixel Python loop on a small crop extrapolated per pixel;
2. the baseline it must stay under: decoding 200 frames of 1080p H.264 with rainset.video
   (a clip encoded here; the estimate should add at most ~0.5x of that);
   and, when ../shared/data/realrain13 is there, real footage's decode rate scaled per pixel;
3. memory: peak RSS an estimate adds, measured at 4K x 40 frames in a fresh process, per
   pixel, and extrapolated to 4K x 300 (budget 24 GiB);
4. quality: PSNR against the exact clean image of a composite (clean static scene + rain
   layer + sensor noise), spa vs robust.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from rainset import groundtruth as gt


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth textured static scene, (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 200, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    fine = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    fine += rng.integers(-12, 13, (h, w, 3), dtype=np.int16)  # texture
    return np.clip(fine, 0, 255).astype(np.uint8)


def rain_stack(
    bg: np.ndarray,
    n: int,
    *,
    seed: int = 0,
    noise: float = 2.0,
    density: float = 0.1,
    iid: bool = False,
):
    """n frames: bg + Gaussian noise + bright streaks covering ~density of the pixels each.

    Noise is drawn fresh per frame and channel when ``iid``; otherwise (fast, for the speed
    runs) from a bank of 8 grey noise fields shifted at random.
    """
    rng = np.random.default_rng(seed)
    h, w = bg.shape[:2]
    bank = None if iid else np.rint(rng.normal(0, noise, (8, h, w, 1))).astype(np.int16)
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        if iid:
            f = np.rint(bg + rng.normal(0, noise, bg.shape)).astype(np.int16)
        else:
            f = bg.astype(np.int16) + np.roll(bank[t % 8], rng.integers(0, w), axis=1)
        streak = rng.random((-(-h // 12), w)) < density  # 12-pixel vertical streaks
        streak = np.repeat(streak, 12, axis=0)[:h]
        f += streak[..., None] * rng.integers(25, 90, (1, w, 1), dtype=np.int16)
        out[t] = np.clip(f, 0, 255)
    return out


def timed(fn, reps: int = 2) -> np.ndarray:
    """Best (wall, CPU) seconds of reps calls; CPU counts every thread of this process.

    The machine may be shared: the best wall time is the least disturbed, and CPU seconds
    are what the work costs whatever else runs.
    """
    best = np.array([np.inf, np.inf])
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        now = np.array([time.perf_counter() - t0, time.process_time() - c0])
        best = now if now[0] < best[0] else best
    return best


def python_loop(frames: np.ndarray) -> np.ndarray:
    """The notebook's way: plain Python per pixel (luma vote, RGB percentile)."""
    n, h, w, _ = frames.shape
    luma = gt.rgb_to_luma(frames)
    ranges = []
    for i in range(h):
        for j in range(w):
            vals = sorted(int(v) for v in luma[:, i, j])
            counts = {}
            for v in vals:
                counts[v] = counts.get(v, 0) + 1
            best = max(counts.values())
            mode = min(v for v, c in counts.items() if c == best)
            ranges.append((vals.index(mode), len(vals) - 1 - vals[::-1].index(mode)))
    votes = [sum(100 * f <= p * n <= 100 * la for f, la in ranges) for p in range(101)]
    p = votes.index(max(votes))
    out = np.empty((h, w, 3), np.uint8)
    for i in range(h):
        for j in range(w):
            for c in range(3):
                s = sorted(int(v) for v in frames[:, i, j, c])
                pos = Fraction(p * (n - 1), 100)
                k = int(pos)
                out[i, j, c] = int(s[k] + (pos - k) * (s[min(k + 1, n - 1)] - s[k]))
    return out


def decode_time(h: int, w: int, n: int) -> float:
    """Seconds to decode n frames of an H.264 clip of this size with rainset.video."""
    from rainset.video import iter_frames, write_video

    enc = min(n, 50)  # encode a short clip (encoding is slow here) and scale per frame
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        frames = rain_stack(scene(h, w, 1), enc, seed=1)
        write_video(path, iter(frames), fps=25, crf=18)
        del frames

        def run():
            for _ in iter_frames(path):
                pass

        return timed(run) * n / enc


def real_decode_time(h: int, w: int, n: int) -> float | None:
    """Decode time of the real clips in ../shared/data/realrain13, scaled per pixel to n frames
    of h x w (None when the data is absent). Real footage compresses far better than the
    synthetic noise clip, and decodes faster per pixel."""
    from rainset.video import iter_frames

    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "realrain13"
    clips = sorted(folder.glob("*.mp4"))
    if not clips:
        return None
    pixels = 0

    def run():
        nonlocal pixels
        pixels = 0
        for clip in clips:
            for f in iter_frames(clip):
                pixels += f.shape[0] * f.shape[1]

    return timed(run) * (h * w * n) / pixels


def peak_rss_child(h: int, w: int, n: int, select: str, engine: str) -> dict:
    """Peak resident memory added by one estimate, sampled from /proc in a fresh process."""
    code = f"""
import json, threading, time, numpy as np
from rainset import groundtruth as gt
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
x = np.empty(({n}, {h}, {w}, 3), np.uint8)
x[:] = np.random.default_rng(0).integers(0, 256, x.shape[1:], dtype=np.uint8)
x[::3] += 7
gt._estimate(x[:, :8, :8].copy(), select="{select}", method="spa", engine="{engine}")  # load kernels
base = rss()
peak = [base]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.0005)
th = threading.Thread(target=sample)
th.start()
gt._estimate(x, select="{select}", method="spa", engine="{engine}")
done.set()
th.join()
print(json.dumps({{"stack": x.nbytes, "base": base, "extra": peak[0] - base}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="540p x 100 instead of 1080p x 200")
    ap.add_argument("--no-numpy", action="store_true", help="skip the (slow) numpy sort path")
    args = ap.parse_args()
    h, w, n = (540, 960, 100) if args.quick else (1080, 1920, 200)
    threads = os.cpu_count()
    print(f"estimator benchmark: {w}x{h} x {n} frames, {threads} CPUs, engine {gt._cpu_engine()}")

    t0 = time.perf_counter()
    bg = scene(h, w)
    frames = rain_stack(bg, n)
    print(f"  synthetic stack: {frames.nbytes / 2**30:.2f} GiB in {time.perf_counter() - t0:.1f} s")

    gt._estimate(frames[:3, :16, :16], select="luma", method="spa", engine="numba")  # compile/load
    gt._estimate(frames[:3, :16, :16], select="luma", method="robust", engine="numba")
    rows = []
    for label, kw in [
        ("numba luma (default)", dict(select="luma", method="spa", engine="numba")),
        ("numba rgb", dict(select="rgb", method="spa", engine="numba")),
        ("numba robust", dict(select="luma", method="robust", engine="numba")),
    ]:
        rows.append((label, timed(lambda kw=kw: gt._estimate(frames, **kw))))
    if not args.no_numpy:
        rows.append(
            (
                "numpy sort luma",
                timed(lambda: gt._estimate(frames, select="luma", method="spa", engine="numpy"), 1),
            )
        )
    try:
        import torch

        rows.append(
            (
                "torch cpu luma",
                timed(
                    lambda: gt._estimate(frames, select="luma", method="spa", engine="torch-cpu"), 1
                ),
            )
        )
        if torch.cuda.is_available():
            gt._estimate(frames[:3, :16, :16], select="luma", method="spa", engine="torch-cuda")
            rows.append(
                (
                    "torch cuda luma",
                    timed(
                        lambda: gt._estimate(
                            frames, select="luma", method="spa", engine="torch-cuda"
                        )
                    ),
                )
            )
    except ImportError:
        pass
    crop = frames[:, :6, :8]
    t_loop = timed(lambda: python_loop(crop), 1) * (h * w) / (6 * 8)
    ref = gt._estimate(crop, select="luma", method="spa", engine="numba").image
    assert np.array_equal(python_loop(crop), ref), "python loop and numba disagree"
    rows.append(("python loop (extrapolated)", t_loop))

    t_dec = decode_time(h, w, n)
    t_real = real_decode_time(h, w, n)
    load = os.getloadavg()[0]
    base = rows[0][1]
    print(
        f"\n  decode {n} frames of H.264 with rainset.video: {t_dec[0]:.2f} s wall, "
        f"{t_dec[1]:.2f} s CPU ({1000 * t_dec[0] / n:.1f} ms/frame); load average {load:.1f}"
    )
    real = t_dec if t_real is None else t_real
    if t_real is not None:
        print(
            f"  decode of the real clips (realrain13) scaled to {w}x{h} x {n}: {t_real[0]:.2f} s "
            f"wall ({1000 * t_real[0] / n:.1f} ms/frame); 'x real' compares with that"
        )
    print(
        f"  {'path':28s} {'wall s':>8s} {'CPU s':>7s} {'x numba luma':>13s} {'x decode':>9s} {'x real':>7s}"
    )
    for label, t in rows:
        print(
            f"  {label:28s} {t[0]:8.3f} {t[1]:7.3f} {t[0] / base[0]:13.2f} {t[0] / t_dec[0]:9.3f}"
            f" {t[0] / real[0]:7.3f}"
        )

    # Memory: peak RSS over the stack, measured in fresh processes (4K with few frames: the
    # numba path's extra memory is per pixel and does not depend on T).
    mh, mw, mn = (270, 480, 100) if args.quick else (2160, 3840, 40)
    print(f"\n  memory ({mw}x{mh} x {mn} frames, fresh process, RSS sampled from /proc):")
    for select, engine in [("luma", "numba"), ("rgb", "numba"), ("luma", "numpy")]:
        r = peak_rss_child(mh, mw, mn, select, engine)
        per_px = r["extra"] / (mh * mw)
        line = (
            f"    {select:4s} {engine:5s}: stack {r['stack'] / 2**20:.0f} MiB, peak added "
            f"{r['extra'] / 2**20:.1f} MiB"
        )
        if engine == "numba":
            est = (3840 * 2160 * 3 * 300 + per_px * 3840 * 2160) / 2**30
            line += f" = {per_px:.1f} B/pixel -> 4K x 300: {est:.2f} GiB with the stack (budget 24)"
        else:
            line += " (one tile's temporaries: bounded, whatever the size)"
        print(line)

    # Quality on composites with an exact clean image.
    qh, qw = 256, 384
    # A real scene's radiance is not an 8-bit integer: offset the clean image by a sub-level
    # amount, so rounding to uint8 cannot snap an estimate onto it.
    clean = scene(qh, qw, 3) + np.random.default_rng(4).uniform(-0.5, 0.5, (qh, qw, 3))
    print(
        f"\n  quality: composites {qw}x{qh}, iid noise sigma 2, 12-px streaks; PSNR (dB) vs the clean scene"
    )
    print(
        f"    {'rain cover':>10s} {'N':>4s} {'spa luma':>9s} {'spa rgb':>8s} {'robust':>7s} {'1 frame':>8s}"
    )
    for density, qn in [(0.05, 20), (0.1, 100), (0.2, 100), (0.35, 200)]:
        comp = rain_stack(clean, qn, seed=3, noise=2.0, density=density, iid=True)
        vals = [
            psnr(gt.estimate_clean(comp, select=sel, method=meth).image, clean)
            for sel, meth in [("luma", "spa"), ("rgb", "spa"), ("luma", "robust")]
        ]
        print(
            f"    {density:10.0%} {qn:4d} {vals[0]:9.2f} {vals[1]:8.2f} {vals[2]:7.2f} {psnr(comp[0], clean):8.2f}"
        )
    print(
        f"\n  max RSS of this run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )


if __name__ == "__main__":
    main()
