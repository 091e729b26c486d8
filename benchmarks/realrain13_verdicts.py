"""The one static-camera policy on realrain13: pairs' segments against build-gt's window check.

For each clip of ../shared/data/realrain13 (read-only): the static segments pairs keeps (N = 30),
build-gt's verdict over each of them (or over frames 0-29 when pairs keeps none), the same with
``--stabilize translation`` (pairs' segments registered, build-gt's window registered), and the
figures: the largest displacement against the first frame, the policy's confidence, and for
stabilisation the correction, the residual and the crop. Prints a Markdown table.

Usage: python benchmarks/realrain13_verdicts.py [--folder ../shared/data/realrain13]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REAL = HERE.parents[1] / "shared" / "data" / "realrain13"


def main() -> None:
    from rainset.inputs import natural_sorted
    from rainset.motion import MotionPolicy
    from rainset.pairs import analyse_scene
    from rainset.stabilize import stabilize
    from rainset.timelapse import StaticConfig, choose_frames
    from rainset.video import iter_frames

    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", type=Path, default=REAL)
    a = ap.parse_args()
    pol = MotionPolicy()
    print("| clip | frames | pairs keeps | build-gt on those frames (or 0-29) | largest shift, confidence | "
          "same | --stabilize translation: pairs / build-gt on those frames or 0-29 (correction, residual) | "
          "--stabilize similarity: the same (correction, residual, crop) | same |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in natural_sorted(a.folder.glob("*.mp4"), key=lambda p: p.name):
        frames = np.stack(list(iter_frames(path)))
        _, segs, rej, _ = analyse_scene(frames, config=StaticConfig())
        spans = [(s.start, s.length) for s in segs] or [(0, 30)]
        reps = [_check(frames, pol, s, n) for s, n in spans]
        same = all(r.static for r in reps) if segs else not reps[0].static
        kept = ", ".join(f"{s.start}-{s.stop - 1}" for s in segs) or "none (" + rej[0].reason + ")"
        gt = ", ".join("accept" if r.static else "refuse" for r in reps)
        fig = "; ".join(f"{r.max_shift:.2f} px, {r.confidence:.2f}" for r in reps)
        cells, agree = [], []
        for mode in ("translation", "similarity"):
            # pairs --stabilize: segments with shake allowed; each is then registered on its
            # chosen frames (as rainset.pairs does) and kept or refused. build-gt --stabilize
            # registers the window: the same stretch, or frames 0-29 when pairs keeps none.
            _, ssegs, _, _ = analyse_scene(frames, config=StaticConfig(stabilize=mode))
            kept_p, gts, same_s = [], [], True
            for sg in ssegs:
                idx = choose_frames(sg, 30)
                st_p, _ = stabilize(frames[idx], mode, pol)
                st_g, _ = stabilize(frames[sg.start : sg.stop], mode, pol)
                kept_p.append(f"{sg.start}-{sg.stop - 1}" + ("" if st_p.ok else " refused"))
                gts.append(st_g)
                same_s &= st_p.ok == st_g.ok
            if not ssegs:
                gts.append(stabilize(frames[:30], mode, pol)[0])
                same_s = not gts[0].ok
            agree.append(same_s)
            what = ", ".join(
                ("accept" if g.ok else "refuse") + f" ({g.correction:.2f}, {g.residual:.2f}"
                + (f", {100 * g.crop_share:.0f} %)" if mode == "similarity" else ")")
                for g in gts
            )
            cells.append(f"{', '.join(kept_p) or 'none'} / {what}")
        print(f"| {path.name} | {len(frames)} | {kept} | {gt} | {fig} | {'yes' if same else 'NO'} | "
              f"{cells[0]} | {cells[1]} | {'yes' if all(agree) else 'NO'} |")


def _check(frames, pol, start, n):
    from rainset.registration import MotionMeter

    m = MotionMeter(pol)
    for f in frames[start : start + n]:
        m.update(f)
    return m.report(n)


if __name__ == "__main__":
    main()
