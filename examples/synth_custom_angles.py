"""A synthetic dataset with rain at angles of your choice, and the histogram of its labels.

``rainset.synthesize`` turns clean photos into rainy/clean pairs. Each sample's rain is drawn
from a frozen parameter set -- angle from vertical, streak radius, density, length,
brightness -- which is rendered by a pure function and written to the manifest, so every
sample can be reproduced and every sample carries its labels: ``theta`` (degrees from
vertical, positive = the streak's top leans right), the rain-direction dataset's
``direction_angle`` and its 18-bin ``direction_class``, ``radius``, ``density`` and the
measured ``coverage``.

The default angles are the paper's seven (0, +-15, +-30, +-40 degrees). Here we ask for five
others and check, from the manifest alone, that the labels are what we asked for:

1. ``rainset.synthesize(None, out, angles=(-35, -10, 0, 10, 35), per_image=6, max_size=96)``:
   ``None`` means the CC0 / public-domain photos bundled with scikit-image; each photo gets six
   rain variants; the photos are shrunk to 96 px so the run takes seconds. Any field of
   ``rainset.options.SynthOptions`` or of its ``SynthConfig`` can be given as a keyword like
   this, or whole (``options=SynthOptions(...)``);
2. read every sample's ``labels`` with ``rainset.dataset.open_dataset``;
3. draw the histogram of ``theta`` and of ``direction_class`` with matplotlib (the Agg
   backend: no display needed) into ``OUT/label_histogram.png``;
4. draw the angle x radius contact sheet of one photo for the same angles
   (``rainset.synth.preview_sheet``, what ``rainset synth --preview`` writes) into
   ``OUT/angles_preview.png``, to see the streaks themselves.

Run::

    python examples/synth_custom_angles.py            # in a temporary folder
    python examples/synth_custom_angles.py --out work # keep the dataset and the pictures
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: write files, open no window
import matplotlib.pyplot as plt  # noqa: E402

import rainset  # noqa: E402
from rainset.dataset import open_dataset  # noqa: E402
from rainset.image import write_image  # noqa: E402
from rainset.synth import bundled_photos, load_photo, preview_sheet  # noqa: E402

ANGLES = (-35.0, -10.0, 0.0, 10.0, 35.0)


def main(out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    # 1. the dataset
    result = rainset.synthesize(None, out_dir / "synth", angles=ANGLES, per_image=6, max_size=96)
    print(f"wrote {result.written} samples to {result.out}: {result.counts['per_split']}")
    # 2. the labels, from the manifest
    labels = [s["labels"] for s in open_dataset(out_dir / "synth").samples()]
    thetas = Counter(lab["theta"] for lab in labels)
    classes = Counter(lab["direction_class"] for lab in labels)
    print("samples per angle:", dict(sorted(thetas.items())))
    print("samples per direction class:", dict(sorted(classes.items())))
    # 3. the histogram
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax1.hist([lab["theta"] for lab in labels], bins=[x - 2.5 for x in range(-45, 51, 5)],
             color="tab:blue", edgecolor="white")
    ax1.set_xlabel("theta (degrees from vertical)")
    ax1.set_ylabel("samples")
    ax2.bar(list(range(18)), [classes.get(k, 0) for k in range(18)], color="tab:orange")
    ax2.set_xlabel("direction_class (18 bins of 10 degrees)")
    ax2.set_xticks(range(0, 18, 3))
    fig.suptitle(f"labels of {len(labels)} samples, angles {', '.join(f'{a:g}' for a in ANGLES)}")
    fig.tight_layout()
    histogram = out_dir / "label_histogram.png"
    fig.savefig(histogram, dpi=80)
    plt.close(fig)
    print(f"histogram: {histogram}")
    # 4. the streaks at those angles, on one photo
    photo = next(p for p in bundled_photos() if p.stem.endswith("coffee"))
    image = load_photo(photo.path, max_size=400)
    sheet = out_dir / "angles_preview.png"
    write_image(sheet, preview_sheet(image, angles=ANGLES, radii=(0.4, 1.0), density="heavy",
                                     cell=160, zoom=2))
    print(f"contact sheet: {sheet}")
    return {"result": result, "thetas": thetas, "classes": classes}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: temporary).")
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        main(args.out)
