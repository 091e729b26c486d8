"""`rainset import paired`: matching by key, scenes, splits, resume; no torch needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rainset.dataset import check, open_dataset
from rainset.errors import InputError
from rainset.image import write_image
from rainset.importer import plan_paired
from rainset_cli.main import cli


def _img(value, size=(12, 16)):
    return np.full((*size, 3), value, np.uint8)


def _write(folder, names, offset=0):
    for k, name in enumerate(names):
        write_image(folder / name, _img(10 * k + offset))


def test_rain100l_style_names_pair_by_last_number(tmp_path):
    _write(tmp_path / "rain", [f"rain-{i:03d}.png" for i in (1, 2, 10)], offset=100)
    _write(tmp_path / "clean", [f"norain-{i:03d}.png" for i in (1, 2, 10, 11)])
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean")
    assert [(p.id, p.key, p.clean.name) for p in plans] == [
        ("rain-001", "001", "norain-001.png"),
        ("rain-002", "002", "norain-002.png"),
        ("rain-010", "010", "norain-010.png"),
    ]
    # Default scenes: unrelated images (flat colours), one per clean image, named by its stem.
    assert [p.scene for p in plans] == ["norain-001", "norain-002", "norain-010"]


def test_scene_every_chunks_in_natural_order(tmp_path):
    names = [f"{i}.jpg" for i in range(1, 8)]  # 1 .. 7; natural order puts 2 before 10
    _write(tmp_path / "r", names)
    _write(tmp_path / "c", names)
    plans = plan_paired(tmp_path / "r", tmp_path / "c", scene_every=3)
    assert [p.id for p in plans] == [str(i) for i in range(1, 8)]
    assert [p.scene for p in plans] == ["scene-000"] * 3 + ["scene-001"] * 3 + ["scene-002"]


def test_many_rainy_to_one_clean_with_key_and_scene_regex(tmp_path):
    for scene in ("park", "road"):
        _write(tmp_path / "rain" / scene, [f"{scene}-R-{k:03d}.png" for k in range(3)])
        write_image(tmp_path / "clean" / scene / f"{scene}-C-000.png", _img(5))
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean", key=r"^([^/]+)/", scene=r"^([^/]+)/")
    assert len(plans) == 6
    assert {p.clean.name for p in plans if p.scene == "park"} == {"park-C-000.png"}
    assert [p.id for p in plans][:3] == ["park/park-R-000", "park/park-R-001", "park/park-R-002"]


def test_matching_errors(tmp_path):
    _write(tmp_path / "r", ["a-1.png", "a-2.png"])
    _write(tmp_path / "c", ["b-7.png"])
    with pytest.raises(InputError, match="no rainy file has a clean partner"):
        plan_paired(tmp_path / "r", tmp_path / "c")
    _write(tmp_path / "c2", ["x-1.png", "y-1.png"])
    with pytest.raises(InputError, match="also the key"):
        plan_paired(tmp_path / "r", tmp_path / "c2")
    with pytest.raises(InputError, match="no such folder"):
        plan_paired(tmp_path / "missing", tmp_path / "c")
    with pytest.raises(ValueError, match="not both"):
        plan_paired(tmp_path / "r", tmp_path / "c", scene="x", scene_every=2)
    with pytest.raises(ValueError, match="regular expression"):
        plan_paired(tmp_path / "r", tmp_path / "c", key="(")


def test_import_command_writes_a_sound_dataset_and_resumes(tmp_path):
    names = [f"{i:05d}.jpg" for i in range(1, 9)]
    _write(tmp_path / "rain", names, offset=50)
    _write(tmp_path / "clean", names)
    out = tmp_path / "ds"
    args = ["import", "paired", str(tmp_path / "rain"), str(tmp_path / "clean"), "-o", str(out)]
    args += ["--scene-every", "4", "--test-scenes", "scene-001"]
    runner = CliRunner()
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "8 pairs in 2 scenes (train 4, test 4)" in " ".join(res.output.split())
    assert check(out) == []
    ds = open_dataset(out)
    recs = list(ds.samples())
    assert {r["scene"] for r in recs if r["split"] == "test"} == {"scene-001"}
    assert recs[0]["source"] == {"rainy": "00001.jpg", "clean": "00001.jpg"}
    np.testing.assert_array_equal(ds.load(recs[2], "rainy"), _img(70, (12, 16)))
    meta = json.loads((out / "rainset.json").read_text())
    assert meta["params"]["scene_every"] == 4 and len(meta["sources"]) == 2
    # A rerun resumes: nothing is added twice.
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert len(list(open_dataset(out).samples())) == 8


def test_import_command_rejects_unknown_test_scene(tmp_path):
    _write(tmp_path / "rain", ["1.png", "2.png"])
    _write(tmp_path / "clean", ["1.png", "2.png"])
    args = ["import", "paired", str(tmp_path / "rain"), str(tmp_path / "clean")]
    res = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "o"), "--test-scenes", "nope"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "--test-scenes" in text and "1, 2" in text


def test_size_mismatch_is_an_input_error(tmp_path):
    write_image(tmp_path / "rain" / "1.png", _img(1, (8, 8)))
    write_image(tmp_path / "clean" / "1.png", _img(1, (8, 10)))
    args = ["import", "paired", str(tmp_path / "rain"), str(tmp_path / "clean")]
    res = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "differs from its clean image" in " ".join(res.output.split())
