"""``rainset pairs`` end to end, and rainset.pairs: scenes, dataset, pairs, report, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.dataset import check, open_dataset
from rainset.errors import InputError
from rainset.image import write_image
from rainset.metrics import psnr
from rainset.pairs import PairsOptions, find_scenes
from rainset.timelapse import StaticConfig
from rainset.video import write_video
from rainset_cli.main import cli

N = 12  # frames per segment in these tests: C(12, 2) = 66 pairs


def _with_car(frames, start: int = 10):
    """A small red box crossing frames start..start+9 (a passing car)."""
    for t, f in enumerate(frames):
        if start <= t < start + 10:
            f = f.copy()
            x = 8 * (t - start)
            f[20:32, x : x + 14] = (220, 30, 30)
        yield f


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Three scenes: a static video with a passing car, a frame folder that is static for 40
    frames and then pans, a panning video; plus a file that is not footage."""
    root = tmp_path_factory.mktemp("footage")
    bg1 = textured_background(64, 96, seed=1)
    write_video(root / "cam1.mp4", _with_car(rain_frames(bg1, 40, seed=1)), fps=10, crf=12)
    canvas = textured_background(64, 200, seed=2)
    (root / "cam2").mkdir()
    for t, f in enumerate(rain_frames(canvas[:, :96], 40, seed=2)):
        write_image(root / "cam2" / f"img{t}.png", f)
    for t in range(12):  # frame names sort naturally: img40 after img9
        x = 4 * (t + 1)
        write_image(root / "cam2" / f"img{40 + t}.png", canvas[:, x : x + 96])
    write_video(
        root / "pan.mp4", (canvas[:, 3 * t : 3 * t + 96] for t in range(30)), fps=10, crf=12
    )
    (root / "notes.txt").write_text("not footage")
    return root, bg1


