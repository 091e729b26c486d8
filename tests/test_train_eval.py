"""Evaluation that fits the time and that anyone can reproduce (issue 17): ``--eval-max``
(evenly spaced frames per scene), ``--eval-crop``, progress off a terminal, the evaluation
time and "too short to judge" in the report, ``validate --save-outputs`` scored again by the
torch-free ``rainset evaluate``, and derain's per-tile progress."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rainset.dataset import DatasetWriter, SplitRule, open_dataset
from rainset.errors import InputError, ParameterError
from rainset.evaluate import (
    centre_crop,
    eval_items,
    evaluate_outputs,
    output_path,
    pick_evenly,
    score,
)
from rainset.image import write_image


def make_dataset(root, *, per_scene=12, scenes=("s0", "s1", "s2"), test=("s0", "s1"), size=32):
    """Colour ramps with bright streaks; ``per_scene`` samples per scene, ids ``<scene>/<k>``."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    with DatasetWriter(root, kind="paired", params={}, split_rule=SplitRule(test_scenes=test),
                       tool="t") as w:  # fmt: skip
        for s, scene in enumerate(scenes):
            for k in range(per_scene):
                base = np.stack([np.sin(xx / (4 + k) + c + s) * 50 + 90 + yy for c in range(3)], -1)
                clean = np.clip(base, 0, 255).astype(np.uint8)
                rain = np.zeros((size, size))
                for _ in range(12):
                    x, y = rng.integers(size), rng.integers(size - 6)
                    rain[y : y + 6, x] = rng.uniform(40, 90)
                rainy = np.clip(clean + rain[..., None], 0, 255).astype(np.uint8)
                sid = f"{scene}/{k:02d}"
                w.add({"id": sid, "scene": scene,
                       "rainy": w.write_image(f"rainy/{scene}_{k:02d}", rainy),
                       "clean": w.write_image(f"clean/{scene}_{k:02d}", clean)})  # fmt: skip
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("eval") / "ds")


# ----------------------------------------------------------------------------- selection


def test_pick_evenly_keeps_k_evenly_spaced_items_per_scene(dataset):
    items = eval_items(open_dataset(dataset), split="test")
    assert len(items) == 24
    chosen = pick_evenly(items, 5)
    for scene in ("s0", "s1"):
        ks = [int(it.id.split("/")[1]) for it in chosen if it.scene == scene]
        assert ks == [1, 3, 6, 8, 10]  # the middles of 5 equal runs of 12
        gaps = np.diff(ks)
        assert gaps.max() - gaps.min() <= 1
    assert pick_evenly(items, 50) == items and pick_evenly(items, None) == items
    assert [it.id for it in pick_evenly(items, 1)] == ["s0/06", "s1/06"]
    with pytest.raises(ParameterError) as exc:
        pick_evenly(items, 0)
    assert exc.value.param == "eval_max"


def test_centre_crop():
    img = np.arange(10 * 7 * 3).reshape(10, 7, 3)
    assert centre_crop(img, None) is img
    np.testing.assert_array_equal(centre_crop(img, 4), img[3:7, 1:5])
    assert centre_crop(img, 100).shape == img.shape


# ----------------------------------------------------------------------------- evaluate


def _write_outputs(ds, folder, ids, fn):
    for rec in ds.samples(split="test"):
        if rec["id"] in ids:
            write_image(output_path(folder, rec["id"]), fn(ds.load(rec, "rainy"), ds.load(rec, "clean")))


