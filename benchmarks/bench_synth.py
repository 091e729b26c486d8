"""Benchmark of ``rainset synth``: in-memory speed against albumentations, and end to end.

1. In memory, 1024 x 2048 (the paper's Cityscapes size): ms per image for
   ``sample_params`` + ``render`` (rainy image, rain map, exact residual, mask, measured
   coverage) + ``labels``, against albumentations' ``RandomRain`` (default arguments) on the
   same image, interleaved in the same run; the ratio is ours / theirs (target <= 1.0).
   albumentations is not a rainset dependency: when it is missing the comparison is skipped.
   The low-pass tiers (four Gaussian filters of the clean image, once per photo) are timed
   apart.
2. End to end: samples per second written by :func:`rainset.synth.synthesize` (PNG images,
   masks, 16-bit rain maps, residuals, tiers, manifest) with 1 and 2 workers, each run in a
   fresh process (kernels loaded before the clock starts), beside the peak RSS, against
   - the reference (the limit of the write path): load the photos and write the same files
     with the same PNG settings on a thread per core (``rainset._encode.EncodePool``);
   - the legacy write path before issue 14: PNG level 3, serial writes;
   - and the fast choice, ``--tiers lazy --no-residual`` (fewer files).
   Targets: workers=2 >= 0.8x the reference, and faster than workers=1.

Run: ``python benchmarks/bench_synth.py [--repeats 15] [--photos 4] [--e2e-repeat 3]``.
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


#: One end-to-end measurement in a fresh process: prints its seconds and peak RSS (MiB).
#: argv: mode (synth | reference), workers, photo folder, output folder, a finished dataset
#: (reference: the files to write again), options as JSON.
CHILD = """
import json, resource, sys, time
from pathlib import Path
mode, workers, photos, out, done, opts = sys.argv[1:7]
from rainset import synth as S
from rainset.image import write_image
from rainset._encode import EncodePool
options = S.SynthOptions(**json.loads(opts))
found = S.find_photos(photos)
if mode == "synth":
    import numpy as np
    small = np.full((64, 96, 3), 90, np.uint8)  # compile / load the kernels before timing
    S.choose_tier(small, S.lowpass_tiers(small))
    S.render(small, S.sample_params(small.shape, rng=0))
    t = time.perf_counter()
    for _ in S.synthesize(found, out, options=options, workers=int(workers)):
        pass
    dt = time.perf_counter() - t
else:  # the limit: load the photos, write the same files with the same settings, every core
    import cv2
    done = Path(done)
    files = {}
    for p in sorted(done.rglob("*.png")):  # the arrays as stored: RGB, grey masks, 16-bit maps
        a = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        files[p.relative_to(done)] = a if a.ndim == 2 else cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
    t = time.perf_counter()
    for p in found:
        S.load_photo(p.path)
    with EncodePool() as enc:
        futures = [enc.submit(write_image, Path(out) / rel, arr) for rel, arr in files.items()]
        for f in futures:
            f.result()
    dt = time.perf_counter() - t
# VmHWM: this process's own peak (ru_maxrss would include the parent's at the fork); worker
# processes: the largest of theirs.
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM"))
peak = max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(dt, peak / 1024)
"""


def end_to_end(n_photos: int, repeat: int) -> None:
    import json
    import shutil
    import subprocess

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _measure as M

    clean = background()
    per_image = 2
    n = n_photos * per_image
    default = {"per_image": per_image}
    fast = {"per_image": per_image, "tiers": "lazy", "residual": False}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        for i in range(n_photos):
            write_image(folder / f"p{i}.png", np.roll(clean, 97 * i, axis=1))
        done = Path(tmp) / "done"
        list(S.synthesize(S.find_photos(folder), done, options=S.SynthOptions(**default)))

        def child(mode: str, workers: int, opts: dict, legacy: bool = False) -> tuple[float, float]:
            out = Path(tmp) / "out"
            shutil.rmtree(out, ignore_errors=True)
            code = (M.LEGACY if legacy else "") + CHILD
            args = [mode, str(workers), str(folder), str(out), str(done), json.dumps(opts)]
            res = subprocess.run(M.python(code) + args, check=True, capture_output=True, text=True)
            dt, rss = map(float, res.stdout.split())
            return dt, rss

        rows = {
            "reference: load + encode": lambda: child("reference", 0, default),
            "synth workers=1": lambda: child("synth", 1, default),
            "synth workers=2": lambda: child("synth", 2, default),
            "synth workers=1, legacy": lambda: child("synth", 1, default, legacy=True),
            "synth workers=2, --tiers lazy --no-residual": lambda: child("synth", 2, fast),
        }
        samples: dict[str, list] = {k: [] for k in rows}
        for _ in range(repeat):  # interleaved, so a change of load hits every row alike
            for name, fn in rows.items():
                samples[name].append(fn())
    t = {k: M.medians(v) for k, v in samples.items()}
    ref = n / t["reference: load + encode"][0]
    one = n / t["synth workers=1"][0]
    print(f"\nEnd to end, {n_photos} photos of {H}x{W}, {per_image} variants each, PNG "
          f"(default outputs: rainy, mask, rain map, residual, clean, 4 tiers); OpenCV {cv2.__version__}, "
          f"median of {repeat}, peak RSS the largest:")
    for name, (dt, rss, _) in t.items():
        rate = n / dt
        if name.startswith("reference"):
            note = "the limit for these files"
        else:
            note = f"{rate / ref:.2f}x the reference"
            if name == "synth workers=2":
                note += f" (target >= 0.8x); {rate / one:.2f}x workers=1 (target > 1)"
            if "legacy" in name:
                note += f"; synth workers=2 is {(n / t['synth workers=2'][0]) / rate:.2f}x faster"
            if "lazy" in name:
                note += " (fewer files than the reference writes)"
        print(f"  {name:44s} {rate:6.2f} samples/s ({dt:5.1f} s) {rss:6.0f} MiB  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--e2e-repeat", type=int, default=3, help="end-to-end runs per row (median)")
    ap.add_argument("--skip-in-memory", action="store_true")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, OpenCV threads {cv2.getNumThreads()}")
    if not args.skip_in_memory:
        in_memory(args.repeats)
    end_to_end(args.photos, args.e2e_repeat)


if __name__ == "__main__":
    main()
