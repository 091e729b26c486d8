"""``rainset export`` and rainset.exchange, checked by the consumers themselves.

Hugging Face ``datasets`` and ``webdataset`` read what the exports wrote; BasicSR's and
GT-Rain's loaders are re-implemented here from their documented rules (not copied); the
layouts' readers give back the ids, the pairing and the pixels of the dataset.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.dataset import open_dataset
from rainset.errors import InputError
from rainset.exchange import decode_name, encode_name, export
from rainset.exchange.basicsr import read_basicsr
from rainset.exchange.gtrain import read_gtrain
from rainset.exchange.spa import read_spa
from rainset.image import read_image, write_image
from rainset.video import write_video
from rainset_cli.main import cli

FORMATS = ("basicsr", "hf", "webdataset", "spa", "gtrain")


def _cli(*args):
    return CliRunner().invoke(cli, ["-q", *map(str, args)])


def _synth(root: Path, photos: dict[str, tuple[int, int]], name: str = "syn", *,
           test: bool = True) -> Path:
    """A synth dataset from photos of the given sizes, with the first photo's scene as test
    (whatever scene id rule synth follows), or all train."""
    src = root / f"{name}-photos"
    rng = np.random.default_rng(0)
    for fname, (h, w) in photos.items():
        write_image(src / fname, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    split = ["--test-fraction", 0]
    if test:
        probe = root / f"{name}-probe"
        r = _cli("synth", src, "-o", probe, "--per-image", 1, "--limit", 1, "--seed", 1)
        assert r.exit_code == 0, r.output
        split = ["--test-scenes", next(open_dataset(probe).samples())["scene"]]
    out = root / name
    r = _cli("synth", src, "-o", out, "--per-image", 2, "--seed", 1, *split)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    """8 synthetic pairs of mixed sizes in train and test; one photo name holds dots."""
    root = tmp_path_factory.mktemp("syn")
    return _synth(root, {"a.png": (40, 56), "b.1.png": (48, 40), "c.png": (36, 36),
                         "d.png": (44, 60)})


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> Path:
    """A build-gt dataset: 20 rainy frames sharing one clean image, with masks."""
    root = tmp_path_factory.mktemp("gt")
    bg = textured_background(32, 48, 0)
    write_video(root / "clip.mp4", rain_frames(bg, 24, seed=0), fps=10, crf=10)
    out = root / "gt"
    r = _cli("build-gt", root / "clip.mp4", "--density", "sparse", "--review", "accept", "-o", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def tl(tmp_path_factory) -> Path:
    """A time-lapse dataset: 6 frames of one static segment, 5 pairs, masks, pseudo GT."""
    root = tmp_path_factory.mktemp("tl")
    bg = textured_background(32, 48, 1)
    for t, f in enumerate(rain_frames(bg, 12, seed=1)):
        write_image(root / "cam" / f"img{t:02d}.png", f)
    out = root / "tl"
    r = _cli("pairs", root / "cam", "-n", 6, "--pairs-per-segment", 5, "--pseudo-gt", "-o", out)
    assert r.exit_code == 0, r.output
    return out


def _pixels_equal(path_a, path_b) -> bool:
    return np.array_equal(read_image(path_a), read_image(path_b))


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("sid", ["a/b/c", "x.y/1", "sp ace/%7", ".hidden/f", "a-b_c/d", "a/_b"])
def test_names_are_reversible_and_flat(sid):
    for dots in (False, True):
        name = encode_name(sid, escape_dots=dots)
        assert "/" not in name and " " not in name and not name.startswith(".")
        assert decode_name(name) == sid
        if dots:
            assert "." not in name


@pytest.mark.parametrize("sid", ["a__b", "a_/b", "x/a_/b"])
def test_ids_the_names_could_not_give_back_are_refused(sid):
    with pytest.raises(InputError, match="could not be read back"):
        encode_name(sid)


# ----------------------------------------------------------------------------- real consumers


def test_hf_imagefolder_gives_paired_image_columns_and_real_splits(syn, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    r = _cli("export", syn, "--to", "hf", "-o", out)
    assert r.exit_code == 0, r.output
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out),
                                   cache_dir=str(tmp_path / "cache"))
    ds = open_dataset(syn)
    assert set(loaded) == {"train", "test"}
    for split, part in loaded.items():
        for col in ("rainy", "clean", "mask", "rain_map"):
            assert isinstance(part.features[col], datasets.Image), col
        recs = {r["id"]: r for r in ds.samples(split=split)}
        assert sorted(part["id"]) == sorted(recs)
        for row in part:
            rec = recs[row["id"]]
            assert np.array_equal(np.asarray(row["rainy"].convert("RGB")), ds.load(rec, "rainy"))
            assert np.array_equal(np.asarray(row["clean"].convert("RGB")), ds.load(rec, "clean"))
            assert np.array_equal(np.asarray(row["mask"]) > 127, ds.load_mask(rec))
            assert row["scene"] == rec["scene"] and row["theta"] == rec["labels"]["theta"]
            assert row["density"] == rec["labels"]["density"]
    # One clean file per clean image, not per sample.
    n_clean = {r["clean"] for r in ds.samples(split="train")}
    assert len(list((out / "train" / "clean").iterdir())) == len(n_clean) < 6


def test_hf_timelapse_rows_are_frame_pairs_with_their_masks(tl, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    export(tl, out, to="hf")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out),
                                   cache_dir=str(tmp_path / "cache"))
    ds = open_dataset(tl)
    (split,) = loaded
    part = loaded[split]
    assert sorted(part["id"]) == sorted(p["id"] for p in ds.pairs())
    for row in part:
        for tag in ("a", "b"):
            frame = ds.sample(row[tag])
            assert np.array_equal(np.asarray(row[f"frame_{tag}"].convert("RGB")),
                                  ds.load(frame, "frame"))
            assert np.array_equal(np.asarray(row[f"mask_{tag}"]) > 127, ds.load_mask(frame))
            assert row[f"index_{tag}"] == frame["index"]


def test_webdataset_reads_the_shards_with_pixels_and_labels(syn, tmp_path):
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "wds"
    r = _cli("export", syn, "--to", "webdataset", "-o", out, "--shard-size", 4)
    assert r.exit_code == 0, r.output
    ds = open_dataset(syn)
    for split in ("train", "test"):
        recs = {r["id"]: r for r in ds.samples(split=split)}
        shards = sorted(str(p) for p in out.glob(f"{split}-*.tar"))
        assert len(shards) == -(-len(recs) // 4)
        seen = {}
        for sample in wds.WebDataset(shards, shardshuffle=False):
            meta = json.loads(sample["json"])
            assert decode_name(sample["__key__"]) == meta["id"] and "." not in sample["__key__"]
            seen[meta["id"]] = (sample, meta)
        assert sorted(seen) == sorted(recs)
        for sid, (sample, meta) in seen.items():
            rec = recs[sid]
            for key in ("rainy", "clean", "mask", "rain_map"):
                assert sample[f"{key}.png"] == ds.path(rec[key]).read_bytes(), key
            assert meta["scene"] == rec["scene"] and meta["labels"] == rec["labels"]
    assert any("." in sid for sid in (r["id"] for r in ds.samples()))  # dots were escaped


def test_webdataset_timelapse_pairs(tl, tmp_path):
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "wds"
    export(tl, out, to="webdataset", shard_size="1KB")  # one pair per shard
    ds = open_dataset(tl)
    shards = sorted(str(p) for p in out.glob("*.tar"))
    assert len(shards) == ds.meta["counts"]["pairs"]
    for sample in wds.WebDataset(shards, shardshuffle=False):
        meta = json.loads(sample["json"])
        a, b = ds.sample(meta["a"]), ds.sample(meta["b"])
        assert sample["frame_a.png"] == ds.path(a["frame"]).read_bytes()
        assert sample["mask_b.png"] == ds.path(b["mask"]).read_bytes()
        assert sample["clean.png"] == ds.path(a["clean"]).read_bytes()


def _basicsr_folder_pairs(lq: Path, gt: Path, tmpl: str = "{}") -> list[tuple[Path, Path]]:
    """BasicSR's ``paired_paths_from_folder`` rule: a non-recursive scan of both folders, equal
    counts, and for each gt file the lq file named ``tmpl.format(stem) + ext``."""
    lq_names = {p.name for p in lq.iterdir() if p.is_file()}
    gt_files = sorted(p for p in gt.iterdir() if p.is_file())
    assert len(lq_names) == len(gt_files), "BasicSR: lq and gt hold different numbers of files"
    out = []
    for g in gt_files:
        name = tmpl.format(g.stem) + g.suffix
        assert name in lq_names, f"BasicSR: {name} is not in {lq}"
        out.append((lq / name, g))
    return out


def _basicsr_meta_pairs(lq: Path, gt: Path, meta: Path) -> list[tuple[Path, Path]]:
    """BasicSR's ``paired_paths_from_meta_info_file`` rule: the first space-separated token of
    each line names the gt file, and the lq file of the same name."""
    names = [line.rstrip().split(" ")[0] for line in meta.read_text().splitlines()]
    return [(lq / n, gt / n) for n in names]


@pytest.mark.parametrize("fixture", ["syn", "gt"])
def test_basicsr_layout_passes_basicsrs_rules_and_reads_back(fixture, request, tmp_path):
    root = request.getfixturevalue(fixture)
    ds = open_dataset(root)
    for names, (gt_name, lq_name) in (("basicsr", ("gt", "lq")), ("restormer", ("target", "input"))):
        out = tmp_path / names
        r = _cli("export", root, "--to", "basicsr", "--names", names, "-o", out)
        assert r.exit_code == 0, r.output
        for split in ds.meta["counts"]["per_split"]:
            recs = {r["id"]: r for r in ds.samples(split=split)}
            if not recs:
                assert not (out / split).exists()
                continue
            lq, gt = out / split / lq_name, out / split / gt_name
            by_folder = _basicsr_folder_pairs(lq, gt)
            meta = out / f"{split}_meta_info.txt"
            by_meta = _basicsr_meta_pairs(lq, gt, meta)
            assert sorted(by_folder) == sorted(by_meta) and len(by_meta) == len(recs)
            for line in meta.read_text().splitlines():
                h, w = read_image(gt / line.split(" ")[0]).shape[:2]
                assert line.split(" ")[1] == f"({h},{w},3)"
            # The reader (the importer's part) gives back ids, pairing and pixels.
            back = read_basicsr(lq, gt, meta_info=meta)
            assert sorted(p.id for p in back) == sorted(recs)
            for p in back:
                rec = recs[p.id]
                assert os.path.samefile(p.rainy, ds.path(rec["rainy"]))
                assert os.path.samefile(p.clean, ds.path(rec["clean"]))


def _gtrain_loader_pairs(root: Path) -> list[tuple[Path, Path]]:
    """GT-Rain's loader rule: every scene folder, its one ``*C-000.png`` clean image, and every
    ``*R-*.png`` in it as a rainy frame of that clean image."""
    out = []
    for scene in sorted(p for p in root.iterdir() if p.is_dir()):
        names = [p.name for p in scene.iterdir()]
        clean = [n for n in names if fnmatch.fnmatch(n, "*C-000.png")]
        assert len(clean) == 1, f"GT-Rain: {scene} needs one *C-000.png, has {clean}"
        out += [(scene / n, scene / clean[0]) for n in names if fnmatch.fnmatch(n, "*R-*.png")]
    return out


@pytest.mark.parametrize("fixture", ["syn", "gt"])
def test_gtrain_and_spa_layouts_pass_their_rules_and_read_back(fixture, request, tmp_path):
    root = request.getfixturevalue(fixture)
    ds = open_dataset(root)
    for fmt in ("gtrain", "spa"):
        out = tmp_path / fmt
        assert _cli("export", root, "--to", fmt, "-o", out).exit_code == 0
        for split in ("train", "test"):
            recs = {r["id"]: r for r in ds.samples(split=split)}
            if not recs:
                continue
            if fmt == "gtrain":
                found = _gtrain_loader_pairs(out / split)
                back = read_gtrain(out / split)
            else:
                lines = (out / f"{split}_real_world.txt").read_text().splitlines()
                found = [tuple(out / p for p in line.split(" ")) for line in lines]
                back = read_spa(out / f"{split}_real_world.txt")
            assert len(found) == len(recs)
            assert sorted(p.id for p in back) == sorted(recs)
            for p in back:
                rec = recs[p.id]
                assert os.path.samefile(p.rainy, ds.path(rec["rainy"]))
                assert os.path.samefile(p.clean, ds.path(rec["clean"]))
                # Scenes: the layout's own (one per clean image), the same for a shared clean.
                assert p.scene == decode_name(p.clean.parent.name)


@pytest.mark.parametrize("fmt", ["basicsr", "gtrain", "spa"])
def test_export_then_import_gives_back_pixels_ids_and_pairing(syn, gt, fmt, tmp_path):
    """Through the importer's writer (rainset.importer.import_paired) to a new dataset."""
    from rainset.exchange._common import import_plans
    from rainset.importer import import_paired

    for name, root in (("syn", syn), ("gt", gt)):
        ds = open_dataset(root)
        out = tmp_path / name
        export(root, out, to=fmt, split="train")
        if fmt == "basicsr":
            pairs = read_basicsr(out / "train" / "lq", out / "train" / "gt",
                                 meta_info=out / "train_meta_info.txt")
        elif fmt == "gtrain":
            pairs = read_gtrain(out / "train")
        else:
            pairs = read_spa(out / "train_real_world.txt")
        back_root = tmp_path / f"{name}-back"
        for _ in import_paired(import_plans(pairs, out), back_root):
            pass
        back = open_dataset(back_root)
        recs = {r["id"]: r for r in ds.samples(split="train")}
        got = {r["id"]: r for r in back.samples()}
        assert sorted(got) == sorted(recs)
        for sid, rec in recs.items():
            assert np.array_equal(back.load(got[sid], "rainy"), ds.load(rec, "rainy"))
            assert np.array_equal(back.load(got[sid], "clean"), ds.load(rec, "clean"))
        # Pairing: samples that shared a clean image share one again, and only those.
        def groups(records):
            by = {}
            for sid, r in records.items():
                by.setdefault(r["clean"], set()).add(sid)
            return sorted(map(sorted, by.values()))

        assert groups(got) == groups(recs)


