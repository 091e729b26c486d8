"""Build the small golden datasets and write their JSON files next to this script.

Run ``python tests/golden/regen.py`` after a deliberate change of the dataset format, review
the diff, and update the matching examples in ``docs/format.md`` (``tests/test_dataset.py``
checks that the documentation still shows these files).

The goldens hold only JSON (``rainset.json``, ``manifest.jsonl``, ``pairs.jsonl``); the images
behind them are 8 x 8 and rebuilt by :func:`build` whenever a test needs them. ``created`` and
``tool_version`` are replaced by fixed values so the files do not change with the clock or
the release.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from rainset.dataset import DatasetWriter, SplitRule

HERE = Path(__file__).resolve().parent
FIXED = {"created": "2025-01-01T00:00:00+00:00", "tool_version": "0.1.0"}
FILES = ("rainset.json", "manifest.jsonl", "pairs.jsonl")


def _img(seed: int, shape=(8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def build_paired(root: Path) -> None:
    """A ground-truth-from-video dataset: two scenes, rainy frames sharing a window's clean."""
    rule = SplitRule(test_scenes=("park02",))
    params = {"density": "normal", "n_frames": 100, "select": "luma", "mask_threshold": 13}
    with DatasetWriter(
        root, kind="paired", params=params, split_rule=rule, tool="rainset build-gt"
    ) as w:
        for scene in ("street01", "park02"):
            digest = hashlib.sha256(scene.encode()).hexdigest()
            w.add_source(f"footage/{scene}.mp4", note="own footage, CC BY 4.0", sha256=digest)
            clean = w.write_image(f"clean/{scene}/w0", _img(len(scene)))
            for frame in (12, 13):
                stem = f"{scene}/w0/{frame:06d}"
                rainy = w.write_image(f"rainy/{stem}", _img(frame))
                mask = w.write_image(f"mask/{stem}", _img(frame + 1, (8, 8)) > 128)
                w.add(
                    {
                        "id": stem,
                        "scene": scene,
                        "rainy": rainy,
                        "clean": clean,
                        "mask": mask,
                        "window": 0,
                        "frame": frame,
                        "labels": {"n_frames": 100, "percentile": 47},
                    }
                )


def build_timelapse(root: Path) -> None:
    """A time-lapse dataset: one scene, three frames, a shared pseudo ground truth, all pairs."""
    params = {"frames_per_scene": 3, "pairs": "all", "pseudo_gt": True}
    with DatasetWriter(
        root,
        kind="timelapse",
        params=params,
        image_format="jpg",
        jpeg_quality=90,
        tool="rainset pairs",
    ) as w:
        w.add_source(
            "timelapse/cam03",
            note="CC BY-NC 4.0, from the authors' page",
            sha256=hashlib.sha256(b"cam03").hexdigest(),
        )
        clean = w.write_image("clean/cam03/s00", _img(99))
        ids = []
        for index in (0, 40, 80):
            frame = w.write_image(f"frames/cam03/{index:06d}", _img(index))
            fid = f"cam03/{index:06d}"
            w.add(
                {
                    "id": fid,
                    "scene": "cam03",
                    "frame": frame,
                    "index": index,
                    "segment": "cam03/s00",
                    "clean": clean,
                }
            )
            ids.append(fid)
        w.add_pairs({"a": a, "b": b} for i, a in enumerate(ids) for b in ids[i + 1 :])


BUILDERS = {"paired": build_paired, "timelapse": build_timelapse}


def build(kind: str, root: Path) -> dict[str, str]:
    """Build the golden dataset of ``kind`` under ``root``; return its normalised JSON files."""
    BUILDERS[kind](root)
    out = {}
    meta = json.loads((root / "rainset.json").read_text())
    meta.update(FIXED)
    out["rainset.json"] = json.dumps(meta, indent=2) + "\n"
    for name in FILES[1:]:
        if (root / name).exists():
            out[name] = (root / name).read_text()
    return out


def main() -> None:
    for kind in BUILDERS:
        with tempfile.TemporaryDirectory() as tmp:
            files = build(kind, Path(tmp) / kind)
        dest = HERE / kind
        dest.mkdir(exist_ok=True)
        for name, text in files.items():
            (dest / name).write_text(text)
            print(f"wrote {dest / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
