"""NTURain a1 (../shared/data/nturain-a1) through `rainset import paired` and a few training
steps (skipped when that folder is absent).

The full check (the quick preset, ~10 minutes on two CPU cores, beating the identity baseline
on the held-out scene) takes too long for the test suite; its command and the measured numbers
are in docs/train.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rainset import metrics
from rainset.dataset import check, open_dataset
from rainset_cli.main import cli

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nturain-a1"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real data folder {DATA} is absent (see shared/data/README.md)"
)


@pytest.fixture(scope="module")
def a1(tmp_path_factory):
    out = tmp_path_factory.mktemp("a1") / "ds"
    args = ["import", "paired", str(DATA / "rain"), str(DATA / "clean"), "-o", str(out)]
    args += ["--scene-every", "15", "--test-scenes", "scene-003"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    return out


def test_import_gives_four_scenes_of_fifteen_frames(a1):
    assert check(a1) == []
    ds = open_dataset(a1)
    assert ds.scenes() == ["scene-000", "scene-001", "scene-002", "scene-003"]
    recs = list(ds.samples())
    assert len(recs) == 60
    assert [r["id"] for r in recs if r["scene"] == "scene-003"] == [
        f"{i:05d}" for i in range(46, 61)
    ]
    assert {r["split"] for r in recs if r["scene"] == "scene-003"} == {"test"}
    assert {r["split"] for r in recs if r["scene"] != "scene-003"} == {"train"}


def test_a_few_steps_on_real_data(a1, tmp_path):
    torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")
    from rainset.train.derain import derain_image
    from rainset.train.loop import TrainConfig, Trainer
    from rainset.train.report import evaluate

    ds = open_dataset(a1)
    cfg = TrainConfig(iters=3, batch=2, crop=32, device="cpu", lr=1e-3)
    trainer = Trainer(cfg, ds, tmp_path / "run", resume=False)
    log = list(trainer.run())
    assert len(log) == 3 and all(np.isfinite(r["loss"]) for r in log)
    # Score the first test image (full 640x480 frame, in tiles) next to the baseline.
    model = trainer.model.eval()

    def run(img):
        return derain_image(model, img, tile=256)

    score = next(evaluate(run, ds, split="test", examples=0))
    rec = next(ds.samples(split="test"))
    assert score.id == rec["id"] == "00046"
    want = metrics.psnr(ds.load(rec, "rainy"), ds.load(rec, "clean"))
    assert score.baseline["psnr_rgb"] == pytest.approx(want)
    assert 20 < want < 40  # synthetic rain over the clean frame
    assert torch.isfinite(torch.tensor(score.model["psnr_rgb"]))
