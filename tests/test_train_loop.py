"""The training loop on a tiny synthetic dataset: loss goes down, checkpoints, resume, report,
the `rainset validate` command, and DDP over two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")

from click.testing import CliRunner  # noqa: E402

from rainset import metrics  # noqa: E402
from rainset.dataset import DatasetWriter, SplitRule, open_dataset  # noqa: E402
from rainset.errors import InputError  # noqa: E402
from rainset.train.loop import TrainConfig, Trainer, lr_at, preset_config  # noqa: E402
from rainset_cli.main import cli  # noqa: E402


def make_rain_dataset(root, *, n=8, size=48, seed=0, test_scenes=("s0",), test_fraction=0.2):
    """Smooth colour ramps with bright vertical streaks; scenes s0..s3, s0 held out."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    with DatasetWriter(
        root,
        kind="paired",
        params={},
        split_rule=SplitRule(test_scenes=test_scenes, test_fraction=test_fraction),
        tool="t",
    ) as w:
        for i in range(n):
            base = np.stack([np.sin(xx / (4 + i) + c) * 50 + 90 + yy for c in range(3)], -1)
            clean = np.clip(base, 0, 255).astype(np.uint8)
            rain = np.zeros((size, size))
            for _ in range(25):
                x, y = rng.integers(size), rng.integers(size - 8)
                rain[y : y + 8, x] = rng.uniform(40, 90)
            rainy = np.clip(clean + rain[..., None], 0, 255).astype(np.uint8)
            w.add(
                {
                    "id": f"{i:02d}",
                    "scene": f"s{i % 4}",
                    "rainy": w.write_image(f"rainy/{i:02d}", rainy),
                    "clean": w.write_image(f"clean/{i:02d}", clean),
                }
            )
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_rain_dataset(tmp_path_factory.mktemp("train") / "ds")


def _config(**kw):
    base = dict(iters=12, batch=4, crop=32, lr=2e-3, device="cpu", checkpoint_every=100, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def _fixed_batch_loss(trainer, batch):
    from rainset.train.losses import spanet_loss

    with torch.no_grad():
        out, maps = trainer.model(batch[0])
        return spanet_loss(out, batch[1], maps[0], batch[2])[1]["loss"]


def test_loss_decreases_and_checkpoint_is_written(dataset, tmp_path):
    trainer = Trainer(_config(iters=15), open_dataset(dataset), tmp_path / "run", resume=False)
    fixed = next(iter(trainer.loader))
    before = _fixed_batch_loss(trainer, fixed)
    log = list(trainer.run())
    after = _fixed_batch_loss(trainer, fixed)
    assert [r["step"] for r in log] == list(range(1, 16))
    assert after < 0.8 * before
    assert np.mean([r["loss"] for r in log[-3:]]) < np.mean([r["loss"] for r in log[:3]])
    ckpt = tmp_path / "run" / "checkpoint"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "state.pt").is_file()
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, 16))
    csv_lines = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert csv_lines[0].startswith("step,loss") and len(csv_lines) == 16

    from rainset.train.derain import load_model

    model, meta = load_model(tmp_path / "run")
    assert meta["step"] == 15 and meta["parameters"] == 276_704
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, trainer.model.state_dict()[k])


def test_resume_continues_from_the_saved_step(dataset, tmp_path):
    ds = open_dataset(dataset)
    run = tmp_path / "run"
    first = Trainer(_config(iters=6, checkpoint_every=3), ds, run, resume=False)
    # Stop after step 5, as a crash would: the last checkpoint is at step 3.
    for rec in first.run():
        if rec["step"] == 5:
            break
    saved = {k: v.clone() for k, v in first.model.state_dict().items()}
    with pytest.raises(InputError, match="already has a checkpoint"):
        Trainer(_config(iters=6), ds, run, resume=False)
    second = Trainer(_config(iters=8, checkpoint_every=3), ds, run, resume=True)
    assert second.step == 3
    # Resumed weights are the step-3 ones, not step 5's.
    assert any(not torch.equal(saved[k], v) for k, v in second.model.state_dict().items())
    assert second.optimizer.state_dict()["state"][0]["step"].item() == 3
    steps = [r["step"] for r in second.run()]
    assert steps == [4, 5, 6, 7, 8]
    logged = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 9))
    with pytest.raises(InputError, match="no checkpoint"):
        Trainer(_config(), ds, tmp_path / "fresh", resume=True)


