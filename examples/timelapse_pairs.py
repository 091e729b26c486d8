"""Time-lapse pairs: frames of one static scene, paired, from footage that also moves.

A camera left filming in the rain sees the same scene again and again, each frame with other
streaks. Two such frames make a training pair without any clean image (the time-lapse
objective: one rainy frame predicts another). The hard part is finding the stretches where
nothing but the rain changes. ``rainset.find_pairs`` scores every frame -- camera shift
(tile phase correlation), cuts, light change, moving foreground -- keeps the stretches that
stay still for at least N frames, chooses N frames from each and writes all (or a sample of)
their pairs, and says in ``report.md`` why every other stretch was refused.

The footage here is made up, so the right answer is known:

- ``street``: 36 rainy frames of a static scene, with a red box (a passing car) crossing
  frames 12-19 -- too small to refuse the stretch for, it is marked in the frames'
  foreground masks instead; then the camera pans for 12 frames (refused: moving camera);
- ``pan``: a camera that pans all the time (nothing to keep).

1. write both scenes as frame folders (a folder of images is a scene, as a video would be);
2. ``rainset.find_pairs(footage, out, n_frames=8, pairs_per_segment=10)``: keep stretches of at
   least 8 still frames, 8 frames each, 10 of their C(8, 2) = 28 pairs (seeded);
3. print the result object (scenes, segments, pairs, refusals with their reasons);
4. read ``pairs.jsonl`` back through ``rainset.dataset.open_dataset`` and show a pair's
   frames (``Dataset.pairs()`` gives frame ids, ``Dataset.sample()`` their records).

The contact sheets (three frames over the score curves of the whole scene) are in
``OUT/pairs/sheets/``, the per-frame scores in ``OUT/pairs/stats/``.

Run::

    python examples/timelapse_pairs.py            # in a temporary folder
    python examples/timelapse_pairs.py --out work # keep the footage and the dataset
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import rainset
from rainset.dataset import open_dataset
from rainset.demo import example_photo, rainy_frames
from rainset.image import write_image


def make_footage(root: Path) -> None:
    """Two scenes of 64 x 96 frames (see the module docstring)."""
    wide = example_photo("chelsea", max_side=240)[:64]  # a strip wider than the view
    still = wide[:, :96]
    street = list(rainy_frames(still, 36, rng=1, density="light"))
    for t in range(12, 20):  # the passing car
        x = 10 * (t - 12)
        street[t] = street[t].copy()
        street[t][30:44, x : x + 16] = (200, 30, 30)
    street += [wide[:, 4 * t : 4 * t + 96] for t in range(1, 13)]  # the pan
    pan = [wide[:, 3 * t : 3 * t + 96] for t in range(30)]
    for name, frames in (("street", street), ("pan", pan)):
        for t, frame in enumerate(frames):
            write_image(root / name / f"frame{t:03d}.png", np.ascontiguousarray(frame))


def main(out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    footage = out_dir / "footage"
    make_footage(footage)
    result = rainset.find_pairs(footage, out_dir / "pairs", n_frames=8, pairs_per_segment=10)
    print(f"{len(result.scenes)} scenes, {result.segments} segment(s), {result.pairs} pairs")
    for refusal in result.refused:
        print(f"refused {refusal}")
    ds = open_dataset(out_dir / "pairs")
    pairs = list(ds.pairs())
    first = pairs[0]
    a, b = ds.sample(first["a"]), ds.sample(first["b"])
    print(f"pair {first['id']}: frame {a['index']} and frame {b['index']} of {first['scene']}")
    print(f"report: {out_dir / 'pairs' / 'report.md'}")
    return {"result": result, "pairs": pairs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: temporary).")
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        main(args.out)
