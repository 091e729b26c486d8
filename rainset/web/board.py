"""The review board: every candidate the page shows, its images and its decision, thread-safe.

The board is the one place the web front end keeps state. Build-gt's worker threads add
candidates and wait on them (:meth:`Board.wait`); the server reads snapshots and hands the
page's decisions in (:meth:`Board.decide`). The first decision on a candidate wins: a second
tab deciding the same candidate gets the decision already made back (and shows it).

Images are addressed by candidate id and frame index, never by a path: a candidate's images
come from memory (a live build) or from files inside the dataset folder, checked by
:func:`safe_file` (no ``..``, no absolute path, no symlink leading out of the folder).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rainset.errors import RainsetError
from rainset.review import ACTIONS

#: PNG compression level of images encoded for the page (fast; the page is local).
PAGE_PNG_LEVEL = 1
#: Decided candidates of a live build whose images stay in memory (the most recent ones; an
#: older one shows its figures only, and an accepted window's images are in the dataset).
KEEP_DECIDED = 64


class ReviewClosed(RainsetError):
    """The review page was closed (Ctrl-C) while a candidate waited for its decision."""


def encode_png(image: np.ndarray) -> bytes:
    """An RGB (or single-channel) uint8 image as PNG bytes."""
    img = np.ascontiguousarray(image)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PAGE_PNG_LEVEL])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("could not encode the image as PNG")
    return buf.tobytes()


def safe_file(root: str | os.PathLike, rel: str) -> Path | None:
    """The file ``root/rel`` when it lies inside ``root`` after resolving links, else None.

    Refused: an absolute ``rel``, any ``..`` part, a backslash, a missing file, and a path
    whose resolution (a symlink anywhere on it) leaves ``root``.
    """
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return None
    parts = rel.split("/")
    if rel.startswith("/") or os.path.isabs(rel) or any(p in ("", ".", "..") for p in parts):
        return None
    base = Path(root).resolve()
    try:
        target = (base / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class Images:
    """A candidate's images: ``clean()``, ``rainy(i)`` for ``i < count``, optional ``tiers``."""

    count = 0
    tiers: tuple[str, ...] = ()

    def clean(self) -> bytes | None:
        return None

    def rainy(self, index: int) -> bytes | None:
        return None

    def tier(self, name: str) -> bytes | None:
        return None

    def release(self) -> None:
        """Drop what a decided candidate no longer needs in memory."""


class MemoryImages(Images):
    """Images of a live candidate: the clean image, encoded once, and the window's rainy
    frames (a view of the build's frame stack, encoded on request)."""

    def __init__(self, clean: np.ndarray, frames: np.ndarray | None):
        self._clean = encode_png(clean)
        self._frames = frames
        self._cache: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self.count = 0 if frames is None else int(frames.shape[0])
        self.shape = tuple(clean.shape[:2])

    def clean(self) -> bytes:
        return self._clean

    def rainy(self, index: int) -> bytes | None:
        with self._lock:
            if index in self._cache:
                return self._cache[index]
            frames = self._frames
        if frames is None or not 0 <= index < frames.shape[0]:
            return None
        data = encode_png(frames[index])
        with self._lock:
            if len(self._cache) < 64 or index == 0:
                self._cache[index] = data
        return data

    def release(self) -> None:
        # Keep the first rainy frame (the page's default view); the stack's memory goes back
        # to the build (the frames of an accepted window are in the dataset from now on).
        self.rainy(0)
        with self._lock:
            self._frames = None
            self._cache = {0: self._cache[0]} if 0 in self._cache else {}
            self.count = min(self.count, 1)


class TierImages(Images):
    """Images of a live tier choice: the clean photo and its low-pass tiers, encoded once."""

    def __init__(self, clean: np.ndarray, tiers: dict[str, np.ndarray]):
        self._clean = encode_png(clean)
        self._tiers = {name: encode_png(img) for name, img in tiers.items()}
        self.tiers = tuple(self._tiers)

    def clean(self) -> bytes:
        return self._clean

    def tier(self, name: str) -> bytes | None:
        return self._tiers.get(name)