def test_schedule_and_presets():
    cfg = preset_config("paper", device="cpu")
    assert (cfg.iters, cfg.batch, cfg.lr, cfg.crop) == (60000, 32, 5e-3, 256)
    assert cfg.milestones == (5000, 15000, 30000, 50000)
    assert lr_at(cfg, 4999) == 5e-3
    assert lr_at(cfg, 5000) == pytest.approx(5e-4)
    assert lr_at(cfg, 59999) == pytest.approx(5e-7)
    short = preset_config("paper", device="cpu", iters=600)
    assert short.milestones == (50, 150, 300, 500)
    quick = preset_config("quick", device="cpu", crop=48)
    assert quick.preset == "quick-cpu" and quick.crop == 48 and quick.crop <= 64
    with pytest.raises(ValueError, match="preset"):
        preset_config("slow")
    with pytest.raises(ValueError, match="crop"):
        TrainConfig(crop=8)


def test_validate_command_writes_report_and_resumes(dataset, tmp_path):
    run = tmp_path / "run"
    other = make_rain_dataset(tmp_path / "other", n=4, seed=1, test_scenes=("s1",))
    runner = CliRunner()
    args = ["validate", str(dataset), "-o", str(run), "--iters", "4", "--batch", "2"]
    args += ["--crop", "32", "--device", "cpu", "--eval-on", str(other), "--examples", "2"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    for name in ("report.json", "report.md", "loss.png", "examples-0.png", "examples-1.png"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["info"]["parameters"] == 276_704 and report["info"]["steps"] == 4
    test = report["evaluations"]["test split"]
    assert {im["scene"] for im in test["images"]} == {"s0"} and len(test["images"]) == 2
    # The baseline is the rainy input scored against the clean image.
    ds = open_dataset(dataset)
    rec = next(ds.samples(split="test"))
    want = metrics.psnr(ds.load(rec, "rainy"), ds.load(rec, "clean"))
    got = next(im for im in test["images"] if im["id"] == rec["id"])["baseline"]["psnr_rgb"]
    assert got == pytest.approx(want)
    assert len(report["evaluations"]) == 2
    assert "identity" in (run / "report.md").read_text()

    res = runner.invoke(cli, args)
    assert res.exit_code == 1 and "--resume" in res.output
    res = runner.invoke(cli, args[:5] + ["6"] + args[6:] + ["--resume"])
    assert res.exit_code == 0, res.output
    report = json.loads((run / "report.json").read_text())
    assert report["info"]["steps"] == 6 and report["info"]["resumed_from"] == 4
    assert len((run / "log.jsonl").read_text().splitlines()) == 6


def test_validate_defaults_to_the_current_folder_and_checks_options(dataset, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(dataset)
    res = runner.invoke(cli, ["validate", "-o", str(tmp_path / "r"), "--crop", "8"])
    assert res.exit_code == 2 and "--crop" in res.output
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(cli, ["validate", "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "not a rainset dataset" in res.output
    empty = make_rain_dataset(tmp_path / "notest", n=4, test_scenes=(), test_fraction=0.0)
    res = runner.invoke(cli, ["validate", str(empty), "-o", str(tmp_path / "r2"), "--iters", "1"])
    assert res.exit_code == 1 and "--test-scenes" in res.output


def test_ddp_two_cpu_processes(dataset, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "rainset_cli", "-q", "validate", str(dataset), "-o", str(run)]
    cmd += ["--iters", "2", "--batch", "4", "--crop", "32", "--device", "cpu", "--threads", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["info"]["world_size"] == 2 and report["info"]["steps"] == 2
    assert len((run / "log.jsonl").read_text().splitlines()) == 2  # rank 0 alone logs
    assert (run / "checkpoint" / "model.safetensors").is_file()