def test_spa_patches_cut_rainy_and_clean_alike_and_clean_once(syn, tmp_path):
    out = tmp_path / "spa"
    r = _cli("export", syn, "--to", "spa", "-o", out, "--patch", 16, "--stride", 12)
    assert r.exit_code == 0, r.output
    ds = open_dataset(syn)
    recs = list(ds.samples(split="train"))
    want = sum(len(range(0, h - 16 + 1, 12)) * len(range(0, w - 16 + 1, 12))
               for h, w in (ds.load(r, "rainy").shape[:2] for r in recs))
    lines = (out / "train_real_world.txt").read_text().splitlines()
    assert len(lines) == want
    gt_files = set(line.split(" ")[1] for line in lines)
    assert len(list((out / "train" / "real_world_gt").rglob("*.png"))) == len(gt_files) < want
    back = {p.id: p for p in read_spa(out / "train_real_world.txt")}
    for rec in recs:
        p = back[f"{rec['id']}/12_0"]
        assert np.array_equal(read_image(p.rainy), ds.load(rec, "rainy")[0:16, 12:28])
        assert np.array_equal(read_image(p.clean), ds.load(rec, "clean")[0:16, 12:28])


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_gt_and_timelapse_export_to_every_format(gt, tl, fmt, tmp_path):
    for name, root in (("gt", gt), ("tl", tl)):
        r = _cli("export", root, "--to", fmt, "-o", tmp_path / name)
        assert r.exit_code == 0, r.output
        state = json.loads((tmp_path / name / ".rainset-export.json").read_text())
        assert state["complete"] is True and state["format"] == fmt
        if name == "tl" and fmt in ("basicsr", "spa", "gtrain"):
            assert "frame pairs (m, n) were not" in r.stderr


