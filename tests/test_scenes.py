"""One scene-id rule for build-gt, pairs and import paired (rainset.inputs): natural order by
natsort, ids from the stem (or --root / --scene), collisions and duplicate sources refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.dataset import open_dataset
from rainset.image import write_image
from rainset.importer import plan_paired
from rainset.video import list_frame_files, write_video
from rainset_cli.main import cli

BUILD = ["build-gt", "--review", "accept", "--density", "sparse", "--frames", "8", "--max-frames", "8"]
PAIRS = ["pairs", "-n", "4"]


def _clip(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, rain_frames(textured_background(32, 48, seed), 12, seed=seed), fps=10, crf=10)
    return path


def _frames(folder, seed, n=3):
    bg = textured_background(24, 32, seed)
    for i in range(n):
        write_image(folder / f"{i + 1:04d}.png", np.clip(bg.astype(int) + 3 * i, 0, 255).astype(np.uint8))


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _scenes(out):
    return sorted({r["scene"] for r in open_dataset(out).samples()})


def _build(inputs, out, *extra):
    return _run(*BUILD, *inputs, "-o", out, *extra)


def _pairs(inp, out, *extra):
    return _run(*PAIRS, inp, "-o", out, *extra)


def _import(tmp_path, out, *extra):
    return _run("import", "paired", tmp_path / "rain", tmp_path / "clean", "-o", out, *extra)


def _ok(res):
    assert res.exit_code == 0, res.output
    return res


def _one_line(res):
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return " ".join(res.output.split())


# ----------------------------------------------------------------------------- natural order


def test_one_natural_order_everywhere(tmp_path):
    from rainset.inputs import natural_sorted

    names = ["B-1.png", "a-2.png", "frame10.png", "frame2.png"]
    assert natural_sorted(names) == ["a-2.png", "B-1.png", "frame2.png", "frame10.png"]
    for n in names:
        write_image(tmp_path / "r" / n, np.zeros((4, 4, 3), np.uint8))
        write_image(tmp_path / "c" / n, np.zeros((4, 4, 3), np.uint8))
    # The importer sorted case-sensitively ("B-1" before "a-2"), frame folders did not.
    assert [p.name for p in list_frame_files(tmp_path / "r")] == natural_sorted(names)
    plans = plan_paired(tmp_path / "r", tmp_path / "c", key=r"(.*)")
    assert [p.rainy.name for p in plans] == natural_sorted(names)
    import rainset.importer
    import rainset.pairs
    import rainset.video

    assert not any(hasattr(m, n) for m, n in ((rainset.video, "_natural_key"),
                   (rainset.pairs, "_natural"), (rainset.importer, "_natural")))  # fmt: skip


# ----------------------------------------------------------------------------- one id rule


def test_unicode_and_space_names_give_the_same_ids_in_every_pipeline(tmp_path):
    a = _clip(tmp_path / "Straße.mp4", 1)
    b = _clip(tmp_path / "cam 3.mp4", 2)
    _ok(_build([a, b], tmp_path / "gt"))
    vids = tmp_path / "vids"
    vids.mkdir()
    shutil.copy(a, vids)
    shutil.copy(b, vids)
    _ok(_pairs(vids, tmp_path / "pairs"))
    for name, seed in (("Straße", 1), ("cam 3", 2)):
        _frames(tmp_path / "rain" / name, seed)
        _frames(tmp_path / "clean" / name, seed + 10)
    _ok(_import(tmp_path, tmp_path / "imp"))
    for out in ("gt", "pairs", "imp"):
        assert _scenes(tmp_path / out) == ["Straße", "cam_3"], out


def test_same_stem_in_two_folders_is_refused_until_root_tells_them_apart(tmp_path):
    c1 = _clip(tmp_path / "cam1" / "clip.mp4", 1)
    c2 = _clip(tmp_path / "cam2" / "clip.mp4", 2)
    for cam, seed in (("cam1", 1), ("cam2", 2)):
        _frames(tmp_path / "rain" / cam / "clip", seed)
        _frames(tmp_path / "clean" / cam / "clip", seed + 10)
    # build-gt (one run), pairs (a second run into the same dataset), import (one run).
    refusals = [_one_line(_build([c1, c2], tmp_path / "gt"))]
    _ok(_pairs(c1, tmp_path / "pairs"))
    refusals.append(_one_line(_pairs(c2, tmp_path / "pairs")))
    refusals.append(_one_line(_import(tmp_path, tmp_path / "imp")))
    for text in refusals:
        assert "'clip'" in text and "--root" in text, text
        assert "cam1" in text and "cam2" in text, text
    assert not (tmp_path / "gt").exists() and not (tmp_path / "imp").exists()
    # A second file under a recorded id is not "already done": the dataset is unchanged.
    assert _scenes(tmp_path / "pairs") == ["clip"]
    _ok(_build([c1, c2], tmp_path / "gt", "--root", tmp_path))
    _ok(_pairs(c1, tmp_path / "pairs2", "--root", tmp_path))
    _ok(_pairs(c2, tmp_path / "pairs2", "--root", tmp_path))
    _ok(_import(tmp_path, tmp_path / "imp", "--root", tmp_path / "rain"))
    for out in ("gt", "pairs2", "imp"):
        assert _scenes(tmp_path / out) == ["cam1/clip", "cam2/clip"], out
    meta = json.loads((tmp_path / "gt" / "rainset.json").read_text())
    assert {s["scene"]: s["path"] for s in meta["sources"]} == {
        "cam1/clip": str(c1.resolve()), "cam2/clip": str(c2.resolve())
    }


def test_same_stem_into_an_existing_dataset_is_refused(tmp_path):
    c1 = _clip(tmp_path / "cam1" / "clip.mp4", 1)
    c2 = _clip(tmp_path / "cam2" / "clip.mp4", 2)
    _ok(_build([c1], tmp_path / "gt"))
    before = (tmp_path / "gt" / "rainset.json").read_bytes()
    text = _one_line(_build([c2], tmp_path / "gt"))
    assert "recorded in" in text and "cam1" in text and "cam2" in text
    assert (tmp_path / "gt" / "rainset.json").read_bytes() == before
    # --scene names a single input.
    _ok(_build([c2], tmp_path / "gt", "--scene", "clip_cam2"))
    assert _scenes(tmp_path / "gt") == ["clip", "clip_cam2"]
    res = _build([c1, c2], tmp_path / "gt3", "--scene", "x")
    assert res.exit_code == 2 and "--scene" in res.output


def test_a_copy_under_another_name_is_refused_in_every_pipeline(tmp_path):
    a = _clip(tmp_path / "vids" / "a.mp4", 1)
    b = tmp_path / "vids" / "b.mp4"
    shutil.copy(a, b)
    for name in ("a", "b"):
        _frames(tmp_path / "rain" / name, 1)
        _frames(tmp_path / "clean" / name, 11)
    refusals = [
        _one_line(_build([a, b], tmp_path / "gt")),
        _one_line(_pairs(tmp_path / "vids", tmp_path / "pairs")),
        _one_line(_import(tmp_path, tmp_path / "imp")),
    ]
    for text in refusals:
        assert "same contents" in text and "--allow-duplicate-sources" in text, text
    _ok(_build([a, b], tmp_path / "gt", "--allow-duplicate-sources"))
    _ok(_pairs(tmp_path / "vids", tmp_path / "pairs", "--allow-duplicate-sources"))
    _ok(_import(tmp_path, tmp_path / "imp", "--allow-duplicate-sources"))
    for out in ("gt", "pairs", "imp"):
        assert _scenes(tmp_path / out) == ["a", "b"], out


def test_the_same_path_twice_or_a_symlink_is_a_duplicate(tmp_path):
    a = _clip(tmp_path / "a.mp4", 1)
    link = tmp_path / "link.mp4"
    link.symlink_to(a)
    assert "given twice" in _one_line(_build([a, a], tmp_path / "gt"))
    assert "is the same file as" in _one_line(_build([a, link], tmp_path / "gt"))
    res = _ok(_build([a, a], tmp_path / "gt", "--allow-duplicate-sources"))
    assert "used once" in res.output and _scenes(tmp_path / "gt") == ["a"]


def test_ids_do_not_depend_on_the_working_folder(tmp_path, monkeypatch):
    c = _clip(tmp_path / "cam1" / "clip.mp4", 1)
    monkeypatch.chdir(tmp_path / "cam1")
    _ok(_run(*BUILD, "clip.mp4", "-o", tmp_path / "gt", "--root", ".."))
    monkeypatch.chdir(tmp_path)
    _ok(_run(*BUILD, c, "-o", tmp_path / "gt2", "--root", tmp_path))
    assert _scenes(tmp_path / "gt") == _scenes(tmp_path / "gt2") == ["cam1/clip"]


@pytest.mark.parametrize("name", ["", "a b", "../x", "a//b"])
def test_bad_scene_names_are_refused(tmp_path, name):
    a = _clip(tmp_path / "a.mp4", 1)
    res = _build([a], tmp_path / "gt", "--scene", name)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "--scene" in text and "usable scene id" in text
    assert not (tmp_path / "gt").exists()