def _run(*args: str):
    result = CliRunner().invoke(cli, ["pairs", *map(str, args)], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def built(footage, tmp_path_factory):
    root, _ = footage
    out = tmp_path_factory.mktemp("out") / "ds"
    res = _run(
        root,
        "-o",
        out,
        "--frames",
        N,
        "--test-scenes",
        "cam2",
        "--pseudo-gt",
        "--note",
        "test clips",
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def test_pairs_writes_a_sound_timelapse_dataset(built):
    out, output = built
    assert check(out) == []
    ds = open_dataset(out)
    assert ds.kind == "timelapse" and ds.meta["tool"] == "rainset pairs"
    assert ds.scenes() == ["cam1", "cam2"]  # the panning clip has no static segment
    for scene, split in (("cam1", "train"), ("cam2", "test")):
        frames = list(ds.samples(scene=scene))
        assert len(frames) == N and {f["split"] for f in frames} == {split}
        assert {f["segment"] for f in frames} == {f"{scene}/s00"}
        assert all("mask" in f and "clean" in f for f in frames)
    # cam2's static stretch is frames 0-39 (the pan starts at 40): even choice spans it
    assert [f["index"] for f in ds.samples(scene="cam2")][::11] == [0, 39]
    assert ds.meta["counts"]["pairs"] == 2 * math.comb(N, 2)
    assert "2 static segment(s), 132 pair(s)" in output


def test_all_pairs_join_two_different_frames_of_one_segment(built):
    ds = open_dataset(built[0])
    pairs = list(ds.pairs())
    assert len(pairs) == len({p["id"] for p in pairs}) == 2 * math.comb(N, 2)
    for p in pairs:
        a, b = ds.sample(p["a"]), ds.sample(p["b"])
        assert a["id"] != b["id"] and a["index"] < b["index"]
        assert a["segment"] == b["segment"] == p["segment"]
    assert {p["split"] for p in ds.pairs(split="test")} == {"test"}
    assert len(list(ds.pairs(scene="cam1"))) == math.comb(N, 2)


def test_masks_mark_the_passing_car_and_the_pseudo_gt_is_clean(built, footage):
    _, bg1 = footage
    ds = open_dataset(built[0])
    frames = {f["index"]: f for f in ds.samples(scene="cam1")}
    with_car = [i for i in frames if 10 <= i < 20]
    assert with_car
    for i, f in frames.items():
        m = ds.load_mask(f)
        if i in with_car:
            x = 8 * (i - 10)
            assert m[20:32, x : x + 14].mean() > 0.8, i  # the car is masked
        assert m.mean() < 0.1  # rain is not
    clean = ds.load(frames[0], "clean")
    assert psnr(clean, bg1, data_range=255) > 30  # rain and car removed


def test_report_stats_and_sheets(built):
    out, _ = built
    report = (out / "report.md").read_text()
    assert "| cam1 | 40 | s00: 0-39 |" in report
    assert "| pan | 30 | none | 0-29: moving camera |" in report
    assert "rejected 40-51 (12 frames): **moving camera**" in report
    for sheet in ("cam1_s00.png", "cam2_s00.png", "pan.png"):
        assert (out / "sheets" / sheet).stat().st_size > 1000
        assert f"sheets/{sheet}" in report
    lines = (out / "stats" / "cam2.csv").read_text().splitlines()
    assert len(lines) == 1 + 52
    assert lines[1].split(",")[-1] == "cam2/s00" and lines[-1].endswith("rejected: moving camera")
    assert not (out / "stats" / "notes.csv").exists()


def test_rerun_resumes_without_duplicating(built, footage):
    out, _ = built
    before = [(out / n).read_text() for n in ("manifest.jsonl", "pairs.jsonl")]
    res = _run(
        footage[0],
        "-o",
        out,
        "--frames",
        N,
        "--test-scenes",
        "cam2",
        "--pseudo-gt",
        "--note",
        "test clips",
    )
    assert res.exit_code == 0, res.output
    assert [(out / n).read_text() for n in ("manifest.jsonl", "pairs.jsonl")] == before
    assert check(out) == []


def test_interrupted_scene_is_redone_and_completed(footage, tmp_path):
    out = tmp_path / "ds"
    assert _run(footage[0], "-o", out, "--frames", N, "--no-masks").exit_code == 0
    # A crash in the middle of cam1 (its done-marker never written), and pairs lost from the
    # file (of cam2 too, whose done-marker is there): both scenes must be completed.
    (out / "scenes" / "cam1.json").unlink()
    lines = (out / "pairs.jsonl").read_text().splitlines(keepends=True)
    (out / "pairs.jsonl").write_text("".join(lines[: len(lines) // 4]))
    meta = json.loads((out / "rainset.json").read_text())
    meta["complete"] = False
    (out / "rainset.json").write_text(json.dumps(meta))
    assert _run(footage[0], "-o", out, "--frames", N, "--no-masks").exit_code == 0
    assert check(out) == []
    assert len((out / "pairs.jsonl").read_text().splitlines()) == 2 * math.comb(N, 2)


def test_seeded_pair_subsets_are_reproducible(footage, tmp_path):
    def pairs_of(name: str, seed: int) -> list[str]:
        res = _run(footage[0] / "cam1.mp4", "-o", tmp_path / name, "--frames", N,
                   "--pairs-per-scene", 10, "--seed", seed, "--no-masks", "--format", "jpg",
                   "--select", "consistent")  # fmt: skip
        assert res.exit_code == 0, res.output
        assert check(tmp_path / name) == []
        return [(p["a"], p["b"]) for p in open_dataset(tmp_path / name).pairs()]

    a, b, c = pairs_of("a", 3), pairs_of("b", 3), pairs_of("c", 4)
    assert a == b != c
    assert len(a) == len(set(a)) == 10 and all(x != y for x, y in a)
    ds = open_dataset(tmp_path / "a")
    frames = list(ds.samples())
    assert len(frames) == N and all(f["frame"].endswith(".jpg") and "mask" not in f for f in frames)


@pytest.mark.parametrize(
    "args, option",
    [
        (["--frames", "1"], "--frames"),
        (["--pairs-per-scene", "0"], "--pairs-per-scene"),
        (["--max-foreground", "1.5"], "--max-foreground"),
        (["--test-scenes", "nosuch"], "--test-scenes"),
        (["--select", "best"], "--select"),
    ],
)
def test_bad_options_are_named(footage, tmp_path, args, option):
    res = _run(footage[0], "-o", tmp_path / "x", *args)
    assert res.exit_code == 2
    assert option in res.output
    assert not (tmp_path / "x").exists()


def test_cli_defaults_equal_the_library_defaults():
    from rainset_cli.pairs_cmd import DEFAULTS

    cfg, opt = StaticConfig(), PairsOptions()
    assert DEFAULTS == {
        "n_frames": opt.n_frames, "seed": opt.seed, "select": opt.select,
        "max_shift": cfg.max_shift, "max_cut": cfg.max_cut,
        "max_illumination": cfg.max_illumination, "max_foreground": cfg.max_foreground,
        "foreground_level": cfg.foreground_level, "analysis_size": cfg.size,
    }  # fmt: skip
    params = {p.name: p.default for p in cli.commands["pairs"].params}
    for key, value in DEFAULTS.items():
        assert params[key] == value, key


def test_scene_ids_are_stable(tmp_path):
    (tmp_path / "a").mkdir()
    write_image(tmp_path / "a" / "f1.png", np.zeros((8, 8, 3), np.uint8))
    for name in ("a.mp4", "b c.mov", "10.mp4", "9.mp4", "readme.md"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    ids = find_scenes(tmp_path)
    # One id rule for every pipeline (the stem); "a" and "a.mp4" collide and plan_scenes
    # refuses them when their contents differ (tests/test_scenes.py).
    assert [(sid, p.name) for sid, p in ids] == [
        ("9", "9.mp4"), ("10", "10.mp4"), ("a", "a"), ("a", "a.mp4"), ("b_c", "b c.mov"),
    ]  # fmt: skip
    assert find_scenes(tmp_path) == ids
    assert find_scenes(tmp_path / "a") == [("a", tmp_path / "a")]  # a folder of frames
    assert find_scenes(tmp_path / "9.mp4") == [("9", tmp_path / "9.mp4")]
    with pytest.raises(InputError):
        find_scenes(tmp_path / "empty")
    with pytest.raises(InputError):
        find_scenes(tmp_path / "missing")


def test_options_validate():
    with pytest.raises(ValueError):
        PairsOptions(n_frames=1)
    with pytest.raises(ValueError):
        PairsOptions(pairs_per_segment=0)
    with pytest.raises(ValueError):
        PairsOptions(select="best")
