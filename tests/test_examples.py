"""Every script in examples/ runs, offline, into the folder it is given, and writes what its
docstring says; none writes into the repository.

A new example needs an entry in CHECKS (the test of the list fails otherwise).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rainset.dataset import check, open_dataset
from rainset.image import read_image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _ground_truth(out: Path) -> None:
    from rainset.demo import example_photo
    from rainset.metrics import psnr

    assert (out / "rainy_coffee.mp4").stat().st_size > 0
    gt = out / "gt"
    assert check(gt) == []
    ds = open_dataset(gt)
    samples = list(ds.samples())
    assert samples and {s["scene"] for s in samples} == {"rainy_coffee"}
    assert list((gt / "previews").rglob("*.png"))
    truth = example_photo("coffee", max_side=160)
    s = samples[0]
    # the estimate is closer to the true photo than a rainy frame is
    assert psnr(ds.load(s, "clean"), truth) > psnr(ds.load(s, "rainy"), truth) + 2


def _synth(out: Path) -> None:
    ds = open_dataset(out / "synth")
    thetas = {s["labels"]["theta"] for s in ds.samples()}
    assert thetas <= {-35.0, -10.0, 0.0, 10.0, 35.0} and len(thetas) >= 3
    hist = read_image(out / "label_histogram.png")
    assert hist.shape[0] > 100 and hist.std() > 10  # a drawn figure, not a blank
    sheet = read_image(out / "angles_preview.png")
    assert sheet.shape[0] > sheet.shape[1]  # five rows of angles, two columns of radii


def _pairs(out: Path) -> None:
    root = out / "pairs"
    assert check(root) == []
    ds = open_dataset(root)
    assert ds.kind == "timelapse"
    pairs = list(ds.pairs())
    assert len(pairs) == 10 and {p["scene"] for p in pairs} == {"street"}
    report = (root / "report.md").read_text()
    assert "moving camera" in report
    assert (root / "sheets" / "street_s00.png").is_file() and (root / "sheets" / "pan.png").is_file()


def _validate(out: Path) -> None:
    run = out / "run"
    report = json.loads((run / "report.json").read_text())
    assert "test split" in report["evaluations"]
    assert (run / "report.md").is_file() and (run / "loss.png").is_file()
    assert (run / "checkpoint" / "model.safetensors").is_file()


def _export(out: Path) -> None:
    exported = out / "basicsr"
    names = (exported / "train_meta_info.txt").read_text().split()
    assert names
    gt = sorted(p.name for p in (exported / "train" / "gt").iterdir())
    lq = sorted(p.name for p in (exported / "train" / "lq").iterdir())
    assert gt == lq and len(gt) >= 1


#: script -> (needs torch, check of what it wrote, extra arguments)
CHECKS = {
    "ground_truth_from_a_clip.py": (False, _ground_truth, []),
    "synth_custom_angles.py": (False, _synth, []),
    "timelapse_pairs.py": (False, _pairs, []),
    "validate_a_dataset.py": (True, _validate, []),
    "export_and_train.py": (True, _export, ["--steps", "4"]),
}


def _scripts() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_example_is_checked_and_documented():
    assert len(_scripts()) >= 4
    assert set(_scripts()) == set(CHECKS)
    for name in _scripts():
        doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
        assert doc, f"{name}: the module docstring is the tutorial"
        assert len(doc.splitlines()) >= 10 and "Run::" in doc, name
        assert f"python examples/{name}" in doc, name


def _snapshot() -> set[str]:
    """Files an example could write next to itself (the repository top and examples/)."""
    found = set()
    for folder in (ROOT, EXAMPLES):
        found |= {p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
                  if p.name != "__pycache__"}
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", _scripts())
def test_example_runs_and_writes_what_it_says(name, tmp_path):
    needs_torch, check_output, extra = CHECKS[name]
    if needs_torch:
        pytest.importorskip("torch")
    if name == "synth_custom_angles.py":
        pytest.importorskip("matplotlib")
    before = _snapshot()
    out = tmp_path / "out"
    work = tmp_path / "cwd"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(out), *extra],
        cwd=work, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_output(out)
    assert list(work.iterdir()) == []  # nothing in the current folder
    assert _snapshot() == before  # nor next to the script


@pytest.mark.slow
def test_default_output_is_a_temporary_folder(tmp_path):
    """Without ``--out`` an example works in a temporary folder it removes."""
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    script = EXAMPLES / "timelapse_pairs.py"
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TMPDIR": str(env_tmp)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pairs" in proc.stdout
    assert list(env_tmp.iterdir()) == []  # the temporary folder is gone
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]  # and nothing else was written
