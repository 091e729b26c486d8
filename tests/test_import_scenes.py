"""`import paired` default scenes: a flat folder of consecutive frames is one scene (no
train/test leak), unrelated photos one scene each, sub-folders one scene each; the choice and
its reason are returned by the library and printed by the command."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.dataset import open_dataset
from rainset.image import write_image
from rainset.importer import plan_paired
from rainset_cli.main import cli


def _sequence(tmp_path, n=12):
    bg = textured_background(32, 40, 3)
    for i, f in enumerate(rain_frames(bg, n, seed=2)):
        write_image(tmp_path / "rain" / f"{i:05d}.png", f)
        # Clean frames of one shot: the same view, slowly brightening.
        write_image(tmp_path / "clean" / f"{i:05d}.png", np.clip(bg.astype(int) + i, 0, 255).astype(np.uint8))


def _unrelated(tmp_path, n=6):
    for i in range(1, n + 1):
        c = textured_background(32, 40, 10 + i)
        write_image(tmp_path / "clean" / f"norain-{i:03d}.png", c)
        write_image(tmp_path / "rain" / f"rain-{i:03d}.png", np.clip(c.astype(int) + 40, 0, 255).astype(np.uint8))


def _import(tmp_path, *extra):
    args = ["import", "paired", tmp_path / "rain", tmp_path / "clean", "-o", tmp_path / "ds", *extra]
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_consecutive_frames_of_one_sequence_are_one_scene(tmp_path):
    _sequence(tmp_path)
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean")
    assert {p.scene for p in plans} == {"rain"}
    assert "one sequence" in plans.reason and "look alike" in plans.reason
    text = _import(tmp_path, "--test-fraction", "0")
    assert "one sequence" in text  # the choice and its reason are printed
    assert open_dataset(tmp_path / "ds").scenes() == ["rain"]


def test_unrelated_photos_are_one_scene_each(tmp_path):
    _unrelated(tmp_path)
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean")
    assert [p.scene for p in plans] == [f"norain-{i:03d}" for i in range(1, 7)]
    assert "one scene per clean image" in plans.reason and "differ" in plans.reason
    assert "one scene per clean image" in _import(tmp_path)


def test_unnumbered_names_are_not_a_sequence(tmp_path):
    bg = textured_background(32, 40, 3)
    for name in ("alpha", "beta", "gamma"):
        write_image(tmp_path / "rain" / f"{name}.png", bg)
        write_image(tmp_path / "clean" / f"{name}.png", bg)
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean", key=r"(.*)")
    assert [p.scene for p in plans] == ["alpha", "beta", "gamma"]
    assert "not consecutive numbers" in plans.reason


def test_sub_folders_are_one_scene_each(tmp_path):
    for k, cam in enumerate(("cam1", "cam2")):
        bg = textured_background(32, 40, k)
        for i in range(4):
            write_image(tmp_path / "rain" / cam / f"{i:03d}.png", bg)
            write_image(tmp_path / "clean" / cam / f"{i:03d}.png", np.clip(bg.astype(int) + 9 * i, 0, 255).astype(np.uint8))
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean")
    assert [p.scene for p in plans] == ["cam1"] * 4 + ["cam2"] * 4
    assert "2 sub-folder(s), one scene each" in plans.reason
    assert "sub-folder" in _import(tmp_path, "--test-scenes", "cam2")
    ds = open_dataset(tmp_path / "ds")
    assert {r["scene"]: r["split"] for r in ds.samples()} == {"cam1": "train", "cam2": "test"}