def test_jpeg_datasets_keep_jpeg_bytes_except_where_the_layout_needs_png(tmp_path):
    wds = pytest.importorskip("webdataset")
    root = tmp_path / "jpg"
    src = tmp_path / "photos"
    write_image(src / "a.png", textured_background(40, 48, 3))
    r = _cli("synth", src, "-o", root, "--per-image", 3, "--format", "jpg", "--test-fraction", 0)
    assert r.exit_code == 0, r.output
    ds = open_dataset(root)
    recs = {r["id"]: r for r in ds.samples()}
    export(root, tmp_path / "wds", to="webdataset")
    for sample in wds.WebDataset(sorted(map(str, (tmp_path / "wds").glob("*.tar"))),
                                 shardshuffle=False):
        rec = recs[json.loads(sample["json"])["id"]]
        assert sample["rainy.jpg"] == ds.path(rec["rainy"]).read_bytes()
        assert sample["mask.png"] == ds.path(rec["mask"]).read_bytes()
    res = export(root, tmp_path / "gtrain", to="gtrain")
    assert res.notes and "written as PNG" in res.notes[0]
    (scene,) = (tmp_path / "gtrain" / "train").iterdir()
    clean = scene / f"{scene.name}-C-000.png"
    assert clean.stat().st_nlink == 1  # converted once, for the scene, not per frame
    for p in read_gtrain(tmp_path / "gtrain" / "train"):
        assert p.rainy.suffix == ".png"
        assert _pixels_equal(p.rainy, ds.path(recs[p.id]["rainy"]))
        assert _pixels_equal(p.clean, ds.path(recs[p.id]["clean"]))


