"""Validate a dataset: train a reference derainer on it and compare with doing nothing.

A deraining dataset is worth something when a model trained on its train split removes rain
from its held-out test scenes better than the identity (the rainy input scored as if it were
the output). ``rainset.train.validate`` runs that experiment with SPANet (Wang et al., CVPR
2019, 276,704 parameters): it trains on the train split (scenes never shared with the test
split), evaluates on the test split next to the identity baseline (PSNR and SSIM on RGB and on
Y, :mod:`rainset.metrics`), and writes ``report.md`` and ``report.json`` with the loss curve
(``loss.png``) and a grid of examples (rainy | output | clean).

The real experiment trains for thousands of steps (``preset="paper"``); this script uses tiny
settings so that it ends in seconds on a CPU, which also means its numbers judge nothing --
the result says so (``too_short``):

1. make a small synthetic dataset (``rainset.synthesize``: the photos bundled with
   scikit-image, two rain variants each, shrunk to 64 px; one photo is the test scene);
2. ``rainset.train.validate(dataset, run, iters=6, batch=2, crop=32, device="cpu",
   threads=1)``: any field of ``rainset.options.ValidateOptions`` can be a keyword like these
   (one thread: on 32 px crops more threads only wait for each other); ``progress`` receives
   an event per training step and per scored image;
3. print the summary of the test split: model and baseline PSNR, the gain, and whether the
   run was long enough to judge.

Run::

    python examples/validate_a_dataset.py            # in a temporary folder
    python examples/validate_a_dataset.py --out work # keep the dataset and the run
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import rainset
import rainset.train


def main(out_dir: Path, iters: int = 6) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    # 1. a small dataset with a test split
    dataset = out_dir / "synth"
    rainset.synthesize(None, dataset, per_image=2, max_size=64, seed=0)
    # 2. the validation run
    steps = []

    def progress(event):
        if event.kind == "step":
            steps.append(event.done)

    result = rainset.train.validate(
        dataset, out_dir / "run", iters=iters, batch=2, crop=32, device="cpu", threads=1,
        examples=2, progress=progress,
    )
    # 3. the numbers
    summary = result.evaluations["test split"]
    model, baseline, gain = summary["model"], summary["baseline"], summary["gain"]
    print(f"trained {result.steps} steps in {result.train_seconds:.1f} s (events: {len(steps)})")
    print(f"test split, {summary['images']} images: SPANet {model['psnr_rgb']:.2f} dB, "
          f"identity {baseline['psnr_rgb']:.2f} dB, gain {gain['psnr_rgb']:+.2f} dB")
    print("too short to judge" if result.too_short else "long enough to judge")
    print(f"report: {result.run_dir / 'report.md'}")
    return {"result": result}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: temporary).")
    parser.add_argument("--iters", type=int, default=6, help="Training steps.")
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp), args.iters)
    else:
        main(args.out, args.iters)