def test_evaluate_outputs_scores_folders_and_mapping_files(dataset, tmp_path):
    ds = open_dataset(dataset)
    ids = {"s0/00", "s0/05", "s1/11"}
    _write_outputs(ds, tmp_path / "out", ids, lambda r, c: c)  # a perfect model
    res = evaluate_outputs(dataset, tmp_path / "out")
    assert {s.id for s in res.scores} == ids and len(res.missing) == 21
    assert (tmp_path / "out" / "s0" / "05.png").is_file()  # the id's / is a sub-folder
    assert res.summary["model"]["psnr_rgb"] == 100.0  # identical images: the cap
    assert set(res.summary["per_scene"]) == {"s0", "s1"}
    rec = ds.sample("s1/11")
    assert res.scores[-1].baseline == score(ds.load(rec, "rainy"), ds.load(rec, "clean"))
    # The same outputs through a JSON and a CSV mapping, with files elsewhere.
    mapping = {sid: str(output_path(tmp_path / "out", sid).relative_to(tmp_path)) for sid in ids}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    (tmp_path / "map.csv").write_text("id,file\n" + "".join(f"{k},{v}\n" for k, v in mapping.items()))
    for m in ("map.json", "map.csv"):
        again = evaluate_outputs(ds, tmp_path / m)
        assert again.summary == res.summary
    # Centre crops: full-size outputs are cropped as the clean image is.
    cropped = evaluate_outputs(ds, tmp_path / "out", eval_crop=16)
    rec = ds.sample("s0/00")
    want = score(centre_crop(ds.load(rec, "rainy"), 16), centre_crop(ds.load(rec, "clean"), 16))
    assert cropped.scores[0].baseline == want


