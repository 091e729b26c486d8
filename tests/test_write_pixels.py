"""Every PNG the pipelines write decodes to the arrays they computed (issue 14: the faster
encoder settings and the encode pool change the bytes, never the pixels), and "write only
what is asked" (build-gt ``--no-masks``, synth ``--no-residual``, ``--tiers lazy``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from conftest import rain_frames, textured_background
from test_encode import allowed_row_filters, as_written_again, kind_of, png_row_filters
from test_encode import decode as _decode

from rainset.image import PNG_SETTINGS, rain_mask, read_image, write_image
from rainset_cli.main import cli


def _run(*args) -> None:
    r = CliRunner().invoke(cli, ["-q", *[str(a) for a in args]])
    assert r.exit_code == 0, r.output


def _records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def _every_png_written_with_the_settings(root: Path) -> int:
    """Check that every PNG under ``root`` holds the bytes that the settings recorded in its
    ``rainset.json`` give for its pixels (rainset.image.PNG_SETTINGS), each row filtered with
    one of the filters they list; returns how many PNGs there are."""
    recorded = json.loads((root / "rainset.json").read_text())["png"]
    assert recorded == PNG_SETTINGS
    pngs = [
        p for p in root.rglob("*.png") if "previews" not in p.parts and not p.name.startswith(".")
    ]
    for p in pngs:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert png_row_filters(p) <= allowed_row_filters(recorded[kind_of(img)]["filter"]), p
        assert p.read_bytes() == as_written_again(p, recorded), p
    return len(pngs)


def _clip(tmp_path: Path, n=24, h=48, w=64, seed=0) -> tuple[Path, np.ndarray]:
    from rainset.video import read_frames, write_video

    path = tmp_path / f"clip{seed}.mp4"
    write_video(path, rain_frames(textured_background(h, w, seed), n, seed=seed), fps=10, crf=10)
    return path, read_frames(path)


def test_build_gt_pngs_decode_to_the_frames_the_estimate_and_the_masks(tmp_path):
    from rainset.groundtruth import estimate_clean

    clip, frames = _clip(tmp_path)
    out = tmp_path / "gt"
    _run("build-gt", clip, "-o", out, "--review", "accept", "--frames", "20", "--max-frames", "20")
    recs = _records(out)
    assert len(recs) == 20
    start = min(r["frame"] for r in recs)
    clean = estimate_clean(frames[start : start + 20]).image
    for r in recs:
        rainy = _decode(out / r["rainy"])
        assert np.array_equal(rainy, frames[r["frame"]])
        assert np.array_equal(_decode(out / r["clean"]), clean)
        assert np.array_equal(_decode(out / r["mask"]) > 0, rain_mask(rainy, clean))
    assert _every_png_written_with_the_settings(out) == 41


def test_build_gt_no_masks_writes_the_same_frames_without_masks(tmp_path):
    clip, frames = _clip(tmp_path)
    out = tmp_path / "gt"
    _run(
        "build-gt",
        clip,
        "-o",
        out,
        "--review",
        "accept",
        "--frames",
        "10",
        "--max-frames",
        "10",
        "--no-masks",
    )
    recs = _records(out)
    assert len(recs) == 10 and all("mask" not in r for r in recs)
    assert not (out / "mask").exists()
    for r in recs:
        assert np.array_equal(_decode(out / r["rainy"]), frames[r["frame"]])
    assert json.loads((out / "rainset.json").read_text())["params"]["masks"] is False


def test_synth_pngs_decode_to_the_rendered_arrays(tmp_path):
    from rainset import synth as S

    photos = tmp_path / "photos"
    for i in range(2):
        write_image(photos / f"p{i}.png", textured_background(40, 56, seed=10 + i))
    out = tmp_path / "syn"
    _run("synth", photos, "-o", out, "--per-image", "2", "--test-fraction", "0")
    recs = _records(out)
    assert len(recs) == 4
    opt = S.SynthOptions(per_image=2)
    for r in recs:
        clean = S.load_photo(photos / f"{r['source']}")
        params = S.sample_params(
            clean.shape, config=opt.config, rng=S.sample_seed(0, r["source"], r["variant"])
        )
        ren = S.render(clean, params, mask_threshold=opt.config.mask_threshold)
        rain16 = np.clip(np.rint(ren.rain / S.RAIN_MAP_SCALE), 0, 65535).astype(np.uint16)
        assert np.array_equal(_decode(out / r["clean"]), clean)
        assert np.array_equal(_decode(out / r["rainy"]), ren.rainy)
        assert np.array_equal(_decode(out / r["mask"]) > 0, ren.mask)
        assert np.array_equal(_decode(out / r["rain_map"]), rain16)
        assert np.array_equal(_decode(out / r["residual"]), ren.residual)
        tiers = S.lowpass_tiers(clean)
        for name, rel in r["tiers"].items():
            assert np.array_equal(_decode(out / rel), tiers[int(name.split("x")[0])])
    assert _every_png_written_with_the_settings(out) == 2 * (1 + 4) + 4 * 4


def test_synth_no_residual_and_lazy_tiers_write_only_what_is_asked(tmp_path):
    photos = tmp_path / "photos"
    write_image(photos / "p0.png", textured_background(40, 56, seed=3))
    out = tmp_path / "syn"
    _run(
        "synth",
        photos,
        "-o",
        out,
        "--per-image",
        "2",
        "--test-fraction",
        "0",
        "--no-residual",
        "--tiers",
        "lazy",
    )
    recs = _records(out)
    assert len(recs) == 2 and all("residual" not in r and "tiers" not in r for r in recs)
    assert not (out / "residual").exists() and not (out / "tiers").exists()
    assert {p.parts[len(out.parts)] for p in out.rglob("*.png")} == {
        "clean",
        "rainy",
        "mask",
        "rain_map",
    }
    assert json.loads((out / "rainset.json").read_text())["params"]["residual"] is False


def test_synth_with_two_workers_writes_the_same_pixels(tmp_path):
    from dscompare import assert_same_dataset

    photos = tmp_path / "photos"
    for i in range(3):
        write_image(photos / f"p{i}.png", textured_background(32, 48, seed=20 + i))
    args = ["--per-image", "5", "--test-fraction", "0"]
    _run("synth", photos, "-o", tmp_path / "one", *args)
    _run("synth", photos, "-o", tmp_path / "two", *args, "--workers", "2")
    assert_same_dataset(tmp_path / "one", tmp_path / "two")


def test_pairs_pngs_decode_to_the_decoded_frames(tmp_path):
    clip, frames = _clip(tmp_path, n=30)
    out = tmp_path / "tl"
    _run("pairs", clip, "-o", out, "--frames", "12", "--test-fraction", "0")
    recs = _records(out)
    assert recs
    for r in recs:
        assert np.array_equal(_decode(out / r["frame"]), frames[r["index"]])
        if "mask" in r:
            assert set(np.unique(_decode(out / r["mask"]))) <= {0, 255}
    assert _every_png_written_with_the_settings(out) >= len(recs)


def test_import_pngs_decode_to_the_source_images(tmp_path):
    rng = np.random.default_rng(5)
    names = [f"{i}.png" for i in range(1, 7)]
    for n in names:
        clean = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        write_image(tmp_path / "clean" / n, clean)
        write_image(tmp_path / "rain" / n, np.clip(clean.astype(int) + 40, 0, 255).astype(np.uint8))
    out = tmp_path / "imp"
    _run(
        "import", "paired", tmp_path / "rain", tmp_path / "clean", "-o", out, "--test-fraction", "0"
    )
    recs = _records(out)
    assert len(recs) == len(names)
    for r in recs:
        src = r["source"]
        assert np.array_equal(
            _decode(out / r["rainy"]), read_image(tmp_path / "rain" / Path(src["rainy"]).name)
        )
        assert np.array_equal(
            _decode(out / r["clean"]), read_image(tmp_path / "clean" / Path(src["clean"]).name)
        )
    assert _every_png_written_with_the_settings(out) == 2 * len(names)
