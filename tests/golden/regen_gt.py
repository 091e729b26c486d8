"""Regenerate ``gt_tiny.json``: a tiny rain stack and the estimator's pinned answers on it.

Run ``python tests/golden/regen_gt.py`` after a deliberate change of the estimator and review
the diff. The frames are stored literally (7 frames of 3 x 4 RGB: a static background, noise
of one level, rain on ~20 % of the samples), so the golden does not depend on a random
generator's stream. The script refuses to write answers that the slow reference loops of
``tests/test_groundtruth.py`` do not reproduce; the test checks them against those loops again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rainset.groundtruth import estimate_clean

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from test_groundtruth import ref_estimate, ref_robust  # noqa: E402


def frames() -> np.ndarray:
    rng = np.random.default_rng(2019)
    bg = rng.integers(40, 200, (3, 4, 3))
    noise = rng.integers(-1, 2, (7, 3, 4, 3))
    rain = (rng.random((7, 3, 4, 1)) < 0.2) * rng.integers(30, 80, (7, 3, 4, 1))
    return np.clip(bg + noise + rain, 0, 255).astype(np.uint8)


def main() -> None:
    x = frames()
    cases = []
    for n, select, method in [
        (7, "luma", "spa"),
        (7, "rgb", "spa"),
        (6, "luma", "spa"),
        (7, "luma", "robust"),
    ]:
        stack = x[:n]
        res = estimate_clean(stack, select=select, method=method)
        if method == "spa":
            p, _, image, *_ = ref_estimate(stack, select)
            assert (p, image.tolist()) == (res.p_hat, res.image.tolist()), "estimator != reference"
        else:
            ref = [
                ref_robust(stack[:, i, j, c].tolist())
                for i in range(3)
                for j in range(4)
                for c in range(3)
            ]
            assert ref == res.image.ravel().tolist(), "robust != reference"
        cases.append(
            {
                "n": n,
                "select": select,
                "method": method,
                "p_hat": res.p_hat,
                "image": res.image.tolist(),
            }
        )
    text = json.dumps({"frames": x.tolist(), "cases": cases}, separators=(",", ":"))
    # one case per line keeps diffs readable
    text = text.replace(',"cases":[', ',\n"cases":[\n').replace('},{"n"', '},\n{"n"')
    (HERE / "gt_tiny.json").write_text(text + "\n")
    print(f"wrote {HERE / 'gt_tiny.json'}")


if __name__ == "__main__":
    main()
