"""build-gt speed: whole-process wall time against decode-only and decode + encode, on a clip made here.

The clip: 1080p, 200 frames, 25 fps, H.264 (libx264, crf 18): a static textured background
(a scikit-image photo), rainset's synthetic rain, Gaussian sensor noise sigma 2 levels.

Printed, each a median over --repeat runs (in one run, interleaved), with the CPU time (user +
system, all threads) and the peak RSS of the process beside it:
  decode-only         python -c "iterate rainset.video.iter_frames over the clip"
  decode + encode     the reference for the write path: decode the clip and write the files
                      build-gt --write all writes (every frame, its rain mask against the
                      window's clean image, the clean image) with rainset's PNG settings on
                      a thread per core (rainset._encode.EncodePool)
  build-gt clean      rainset build-gt CLIP --frames 200 --write clean --review accept
  build-gt all        the same with rainy frames and masks written (frames/s)
  build-gt all legacy the write path before issue 14: PNG level 3, serial writes
  --floors adds two rows that compute the same clean image (checked bit for bit) with nothing
  else around them, each as a ratio to decode-only:
  floor: RGB stack    decode into the window's RGB frame stack and estimate (build-gt's design
                      minus the pipeline: the least --write clean can cost as built)
  floor: YUV stack    the same with the window kept as decoded YUV 4:2:0 planes, converted to RGB
                      band by band inside the estimate (a design not built; see FLOOR_YUV)
and the ratios: build-gt clean / decode-only (target <= 1.5x), build-gt all / decode + encode
(target <= 1.25x), legacy / build-gt all (target >= 2.5x faster); each also as a CPU ratio, the
steadier figure when other work shares the cores. Then the estimator on a
small crop against a plain per-pixel Python loop (the released notebook took ~187 s per
100-frame video with such loops).

Each row starts --pause seconds (default 4) after the one before: the development VM hands
memory a process freed back to its host after a few seconds, and a process started sooner gets
that memory already backed: the first touch of the 1.2 GB frame stack then costs ~0.1 s of
CPU instead of the 1.5-1.8 s a run on its own pays, and a build-gt row that follows a large
one looks faster than it is. The pause does not remove all of it (the second of two build-gt
runs 10 s apart measured 0.2-1 s faster, whichever ran second): compare changes of the code
with the runs' order alternating.

Usage: python benchmarks/bench_buildgt.py [--repeat 3] [--frames 200] [--height 1080] [--pause 4] [--floors]
"""

from __future__ import annotations

import argparse
import os
import shutil
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


#: The reference: decode, then write what build-gt --write all writes, on every core.
REFERENCE = """
import sys
import numpy as np
from pathlib import Path
from rainset._encode import EncodePool
from rainset.image import rain_mask, read_image, write_image
from rainset.video import iter_frames
clip, clean_path, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
clean = read_image(clean_path)
with EncodePool() as enc:
    futures = [enc.submit(write_image, out / "clean.png", clean)]
    for i, f in enumerate(iter_frames(clip)):
        futures.append(enc.submit(write_image, out / "rain" / f"{i:06d}.png", f))
        mask = rain_mask(f, clean).astype(np.uint8) * np.uint8(255)
        futures.append(enc.submit(write_image, out / "mask" / f"{i:06d}.png", mask))
    for fut in futures:
        fut.result()
"""


#: The floor of today's design: what any build-gt that holds the window as RGB frames and runs
#: the SPA estimator must do, and nothing else (no probe, plan, motion check, review, manifest
#: or preview): decode on a thread into a frame stack whose memory is committed
#: meanwhile, the kernels loading in another thread, estimate, write the clean PNG.
FLOOR_RGB = """
import sys, threading
import numpy as np
from rainset._alloc import empty_large, populate_async
from rainset.groundtruth import estimate_clean, warm_up
from rainset.image import write_image
from rainset.video import iter_frames, probe, read_ahead
clip, out = sys.argv[1], sys.argv[2]
info = probe(clip)
warm = threading.Thread(target=warm_up); warm.start()
stack = empty_large((info.frame_count, info.height, info.width, 3), np.uint8)
populate_async(stack)
n = 0
for f in read_ahead(iter_frames(clip), 6):
    stack[n] = f
    n += 1
warm.join()
write_image(out, estimate_clean(stack[:n]).image)
"""

