"""rainset merge: shards of one kind into the dataset a single run would write (issue 13)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background
from dscompare import assert_same_dataset

from rainset.dataset import DatasetWriter, SplitRule, check
from rainset_cli.main import cli

GT = ["--density", "sparse", "--frames", "6", "--max-frames", "6", "--review", "accept"]


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four small static clips, two of them with the same file name in different folders."""
    from rainset.video import write_video

    root = tmp_path_factory.mktemp("clips")
    paths = []
    for i, rel in enumerate(["cam1/clip.mp4", "cam2/clip.mp4", "b.mp4", "c.mp4"]):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write_video(p, rain_frames(textured_background(32, 48, seed=i), 8, seed=i), fps=10, crf=10)
        paths.append(p)
    return root, paths


@pytest.fixture(scope="module")
def single(clips, tmp_path_factory):
    root, paths = clips
    out = tmp_path_factory.mktemp("single") / "out"
    r = run(["build-gt", *paths, *GT, "--root", root, "-o", out])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def shards(clips, tmp_path_factory):
    root, paths = clips
    base = tmp_path_factory.mktemp("shards")
    out = []
    for i, p in enumerate(paths):
        r = run(["build-gt", p, *GT, "--root", root, "-o", base / f"s{i}"])
        assert r.exit_code == 0, r.output
        out.append(base / f"s{i}")
    return out


def test_four_shards_merged_equal_the_single_run(single, shards, tmp_path):
    out = tmp_path / "merged"
    r = run(["merge", *shards, "-o", out])
    assert r.exit_code == 0, r.output
    assert check(out) == []
    assert_same_dataset(out, single)
    # same clip names in two folders: two scenes, not a duplicate id
    scenes = json.loads((out / "rainset.json").read_text())["counts"]["per_scene"]
    assert set(scenes) == {"cam1/clip", "cam2/clip", "b", "c"}
    # hard links, not copies, on one file system
    img = next((out / "rain").rglob("*.png"))
    assert os.stat(img).st_nlink >= 2


def test_merge_is_idempotent_and_resumes(single, shards, tmp_path):
    out = tmp_path / "merged"
    assert run(["merge", *shards[:2], "-o", out]).exit_code == 0  # an interrupted merge
    r = run(["merge", *shards, "-o", out])  # rerun with every shard
    assert r.exit_code == 0, r.output
    r = run(["merge", *shards, "-o", out])  # and once more: nothing new
    assert r.exit_code == 0 and "0 new record(s)" in r.output
    assert_same_dataset(out, single)


def test_merge_keeps_review_decisions(shards, tmp_path):
    out = tmp_path / "merged"
    assert run(["merge", *shards, "-o", out]).exit_code == 0
    merged = json.loads((out / "review.json").read_text())["decisions"]
    for sh in shards:
        for key in json.loads((sh / "review.json").read_text())["decisions"]:
            assert merged[key]["action"] == "accept"


def test_conflicting_shards_are_refused_before_writing(shards, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(shards[0], bad)
    img = next((bad / "clean").rglob("*.png"))
    from rainset.image import read_image, write_image

    arr = read_image(img)
    arr[0, 0] = 255 - arr[0, 0]
    write_image(img, arr)
    out = tmp_path / "merged"
    r = CliRunner().invoke(cli, ["merge", str(shards[0]), str(bad), "-o", str(out)])
    assert r.exit_code == 1
    assert "conflict" in r.output and "differs" in r.output
    assert not out.exists()


def _tiny(root, scene, rule, kind="clean"):
    import numpy as np

    with DatasetWriter(root, kind=kind, params={"p": 1}, split_rule=rule, tool="t") as w:
        rel = w.write_image(f"clean/{scene}", np.full((8, 8, 3), 7, np.uint8))
        w.add({"id": scene, "scene": scene, "clean": rel})


def test_different_split_rules_refused_unless_a_rule_is_given(tmp_path):
    _tiny(tmp_path / "a", "s1", SplitRule(test_fraction=0.0))
    _tiny(tmp_path / "b", "s2", SplitRule(test_fraction=1.0))
    r = CliRunner().invoke(cli, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "m")])
    assert r.exit_code == 2 and "different rules" in r.output and "--test-fraction" in r.output
    r = run(["merge", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "m", "--test-fraction", "1"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in (tmp_path / "m" / "manifest.jsonl").read_text().splitlines()]
    assert [x["split"] for x in lines] == ["test", "test"]  # recomputed by the given rule
    meta = json.loads((tmp_path / "m" / "rainset.json").read_text())
    assert meta["counts"]["per_split"]["test"] == 2 and meta["split_rule"]["test_fraction"] == 1.0


def test_shards_of_other_kinds_or_options_and_unfinished_shards_refused(tmp_path):
    rule = SplitRule()
    _tiny(tmp_path / "a", "s1", rule)
    import numpy as np

    with DatasetWriter(tmp_path / "b", kind="clean", params={"p": 2}, split_rule=rule, tool="t") as w:
        rel = w.write_image("clean/s2", np.zeros((8, 8, 3), np.uint8))
        w.add({"id": "s2", "scene": "s2", "clean": rel})
    r = CliRunner().invoke(cli, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "m")])
    assert r.exit_code == 1 and "other params" in r.output
    w = DatasetWriter(tmp_path / "c", kind="clean", params={"p": 1}, split_rule=rule, tool="t")
    w.write_image("clean/s3", np.zeros((8, 8, 3), np.uint8))  # never closed: unfinished
    w._lock.release()
    r = CliRunner().invoke(cli, ["merge", str(tmp_path / "a"), str(tmp_path / "c"), "-o", str(tmp_path / "m")])
    assert r.exit_code == 1 and "unfinished" in r.output
    assert not (tmp_path / "m").exists()


def test_a_shard_still_being_written_is_refused(tmp_path):
    from rainset.lock import FolderLock

    _tiny(tmp_path / "a", "s1", SplitRule())
    with FolderLock(tmp_path / "a"):  # its writer is back at work on it
        r = CliRunner().invoke(cli, ["merge", str(tmp_path / "a"), "-o", str(tmp_path / "m")])
    assert r.exit_code == 1 and "being written by process" in r.output
    assert not (tmp_path / "m").exists()