class FileImages(Images):
    """Images of a finished dataset: files named by the manifest, read from inside ``root``."""

    def __init__(self, root: Path, clean: str | None, rainy: list[str], tiers: dict[str, str] | None = None):
        self.root = Path(root)
        self._clean = clean
        self._rainy = list(rainy)
        self._tiers = dict(tiers or {})
        self.count = len(self._rainy)
        self.tiers = tuple(self._tiers)

    def _read(self, rel: str | None) -> bytes | None:
        path = safe_file(self.root, rel) if rel else None
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def clean(self) -> bytes | None:
        return self._read(self._clean)

    def rainy(self, index: int) -> bytes | None:
        return self._read(self._rainy[index]) if 0 <= index < len(self._rainy) else None

    def tier(self, name: str) -> bytes | None:
        return self._read(self._tiers.get(name))


@dataclass
class Item:
    """One candidate on the board."""

    id: str
    scene: str
    window: int
    n: int
    key: str
    images: Images
    figures: dict = field(default_factory=dict)
    can_grow: bool = True
    grow_limit: str = ""
    status: str = "pending"  # pending, accept, more, reject
    reason: str = ""
    by: str = ""
    rev: int = 0
    prev: str | None = None
    replaced_by: str | None = None
    history: bool = False  # an earlier candidate of its window, shown for comparison only

    def public(self) -> dict:
        return {
            "id": self.id, "scene": self.scene, "window": self.window, "n": self.n, "key": self.key,
            "status": self.status, "reason": self.reason, "by": self.by, "rev": self.rev,
            "prev": self.prev, "replaced_by": self.replaced_by, "history": self.history,
            "can_grow": self.can_grow, "grow_limit": self.grow_limit, "frames": self.images.count,
            "tiers": list(self.images.tiers), "figures": self.figures,
        }