#: The floor of a design that keeps the window as the decoder's YUV 4:2:0 planes (half the
#: bytes of RGB) and converts row bands to RGB with the same swscale conversion inside the
#: estimate, once for the mode votes and once for the percentile (the same clean image, bit for
#: bit: the bench checks it). Not built: this row says what such a redesign could reach.
FLOOR_YUV = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
import av
import numpy as np
from av.video.reformatter import VideoReformatter
from rainset._alloc import empty_large, populate_async
from rainset.groundtruth import warm_up
from rainset.image import write_image
from rainset.video import probe
clip, out = sys.argv[1], sys.argv[2]
info = probe(clip)
warm = threading.Thread(target=warm_up); warm.start()
H, W = info.height, info.width
stack = empty_large((info.frame_count, H * 3 // 2, W), np.uint8)
populate_async(stack)
container = av.open(clip)
stream = container.streams.video[0]
stream.thread_type = "AUTO"
n, tags = 0, None
for f in container.decode(stream):
    tags = tags or (f.colorspace, f.color_range)
    stack[n] = f.to_ndarray()
    n += 1
warm.join()
from rainset import _gt_numba as K
BAND = 32
bands = [(y, min(H, y + BAND)) for y in range(0, H, BAND)]
def rgb_band(y0, y1):
    conv, buf = VideoReformatter(), np.empty((n, y1 - y0, W, 3), np.uint8)
    for t in range(n):
        u = stack[t, H : H + H // 4].reshape(H // 2, W // 2)[y0 // 2 : y1 // 2]
        v = stack[t, H + H // 4 :].reshape(H // 2, W // 2)[y0 // 2 : y1 // 2]
        planes = np.concatenate([stack[t, y0:y1].ravel(), u.ravel(), v.ravel()]).reshape(-1, W)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.colorspace, frame.color_range = tags
        buf[t] = conv.reformat(frame, format="rgb24", threads=1).to_ndarray()
    return buf.reshape(n, -1)
with ThreadPoolExecutor(2) as pool:
    votes = sum(pool.map(lambda b: K.mode_stats(rgb_band(*b), True)[2], bands))
    k, r = divmod(int(np.argmax(votes)) * (n - 1), 100)
    rows = list(pool.map(lambda b: K.percentile(rgb_band(*b), k, r).reshape(b[1] - b[0], W, 3), bands))
write_image(out, np.concatenate(rows))
"""


def main() -> None:
    import _measure as M

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--pause", type=float, default=4.0, help="seconds between rows (see above)")
    ap.add_argument("--floors", action="store_true", help="add the two floor rows (see FLOOR_RGB, FLOOR_YUV)")
    args = ap.parse_args()
    cache = HERE / ".cache"
    cache.mkdir(exist_ok=True)
    clip = cache / f"static_{args.height}p_{args.frames}.mp4"
    if not clip.exists():
        print(f"making {clip} ...", flush=True)
        make_clip(clip, args.frames, args.height)
    n = str(args.frames)
    common = [str(clip), "--frames", n, "--max-frames", n, "--review", "accept"]
    work = Path(tempfile.mkdtemp(prefix="rainset-bench-"))

    def fresh(name: str) -> Path:  # a finished output folder would resume instantly
        return work / f"{name}-{time.monotonic_ns()}"

    def build(write: str, legacy: bool = False) -> tuple[float, float]:
        argv = ["-q", "build-gt", *common, "--write", write, "-o", str(fresh(write))]
        prefix = M.LEGACY if legacy else ""
        return M.run(M.python(prefix + f"from rainset_cli.main import cli\ncli.main({argv!r}, prog_name='rainset')"))

    decode = M.python(f"from rainset.video import iter_frames\nfor f in iter_frames({str(clip)!r}): pass")
    keep = Path(tempfile.mkdtemp(prefix="rainset-bench-clean-"))
    M.run(M.python(f"from rainset_cli.main import cli\ncli.main({['-q', 'build-gt', *common, '--write', 'clean', '-o', str(keep / 'gt')]!r})"))
    clean_png = next((keep / "gt" / "clean").rglob("*.png"))  # the window's clean image, for the masks
    M.run(decode)  # page cache and numba's on-disk cache are warm from here on
    rows = {
        "decode-only": lambda: M.run(decode),
        "decode + encode (reference)": lambda: M.run(M.python(REFERENCE) + [str(clip), str(clean_png), str(fresh("ref"))]),
        "build-gt --write clean": lambda: build("clean"),
        "build-gt --write all": lambda: build("all"),
        "build-gt --write all, legacy": lambda: build("all", legacy=True),
    }
    floor_out = keep / "floor.png"
    if args.floors:
        rows["floor: RGB stack + estimate"] = lambda: M.run(M.python(FLOOR_RGB) + [str(clip), str(floor_out)])
        rows["floor: YUV stack + estimate"] = lambda: M.run(M.python(FLOOR_YUV) + [str(clip), str(floor_out)])
    samples: dict[str, list] = {k: [] for k in rows}
    for _ in range(args.repeat):  # interleaved: a change of load hits every row alike
        for name, fn in rows.items():
            time.sleep(args.pause)
            samples[name].append(fn())
            if name.startswith("floor"):  # the floors compute build-gt's clean image, bit for bit
                from rainset.image import read_image

                assert np.array_equal(read_image(floor_out), read_image(clean_png)), f"{name}: another image"
            shutil.rmtree(work, ignore_errors=True)  # keep the disk use to one output
            work.mkdir()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(keep, ignore_errors=True)
    t = {k: M.medians(v) for k, v in samples.items()}
    dec, ref, clean, full, legacy = (t[k][0] for k in list(rows)[:5])
    print(f"clip: {clip.name}  cores: {os.cpu_count()}  OpenCV {cv2.__version__}  repeat: {args.repeat} (medians; "
          f"peak RSS the largest; {args.pause:g} s between rows)")
    note = {
        "decode-only": "1.00x",
        "decode + encode (reference)": f"{ref / dec:.2f}x decode-only",
        "build-gt --write clean": f"{clean / dec:.2f}x decode-only (target <= 1.5x)",
        "build-gt --write all": f"{full / ref:.2f}x the reference (target <= 1.25x); {args.frames / full:.1f} frames/s",
        "build-gt --write all, legacy": f"{legacy / full:.2f}x slower than build-gt --write all (target >= 2.5x)",
    }
    for name in list(rows)[5:]:
        note[name] = f"{t[name][0] / dec:.2f}x decode-only"
    print(f"{'':31s} {'wall':>9s}  {'CPU':>8s}  {'peak RSS':>11s}   wall ratio; CPU ratio (user + system, all threads)")
    cpu = {k: v[2] for k, v in t.items()}
    base = {"decode + encode (reference)": "decode-only", "build-gt --write all": "decode + encode (reference)",
            "build-gt --write all, legacy": "build-gt --write all"}
    for name, (wall, rss, c) in t.items():
        over = base.get(name, "decode-only")
        print(f"{name:31s} {wall:7.2f} s  {c:6.2f} s  {rss:7.0f} MiB   {note[name]}; CPU {c / cpu[over]:.2f}x")

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
