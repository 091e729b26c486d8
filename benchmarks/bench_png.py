"""PNG settings for dataset images: encode time and size per setting, on realistic images.

The images a dataset holds, made here: a 1080p frame decoded from the build-gt benchmark's
kind of clip (static photo, synthetic rain, sensor noise sigma 2, H.264 crf 18), and from one
synthesised 1024 x 2048 sample its rainy image, mask (bool -> 0/255), 16-bit rain map,
residual and a low-pass tier. Each setting encodes every image ``--repeat`` times (median ms)
with ``cv2.imencode``; sizes are the encoded bytes. The ratio columns compare with today's
setting before issue 14 (zlib level 3, default strategy and filter). Every setting is
lossless; the script checks that each decodes to the same pixels.

The row "rainset PNG_SETTINGS" is what rainset writes (per image: colour / 16-bit or grey).

Usage: python benchmarks/bench_png.py [--repeat 5] [--webp] [--detail 'rainset PNG_SETTINGS']
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rainset.image import png_params

#: The shared real footage, beside the repository (used when present).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def images() -> dict[str, np.ndarray]:
    """name -> BGR (or grey / 16-bit) array as cv2.imencode gets it."""
    from rainset import synth as S
    from rainset.demo import example_photo, rainy_frames
    from rainset.video import iter_frames, write_video

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        bg = cv2.resize(example_photo("astronaut", max_side=4096), (1920, 1080), interpolation=cv2.INTER_CUBIC)
        clip = Path(tmp) / "c.mp4"
        write_video(clip, rainy_frames(bg, 8, noise_sigma=2.0, rng=1, density="medium"), fps=25, crf=18)
        frame = list(iter_frames(clip))[5]
    out["1080p frame"] = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    real = sorted((SHARED / "realrain13").glob("*.mp4"))
    if real:  # a real rainy clip, when the shared footage is there
        out["realrain13 frame"] = cv2.cvtColor(next(iter(iter_frames(real[0]))), cv2.COLOR_RGB2BGR)
    photo = S.load_photo(S.bundled_photos()[0].path)
    clean = cv2.resize(photo, (2048, 1024), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)  # sensor noise, as a real photo has (the resize smooths it)
    clean = np.clip(clean.astype(np.int16) + rng.normal(0, 2, clean.shape).round().astype(np.int16), 0, 255).astype(np.uint8)
    for density in ("medium", "heavy"):
        r = S.render(clean, S.sample_params(clean.shape, rng=3, density=density))
        out[f"synth rainy {density}"] = cv2.cvtColor(r.rainy, cv2.COLOR_RGB2BGR)
        out[f"mask {density}"] = r.mask.astype(np.uint8) * np.uint8(255)
        out[f"rain map 16-bit {density}"] = np.clip(np.rint(r.rain / S.RAIN_MAP_SCALE), 0, 65535).astype(np.uint16)
        out[f"residual {density}"] = cv2.cvtColor(r.residual, cv2.COLOR_RGB2BGR)
    out["synth tier 9x9"] = cv2.cvtColor(S.lowpass_tiers(clean, (9,))[9], cv2.COLOR_RGB2BGR)
    return out


def settings(webp: bool) -> dict[str, tuple[str, list[int]]]:
    L, S_, F = cv2.IMWRITE_PNG_COMPRESSION, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_FILTER
    rle = cv2.IMWRITE_PNG_STRATEGY_RLE
    paeth, fast, up = cv2.IMWRITE_PNG_FILTER_PAETH, cv2.IMWRITE_PNG_FAST_FILTERS, cv2.IMWRITE_PNG_FILTER_UP
    s = {
        "level 3 (legacy)": (".png", [L, 3]),
        "rainset PNG_SETTINGS": (".png", None),  # per image: rainset.image.png_params
        "OpenCV defaults": (".png", []),
        "level 1": (".png", [L, 1]),
        "level 2": (".png", [L, 2]),
        "level 6": (".png", [L, 6]),
        "level 3 RLE": (".png", [L, 3, S_, rle]),
        "level 1 RLE paeth": (".png", [L, 1, S_, rle, F, paeth]),
        "level 2 RLE paeth": (".png", [L, 2, S_, rle, F, paeth]),
        "level 1 paeth": (".png", [L, 1, F, paeth]),
        "level 2 paeth": (".png", [L, 2, F, paeth]),
        "level 1 fast filters": (".png", [L, 1, F, fast]),
        "level 2 fast filters": (".png", [L, 2, F, fast]),
        "level 3 fast filters": (".png", [L, 3, F, fast]),
        "level 1 up": (".png", [L, 1, F, up]),
        "level 2 up": (".png", [L, 2, F, up]),
        "level 3 up": (".png", [L, 3, F, up]),
    }
    if webp:
        s["WebP lossless"] = (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--webp", action="store_true", help="also time lossless WebP (slow)")
    ap.add_argument("--detail", action="append", help="a setting to show image by image")
    args = ap.parse_args()
    imgs = images()
    table = settings(args.webp)
    sizes: dict[str, dict[str, int]] = {name: {} for name in table}
    times: dict[str, dict[str, list[float]]] = {name: {} for name in table}
    for name, (ext, params) in table.items():
        for iname, img in imgs.items():
            if ext == ".webp" and (img.dtype != np.uint8 or img.ndim == 2):
                continue
            ok, buf = cv2.imencode(ext, img, png_params(img) if params is None else params)
            assert ok
            back = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            assert back.dtype == img.dtype and np.array_equal(back, img), f"{name} is lossy on {iname}"
            sizes[name][iname] = buf.size
            times[name][iname] = []
    for _ in range(args.repeat):  # interleaved, so a change of load hits every setting alike
        for name, (ext, params) in table.items():
            for iname in times[name]:
                t = time.perf_counter()
                img = imgs[iname]
                cv2.imencode(ext, img, png_params(img) if params is None else params)
                times[name][iname].append(time.perf_counter() - t)
    res = {
        name: {i: (statistics.median(ts), sizes[name][i]) for i, ts in row.items()}
        for name, row in times.items()
    }
    base = res["level 3 (legacy)"]
    print(f"OpenCV {cv2.__version__}, median of {args.repeat}, one thread per encode; {len(imgs)} images:")
    for iname, img in imgs.items():
        print(f"  {iname:24s} {img.shape[1]}x{img.shape[0]} {img.dtype}, level 3: "
              f"{base[iname][0] * 1e3:.0f} ms, {base[iname][1] / 1e6:.2f} MB")
    print("\nper setting: summed ms and MB over the images, ratio to level 3 (time, size), and the"
          " largest size ratio of any one image")
    print(f"{'setting':22s} {'ms':>7s} {'MB':>7s} {'time':>6s} {'size':>6s} {'worst image':>40s}")
    for name, row in res.items():
        t = sum(v[0] for v in row.values())
        b = sum(v[1] for v in row.values())
        t0 = sum(base[i][0] for i in row)
        b0 = sum(base[i][1] for i in row)
        worst = max(row, key=lambda i: row[i][1] / base[i][1])
        wr = row[worst][1] / base[worst][1]
        print(f"{name:22s} {t * 1e3:7.0f} {b / 1e6:7.2f} {t / t0:5.2f}x {b / b0:5.2f}x {worst:>32s} {wr:5.2f}x")
    if args.detail:
        for name in args.detail:
            print(f"\n{name}: per image (ms, MB, time and size ratios to level 3)")
            for iname, (t, b) in res[name].items():
                t0, b0 = base[iname]
                print(f"  {iname:24s} {t * 1e3:6.0f} {b / 1e6:6.2f}  {t / t0:5.2f}x {b / b0:5.2f}x")


if __name__ == "__main__":
    main()
