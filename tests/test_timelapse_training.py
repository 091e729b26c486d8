"""Training on time-lapse pairs (no clean images) and with the rain-direction loss: a short run
on a tiny `rainset pairs` dataset of a generated clip, `validate --objective/--eval-on`,
`--direction-loss` on a synth dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset import metrics
from rainset.dataset import open_dataset
from rainset.image import write_image
from rainset_cli.main import cli

torch = pytest.importorskip("torch")

from rainset.train.data import PatchStream, _collate  # noqa: E402
from rainset.train.loop import TIMELAPSE_LR, TrainConfig, Trainer, preset_config  # noqa: E402


def _cli(*args, code=0):
    r = CliRunner().invoke(cli, ["-q", *map(str, args)])
    assert r.exit_code == code, r.output
    return r


@pytest.fixture(scope="module")
def tl(tmp_path_factory):
    """A `rainset pairs` dataset of a generated static rainy H.264 clip (one segment)."""
    from rainset.video import write_video

    root = tmp_path_factory.mktemp("tltrain")
    bg = textured_background(48, 64, 3)
    write_video(root / "cam.mp4", rain_frames(bg, 30, seed=3, streaks=10), fps=10, crf=10)
    _cli("pairs", root / "cam.mp4", "-o", root / "tl", "-n", 10, "--test-fraction", 0)
    return root / "tl"


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    root = tmp_path_factory.mktemp("tlsyn")
    for i in range(3):
        write_image(root / "photos" / f"p{i}.png", textured_background(40, 48, 10 + i))
    _cli("synth", root / "photos", "-o", root / "syn", "--per-image", 2, "--test-scenes", "p0.png",
         "--max-size", 48)
    return root / "syn"


def _frames_psnr(model, ds) -> float:
    """Worst PSNR(output, input) over the dataset's frames."""
    worst = 100.0
    for rec in ds.samples():
        f = ds.load(rec, "frame")
        x = torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            out = model(x)[0][0].clamp(0, 1)
        o = (out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        worst = min(worst, metrics.psnr(o, f))
    return worst


@pytest.mark.slow
def test_short_timelapse_run_makes_backgrounds_consistent_without_collapsing(tl, tmp_path):
    ds = open_dataset(tl)
    assert preset_config("quick", device="cpu", objective="timelapse").lr == TIMELAPSE_LR
    # lr 5e-4 rather than the paper's 1e-4 so that 30 steps show a trend
    cfg = preset_config("quick", device="cpu", iters=30, batch=4, crop=24, lr=5e-4,
                        objective="timelapse", threads=1)
    assert cfg.milestones == ()
    trainer = Trainer(cfg, ds, tmp_path / "run", resume=False)
    assert trainer.test_items == []  # no pseudo ground truth: nothing clean of its own
    assert len(trainer.train_items) == ds.meta["counts"]["pairs"]
    # a fixed batch of pairs, far more than one step's, judged before and after
    fixed = _collate([trainer.loader.dataset.source.patch(np.random.default_rng(9))
                      for _ in range(32)])
    assert isinstance(trainer.loader.dataset, PatchStream)

    def l_b() -> float:
        fa, fb, ma, mb = fixed
        with torch.no_grad():
            out, _ = trainer.model(torch.cat([fa, fb]))
        ba, bb = out.chunk(2)
        return trainer.objective(fa, fb, ba, bb, ma, mb, step=trainer.step)[1]["lb"]

    before = l_b()
    assert _frames_psnr(trainer.model, ds) == 100.0  # the identity start
    log = list(trainer.run())
    assert [r["step"] for r in log] == list(range(1, 31))
    assert {"lb", "ls", "lv", "lm", "gamma"} <= set(log[-1])
    assert log[0]["gamma"] == pytest.approx(0.1) and log[-1]["gamma"] == pytest.approx(1e-4)
    after = l_b()
    print(f"L_b on a fixed batch: {before:.5f} -> {after:.5f}")
    assert after < 0.98 * before, (before, after)
    assert _frames_psnr(trainer.model, ds) > 30.0  # no collapse to a constant
    # the orientation centres are trained with the network and saved for --resume
    state = torch.load(tmp_path / "run" / "checkpoint" / "state.pt", weights_only=True)
    assert "directional.centres" in state["objective"]
    start = torch.tensor([-np.pi / 2 + np.pi * (k + 0.5) / 4 for k in range(4)])
    assert not torch.allclose(state["objective"]["directional.centres"], start)


def test_validate_timelapse_needs_a_paired_set_to_evaluate_on(tl, syn, tmp_path):
    r = _cli("validate", tl, "-o", tmp_path / "r0", "--iters", 1, "--device", "cpu", code=2)
    assert "--eval-on" in r.output
    assert not (tmp_path / "r0").exists()
    r = _cli("validate", syn, "-o", tmp_path / "r1", "--objective", "timelapse", "--iters", 1,
             "--device", "cpu", code=2)
    assert "--objective" in r.output
    r = _cli("validate", tl, "-o", tmp_path / "r2", "--direction-loss", "--iters", 1,
             "--device", "cpu", code=2)
    assert "--direction-loss" in r.output


def test_validate_trains_on_pairs_and_evaluates_on_another_dataset(tl, syn, tmp_path):
    run = tmp_path / "run"
    _cli("validate", tl, "-o", run, "--eval-on", syn, "--iters", 2, "--batch", 2, "--crop", 16,
         "--device", "cpu", "--threads", 1, "--examples", 0)
    report = json.loads((run / "report.json").read_text())
    cfg = report["info"]["config"] if "info" in report else report["config"]
    assert cfg["objective"] == "timelapse" and cfg["lr"] == TIMELAPSE_LR
    assert list(report["evaluations"]) == [f"{syn} (test split)"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "lb" in log[0] and "l1" not in log[0]


def test_direction_loss_trains_on_synth_rain_maps(syn, tmp_path):
    ds = open_dataset(syn)
    cfg = TrainConfig(iters=3, batch=2, crop=16, device="cpu", direction_weight=1.2, threads=1)
    trainer = Trainer(cfg, ds, tmp_path / "run", resume=False)
    rainy, clean, mask, rain_map, kernels = next(iter(trainer.loader))
    assert rain_map.shape == (2, 1, 16, 16) and kernels.shape == (2, 2, 5, 5)
    log = list(trainer.run())
    assert all(r["dir"] > 0 for r in log)
    assert log[-1]["loss"] == pytest.approx(
        log[-1]["l1"] + log[-1]["ssim"] + log[-1]["att"] + 1.2 * log[-1]["dir"], rel=1e-5)
    # the rain map patch is the stored map cut like the rainy patch: rainy - clean = rain
    # wherever the composite did not clip (synth's add blend)
    src = trainer.loader.dataset.source
    r, c, _, z, _ = src.patch(np.random.default_rng(0))
    diff = r.astype(np.float32) / 255 - c.astype(np.float32) / 255
    ok = r.max(axis=2) < 250
    assert np.abs(diff[ok] - z[ok][:, None]).mean() < 0.02


def test_direction_loss_refuses_a_dataset_without_rain_maps(tmp_path):
    from test_train_loop import make_rain_dataset

    from rainset.errors import InputError

    ds = open_dataset(make_rain_dataset(tmp_path / "ds"))
    cfg = TrainConfig(iters=1, batch=2, crop=16, device="cpu", direction_weight=1.2)
    with pytest.raises(InputError, match="rain map"):
        Trainer(cfg, ds, tmp_path / "run", resume=False)