class Board:
    """Candidates and decisions shared by the build's threads and the page.

    Parameters
    ----------
    mode : ``"build"`` (a live build-gt run: one decision per candidate, first wins) or
        ``"dataset"`` (``rainset review``: a decision may be changed; a change must name the
        revision it replaces, so of two tabs the second is told what the first did).
    on_change : called under the board's lock with ``(item, old_status)`` after a decision in
        dataset mode (writes ``review.json``); an exception refuses the change.
    """

    def __init__(self, mode: str = "build", *, title: str = "", on_change: Callable | None = None,
                 done_note: str = "", final: bool | None = None):
        if mode not in ("build", "dataset", "tiers"):
            raise ValueError(f"mode must be build, dataset or tiers, got {mode!r}")
        self.mode = mode
        #: A running build's decisions are final (first wins); a finished dataset's can change.
        self.final = mode == "build" if final is None else final
        self.title = title
        self._on_change = on_change
        self._cond = threading.Condition()
        self._items: dict[str, Item] = {}
        self._order: list[str] = []
        self._latest: dict[tuple[str, int], str] = {}
        self._closed = False
        self.finished = False
        self.done_note = done_note
        self.version = 0
        self.notes: list[str] = []
        self._kept: list[str] = []  # decided live candidates still holding images, oldest first

    # --- adding -------------------------------------------------------------------------
    def add(self, scene: str, window: int, n: int, key: str, images: Images, *, figures: dict | None = None,
            can_grow: bool = True, grow_limit: str = "", status: str = "pending", reason: str = "",
            by: str = "", history: bool = False) -> Item:
        with self._cond:
            cid = f"c{len(self._order)}"
            prev = self._latest.get((scene, window))
            item = Item(cid, scene, window, n, key, images, dict(figures or {}), can_grow, grow_limit,
                        status, reason, by, prev=prev, history=history)
            if prev is not None and not history:
                self._items[prev].replaced_by = cid
            self._items[cid] = item
            self._order.append(cid)
            if not history:
                self._latest[(scene, window)] = cid
            self._bump()
            return item

    def add_candidate(self, cand, *, status: str = "pending", by: str = "") -> Item:
        """A :class:`rainset.review.Candidate` of a live build (its rainy frames in
        ``cand.info['frames']`` when the build put them there)."""
        from rainset.review import predicted_error

        info = dict(cand.info or {})
        frames = info.pop("frames", None)
        motion = info.pop("motion", None) or {}
        figures = {
            "score": cand.score,
            "predicted_error": None if cand.score is None else round(predicted_error(cand.score), 3),
            "p_hat": info.get("p_hat"),
            "drift": None if info.get("drift") is None else round(float(info["drift"]), 4),
            "max_shift_px": motion.get("max_shift_px"),
            "motion_confidence": motion.get("confidence"),
        }
        if "tier" in info:
            figures["tier"] = info["tier"]
        images = MemoryImages(cand.clean, frames)
        figures["width"], figures["height"] = int(cand.clean.shape[1]), int(cand.clean.shape[0])
        return self.add(cand.scene, cand.window, cand.n_frames, cand.key, images, figures=figures,
                        can_grow=cand.can_grow, grow_limit=cand.grow_limit, status=status, by=by)

    # --- deciding -----------------------------------------------------------------------
    def decide(self, cid: str, action: str, reason: str = "", *, by: str = "web",
               expect_rev: int | None = None) -> tuple[bool, Item | None, str]:
        """Record the page's decision. Returns ``(applied, item, message)``.

        Build mode: a decided candidate keeps its first decision (``applied`` False). Dataset
        mode: the change applies when ``expect_rev`` is the item's revision (else False, and
        the item shows what another tab decided).
        """
        if action not in ACTIONS:
            return False, None, f"unknown action {action!r}"
        with self._cond:
            item = self._items.get(cid)
            if item is None:
                return False, None, "no such candidate"
            if item.history or item.replaced_by is not None and not self.final:
                return False, item, "an earlier candidate of this window; decide the latest one"
            if action == "more" and not item.can_grow:
                return False, item, f"no frames left to add ({item.grow_limit})"
            if self.final and item.status != "pending":
                return False, item, f"already decided: {item.status}"
            if not self.final and expect_rev is not None and expect_rev != item.rev:
                return False, item, f"changed in another tab: {item.status}"
            old = (item.status, item.reason, item.by)
            item.status, item.reason, item.by = action, str(reason)[:500], by
            if self._on_change is not None:
                try:
                    self._on_change(item, old[0])
                except Exception as exc:
                    item.status, item.reason, item.by = old
                    return False, item, str(exc)
            item.rev += 1
            self._bump()
            return True, item, ""

    def update(self, cid: str, **figures) -> None:
        """Add figures to a candidate (its score, once computed)."""
        with self._cond:
            self._items[cid].figures.update(figures)
            self._bump()

    def wait(self, cid: str, timeout: float | None = None) -> Item:
        """Block until the candidate is decided; :class:`ReviewClosed` when the board closes."""
        with self._cond:
            item = self._items[cid]
            ok = self._cond.wait_for(lambda: item.status != "pending" or self._closed, timeout)
            if item.status == "pending":
                if self._closed:
                    raise ReviewClosed("the review was interrupted; rerun the same command to resume.")
                if not ok:
                    raise TimeoutError(cid)
            item.images.release()
            if isinstance(item.images, MemoryImages):
                self._kept.append(cid)
                while len(self._kept) > KEEP_DECIDED:
                    old = self._items[self._kept.pop(0)]
                    old.images = Images()
                    old.figures["released"] = True
                self._bump()
            return item

    def close(self) -> None:
        """Wake every waiting thread (they raise :class:`ReviewClosed`)."""
        with self._cond:
            self._closed = True
            self._bump()

    def finish(self, note: str = "") -> None:
        with self._cond:
            self.finished = True
            if note:
                self.done_note = note
            self._bump()

    def note(self, text: str) -> None:
        with self._cond:
            self.notes.append(text)
            self.notes = self.notes[-50:]
            self._bump()

    def _bump(self) -> None:
        self.version += 1
        self._cond.notify_all()

    def wait_version(self, version: int, timeout: float) -> int:
        """Block until the board changes after ``version`` (long polling), at most ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != version, timeout)
            return self.version

    # --- reading ------------------------------------------------------------------------
    def item(self, cid: str) -> Item | None:
        with self._cond:
            return self._items.get(cid)

    def items(self) -> list[Item]:
        with self._cond:
            return [self._items[c] for c in self._order]

    def counts(self) -> dict:
        with self._cond:
            latest = [self._items[c] for c in self._latest.values()]
        return {
            "windows": len(latest),
            "accepted": sum(i.status == "accept" for i in latest),
            "rejected": sum(i.status == "reject" for i in latest),
            "pending": sum(i.status == "pending" for i in latest),
            "more": sum(i.status == "more" for i in latest),
        }

    def snapshot(self) -> dict:
        with self._cond:
            items = [self._items[c].public() for c in self._order]
            version, finished, closed = self.version, self.finished, self._closed
            notes = list(self.notes)
        counts = self.counts()
        counts["decided"] = counts["accepted"] + counts["rejected"]
        return {"mode": self.mode, "final": self.final, "title": self.title, "version": version, "finished": finished,
                "closed": closed, "done_note": self.done_note, "counts": counts, "items": items,
                "notes": notes}
