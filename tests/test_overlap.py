"""Outputs overlapping inputs (rainset.inputs.check_outputs), for every command that reads
inputs and writes an output: an output that is or contains an input is refused with one line;
an output inside a folder input is left out of it (not read, not hashed) with a note. Also
source paths recorded resolved and relative to the dataset (check --hashes from anywhere)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.dataset import check, open_dataset
from rainset.image import read_image, write_image
from rainset.video import write_video
from rainset_cli.main import cli

BUILD = ["build-gt", "--review", "accept", "--density", "sparse", "--frames", "8", "--max-frames", "8"]


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _ok(res):
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def _refused(res, *words):
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    for w in words:
        assert w in text, text
    return text


def _frame_folder(folder, n=10, seed=0):
    for i, f in enumerate(rain_frames(textured_background(32, 48, seed), n, seed=seed)):
        write_image(folder / f"{i:04d}.png", f)
    return folder


def _photos(folder, n=3):
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(folder / f"p{i}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return folder


def _tree(folder):
    return sorted(
        (p.relative_to(folder).as_posix(), p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    )


def _hash_problems(out):
    return [str(p) for p in check(out, verify_hashes=True) if "source" in p.message]


# ----------------------------------------------------------------------------- build-gt


def test_build_gt_output_inside_its_frame_folder_is_not_hashed_into_it(tmp_path):
    frames = _frame_folder(tmp_path / "F")
    out = frames / "gt"
    text = _ok(_run(*BUILD, frames, "-o", out))
    assert "is inside the input" in text
    _ok(_run(*BUILD, frames, "-o", out))  # the rerun reads the same source
    assert _hash_problems(out) == []
    assert len(list(open_dataset(out).samples())) == 8


def test_build_gt_output_that_is_or_holds_an_input_is_refused(tmp_path):
    frames = _frame_folder(tmp_path / "F")
    before = _tree(tmp_path)
    _refused(_run(*BUILD, frames, "-o", frames), "--out", "is the input")
    _refused(_run(*BUILD, frames, "-o", tmp_path), "--out", "contains the input")
    assert _tree(tmp_path) == before


# ----------------------------------------------------------------------------- pairs


def test_pairs_output_is_or_inside_its_input(tmp_path):
    frames = _frame_folder(tmp_path / "F")
    before = _tree(tmp_path)
    _refused(_run("pairs", frames, "-o", frames, "-n", "4"), "--out", "is the input")
    _refused(_run("pairs", frames, "-o", tmp_path, "-n", "4"), "--out", "contains the input")
    assert _tree(tmp_path) == before
    vids = tmp_path / "vids"
    _frame_folder(vids / "a", seed=1)
    _frame_folder(vids / "b", seed=2)
    out = vids / "sheets_here"
    for _ in range(2):  # the rerun must not take the output for a scene
        text = _ok(_run("pairs", vids, "-o", out, "-n", "4"))
        assert "is inside the input" in text and "2 scene(s)" in text
    assert open_dataset(out).scenes() == ["a", "b"]
    assert "sheets_here" not in (out / "report.md").read_text()
    assert _hash_problems(out) == []


# ----------------------------------------------------------------------------- synth


def test_synth_output_inside_the_photos_is_not_read_as_photos(tmp_path):
    photos = _photos(tmp_path / "P")
    out = photos / "sub"
    counts = []
    for _ in range(2):  # the documented rerun
        text = _ok(_run("synth", photos, "-o", out, "--max-size", "32"))
        counts.append(len(list(open_dataset(out).samples())))
    assert "is inside the input" in text
    assert counts == [3, 3]
    assert all(not r["scene"].startswith("sub/") for r in open_dataset(out).samples())


def test_synth_output_that_is_or_holds_the_photos_is_refused(tmp_path):
    photos = _photos(tmp_path / "P")
    before = _tree(tmp_path)
    _refused(_run("synth", photos, "-o", photos), "--out", "is the input")
    _refused(_run("synth", photos, "-o", tmp_path), "--out", "contains the input")
    _refused(_run("synth", "--preview", photos / "p0.png", "-o", photos / "p0.png"), "--out")
    assert _tree(tmp_path) == before


# ----------------------------------------------------------------------------- import paired


def test_import_output_inside_or_over_its_inputs(tmp_path):
    _photos(tmp_path / "rain")
    _photos(tmp_path / "clean")
    before = _tree(tmp_path)
    base = ["import", "paired", tmp_path / "rain", tmp_path / "clean"]
    _refused(_run(*base, "-o", tmp_path / "rain"), "--out", "is the input")
    _refused(_run(*base, "-o", tmp_path), "--out", "contains the input")
    assert _tree(tmp_path) == before
    out = tmp_path / "rain" / "ds"
    for _ in range(2):
        text = _ok(_run(*base, "-o", out))
    assert "is inside the input" in text
    assert len(list(open_dataset(out).samples())) == 3
    assert _hash_problems(out) == []


# ----------------------------------------------------------------------------- derain / validate


@pytest.fixture()
def checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from rainset.train.spanet import SPANet

    torch.manual_seed(0)
    path = tmp_path / "ckpt" / "model.safetensors"
    path.parent.mkdir()
    save_file(SPANet().state_dict(), str(path), metadata={"rainset": json.dumps({"step": 1})})
    return path


def test_derain_never_overwrites_an_input(tmp_path, checkpoint):
    img = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "x.png", img)
    write_image(tmp_path / "other" / "x.jpg", img)
    before = _tree(tmp_path)
    base = ["derain", checkpoint, "--device", "cpu"]
    _refused(_run(*base, tmp_path / "in" / "x.png", "-o", tmp_path / "in"), "--out", "contains the input")
    res = _run(*base, tmp_path / "in" / "x.png", tmp_path / "other" / "x.jpg", "-o", tmp_path / "out")
    assert res.exit_code == 1 and "would both be written" in res.output, res.output
    assert _tree(tmp_path) == before
    # An output inside a folder input is not derained again on the rerun.
    for _ in range(2):
        text = _ok(_run(*base, tmp_path / "in", "-o", tmp_path / "in" / "out"))
    assert "is inside the input" in text and "1 input(s)" in text
    assert sorted(p.relative_to(tmp_path / "in" / "out").as_posix()
                  for p in (tmp_path / "in" / "out").rglob("*.png")) == ["in/x.png"]  # fmt: skip
    np.testing.assert_array_equal(read_image(tmp_path / "in" / "x.png"), img)


def test_validate_run_folder_that_is_or_holds_the_dataset_is_refused(tmp_path):
    from rainset.dataset import DatasetWriter

    ds = tmp_path / "ds"
    with DatasetWriter(ds, kind="paired", params={}) as w:
        img = np.zeros((8, 8, 3), np.uint8)
        w.add({"id": "a", "scene": "a", "rainy": w.write_image("rainy/a", img),
               "clean": w.write_image("clean/a", img)})  # fmt: skip
    before = _tree(tmp_path)
    _refused(_run("validate", ds, "-o", ds, "--iters", "1"), "--out", "is the input")
    _refused(_run("validate", ds, "-o", tmp_path, "--iters", "1"), "--out", "contains the input")
    assert _tree(tmp_path) == before


# ----------------------------------------------------------------------------- 9a: paths


def test_check_hashes_finds_sources_from_another_folder_and_after_a_move(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    _frame_folder(proj / "footage" / "cam")
    write_video(proj / "clip.mp4", rain_frames(textured_background(32, 48, 5), 12, seed=5), fps=10)
    monkeypatch.chdir(proj)
    _ok(_run(*BUILD, "footage/cam", "clip.mp4", "-o", "ds"))
    meta = json.loads((proj / "ds" / "rainset.json").read_text())
    assert {s["relpath"] for s in meta["sources"]} == {"../footage/cam", "../clip.mp4"}
    assert all(os.path.isabs(s["path"]) for s in meta["sources"])
    monkeypatch.chdir(tmp_path)
    assert _hash_problems(proj / "ds") == []
    assert "ok" in _ok(_run("check", "--hashes", proj / "ds"))
    shutil.move(proj, tmp_path / "moved")  # dataset and footage move together: relpath
    assert _hash_problems(tmp_path / "moved" / "ds") == []
