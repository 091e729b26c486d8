"""Export a rainset dataset to BasicSR's layout and train a small PyTorch model from it.

Many deraining codebases (BasicSR, Restormer, and the projects built on them) read a pair of
flat folders, ``gt/`` and ``lq/``, whose files have equal names. ``rainset export --to
basicsr`` writes exactly that, hard-linking the images (no copies, no re-encoding), plus the
``meta_info.txt`` those loaders accept. This script walks the whole way, offline and in a few
seconds on a CPU:

1. make a small synthetic dataset from the photos bundled with scikit-image
   (``rainset.synthesize``, or ``rainset synth``: each photo gets two rain variants; the
   split is by photo);
2. export it: ``rainset.export_dataset(DATASET, OUT, to="basicsr")`` (``rainset export
   DATASET --to basicsr -o OUT``) gives ``OUT/train/gt``, ``OUT/train/lq`` and
   ``OUT/train_meta_info.txt`` (and the same for test);
3. read the pairs as BasicSR does -- each line of the meta-info file names a file present in
   both folders -- and train a three-layer residual CNN with an L1 loss on random 32 x 32
   crops for a few steps;
4. report the loss before and after, and the PSNR of the test split against the rainy input.

To train on the rainset dataset directly instead, ``rainset.train.data.PairedDataset(DATASET,
split="train", crop=32)`` gives the same crops as dicts ready for a ``DataLoader``.

Run::

    python examples/export_and_train.py            # in a temporary folder
    python examples/export_and_train.py --out work # keep the dataset and the export
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import rainset
from rainset.image import read_image
from rainset.metrics import psnr


def basicsr_pairs(out: Path, split: str) -> list[tuple[Path, Path]]:
    """(lq, gt) files as BasicSR's meta-info reader finds them: the first token of a line."""
    lines = (out / f"{split}_meta_info.txt").read_text().splitlines()
    names = [line.split(" ")[0] for line in lines]
    return [(out / split / "lq" / n, out / split / "gt" / n) for n in names]


class Crops(torch.utils.data.Dataset):
    """Random aligned crops of (rainy, clean) file pairs, as (3, H, W) float tensors."""

    def __init__(self, pairs: list[tuple[Path, Path]], crop: int) -> None:
        self.images = [(read_image(lq), read_image(gt)) for lq, gt in pairs]
        self.crop = crop

    def __len__(self) -> int:
        return 64  # crops per epoch, drawn from the few images

    def __getitem__(self, i: int):
        rainy, clean = self.images[i % len(self.images)]
        h, w = rainy.shape[:2]
        y = int(torch.randint(h - self.crop + 1, ()))
        x = int(torch.randint(w - self.crop + 1, ()))
        win = (slice(y, y + self.crop), slice(x, x + self.crop))
        return tuple(torch.from_numpy(a[win].astype(np.float32) / 255).permute(2, 0, 1)
                     for a in (rainy, clean))


def model() -> torch.nn.Module:
    """rainy -> rainy - residual: three 3x3 convolutions (a toy stand-in for a real network)."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 3, 3, padding=1),
    )

    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return x - self.net(x)

    return Residual()


def main(out_dir: Path, steps: int = 30) -> dict:
    torch.manual_seed(0)
    dataset, exported = out_dir / "synth", out_dir / "basicsr"
    # 1. a small dataset (bundled photos, shrunk to 64 px); the command line's
    #    `rainset synth --per-image 2 --max-size 64 --seed 0 -o DATASET` does the same
    rainset.synthesize(None, dataset, per_image=2, max_size=64, seed=0)
    # 2. the export (rerunning resumes; a finished export is left as it is)
    result = rainset.export_dataset(dataset, exported, to="basicsr")
    print(f"exported {result.counts} to {exported}")
    # 3. train from the exported folders
    loader = torch.utils.data.DataLoader(Crops(basicsr_pairs(exported, "train"), 32),
                                         batch_size=8)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    step = 0
    while step < steps:
        for rainy, clean in loader:
            loss = torch.nn.functional.l1_loss(net(rainy), clean)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step == steps:
                break
    print(f"L1 loss: first step {losses[0]:.4f}, last step {losses[-1]:.4f}")
    # 4. the test split, whole images
    scores = []
    with torch.no_grad():
        for lq, gt in basicsr_pairs(exported, "test"):
            rainy, clean = read_image(lq), read_image(gt)
            x = torch.from_numpy(rainy.astype(np.float32) / 255).permute(2, 0, 1)[None]
            y = net(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            y = np.rint(y * 255).astype(np.uint8)
            scores.append((psnr(rainy, clean), psnr(y, clean)))
    if scores:
        before, after = np.mean(scores, axis=0)
        print(f"test PSNR: rainy input {before:.2f} dB, model output {after:.2f} dB")
    return {"losses": losses, "counts": result.counts, "scores": scores}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: temporary).")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp), args.steps)
    else:
        main(args.out, args.steps)
