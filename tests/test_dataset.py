"""Tests of rainset.dataset: writer (resume), reader, split rule, check, goldens, docs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rainset.dataset import (
    FORMAT_VERSION,
    SPLITS,
    DatasetWriter,
    Problem,
    SplitRule,
    check,
    hash_source,
    image_size,
    open_dataset,
    scene_unit,
)
from rainset.errors import FormatError, InputError
from rainset.image import read_image

REPO = Path(__file__).resolve().parents[1]
PARAMS = {"n_frames": 100, "density": "normal"}


def _img(seed: int, shape=(8, 10, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _add_sample(w: DatasetWriter, sid: str, scene: str, *, fail_before_add: bool = False) -> None:
    seed = int(hashlib.sha256(sid.encode()).hexdigest()[:6], 16)
    rainy = w.write_image(f"rainy/{sid}", _img(seed))
    clean = w.write_image(f"clean/{sid}", _img(seed + 1))
    mask = w.write_image(f"mask/{sid}", _img(seed + 2, (8, 10)) > 128)
    if fail_before_add:
        raise RuntimeError("interrupted between the images and the manifest line")
    w.add({"id": sid, "scene": scene, "rainy": rainy, "clean": clean, "mask": mask})


ITEMS = [(f"s{i % 3}/{i:03d}", f"s{i % 3}") for i in range(10)]


def _paired(root: Path, items=ITEMS, **kw) -> Path:
    with DatasetWriter(root, kind="paired", params=PARAMS, **kw) as w:
        for sid, scene in items:
            _add_sample(w, sid, scene)
    return root


def _timelapse(root: Path) -> Path:
    with DatasetWriter(root, kind="timelapse", params={}) as w:
        for scene in ("cam1", "cam2"):
            clean = w.write_image(f"clean/{scene}", _img(7))
            for index in range(3):
                frame = w.write_image(f"frames/{scene}/{index}", _img(index))
                w.add(
                    {
                        "id": f"{scene}/{index}",
                        "scene": scene,
                        "frame": frame,
                        "index": index,
                        "clean": clean,
                    }
                )
            w.add_pairs({"a": f"{scene}/0", "b": f"{scene}/{j}"} for j in (1, 2))
    return root


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _meta(root: Path) -> dict:
    return json.loads((root / "rainset.json").read_text())


def _messages(problems, path=None, line=None) -> list[str]:
    return [
        p.message
        for p in problems
        if (path is None or p.path == path) and (line is None or p.line == line)
    ]


# ----------------------------------------------------------------------------- split rule


@pytest.mark.parametrize("scene", ["street01", "a", "ü scene/2", "cam03"])
@pytest.mark.parametrize("salt", ["rainset", "other"])
def test_split_by_scene_matches_an_independent_sha256(scene, salt):
    digest = hashlib.sha256((salt + "/" + scene).encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    assert scene_unit(scene, salt) == u
    for frac in (0.0, 0.2, 0.5, 1.0):
        want = "test" if u < frac else "train"
        assert SplitRule(test_fraction=frac, salt=salt).split_of(scene) == want


def test_split_is_stable_across_processes():
    scenes = [f"scene{i}" for i in range(40)]
    here = [SplitRule(test_fraction=0.4).split_of(s) for s in scenes]
    code = (
        "import json; from rainset.dataset import SplitRule; "
        f"print(json.dumps([SplitRule(test_fraction=0.4).split_of(s) for s in {scenes!r}]))"
    )
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert json.loads(out.stdout) == here
    assert "test" in here and "train" in here


def test_hash_split_fraction_is_close_to_asked():
    splits = [SplitRule(test_fraction=0.3).split_of(f"s{i}") for i in range(2000)]
    assert 0.27 < splits.count("test") / len(splits) < 0.33


def test_test_scenes_are_exactly_the_test_split():
    rule = SplitRule(test_scenes=("b", "d"), test_fraction=1.0)
    assert [rule.split_of(s) for s in "abcde"] == ["train", "test", "train", "test", "train"]
    rule = SplitRule(test_scenes=["b"], val_scenes=["c"])
    assert rule.test_scenes == ("b",)
    assert [rule.split_of(s) for s in "abc"] == ["train", "test", "val"]


def test_val_fraction_takes_the_band_after_test():
    rule = SplitRule(test_fraction=0.2, val_fraction=0.3)
    for i in range(200):
        u = scene_unit(f"s{i}")
        want = "test" if u < 0.2 else "val" if u < 0.5 else "train"
        assert rule.split_of(f"s{i}") == want
    assert SplitRule.from_json(rule.to_json()) == rule


@pytest.mark.parametrize(
    "kwargs",
    [
        {"test_scenes": "abc"},
        {"test_fraction": 1.5},
        {"test_fraction": 0.6, "val_fraction": 0.6},
        {"test_scenes": ("a",), "val_scenes": ("a",)},
    ],
)
def test_split_rule_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        SplitRule(**kwargs)


# ----------------------------------------------------------------------------- writer


@pytest.mark.parametrize("mid_sample", [False, True])
def test_interrupted_writer_resumes_without_duplicates_or_losses(tmp_path, mid_sample):
    root = tmp_path / "ds"
    k = 4

    def run(fail_after: int | None) -> None:
        with DatasetWriter(root, kind="paired", params=PARAMS) as w:
            done = 0
            for sid, scene in ITEMS:
                if w.has(sid):
                    continue
                if fail_after is not None and done == fail_after:
                    if mid_sample:
                        _add_sample(w, sid, scene, fail_before_add=True)
                    raise RuntimeError("interrupted")
                _add_sample(w, sid, scene)
                done += 1

    with pytest.raises(RuntimeError):
        run(k)
    assert len(_lines(root / "manifest.jsonl")) == k
    assert _meta(root)["complete"] is False
    assert any("unfinished" in m for m in _messages(check(root), "rainset.json"))

    run(None)
    ids = [s["id"] for s in open_dataset(root).samples()]
    assert len(ids) == len(ITEMS)
    assert sorted(ids) == sorted(sid for sid, _ in ITEMS)
    meta = _meta(root)
    assert meta["complete"] is True
    assert meta["counts"]["samples"] == len(ITEMS)
    assert check(root) == []


def test_torn_last_line_is_dropped_on_reopen(tmp_path):
    root = _paired(tmp_path / "ds", ITEMS[:3])
    manifest = root / "manifest.jsonl"
    with open(manifest, "ab") as f:
        f.write(b'{"id": "s0/099", "scene": "s')  # a crash in the middle of a write
    with DatasetWriter(root, kind="paired", params=PARAMS) as w:
        assert not w.has("s0/099")
        assert all(w.has(sid) for sid, _ in ITEMS[:3])
        assert manifest.read_bytes().endswith(b"\n")
        _add_sample(w, "s0/099", "s0")
    assert [json.loads(x)["id"] for x in _lines(manifest)] == [s for s, _ in ITEMS[:3]] + ["s0/099"]
    assert check(root) == []


def test_zero_filled_last_line_is_dropped_on_reopen(tmp_path):
    root = _paired(tmp_path / "ds", ITEMS[:2])
    with open(root / "manifest.jsonl", "ab") as f:
        f.write(b"\x00" * 40 + b"\n")  # what some filesystems leave after a power cut
    with DatasetWriter(root, kind="paired", params=PARAMS) as w:
        _add_sample(w, *ITEMS[2])
    assert len(_lines(root / "manifest.jsonl")) == 3
    assert check(root) == []


def test_complete_last_line_without_newline_is_kept(tmp_path):
    root = _paired(tmp_path / "ds", ITEMS[:3])
    manifest = root / "manifest.jsonl"
    manifest.write_bytes(manifest.read_bytes().rstrip(b"\n"))
    with DatasetWriter(root, kind="paired", params=PARAMS) as w:
        assert w.has(ITEMS[2][0])
        _add_sample(w, *ITEMS[3])
    assert len(_lines(manifest)) == 4
    assert check(root) == []


def test_corrupt_line_before_the_end_refuses_to_resume(tmp_path):
    root = _paired(tmp_path / "ds", ITEMS[:3])
    lines = _lines(root / "manifest.jsonl")
    lines[1] = lines[1][:20]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="line 2"):
        DatasetWriter(root, kind="paired", params=PARAMS)


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "timelapse"},
        {"params": {"n_frames": 200, "density": "normal"}},
        {"image_format": "jpg"},
        {"split_rule": SplitRule(test_scenes=("s1",))},
        {"tool": "rainset synth"},
    ],
)
def test_reopen_with_a_different_dataset_is_refused(tmp_path, change):
    root = _paired(tmp_path / "ds", ITEMS[:2], tool="rainset build-gt")
    kw = {"kind": "paired", "params": PARAMS, "tool": "rainset build-gt", **change}
    with pytest.raises(FormatError, match="different dataset"):
        DatasetWriter(root, **kw)
    # Same settings (params compared as JSON: a tuple equals the list it became) reopen fine.
    DatasetWriter(root, kind="paired", params=dict(PARAMS), tool="rainset build-gt").close()


def test_params_are_compared_as_json(tmp_path):
    root = tmp_path / "ds"
    DatasetWriter(root, kind="paired", params={"sizes": (3, 5)}).close()
    DatasetWriter(root, kind="paired", params={"sizes": [3, 5]}).close()
    assert _meta(root)["params"] == {"sizes": [3, 5]}


def test_newer_format_version_is_refused(tmp_path):
    root = _paired(tmp_path / "ds", ITEMS[:1])
    meta = _meta(root)
    meta["format_version"] = FORMAT_VERSION + 1
    (root / "rainset.json").write_text(json.dumps(meta))
    with pytest.raises(FormatError, match="newer"):
        DatasetWriter(root, kind="paired", params=PARAMS)
    with pytest.raises(FormatError, match="newer"):
        open_dataset(root)
    assert [p.line for p in check(root)] == [None]
    assert "newer" in check(root)[0].message


def _bad_record(w: DatasetWriter) -> dict:
    r = w.write_image("r", _img(0))
    c = w.write_image("c", _img(1))
    return {"id": "x", "scene": "s0", "rainy": r, "clean": c}


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda r: r.pop("clean"), "missing required key 'clean'"),
        (lambda r: r.update(id=3), "id must be a non-empty string"),
        (lambda r: r.update(split="dev"), "unknown split"),
        (lambda r: r.update(mask="nothing/here.png"), "does not exist"),
        (lambda r: r.update(mask="../outside.png"), "inside the dataset"),
        (lambda r: r.update(tiers=["a.png"]), "tiers must be an object"),
        (lambda r: r.update(labels={"angle": np.float32(1)}), "JSON"),
        (lambda r: r.update(labels={"angle": float("nan")}), "JSON"),
    ],
)
def test_add_rejects_bad_records(tmp_path, edit, match):
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        rec = _bad_record(w)
        edit(rec)
        with pytest.raises(ValueError, match=match):
            w.add(rec)
    assert _lines(tmp_path / "ds" / "manifest.jsonl") == []


def test_add_refuses_duplicates_and_scene_leaks(tmp_path):
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        rec = _bad_record(w)
        w.add(rec)
        with pytest.raises(ValueError, match="duplicate id"):
            w.add(rec)
        other = "train" if rec.get("split", w.split_rule.split_of("s0")) == "test" else "test"
        with pytest.raises(ValueError, match="already in split"):
            w.add({**rec, "id": "y", "split": other})
        w.add({**rec, "id": "z", "extra": {"kept": True}})
    recs = list(open_dataset(tmp_path / "ds").samples())
    assert [r["id"] for r in recs] == ["x", "z"]
    assert recs[1]["extra"] == {"kept": True}
    assert recs[0]["split"] == SplitRule().split_of("s0")


def test_write_image_paths(tmp_path):
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        assert w.image_ext == ".png"
        assert w.write_image("a/b/000012", _img(0)) == "a/b/000012.png"
        for bad in ("a/b.png", "/abs/x", "../x", "a\\b", ""):
            with pytest.raises(ValueError):
                w.write_image(bad, _img(0))
    assert (tmp_path / "ds" / "a" / "b" / "000012.png").is_file()


def test_jpeg_format_is_written_and_recorded(tmp_path):
    smooth = np.dstack([*np.meshgrid(np.arange(64), np.arange(48)), np.full((48, 64), 30)])
    smooth = (smooth * 3).clip(0, 255).astype(np.uint8)
    sizes = {}
    for q in (20, 95):
        root = tmp_path / f"q{q}"
        with DatasetWriter(root, kind="paired", params={}, image_format="jpg", jpeg_quality=q) as w:
            assert w.image_ext == ".jpg"
            rainy = w.write_image("rainy/a", smooth)
            clean = w.write_image("clean/a", smooth)
            mask = w.write_image("mask/a", smooth[..., 0] > 100)
            rain_map = w.write_image("rain/a", smooth, lossless=True)
            w.add({"id": "a", "scene": "s", "rainy": rainy, "clean": clean, "mask": mask})
        assert (rainy, mask, rain_map) == ("rainy/a.jpg", "mask/a.png", "rain/a.png")
        assert (root / rainy).read_bytes()[:2] == b"\xff\xd8"
        assert _meta(root)["image_format"] == "jpg"
        assert _meta(root)["jpeg_quality"] == q
        ds = open_dataset(root)
        sample = next(ds.samples())
        assert np.abs(ds.load(sample, "rainy").astype(int) - smooth).mean() < 8
        np.testing.assert_array_equal(ds.load_mask(sample), smooth[..., 0] > 100)
        np.testing.assert_array_equal(read_image(root / rain_map), smooth)
        sizes[q] = (root / rainy).stat().st_size
        assert check(root) == []
    assert sizes[20] < sizes[95]  # the quality reached the encoder
    with pytest.raises(FormatError, match="different dataset"):
        DatasetWriter(tmp_path / "q20", kind="paired", params={}, image_format="jpg")


def test_sources_are_hashed_once_and_verified(tmp_path):
    video = tmp_path / "rain.mp4"
    video.write_bytes(b"not really a video")
    folder = tmp_path / "frames"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.png").write_bytes(b"bb")
    (folder / "sub" / "a.png").write_bytes(b"aa")
    root = tmp_path / "ds"
    with DatasetWriter(root, kind="paired", params={}) as w:
        w.add_source(video, note="own footage, CC0")
        w.add_source(video, note="again")
        w.add_source(folder, note="frames")
        w.add_source("https://example.org/x.zip", note="given", sha256="ab" * 32)
    sources = _meta(root)["sources"]
    assert [s["path"] for s in sources] == [str(video), str(folder), "https://example.org/x.zip"]
    assert sources[0] == {
        "path": str(video),
        "relpath": "../rain.mp4",
        "sha256": hashlib.sha256(b"not really a video").hexdigest(),
        "note": "own footage, CC0",
    }
    listing = "".join(
        f"{rel}\t{hashlib.sha256(data).hexdigest()}\n"
        for rel, data in (("b.png", b"bb"), ("sub/a.png", b"aa"))
    )
    assert sources[1]["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert hash_source(folder) == sources[1]["sha256"]

    problems = check(root, verify_hashes=True)
    assert _messages(problems) == [
        "source 'https://example.org/x.zip' not found; cannot verify its sha256",
        "no samples: the dataset is empty",
    ]
    video.write_bytes(b"changed")
    assert any(
        f"source {str(video)!r} changed" in m for m in _messages(check(root, verify_hashes=True))
    )
    # hashes are only checked when asked
    assert _messages(check(root)) == ["no samples: the dataset is empty"]


# ----------------------------------------------------------------------------- timelapse


def test_timelapse_pairs_validate_and_resume(tmp_path):
    root = _timelapse(tmp_path / "tl")
    with DatasetWriter(root, kind="timelapse", params={}) as w:
        assert w.has("cam1/2") and w.has_pair("cam1/0|cam1/1")
        with pytest.raises(ValueError, match="not a frame id"):
            w.add_pair({"a": "cam1/0", "b": "cam9/0"})
        with pytest.raises(ValueError, match="same frame"):
            w.add_pair({"a": "cam1/0", "b": "cam1/0"})
        with pytest.raises(ValueError, match="different scenes"):
            w.add_pair({"a": "cam1/0", "b": "cam2/1"})
        with pytest.raises(ValueError, match="duplicate pair"):
            w.add_pair({"a": "cam1/0", "b": "cam1/1"})
        w.add_pair({"id": "p", "a": "cam1/1", "b": "cam1/2", "gap": 1})
    ds = open_dataset(root)
    pairs = list(ds.pairs(scene="cam1"))
    assert [p["id"] for p in pairs] == ["cam1/0|cam1/1", "cam1/0|cam1/2", "p"]
    assert pairs[-1]["gap"] == 1
    assert all(p["split"] == SplitRule().split_of("cam1") for p in pairs)
    assert ds.sample(pairs[0]["b"])["index"] == 1
    assert _meta(root)["counts"]["pairs"] == 5
    assert check(root) == []


def test_torn_pairs_line_is_dropped_on_reopen(tmp_path):
    root = _timelapse(tmp_path / "tl")
    with open(root / "pairs.jsonl", "ab") as f:
        f.write(b'{"id": "cam2/1|cam2/2", "sc')
    with DatasetWriter(root, kind="timelapse", params={}) as w:
        assert not w.has_pair("cam2/1|cam2/2")
        w.add_pair({"a": "cam2/1", "b": "cam2/2"})
    assert len(_lines(root / "pairs.jsonl")) == 5
    assert check(root) == []


def test_add_pair_is_for_timelapse_only(tmp_path):
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        with pytest.raises(ValueError, match="timelapse"):
            w.add_pair({"a": "x", "b": "y"})


# ----------------------------------------------------------------------------- reader


def test_reader_filters_by_split_and_scene(tmp_path):
    rule = SplitRule(test_scenes=("s1",))
    root = _paired(tmp_path / "ds", split_rule=rule)
    ds = open_dataset(root)
    assert ds.kind == "paired" and ds.split_rule == rule
    assert ds.scenes() == ["s0", "s1", "s2"]
    test_ids = [s["id"] for s in ds.samples(split="test")]
    assert test_ids == [sid for sid, scene in ITEMS if scene == "s1"]
    train = list(ds.samples(split="train"))
    assert {s["scene"] for s in train} == {"s0", "s2"}
    assert len(train) + len(test_ids) == len(ITEMS)
    assert [s["id"] for s in ds.samples(scene="s2")] == [sid for sid, sc in ITEMS if sc == "s2"]
    assert list(ds.samples(split="test", scene="s0")) == []
    assert list(ds.pairs()) == []
    with pytest.raises(ValueError):
        list(ds.samples(split="testing"))
    assert _meta(root)["counts"]["per_split"] == {"train": 7, "val": 0, "test": 3}


def test_reader_loads_what_was_written(tmp_path):
    root = tmp_path / "ds"
    rainy, tier, mask = _img(1), _img(2), _img(3, (8, 10)) > 100
    with DatasetWriter(root, kind="paired", params={}) as w:
        rec = {
            "id": "a",
            "scene": "s",
            "rainy": w.write_image("rainy/a", rainy),
            "clean": w.write_image("clean/a", _img(4)),
            "mask": w.write_image("mask/a", mask),
            "tiers": {"3x3": w.write_image("tier3/a", tier)},
        }
        w.add(rec)
    ds = open_dataset(root)
    sample = ds.sample("a")
    np.testing.assert_array_equal(ds.load(sample, "rainy"), rainy)
    np.testing.assert_array_equal(ds.load(sample, "tiers.3x3"), tier)
    np.testing.assert_array_equal(ds.load_mask(sample), mask)
    assert ds.path(sample["rainy"]) == root / "rainy" / "a.png"
    with pytest.raises(KeyError):
        ds.load(sample, "semantic")
    with pytest.raises(ValueError):
        ds.path("../x.png")


def test_open_dataset_names_the_missing_file(tmp_path):
    with pytest.raises(FormatError, match="rainset.json"):
        open_dataset(tmp_path)
    (tmp_path / "rainset.json").write_text("{nope")
    with pytest.raises(FormatError, match="not valid JSON"):
        open_dataset(tmp_path)


# ----------------------------------------------------------------------------- check


def _line_of(root: Path, sid: str) -> int:
    ids = [json.loads(x)["id"] for x in _lines(root / "manifest.jsonl")]
    return ids.index(sid) + 1


@pytest.mark.parametrize("decode", [True, False])
def test_check_reports_a_deleted_image_with_its_line(tmp_path, decode):
    root = _paired(tmp_path / "ds")
    sid = ITEMS[5][0]
    (root / f"clean/{sid}.png").unlink()
    problems = check(root, decode=decode)
    assert problems == [
        Problem("manifest.jsonl", _line_of(root, sid), f"clean 'clean/{sid}.png': does not exist")
    ]


def test_check_reports_a_corrupt_manifest_line_with_its_number(tmp_path):
    root = _paired(tmp_path / "ds")
    lines = _lines(root / "manifest.jsonl")
    lines[2] = lines[2][:-7]
    lines.insert(5, "")
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    problems = check(root)
    assert [(p.path, p.line) for p in problems if p.path == "manifest.jsonl"] == [
        ("manifest.jsonl", 3),
        ("manifest.jsonl", 6),
    ]
    assert problems[-2].message.startswith("not valid JSON")
    assert problems[-1].message == "empty line"
    # The counts no longer match either (one sample fewer readable).
    assert any(m.startswith("counts.samples is 10") for m in _messages(problems, "rainset.json"))


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("key", ["clean", "mask"])
def test_check_reports_a_size_mismatch(tmp_path, decode, key):
    root = _paired(tmp_path / "ds")
    sid = ITEMS[1][0]
    shape = (9, 10, 3) if key == "clean" else (8, 11)
    cv2.imwrite(str(root / f"{key}/{sid}.png"), _img(0, shape))
    problems = check(root, decode=decode)
    assert len(problems) == 1
    assert problems[0].line == _line_of(root, sid)
    want = "9x10" if key == "clean" else "8x11"
    assert problems[0].message == (
        f"{key} '{key}/{sid}.png' is {want} (HxW) but rainy 'rainy/{sid}.png' is 8x10"
    )


def test_check_reports_duplicate_ids_unknown_splits_and_scene_leaks(tmp_path):
    root = _paired(tmp_path / "ds")
    lines = _lines(root / "manifest.jsonl")
    first = json.loads(lines[0])
    leak_split = "test" if first["split"] != "test" else "train"
    extra = [
        lines[0],  # line 11: duplicate of line 1
        json.dumps({**first, "id": "new1", "split": "dev"}),  # line 12
        json.dumps({**first, "id": "new2", "split": leak_split}),  # line 13
    ]
    (root / "manifest.jsonl").write_text("\n".join(lines + extra) + "\n")
    problems = check(root)
    manifest = [(p.line, p.message) for p in problems if p.path == "manifest.jsonl"]
    assert manifest == [
        (11, f"duplicate id {first['id']!r} (first on line 1)"),
        (12, "unknown split 'dev' (expected one of train, val, test)"),
        (
            13,
            f"scene {first['scene']!r} leaks across splits: "
            f"{first['split']} (line 1), {leak_split} (line 13)",
        ),
    ]
    assert any(m.startswith("counts.") for m in _messages(problems, "rainset.json"))


def test_check_reports_unreadable_and_truncated_images(tmp_path):
    root = _paired(tmp_path / "ds", ITEMS[:2], image_format="jpg")
    s0, s1 = ITEMS[0][0], ITEMS[1][0]
    (root / f"mask/{s0}.png").write_bytes(b"definitely not a png")
    data = (root / f"rainy/{s1}.jpg").read_bytes()
    (root / f"rainy/{s1}.jpg").write_bytes(data[: len(data) // 2])
    full = check(root)
    assert [(p.line, p.message.split(":")[0]) for p in full] == [
        (1, f"mask 'mask/{s0}.png'"),
        (2, f"rainy 'rainy/{s1}.jpg'"),
    ]
    assert "truncated" in full[1].message
    # Headers only: the truncated JPEG passes, the garbage PNG does not.
    assert [p.line for p in check(root, decode=False)] == [1]


def test_check_timelapse_pairs(tmp_path):
    root = _timelapse(tmp_path / "tl")
    with open(root / "pairs.jsonl", "a") as f:
        f.write(
            json.dumps({"id": "m", "scene": "cam1", "split": "train", "a": "cam1/0", "b": "cam1/7"})
            + "\n"
        )
        f.write(
            json.dumps({"id": "x", "scene": "cam1", "split": "train", "a": "cam1/0", "b": "cam2/1"})
            + "\n"
        )
        f.write(
            json.dumps({"id": "s", "scene": "cam1", "split": "train", "a": "cam1/2", "b": "cam1/2"})
            + "\n"
        )
        f.write('{"id": "broken"\n')
    (root / "frames/cam2/2.png").unlink()
    problems = check(root)
    pairs = [(p.line, p.message) for p in problems if p.path == "pairs.jsonl"]
    assert pairs[0] == (5, "pair 'm' names frame 'cam1/7', which is not in manifest.jsonl")
    assert pairs[1] == (6, "pair 'x' joins frames of scenes 'cam1' and 'cam2'")
    assert pairs[2] == (7, "pair 's' pairs frame 'cam1/2' with itself")
    assert pairs[3][0] == 8 and pairs[3][1].startswith("not valid JSON")
    assert len(pairs) == 4
    assert _messages(problems, "manifest.jsonl") == ["frame 'frames/cam2/2.png': does not exist"]
    assert _messages(problems, "rainset.json") == ["counts.pairs is 4 but the files hold 7"]


def test_check_names_missing_or_broken_metadata(tmp_path):
    assert check(tmp_path) == [
        Problem("rainset.json", None, f"missing: {tmp_path} is not a rainset dataset")
    ]
    (tmp_path / "rainset.json").write_text("[1, 2")
    [p] = check(tmp_path)
    assert p.path == "rainset.json" and p.message.startswith("not valid JSON")
    root = _paired(tmp_path / "ds", ITEMS[:3], split_rule=SplitRule(test_scenes=("s1", "nope")))
    meta = _meta(root)
    del meta["params"]
    (root / "rainset.json").write_text(json.dumps(meta))
    assert _messages(check(root)) == [
        "params must be an object",
        "split_rule names test scene 'nope' but no record has it",
    ]
    (root / "manifest.jsonl").unlink()
    assert ("manifest.jsonl", None, "missing") in [(p.path, p.line, p.message) for p in check(root)]


def test_problem_str():
    assert str(Problem("manifest.jsonl", 3, "bad")) == "manifest.jsonl:3: bad"
    assert str(Problem("rainset.json", None, "bad")) == "rainset.json: bad"


@pytest.mark.parametrize("shape", [(1, 1, 3), (17, 33, 3), (300, 7, 3), (5, 6)])
@pytest.mark.parametrize(
    "suffix, params",
    [
        (".png", []),
        (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    ],
)
def test_header_sizes_match_a_full_decode(tmp_path, shape, suffix, params):
    path = tmp_path / f"x{suffix}"
    cv2.imwrite(str(path), _img(0, shape), params)
    assert image_size(path, decode=False) == image_size(path, decode=True) == shape[:2]


def test_header_size_of_16_bit_png_and_missing_file(tmp_path):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.zeros((4, 9), np.uint16))
    assert image_size(path, decode=False) == (4, 9)
    with pytest.raises(InputError, match="does not exist"):
        image_size(tmp_path / "nope.png")


# ----------------------------------------------------------------------------- goldens, docs


def _regen():
    spec = importlib.util.spec_from_file_location("golden_regen", REPO / "tests/golden/regen.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("kind", ["paired", "timelapse"])
def test_goldens(tmp_path, kind):
    regen = _regen()
    files = regen.build(kind, tmp_path / kind)
    for name, text in files.items():
        golden = REPO / "tests/golden" / kind / name
        assert text == golden.read_text(), f"{golden} is stale: run python tests/golden/regen.py"
    assert check(tmp_path / kind) == []


def _doc_json_blocks() -> list:
    text = (REPO / "docs/format.md").read_text()
    out = []
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        try:
            out.append(json.loads(block))
        except ValueError:
            out += [json.loads(line) for line in block.splitlines() if line.strip()]
    return out


def test_docs_show_the_golden_files():
    blocks = _doc_json_blocks()
    for kind in ("paired", "timelapse"):
        golden = REPO / "tests/golden" / kind
        assert json.loads((golden / "rainset.json").read_text()) in blocks, kind
        assert json.loads(_lines(golden / "manifest.jsonl")[0]) in blocks, kind
    assert json.loads(_lines(REPO / "tests/golden/timelapse/pairs.jsonl")[0]) in blocks


def test_docs_list_the_splits_and_the_version():
    text = (REPO / "docs/format.md").read_text()
    assert all(f"`{s}`" in text for s in SPLITS)
    assert f'"format_version": {FORMAT_VERSION}' in text
