"""PNG settings for dataset images: encode time and size per setting, on the images datasets hold.

The images (``--images`` picks groups by name):

- ``synth``: what ``benchmarks/bench_synth.py`` writes: its bundled photo upscaled to
  1024 x 2048 with no added noise (smooth: 4x horizontally), and from it the rainy image
  (medium, heavy), mask, 16-bit rain map, residual and the four low-pass tiers;
- ``synth-photos``: the other bundled photos upscaled the same way, each with its rainy
  image, residual and rain map, light and medium rain (sparse residuals and maps);
- ``synth-noisy``: the same photo with sensor noise (sigma 2) added before rendering, as a
  real photo has, its rainy images and residuals;
- ``frame``: a 1080p frame decoded from the build-gt benchmark's kind of clip (static
  photo, synthetic rain, sensor noise sigma 2, H.264 crf 18) and its rain mask;
- ``real``: with the shared footage beside the repository (``../shared/data``, read-only):
  the first frame of each realrain13 clip (720x480 H.264; ``--real-clips``), the rain masks of
  two of them against their clip's median (what build-gt writes), and JPEG frames of
  nturain-ra1 and nturain-a1 (640x480 photos).

Each setting encodes every image of its kind ``--repeat`` times, interleaved; the time is
the median CPU time of the encoding thread (``cv2.imencode`` runs on the calling thread), so
other work on a shared machine moves it less than the wall time; sizes are the encoded
bytes. The ratio columns compare with the setting before issue 14 (zlib level 3, OpenCV's
default strategy and filter: libpng's adaptive choice among all five filters). The target
(issue 14): no image more than 1.10x its level-3 size. Every setting is lossless; the script
checks that each decodes to the same pixels.

Colour settings run on colour and 16-bit images, grey settings on 8-bit single-channel
images (masks); "first cut" is issue 14's first choice (level 2 Up, masks level 1 RLE without
a filter), for comparison; "rainset PNG_SETTINGS" is what rainset writes (per image: ``color`` or
``grey``, :data:`rainset.image.PNG_SETTINGS`). OpenCV accepts one filter or the libpng
sets "fast" (none, sub, up) and "all" as IMWRITE_PNG_FILTER; it replaces any other
combination by Sub (with a warning). A last table sums rainset's and the first cut's rows by
kind of image (video frames, photos, synthetic images, residuals, rain maps, masks); rainset's
time includes its filter trial (``rainset.image.png_trial``).

``--synth-dataset 4`` also writes the dataset ``benchmarks/bench_synth.py`` writes (4 photos)
with rainset's settings and compares each file with its pixels encoded at level 3.

Usage: python benchmarks/bench_png.py [--repeat 5] [--images synth,real] [--only REGEX]
       [--detail 'rainset PNG_SETTINGS'] [--synth-dataset 4] [--webp]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rainset.image import PNG_SETTINGS, png_params

#: The shared real footage, beside the repository (used when present).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GROUPS = ("synth", "synth-photos", "synth-noisy", "frame", "real")


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _mask(m: np.ndarray) -> np.ndarray:
    return m.astype(np.uint8) * np.uint8(255)


def _rain_map(rendered) -> np.ndarray:
    """The 16-bit rain map synth writes for a render."""
    from rainset.synth import RAIN_MAP_SCALE

    return np.clip(np.rint(rendered.rain / RAIN_MAP_SCALE), 0, 65535).astype(np.uint16)


def _upscaled(path) -> np.ndarray:
    """A bundled photo scaled up to 1024 x 2048 as bench_synth.py does (smooth: 4x horizontally)."""
    from rainset import synth as S

    return cv2.resize(S.load_photo(path), (2048, 1024), interpolation=cv2.INTER_CUBIC)


def images(groups: tuple[str, ...], real_clips: int) -> dict[str, np.ndarray]:
    """name -> BGR (or grey / 16-bit) array as cv2.imencode gets it."""
    from rainset import synth as S
    from rainset.demo import example_photo, rainy_frames
    from rainset.image import rain_mask
    from rainset.video import iter_frames, read_frames, write_video

    out: dict[str, np.ndarray] = {}
    smooth = _upscaled(S.bundled_photos()[0].path)  # bench_synth's
    if "synth" in groups:
        out["synth clean (4x upscale)"] = _bgr(smooth)
        for density in ("medium", "heavy"):
            r = S.render(smooth, S.sample_params(smooth.shape, rng=3, density=density))
            out[f"synth rainy {density}"] = _bgr(r.rainy)
            out[f"synth mask {density}"] = _mask(r.mask)
            out[f"synth rain map 16-bit {density}"] = _rain_map(r)
            out[f"synth residual {density}"] = _bgr(r.residual)
        for k, tier in S.lowpass_tiers(smooth).items():
            out[f"synth tier {k}x{k}"] = _bgr(tier)
    if "synth-photos" in groups:
        for i, ph in enumerate(S.bundled_photos()[1:]):
            up = _upscaled(ph.path)
            name = Path(ph.key).stem
            for density in ("light", "medium"):
                r = S.render(up, S.sample_params(up.shape, rng=i, density=density))
                out[f"{name} rainy {density}"] = _bgr(r.rainy)
                out[f"{name} residual {density}"] = _bgr(r.residual)
                out[f"{name} rain map 16-bit {density}"] = _rain_map(r)
    if "synth-noisy" in groups:
        rng = np.random.default_rng(0)  # sensor noise, as a real photo has (the resize smooths it)
        noise = rng.normal(0, 2, smooth.shape).round().astype(np.int16)
        clean = np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        out["noisy clean"] = _bgr(clean)
        for density in ("medium", "heavy"):
            r = S.render(clean, S.sample_params(clean.shape, rng=3, density=density))
            out[f"noisy rainy {density}"] = _bgr(r.rainy)
            out[f"noisy residual {density}"] = _bgr(r.residual)
    if "frame" in groups:
        with tempfile.TemporaryDirectory() as tmp:
            bg = cv2.resize(
                example_photo("astronaut", max_side=4096),
                (1920, 1080),
                interpolation=cv2.INTER_CUBIC,
            )
            clip = Path(tmp) / "c.mp4"
            write_video(
                clip, rainy_frames(bg, 8, noise_sigma=2.0, rng=1, density="medium"), fps=25, crf=18
            )
            frames = read_frames(clip)
        out["1080p frame"] = _bgr(frames[5])
        out["1080p mask"] = _mask(rain_mask(frames[5], np.median(frames, axis=0).astype(np.uint8)))
    if "real" in groups:
        clips = sorted((SHARED / "realrain13").glob("*.mp4"))[:real_clips]
        for i, clip in enumerate(clips):
            if i < 2:  # a real mask: the frame against its clip's median (build-gt's kind)
                frames = read_frames(clip, stop=24)
                out[f"realrain13 {clip.stem} frame"] = _bgr(frames[0])
                med = np.median(frames, axis=0).astype(np.uint8)
                out[f"realrain13 {clip.stem} mask"] = _mask(rain_mask(frames[0], med))
            else:
                out[f"realrain13 {clip.stem} frame"] = _bgr(next(iter(iter_frames(clip))))
        for folder in ("nturain-ra1", "nturain-a1/rain", "nturain-a1/clean"):
            for p in sorted((SHARED / folder).glob("*.jpg"))[:2]:
                out[f"{folder} {p.stem}"] = cv2.imread(str(p))
    return out


#: The settings of issue 14's first cut (before the filter trial), for comparison.
FIRST_CUT = {
    "color": {"level": 2, "strategy": "default", "filter": "up"},
    "grey": {"level": 1, "strategy": "rle", "filter": "none"},
}


def _params(img: np.ndarray, params: list[int] | dict | None) -> list[int]:
    """A row's cv2.imencode parameters: fixed, or from settings (None: rainset's)."""
    return params if isinstance(params, list) else png_params(img, params)


def kind(name: str) -> str:
    """The kind of a benchmark image, by its name."""
    if "mask" in name:
        return "masks"
    if "16-bit" in name:
        return "16-bit rain maps"
    if "residual" in name:
        return "residuals"
    if name.startswith(("realrain13", "1080p")):
        return "video frames"
    if name.startswith("nturain"):
        return "photos (NTURain JPEG)"
    return "synthetic photos, rainy, tiers"


def is_grey(img: np.ndarray) -> bool:
    return img.ndim == 2 and img.dtype == np.uint8


def settings(webp: bool) -> tuple[dict[str, tuple[str, list[int] | None]], dict[str, list[int]]]:
    """(colour settings: name -> (suffix, params); grey settings: name -> params). The rows
    "level 3 (legacy)" and "rainset PNG_SETTINGS" (params None: rainset.image.png_params)
    run on every image."""
    L, S_, F = cv2.IMWRITE_PNG_COMPRESSION, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_FILTER
    rle, huff = cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY
    none, sub, up = (
        cv2.IMWRITE_PNG_FILTER_NONE,
        cv2.IMWRITE_PNG_FILTER_SUB,
        cv2.IMWRITE_PNG_FILTER_UP,
    )
    avg, paeth = cv2.IMWRITE_PNG_FILTER_AVG, cv2.IMWRITE_PNG_FILTER_PAETH
    fast, every = cv2.IMWRITE_PNG_FAST_FILTERS, cv2.IMWRITE_PNG_ALL_FILTERS
    colour: dict[str, tuple[str, list[int] | None]] = {
        "OpenCV defaults": (".png", []),
        "level 1 up": (".png", [L, 1, F, up]),
        "level 2 up": (".png", [L, 2, F, up]),
        "level 3 up": (".png", [L, 3, F, up]),
        "level 2 sub": (".png", [L, 2, F, sub]),
        "level 2 avg": (".png", [L, 2, F, avg]),
        "level 2 paeth": (".png", [L, 2, F, paeth]),
        "level 1 fast filters": (".png", [L, 1, F, fast]),
        "level 2 fast filters": (".png", [L, 2, F, fast]),
        "level 3 fast filters": (".png", [L, 3, F, fast]),
        "level 1 all filters": (".png", [L, 1, F, every]),
        "level 2 all filters": (".png", [L, 2, F, every]),
        "RLE all filters": (".png", [L, 1, S_, rle, F, every]),
        "Huffman all filters": (".png", [L, 1, S_, huff, F, every]),
    }
    if webp:
        colour["WebP lossless"] = (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])
    grey = {
        "grey: level 1 none": [L, 1, F, none],
        "grey: level 1 RLE none": [L, 1, S_, rle, F, none],
        "grey: level 1 RLE up": [L, 1, S_, rle, F, up],
        "grey: level 1 RLE fast": [L, 1, S_, rle, F, fast],
        "grey: level 2 none": [L, 2, F, none],
        "grey: level 1 all filters": [L, 1, F, every],
    }
    return colour, grey


def synth_dataset(n_photos: int) -> None:
    """The bytes of the dataset ``benchmarks/bench_synth.py`` writes (its photos, 2 variants
    each, every default output), against each file's pixels encoded at level 3, by folder."""
    from rainset import synth as S
    from rainset.image import write_image

    clean = _upscaled(S.bundled_photos()[0].path)
    by_folder: dict[str, list[int]] = {}
    worst = (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        for i in range(n_photos):
            write_image(folder / f"p{i}.png", np.roll(clean, 97 * i, axis=1))
        out = Path(tmp) / "ds"
        list(S.synthesize(S.find_photos(folder), out, options=S.SynthOptions(per_image=2)))
        for f in sorted(out.rglob("*.png")):
            stored = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            legacy = cv2.imencode(".png", stored, [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].size
            row = by_folder.setdefault(f.relative_to(out).parts[0], [0, 0, 0])
            row[0] += f.stat().st_size
            row[1] += legacy
            row[2] += 1
            worst = max(worst, (f.stat().st_size / legacy, str(f.relative_to(out))))
    print(
        f"\nbench_synth's dataset ({n_photos} photos x 2 variants): bytes against level 3, by folder"
    )
    for name, (b, b0, n) in by_folder.items():
        print(f"  {name:10s} {n:3d} files {b / 1e6:7.2f} MB  {b / b0:5.3f}x")
    b, b0 = sum(v[0] for v in by_folder.values()), sum(v[1] for v in by_folder.values())
    print(
        f"  {'all':10s} {sum(v[2] for v in by_folder.values()):3d} files {b / 1e6:7.2f} MB  {b / b0:5.3f}x; "
        f"largest file ratio {worst[0]:.3f}x ({worst[1]})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--images",
        default=",".join(GROUPS),
        help=f"image groups, comma-separated: {', '.join(GROUPS)}",
    )
    ap.add_argument(
        "--real-clips", type=int, default=13, help="realrain13 clips to take a frame of"
    )
    ap.add_argument(
        "--only", help="regular expression: run only the settings it finds (and the two baselines)"
    )
    ap.add_argument("--webp", action="store_true", help="also time lossless WebP (slow)")
    ap.add_argument("--detail", action="append", help="a setting to show image by image")
    ap.add_argument(
        "--synth-dataset",
        type=int,
        metavar="PHOTOS",
        default=0,
        help="also write bench_synth.py's dataset from this many photos and compare its bytes with level 3",
    )
    args = ap.parse_args()
    groups = tuple(g for g in args.images.split(",") if g)
    if unknown := set(groups) - set(GROUPS):
        ap.error(f"unknown image groups: {', '.join(sorted(unknown))}")
    imgs = images(groups, args.real_clips)
    colour, grey = settings(args.webp)
    table: dict[str, tuple[str, list[int] | dict | None, list[str]]] = {
        "level 3 (legacy)": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 3], list(imgs)),
        "rainset PNG_SETTINGS": (".png", None, list(imgs)),
        "first cut (L2 up, masks RLE)": (".png", FIRST_CUT, list(imgs)),
    }
    for name, (ext, params) in colour.items():
        ok = [
            i for i, a in imgs.items() if not is_grey(a) and (ext == ".png" or a.dtype == np.uint8)
        ]
        table[name] = (ext, params, ok)
    for name, params in grey.items():
        table[name] = (".png", params, [i for i, a in imgs.items() if is_grey(a)])
    if args.only:
        table = {k: v for i, (k, v) in enumerate(table.items()) if i < 3 or re.search(args.only, k)}
    sizes: dict[str, dict[str, int]] = {name: {} for name in table}
    times: dict[str, dict[str, list[float]]] = {name: {} for name in table}
    for name, (ext, params, names) in table.items():
        for iname in names:
            img = imgs[iname]
            ok, buf = cv2.imencode(ext, img, _params(img, params))
            assert ok
            back = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            assert back.dtype == img.dtype and np.array_equal(back, img), (
                f"{name} is lossy on {iname}"
            )
            sizes[name][iname] = buf.size
            times[name][iname] = []
    for _ in range(args.repeat):  # interleaved, so a change of load hits every setting alike
        for name, (ext, params, names) in table.items():
            for iname in names:
                img = imgs[iname]
                t = time.thread_time()  # rainset's row: its filter trial (png_params) counts
                cv2.imencode(ext, img, _params(img, params))
                times[name][iname].append(time.thread_time() - t)
    res = {
        name: {i: (statistics.median(ts), sizes[name][i]) for i, ts in row.items()}
        for name, row in times.items()
    }
    base = res["level 3 (legacy)"]
    libpng = next(
        (x.strip() for x in cv2.getBuildInformation().splitlines() if x.strip().startswith("PNG:")),
        "",
    )
    print(
        f"OpenCV {cv2.__version__} ({libpng}), median CPU time of {args.repeat}, one thread per encode; "
        f"{len(imgs)} images:"
    )
    for iname, img in imgs.items():
        print(
            f"  {iname:34s} {img.shape[1]}x{img.shape[0]} {img.dtype}{' grey' if is_grey(img) else ''}, "
            f"level 3: {base[iname][0] * 1e3:.0f} ms, {base[iname][1] / 1e6:.3f} MB"
        )
    print(f"\nrainset PNG_SETTINGS: {PNG_SETTINGS}")
    print(
        "\nper setting, over the images it runs on: summed ms and MB, ratio to level 3 (time, size),"
        " and the largest size ratio of any one image (target <= 1.10)"
    )
    print(
        f"{'setting':26s} {'n':>3s} {'ms':>7s} {'MB':>7s} {'time':>6s} {'size':>6s} {'worst image':>38s} {'':6s}"
    )
    for name, row in res.items():
        if not row:
            continue
        t = sum(v[0] for v in row.values())
        b = sum(v[1] for v in row.values())
        t0 = sum(base[i][0] for i in row)
        b0 = sum(base[i][1] for i in row)
        worst = max(row, key=lambda i: row[i][1] / base[i][1])
        wr = row[worst][1] / base[worst][1]
        print(
            f"{name:26s} {len(row):3d} {t * 1e3:7.0f} {b / 1e6:7.2f} {t / t0:5.2f}x {b / b0:5.2f}x "
            f"{worst:>38s} {wr:5.3f}x{'' if wr <= 1.10 else ' over'}"
        )
    kinds = sorted({kind(i) for i in imgs})
    print("\nby kind of image: time and size ratio to level 3 (sums), and the largest size ratio")
    print(f"{'kind':30s} {'n':>3s}" + "".join(f" {n[:28]:>28s}" for n in list(res)[1:3]))
    for k in kinds:
        names = [i for i in imgs if kind(i) == k]
        cells = []
        for setting in list(res)[1:3]:
            row = res[setting]
            t = sum(row[i][0] for i in names) / sum(base[i][0] for i in names)
            b = sum(row[i][1] for i in names) / sum(base[i][1] for i in names)
            w = max(row[i][1] / base[i][1] for i in names)
            cells.append(f"{t:5.2f}x {b:5.3f}x (<= {w:5.3f}x)")
        print(f"{k:30s} {len(names):3d}" + "".join(f" {c:>28s}" for c in cells))
    for name in args.detail or ():
        print(f"\n{name}: per image (ms, MB, time and size ratios to level 3)")
        for iname, (t, b) in res[name].items():
            t0, b0 = base[iname]
            print(f"  {iname:34s} {t * 1e3:6.0f} {b / 1e6:7.3f}  {t / t0:5.2f}x {b / b0:5.3f}x")
    if args.synth_dataset:
        synth_dataset(args.synth_dataset)


if __name__ == "__main__":
    main()