def test_rain100_layouts_pair_by_the_right_number(tmp_path):
    from rainset.exchange.rain100 import read_rain100

    img = np.zeros((8, 8, 3), np.uint8)
    a = tmp_path / "rain100l"
    for n in (1, 2, 10):
        write_image(a / "rain" / f"rain-{n:03d}.png", img)
        write_image(a / "norain" / f"norain-{n:03d}.png", img)
    write_image(a / "rain" / "rain-099.png", img)  # no clean partner
    pairs = read_rain100(a)
    unmatched = pairs.unmatched
    assert [(p.id, p.clean.name) for p in pairs] == [
        ("rain/rain-001", "norain-001.png"), ("rain/rain-002", "norain-002.png"),
        ("rain/rain-010", "norain-010.png")]
    assert unmatched == ["rain/rain-099.png"]
    # JORDER's form: the number before "x", not the last number, names the clean image.
    j = tmp_path / "rain200h"
    for n in (1, 2, 12):
        write_image(j / "rain" / "X2" / f"norain-{n}x2.png", img)
        write_image(j / "norain" / f"norain-{n}.png", img)
    pairs = read_rain100(j)
    unmatched = pairs.unmatched
    assert {p.id: p.clean.name for p in pairs} == {
        "rain/X2/norain-1x2": "norain-1.png", "rain/X2/norain-2x2": "norain-2.png",
        "rain/X2/norain-12x2": "norain-12.png"}
    assert unmatched == [] and {p.scene for p in pairs} == {"norain-1", "norain-2", "norain-12"}


