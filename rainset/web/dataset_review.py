"""``rainset review DATASET``: the review page on a finished dataset, to revisit decisions.

A build-gt dataset shows one entry per window: its last candidate (the largest N decided),
with the earlier N kept for comparison. Images come from the dataset folder (the clean
image and rainy frames of an accepted window; the preview sheet of a rejected one, whose
images were never written). A changed decision is written to ``review.json`` at once
(atomically), so ``rainset build-gt ... -o OUT2 --review file --decisions OUT/review.json``
builds the dataset with the change applied:

- accept <-> reject: the window is written, or left out;
- more: the window's next candidate (N + the density step) is recorded as a provisional
  accept (``by: review``), so the replay estimates it again and writes it; reopen the new
  dataset to judge it.

A synth dataset made with ``--tier-choice review`` shows each photo's clean image and its
four low-pass tiers; choosing a tier (or rejecting the photo) rewrites the photo's decisions
so that a replay picks that tier.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections import defaultdict
from pathlib import Path

from rainset.dataset import layout
from rainset.errors import InputError, ReviewFileError
from rainset.review import ReviewLog, _load, decision_key
from rainset.web.board import Board, FileImages

#: Decisions written by this page carry ``by: review``; a provisional one (the next N after
#: "more") also this reason prefix, so that changing the "more" again removes it.
PROVISIONAL = "provisional: more frames were asked for in rainset review; reopen to judge"
TIER_SIZES = (3, 5, 7, 9)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _manifest(root: Path) -> list[dict]:
    from rainset.dataset import open_dataset

    return list(open_dataset(root).samples())


def dataset_board(root: str | os.PathLike) -> tuple[Board, ReviewLog]:
    """The board for the dataset at ``root`` and the review log its changes go to.

    Raises
    ------
    InputError
        ``root`` holds no review file (a dataset built without review, or no dataset).
    ReviewFileError
        The review file cannot be read.
    """
    root = Path(root)
    path = layout.review_path(root)
    if not layout.is_dataset(root):
        raise InputError(f"{root}: not a rainset dataset (no {layout.META}).")
    if not path.is_file():
        raise InputError(f"{root}: no {layout.REVIEW} here, so there are no decisions to revisit.")
    data = _load(path)
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    log = ReviewLog(path, params=params)
    if str(params.get("tool", "")).startswith("rainset synth"):
        return _tier_board(root, log), log
    return _window_board(root, log, params), log


def _window_board(root: Path, log: ReviewLog, params: dict) -> Board:
    from rainset.options import DENSITY

    step = DENSITY.get(params.get("density"), (0, 0))[1]
    cap = int(params.get("max_frames") or 0)
    records = defaultdict(list)
    for rec in _manifest(root):
        records[(rec.get("scene"), rec.get("window"))].append(rec)
    windows = defaultdict(list)
    for key, d in log.decisions.items():
        if isinstance(d.get("window"), int) and isinstance(d.get("n_frames"), int):
            windows[(d.get("scene"), d["window"])].append((d["n_frames"], key, d))

    def change(item, old_status):
        d = dict(log.decisions.get(item.key) or {})
        d.update(scene=item.scene, window=item.window, n_frames=item.n, action=item.status,
                 reason=item.reason, by="review", time=_now())
        d.setdefault("score", item.figures.get("score"))
        log.decisions[item.key] = d
        n_next = min(item.n + step, cap or item.n + step)
        nxt = decision_key(item.scene, item.window, n_next)
        if item.status == "more":
            if nxt not in log.decisions:
                log.decisions[nxt] = {"scene": item.scene, "window": item.window,
                                      "n_frames": n_next, "action": "accept",
                                      "reason": PROVISIONAL, "by": "review", "score": None, "time": _now()}
        elif old_status == "more" and log.decisions.get(nxt, {}).get("reason") == PROVISIONAL:
            del log.decisions[nxt]
        log.save()

    board = Board("dataset", title=f"rainset review {root}", on_change=change,
                  done_note=f"changes are written to {layout.REVIEW} as you make them")
    for (scene, window), cands in sorted(windows.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        cands.sort(key=lambda c: c[0])
        recs = records.get((scene, window), [])
        rec0 = recs[0] if recs else {}
        for i, (n, key, d) in enumerate(cands):
            last = i == len(cands) - 1
            written = [r for r in recs if r.get("n_frames") == n]
            clean_rel = written[0].get("clean") if written else None
            sheet = None
            if clean_rel is None:
                sheet = layout.gt_preview(scene, f"w{window:02d}", n)
            rainy = [r["rainy"] for r in sorted(written, key=lambda r: r.get("frame", 0)) if r.get("rainy")]
            shown = rec0 if written else {}  # the figures of a written window
            figures = {
                "score": d.get("score"), "p_hat": shown.get("p_hat"), "drift": shown.get("light_drift"),
                "max_shift_px": shown.get("camera_shift_px"), "motion_confidence": shown.get("motion_confidence"),
                "sheet": sheet is not None,
            }
            board.add(scene, window, n, key, FileImages(root, clean_rel or sheet, rainy), figures=figures,
                      can_grow=bool(step) and (not cap or n < cap) and last,
                      grow_limit=f"the cap of {cap} frames" if cap and n >= cap else "",
                      status=d["action"], reason=d.get("reason", ""), by=d.get("by", ""), history=not last)
    return board


def _tier_board(root: Path, log: ReviewLog) -> Board:
    recs = {}
    for rec in _manifest(root):
        recs.setdefault(rec.get("scene"), rec)
    photos = defaultdict(dict)
    for d in log.decisions.values():
        photos[d.get("scene")][d.get("n_frames")] = d
    names = [f"{k}x{k}" for k in TIER_SIZES]

    def change(item, old_status):
        if item.status == "more":
            raise ReviewFileError("choose a tier or reject the photo")
        chosen = TIER_SIZES[0]
        if item.status == "accept":
            if item.reason not in names:
                raise ReviewFileError(f"unknown tier {item.reason!r}")
            chosen = TIER_SIZES[names.index(item.reason)]
        for k in TIER_SIZES:
            key = decision_key(item.scene, 0, k)
            if k < chosen:
                action = "more"
            elif k == chosen:
                action = item.status
            else:
                log.decisions.pop(key, None)
                continue
            log.decisions[key] = {"scene": item.scene, "window": 0, "n_frames": k, "action": action,
                                  "reason": item.reason if k == chosen else "", "by": "review",
                                  "score": (log.decisions.get(key) or {}).get("score"), "time": _now()}
        item.figures["tier"] = f"{chosen}x{chosen}" if item.status == "accept" else None
        log.save()

    board = Board("tiers", title=f"rainset review {root} (low-pass tiers)", on_change=change,
                  done_note=f"changes are written to {layout.REVIEW} as you make them")
    for scene in sorted(photos, key=str):
        by_k = photos[scene]
        final = max(by_k)
        d = by_k[final]
        rec = recs.get(scene, {})
        tiers = {k: v for k, v in (rec.get("tiers") or {}).items() if k in names}
        chosen = f"{final}x{final}" if d["action"] == "accept" else None
        board.add(scene, 0, final, decision_key(scene, 0, final),
                  FileImages(root, rec.get("clean"), [], tiers),
                  figures={"tier": chosen, "score": d.get("score")}, can_grow=False,
                  grow_limit="tiers: choose one", status=d["action"], reason=d.get("reason", ""),
                  by=d.get("by", ""))
    return board