def test_evaluate_outputs_refuses_what_it_cannot_score(dataset, tmp_path):
    with pytest.raises(InputError, match="no output"):
        evaluate_outputs(dataset, tmp_path)
    write_image(output_path(tmp_path / "o", "s0/00"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="8x8"):
        evaluate_outputs(dataset, tmp_path / "o")
    (tmp_path / "m.json").write_text(json.dumps({"s0/01": "nope.png"}))
    with pytest.raises(InputError, match="does not exist"):
        evaluate_outputs(dataset, tmp_path / "m.json")
    with pytest.raises(ParameterError) as exc:
        evaluate_outputs(dataset, tmp_path / "o", eval_crop=4)
    assert exc.value.param == "eval_crop"


def test_evaluate_command_prints_tables_and_json(dataset, tmp_path):
    from click.testing import CliRunner

    from rainset_cli.main import cli

    ds = open_dataset(dataset)
    _write_outputs(ds, tmp_path / "out", {"s0/00", "s1/03"}, lambda r, c: r)  # the identity
    res = CliRunner().invoke(cli, ["evaluate", str(dataset), "--outputs", str(tmp_path / "out"),
                                   "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["summary"]["images"] == 2 and len(data["missing"]) == 22
    assert data["summary"]["gain"]["psnr_rgb"] == pytest.approx(0.0)
    res = CliRunner().invoke(cli, ["evaluate", str(dataset), "--outputs", str(tmp_path / "out")])
    assert res.exit_code == 0 and "s0" in res.output and "s1" in res.output


def test_rainset_evaluate_imports_no_torch(dataset, tmp_path):
    code = (
        "import sys\nfrom click.testing import CliRunner\nimport rainset_cli.main as m\n"
        f"r = CliRunner().invoke(m.cli, ['evaluate', {str(dataset)!r}, '--outputs', {str(tmp_path)!r}])\n"
        "assert r.exit_code == 1, r.output\nassert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- report


def test_loss_trend_says_too_short_while_the_loss_still_falls():
    report = pytest.importorskip("rainset.train.report")
    falling = [{"step": i + 1, "loss": 1.0 / (1 + 0.05 * i)} for i in range(100)]
    flat = [{"step": i + 1, "loss": 0.2 + 0.01 * ((-1) ** i)} for i in range(100)]
    t = report.loss_trend(falling)
    assert t["too_short"] and t["fell"] > 0.05
    assert "Too short to judge" in report.too_short_note(t)
    t = report.loss_trend(flat)
    assert not t["too_short"] and abs(t["fell"]) < 0.05 and report.too_short_note(t) == ""
    # 5 % is the line: a drop of 4 % over the last fifth is long enough.
    gentle = [{"step": i + 1, "loss": 1.0 - (0.04 / 20) * max(0, i - 80)} for i in range(100)]
    assert not report.loss_trend(gentle)["too_short"]
    assert report.loss_trend(falling[:5])["too_short"]  # too few steps to tell


# ----------------------------------------------------------------------------- validate


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("run") / "run"
    cmd = [sys.executable, "-m", "rainset_cli", "validate", str(dataset), "-o", str(out),
           "--iters", "3", "--batch", "2", "--crop", "16", "--device", "cpu", "--threads", "1",
           "--eval-max", "5", "--save-outputs", "--examples", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)  # fmt: skip (stderr is a pipe: no terminal)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc


@pytest.mark.slow
def test_validate_eval_max_scores_5_evenly_spaced_frames_per_scene_with_progress(run):
    out, proc = run
    report = json.loads((out / "report.json").read_text())
    test = report["evaluations"]["test split"]
    by_scene: dict[str, list[int]] = {}
    for im in test["images"]:
        by_scene.setdefault(im["scene"], []).append(int(im["id"].split("/")[1]))
    assert by_scene == {"s0": [1, 3, 6, 8, 10], "s1": [1, 3, 6, 8, 10]}
    assert report["info"]["eval_max"] == 5 and test["seconds"] > 0
    md = (out / "report.md").read_text()
    assert "Evaluated in" in md and "evaluation time" in md and "Too short to judge" in md
    # Off a terminal: plain progress lines with counts, rate and elapsed time.
    err = proc.stderr
    assert "train 3/3 (100 %)" in err, err
    assert "eval test split 1/10" in err and "eval test split 10/10 (100 %)" in err, err
    assert "/s" in err.split("eval test split 10/10", 1)[1].splitlines()[0]
    assert "\r" not in err  # no bar redraws in a log


@pytest.mark.slow
def test_rainset_evaluate_agrees_with_validate_on_its_saved_outputs(run, dataset):
    out, _ = run
    saved = out / "outputs" / "test"
    assert len(list(saved.rglob("*.png"))) == 10
    proc = subprocess.run(
        [sys.executable, "-m", "rainset_cli", "evaluate", str(dataset), "--outputs", str(saved),
         "--json"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = json.loads((out / "report.json").read_text())["evaluations"]["test split"]
    assert got["summary"]["images"] == want["summary"]["images"] == 10
    for key in ("psnr_rgb", "psnr_y"):
        assert abs(got["summary"]["model"][key] - want["summary"]["model"][key]) < 0.05
        for scene, block in want["summary"]["per_scene"].items():
            assert abs(got["summary"]["per_scene"][scene]["model"][key] - block["model"][key]) < 0.05
    for key in ("ssim_rgb", "ssim_y"):
        assert got["summary"]["model"][key] == pytest.approx(want["summary"]["model"][key], abs=1e-3)


# ----------------------------------------------------------------------------- derain


def test_derain_reports_each_tile_of_a_large_image(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from rainset.train import derain_files
    from rainset.train.spanet import SPANet

    torch.manual_seed(0)
    ckpt = tmp_path / "model.safetensors"
    save_file(SPANet().state_dict(), str(ckpt), metadata={"rainset": json.dumps({"step": 3})})
    img = np.random.default_rng(0).integers(0, 256, (150, 130, 3), dtype=np.uint8)
    write_image(tmp_path / "big.png", img)
    write_image(tmp_path / "small.png", img[:40, :40])
    events = []
    res = derain_files(ckpt, [tmp_path / "big.png", tmp_path / "small.png"], tmp_path / "out",
                       device="cpu", tile=64, overlap=8, progress=events.append)  # fmt: skip
    tiles = [(e.done, e.total) for e in events if e.kind == "tile"]
    assert tiles == [(k, 9) for k in range(10)]  # 3 x 3 tiles of the big image (0: starting)
    assert {e.scene for e in events if e.kind == "tile"} == {str(tmp_path / "big.png")}
    assert [e.kind for e in events if e.kind in ("written", "done")] == ["written", "written", "done"]
    assert res.written == [tmp_path / "out" / "big.png", tmp_path / "out" / "small.png"]
    assert res.step == 3