def test_published_layout_readers_name_what_is_missing(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    write_image(tmp_path / "real_world" / "000" / "000-1" / "000-1_1_1.png", img)
    write_image(tmp_path / "real_world_gt" / "000" / "000_1_1.png", img)
    lst = tmp_path / "real_world.txt"
    lst.write_text("/real_world/000/000-1/000-1_1_1.png /real_world_gt/000/000_1_1.png\n"
                   "./real_world/000/000-2/000-2_1_1.png ./real_world_gt/000/000_1_1.png\n")
    with pytest.raises(InputError, match=r"names 1 missing images \(first: real_world/000/000-2"):
        read_spa(lst)
    lst.write_text("/real_world/000/000-1/000-1_1_1.png /real_world_gt/000/000_1_1.png\n")
    (p,) = read_spa(lst)
    assert (p.id, p.scene) == ("real_world/000/000-1/000-1_1_1", "000")
    (tmp_path / "gtr" / "s1").mkdir(parents=True)
    write_image(tmp_path / "gtr" / "s1" / "s1-R-000.png", img)
    with pytest.raises(InputError, match=r"one \*C-000.png, found 0"):
        read_gtrain(tmp_path / "gtr")
    write_image(tmp_path / "gtr" / "s1" / "s1-C-000.png", img)
    write_image(tmp_path / "gtr" / "s1" / "notes.png", img)
    layout = read_gtrain(tmp_path / "gtr")
    (p,) = layout
    assert layout.unmatched == ["s1/notes.png"]
    assert (p.id, p.scene, p.clean.name) == ("s1/s1-R-000", "s1", "s1-C-000.png")


# ----------------------------------------------------------------------------- links


def test_links_hard_symbolic_and_copies(syn, tmp_path):
    ds = open_dataset(syn)
    rec = next(ds.samples(split="train"))
    src = ds.path(rec["rainy"])
    name = encode_name(rec["id"]) + ".png"
    for link in ("hardlink", "symlink", "copy", None):
        out = tmp_path / str(link)
        export(syn, out, to="basicsr", link=link, split="train")
        dst = out / "train" / "lq" / name
        assert dst.read_bytes() == src.read_bytes()
        assert dst.is_symlink() == (link == "symlink")
        assert (dst.stat().st_ino == src.stat().st_ino) == (link != "copy")


def test_hardlink_that_cannot_link_is_an_error_or_a_noted_copy(syn, tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))

    monkeypatch.setattr(os, "link", no_link)
    r = _cli("export", syn, "--to", "gtrain", "-o", tmp_path / "a", "--link", "hardlink")
    assert r.exit_code == 1
    line, = r.stderr.strip().splitlines()
    assert "cannot be hard-linked" in line and ".png" in line and "--link copy" in line
    assert not (tmp_path / "a").exists()
    r = _cli("export", syn, "--to", "gtrain", "-o", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert "were copied" in r.stderr
    f = next((tmp_path / "b").rglob("*-C-000.png"))
    assert f.stat().st_nlink == 1


# ----------------------------------------------------------------------------- resume, refusals


@pytest.mark.parametrize("fmt", ["basicsr", "webdataset", "spa"])
def test_an_interrupted_export_resumes_to_what_a_fresh_one_writes(syn, tmp_path, fmt):
    opts = {"shard_size": 2} if fmt == "webdataset" else {}

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(syn, tmp_path / "cut", to=fmt, progress=stop, **opts)
    state = json.loads((tmp_path / "cut" / ".rainset-export.json").read_text())
    assert state["complete"] is False
    r = _cli("export", syn, "--to", fmt, "-o", tmp_path / "cut",
             *(["--shard-size", 2] if opts else []))
    assert r.exit_code == 0 and "resumed" in r.output, r.output
    export(syn, tmp_path / "fresh", to=fmt, **opts)

    def tree(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and p.name != ".rainset-export.json"}

    assert tree(tmp_path / "cut") == tree(tmp_path / "fresh")


def test_bad_inputs_get_one_line(syn, tmp_path):
    def one_line(r, code, *needles):
        assert r.exit_code == code, r.output
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith("Error: ") and all(n in line for n in needles), line

    foreign = tmp_path / "foreign"
    write_image(foreign / "x.png", np.zeros((4, 4, 3), np.uint8))
    one_line(_cli("export", syn, "--to", "hf", "-o", foreign), 1, "not empty", str(foreign))
    assert sorted(p.name for p in foreign.iterdir()) == ["x.png"]
    done = tmp_path / "done"
    assert _cli("export", syn, "--to", "hf", "-o", done).exit_code == 0
    one_line(_cli("export", syn, "--to", "basicsr", "-o", done), 1, "another format")
    one_line(_cli("export", syn, "--to", "hf", "-o", done, "--split", "test"), 1, "other options")
    one_line(_cli("export", syn, "--to", "jpeg", "-o", tmp_path / "n"), 2, "--to")
    one_line(_cli("export", syn, "--to", "hf", "-o", tmp_path / "n", "--patch", 8), 2, "--patch")
    one_line(_cli("export", syn, "--to", "spa", "-o", tmp_path / "n", "--stride", 8), 2,
             "--stride")
    one_line(_cli("export", syn, "--to", "webdataset", "-o", tmp_path / "n", "--shard-size",
                  "lots"), 2, "--shard-size")
    one_line(_cli("export", syn, "--to", "hf", "-o", syn / "inside"), 2, "--out", "overlap")
    one_line(_cli("export", syn, "--to", "hf", "-o", tmp_path / "n", "--split", "val"), 1,
             "no val samples")
    assert not (tmp_path / "n").exists()


def test_a_dataset_that_fails_check_is_refused(tmp_path):
    root = _synth(tmp_path, {"a.png": (20, 24), "b.png": (20, 24)})
    rec = next(open_dataset(root).samples())
    (root / rec["mask"]).unlink()
    r = _cli("export", root, "--to", "basicsr", "-o", tmp_path / "out")
    assert r.exit_code == 1
    (line,) = r.stderr.strip().splitlines()
    assert "fails `rainset check`" in line and rec["mask"] in line
    assert not (tmp_path / "out").exists()


def test_two_files_mapping_to_one_name_are_refused(tmp_path):
    # Ids differing only in case would merge on a case-insensitive filesystem.
    root = _synth(tmp_path, {"Pic.png": (20, 24), "pic.png": (20, 24)}, "case", test=False)
    r = _cli("export", root, "--to", "basicsr", "-o", tmp_path / "out", "--split", "train")
    assert r.exit_code == 1, r.output
    (line,) = r.stderr.strip().splitlines()
    assert "both map to the exported name" in line and "differ only in case" in line
    assert not (tmp_path / "out").exists()  # the refusal leaves nothing half-written


# ----------------------------------------------------------------------------- example


@pytest.mark.slow
def test_the_export_and_train_example_runs(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "examples" / "export_and_train.py"
    r = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--steps", "4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "L1 loss: first step" in r.stdout
    assert (tmp_path / "basicsr" / "train_meta_info.txt").is_file()
    assert json.loads((tmp_path / "basicsr" / ".rainset-export.json").read_text())["complete"]


@pytest.mark.slow
def test_the_exchange_recipes_run_as_written(tmp_path):
    """Every ```bash and ```python block of docs/exchange.md, in order, in one folder."""
    import re
    import subprocess
    import sys

    doc = (Path(__file__).parents[1] / "docs" / "exchange.md").read_text()
    blocks = re.findall(r"```(bash|python)\n(.*?)```", doc, flags=re.S)
    assert [lang for lang, _ in blocks].count("bash") >= 6 and len(blocks) >= 9
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_DATASETS_CACHE": str(tmp_path / ".hf-cache"), "HF_HUB_OFFLINE": "1"}
    # The python blocks read what the bash blocks write (and nothing of each other's): all the
    # bash in one shell, then each python block in a fresh namespace of one interpreter.
    shell = "\n".join(code for lang, code in blocks if lang == "bash")
    r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", shell], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{shell}\n{r.stdout}\n{r.stderr}"
    codes = [code for lang, code in blocks if lang == "python"]
    runner = "import sys\nfor code in sys.argv[1:]:\n    exec(compile(code, 'recipe', 'exec'), {})\n"
    r = subprocess.run([sys.executable, "-c", runner, *codes], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert (tmp_path / "my-gtrain" / ".rainset-export.json").is_file()


# ----------------------------------------------------------------------------- import commands


def test_import_layout_commands_bring_exports_and_published_layouts_in(syn, tmp_path):
    ds = open_dataset(syn)
    train = {r["id"]: r for r in ds.samples(split="train")}
    export(syn, tmp_path / "g", to="gtrain", split="train")
    export(syn, tmp_path / "b", to="basicsr", split="train")
    export(syn, tmp_path / "s", to="spa", split="train")
    write_image(tmp_path / "g" / "train" / "stray.png", np.zeros((4, 4, 3), np.uint8))
    runs = {
        "gtrain": ["gtrain", tmp_path / "g" / "train"],
        "basicsr": ["basicsr", tmp_path / "b" / "train" / "lq", tmp_path / "b" / "train" / "gt",
                    "--meta-info", tmp_path / "b" / "train_meta_info.txt"],
        "spa": ["spa", tmp_path / "s" / "train_real_world.txt", "--split", "test"],
    }
    for name, args in runs.items():
        out = tmp_path / f"{name}-back"
        r = CliRunner().invoke(cli, ["import", *map(str, args), "-o", str(out)])
        assert r.exit_code == 0, r.output
        back = {r["id"]: r for r in open_dataset(out).samples()}
        assert sorted(back) == sorted(train)
        bds = open_dataset(out)
        for sid, rec in train.items():
            assert np.array_equal(bds.load(back[sid], "rainy"), ds.load(rec, "rainy"))
            assert np.array_equal(bds.load(back[sid], "clean"), ds.load(rec, "clean"))
        if name == "spa":
            assert {r["split"] for r in back.values()} == {"test"}
    # --format keep (the default) with hard links: the dataset's files are the sources' inodes.
    back = open_dataset(tmp_path / "gtrain-back")
    for rec in back.samples():
        assert os.path.samefile(back.path(rec["rainy"]), ds.path(train[rec["id"]]["rainy"]))
    # --link needs --format keep; one line.
    r = CliRunner().invoke(cli, ["import", "gtrain", str(tmp_path / "g" / "train"), "-o",
                                 str(tmp_path / "g2"), "--format", "png", "--link", "copy"])
    assert r.exit_code == 2 and "--link" in r.stderr


def test_import_rain100_both_forms(tmp_path):
    img = np.full((8, 8, 3), 40, np.uint8)
    for n in (1, 2, 3):
        write_image(tmp_path / "j" / "rain" / "X2" / f"norain-{n}x2.png", img + n)
        write_image(tmp_path / "j" / "norain" / f"norain-{n}.png", img)
    write_image(tmp_path / "j" / "rain" / "X2" / "readme.png", img)
    r = CliRunner().invoke(cli, ["import", "rain100", str(tmp_path / "j"), "-o",
                                 str(tmp_path / "out"), "--split", "test"])
    assert r.exit_code == 0, r.output
    recs = list(open_dataset(tmp_path / "out").samples())
    assert len(recs) == 3 and {r["split"] for r in recs} == {"test"}
    assert "1 image files match no pair" in r.stderr and "readme.png" in r.stderr
    assert open_dataset(tmp_path / "out").meta["tool"] == "rainset import rain100"


_NTU = Path(__file__).resolve().parents[2] / "shared" / "data" / "nturain-a1"


@pytest.mark.skipif(not _NTU.is_dir(), reason="../shared/data/nturain-a1 is not here")
def test_import_nturain_keep_hardlink_gives_the_originals_inodes(tmp_path):
    out = tmp_path / "ntu"
    r = CliRunner().invoke(cli, ["import", "paired", str(_NTU / "rain"), str(_NTU / "clean"),
                                 "-o", str(out), "--format", "keep", "--link", "hardlink"])
    if r.exit_code == 1 and "hard-linked" in r.stderr:
        pytest.skip("the shared data lies on another filesystem")
    assert r.exit_code == 0, r.output
    ds = open_dataset(out)
    recs = list(ds.samples())
    assert len(recs) == len(list((_NTU / "rain").glob("*.jpg")))
    for rec in recs:
        assert ds.path(rec["rainy"]).suffix == ".jpg"  # kept, not re-encoded
        assert os.path.samefile(ds.path(rec["rainy"]), _NTU / "rain" / rec["source"]["rainy"])
        assert os.path.samefile(ds.path(rec["clean"]), _NTU / "clean" / rec["source"]["clean"])
