"""The build-gt pipeline: windows, static-camera check, review loop, dataset output.

Around the estimator of :mod:`rainset.groundtruth` this module lays windows out over a video,
decodes each window once (growing it as the reviewer asks for more frames), refuses a moving
camera, asks the reviewer, and writes accepted windows in the dataset format: the clean image,
every rainy frame of the window and its rain mask (SPANet paper, Sec. 3; ARCHITECTURE.md
sec. 2-3).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rainset.errors import InputError, RainsetError, ReviewFileError
from rainset.groundtruth import FrameStack, estimate_clean, warm_up
from rainset.image import MASK_THRESHOLD, rain_mask, write_image
from rainset.motion import MAX_DRIFT, MAX_SHIFT_PX, MotionMeter
from rainset.review import (
    Candidate,
    Decision,
    ReviewLog,
    decision_key,
    preview_sheet,
    split_half_score,
)
from rainset.video import iter_frames, probe

log = logging.getLogger(__name__)

#: Starting N and growth step per rain density: SPANet paper, Sec. 3 ("{20, 100, 200} ...
#: adding {10, 20, 50} frames").
DENSITY: dict[str, tuple[int, int]] = {"sparse": (20, 10), "normal": (100, 20), "dense": (200, 50)}

#: Default residual-rain score (mean split-half disagreement, 8-bit levels) under which
#: ``--review auto`` accepts; measured values in docs/groundtruth.md.
AUTO_THRESHOLD = 1.0


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides which images build-gt produces.

    ``start`` is a frame index, or seconds when ``start_seconds`` is set; ``every`` lays windows
    every so many seconds instead of back to back; ``crop`` is ``(x, y, w, h)`` in pixels.
    """

    density: Literal["sparse", "normal", "dense"] = "normal"
    frames: int | None = None
    max_frames: int = 300
    start: float = 0
    start_seconds: bool = False
    windows: int = 1
    every: float | None = None
    crop: tuple[int, int, int, int] | None = None
    select: Literal["luma", "rgb"] = "luma"
    method: Literal["spa", "robust"] = "spa"
    mask_threshold: int = MASK_THRESHOLD
    mask_mode: Literal["threshold", "any"] = "threshold"
    write: Literal["all", "clean"] = "all"
    allow_motion: bool = False
    max_shift: float = MAX_SHIFT_PX
    max_drift: float = MAX_DRIFT
    score: bool = False

    def __post_init__(self):
        if self.density not in DENSITY:
            raise ValueError(f"density must be one of {sorted(DENSITY)}, got {self.density!r}")
        if self.frames is not None and self.frames < 2:
            raise ValueError(f"frames must be >= 2, got {self.frames}")
        if self.max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {self.max_frames}")
        if self.windows < 1:
            raise ValueError(f"windows must be >= 1, got {self.windows}")
        if self.start < 0:
            raise ValueError(f"start must be >= 0, got {self.start}")

    @property
    def first_n(self) -> int:
        n = self.frames if self.frames is not None else DENSITY[self.density][0]
        return min(n, self.max_frames)

    @property
    def step(self) -> int:
        return DENSITY[self.density][1]

    def params(self) -> dict:
        """The options as JSON (recorded in rainset.json and review.json)."""
        d = asdict(self)
        d["crop"] = list(self.crop) if self.crop else None
        return d


@dataclass(frozen=True)
class Window:
    """Frames ``start .. start + capacity - 1`` of a video, reserved for one clean image."""

    index: int
    start: int
    capacity: int

    @property
    def name(self) -> str:
        return f"w{self.index:02d}"


def plan_windows(total: int, fps: float | None, opts: BuildOptions) -> tuple[list[Window], list[str]]:
    """Lay windows out so that each can grow to the frame cap without running into the next.

    Parameters
    ----------
    total : frames in the video (from its header; decoding may find fewer).
    fps : frame rate, needed for ``start`` in seconds and ``every``.

    Returns
    -------
    windows, notes : the windows and human-readable notes on what was shortened.
    """
    notes: list[str] = []
    if (opts.start_seconds or opts.every) and not fps:
        raise InputError("this input has no frame rate, so --start in seconds and --every cannot be used.")
    start = round(opts.start * fps) if opts.start_seconds else int(opts.start)
    if start >= total:
        raise InputError(f"--start is frame {start} but the input has only {total} frames.")
    cap = opts.max_frames
    stride = cap if opts.every is None else round(opts.every * fps)
    if stride < cap:
        raise ValueError(
            f"windows every {opts.every:g} s ({stride} frames) would overlap: each window "
            f"needs room for {cap} frames (--max-frames)"
        )
    windows = []
    for k in range(opts.windows):
        s = start + k * stride
        if s >= total or (k > 0 and total - s < opts.first_n):
            notes.append(f"asked for {opts.windows} windows; the input has room for {k}")
            break
        windows.append(Window(k, s, min(cap, total - s)))
    if windows and windows[0].capacity < opts.first_n:
        notes.append(
            f"window w00 has {windows[0].capacity} frames, fewer than the {opts.first_n} asked for; "
            "using what is there"
        )
    return windows, notes


@dataclass(frozen=True)
class Event:
    """Progress of a build, for the command line: ``kind`` is one of note, frames, candidate,
    decision, written, refused."""

    kind: str
    scene: str
    window: int = -1
    message: str = ""
    count: int = 0


def scene_id(path: str | os.PathLike) -> str:
    """Scene id of an input: its file (or folder) name without suffix, made path-safe."""
    p = Path(path)
    stem = p.stem if p.is_file() else p.name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "scene"


def _prefetch(frames: Iterator[np.ndarray], depth: int = 6) -> Iterator[np.ndarray]:
    """Decode ahead in a thread (the decoder releases the GIL), at most ``depth`` frames."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run():
        try:
            for f in frames:
                while not stop.is_set():
                    try:
                        q.put(f, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=run, name="rainset-decode", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class _Frames:
    """Sequential decoder over one input that serves window after window (no seeking)."""

    def __init__(self, source: Path, crop: tuple[int, int, int, int] | None):
        self._it = _prefetch(iter_frames(source))
        self._pos = 0
        self._crop = crop

    def skip_to(self, index: int) -> None:
        while self._pos < index:
            if next(self._it, None) is None:
                return
            self._pos += 1

    def take(self, n: int) -> Iterator[np.ndarray]:
        for _ in range(n):
            f = next(self._it, None)
            if f is None:
                return
            self._pos += 1
            if self._crop:
                x, y, w, h = self._crop
                if y + h > f.shape[0] or x + w > f.shape[1]:
                    raise InputError(
                        f"--crop {x},{y},{w},{h} reaches outside the {f.shape[1]}x{f.shape[0]} frames."
                    )
                f = f[y : y + h, x : x + w]
            yield f


def build_scene(
    source: str | os.PathLike,
    writer,
    review_log: ReviewLog,
    reviewer: Callable[[Candidate], Decision],
    opts: BuildOptions,
    *,
    scene: str | None = None,
    device: str = "cpu",
    source_note: str = "",
) -> Iterator[Event]:
    """Build clean images for every window of one input, asking ``reviewer`` about each.

    Parameters
    ----------
    source : a video file or frame folder (one scene).
    writer : an open :class:`rainset.dataset.DatasetWriter` of kind ``paired``.
    review_log : where decisions are read from (resume) and written to as they are made.
    reviewer : called with each candidate that the log has no decision for.
    opts : the build options.

    Yields
    ------
    Event
        Progress, for a progress bar or a log.

    Raises
    ------
    InputError
        The camera moved more than ``opts.max_shift`` and ``opts.allow_motion`` is not set, or
        the input cannot be decoded.
    """
    source = Path(source)
    scene = scene or scene_id(source)
    info = probe(source)
    windows, notes = plan_windows(info.frame_count, info.fps, opts)
    for note in notes:
        yield Event("note", scene, message=note)
    writer.add_source(source, note=source_note or "user-supplied footage")
    if device == "cpu":
        # Kernels load while the first frames decode.
        threading.Thread(target=warm_up, kwargs={"select": opts.select, "method": opts.method}, daemon=True).start()
    frames = _Frames(source, opts.crop)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rainset-write")
    pending: list[tuple[list[Future], list[dict]]] = []
    try:
        for win in windows:
            frames.skip_to(win.start)
            yield from _build_window(
                source, scene, win, frames, writer, review_log, reviewer, opts, device, pool, pending
            )
        _flush(writer, pending)
    finally:
        pool.shutdown(wait=True)


def _flush(writer, pending) -> None:
    # Records join the manifest only after their images are on disk, in order.
    while pending:
        futures, records = pending.pop(0)
        for f in futures:
            f.result()
        for r in records:
            if not writer.has(r["id"]):
                writer.add(r)


def _build_window(source, scene, win, frames, writer, review_log, reviewer, opts, device, pool, pending):
    first = next(frames.take(1), None)
    if first is None:
        yield Event("note", scene, win.index, f"window {win.name}: no frames left; skipped")
        return
    frames_in = FrameStack(win.capacity, *first.shape[:2])
    frames_in.append(first)
    n = min(opts.first_n, win.capacity)
    meter = MotionMeter()
    meter.update(first)
    checked = 0
    drift = 0.0
    while True:
        for f in frames.take(n - len(frames_in)):
            frames_in.append(f)
            meter.update(f)
        filled = len(frames_in)
        stack = frames_in.frames
        if filled < n:
            yield Event("note", scene, win.index, f"window {win.name}: only {filled} frames, fewer than {n}; using them")
            n = filled
        yield Event("frames", scene, win.index, count=n)
        if checked < n:
            rep = meter.report(n)
            drift = rep.drift
            checked = n
            if rep.max_shift > opts.max_shift and not opts.allow_motion:
                raise InputError(
                    f"{source}: the camera moves: {rep.max_shift:.1f} px over frames "
                    f"{win.start}-{win.start + n - 1} (limit {opts.max_shift:g} px); build-gt needs "
                    "a static camera — choose a still stretch with --start/--crop, or pass "
                    "--allow-motion to average it anyway."
                )
            if rep.drift > opts.max_drift:
                yield Event(
                    "note", scene, win.index,
                    f"window {win.name}: the light changes by {100 * rep.drift:.0f} % across the "
                    "window (the method assumes constant light); flagged in the preview and manifest",
                )
        can_grow = n < win.capacity
        limit = (
            "" if can_grow
            else (f"the cap of {opts.max_frames} frames" if win.capacity == opts.max_frames
                  else f"the end of the input or the next window at {win.capacity} frames")
        )
        known = review_log.get(decision_key(scene, win.index, n))
        if known is not None and known.action == "more" and can_grow:
            n = min(n + opts.step, win.capacity)
            continue
        if known is not None and _already_done(writer, scene, win, n, known, opts):
            # Resumed: this window's answer is known and its output is complete.
            yield Event("decision", scene, win.index, message=known.action, count=n)
            return
        result = estimate_clean(stack[:n], select=opts.select, method=opts.method, device=device)
        score = None
        if opts.score and n >= 4:
            score = split_half_score(
                stack[:n], lambda s: estimate_clean(s, select=opts.select, method=opts.method, device=device).image
            )
        flag = f"  LIGHT DRIFT {100 * drift:.0f}%" if drift > opts.max_drift else ""
        title = (
            f"{scene} {win.name}  N={n}  p={result.p_hat}  frame {win.start}"
            + (f"  score={score:.2f}" if score is not None else "") + flag
        )
        preview_rel = f"previews/{scene}/{win.name}_n{n:03d}.png"
        write_image(writer.root / preview_rel, preview_sheet(stack[0], result.image, title=title))
        cand = Candidate(
            scene, win.index, n, result.image, preview=writer.root / preview_rel, score=score,
            can_grow=can_grow, grow_limit=limit, info={"p_hat": result.p_hat, "drift": drift},
        )
        yield Event("candidate", scene, win.index, message=str(cand.preview), count=n)
        decision = known if known is not None else reviewer(cand)
        if decision.action == "more" and not can_grow:
            if known is not None or decision.by == "file":
                raise ReviewFileError(
                    f"the review asks for more frames for {cand.key}, but it is already at {limit}."
                )
            raise RainsetError(f"cannot add frames to {cand.key}: it is already at {limit}.")
        if known is None:
            review_log.record(cand, decision)
        yield Event("decision", scene, win.index, message=decision.action, count=n)
        if decision.action == "more":
            n = min(n + opts.step, win.capacity)
            continue
        if decision.action == "accept":
            _write_window(source, scene, win, stack[:n], result, score, drift, decision, writer, opts, pool, pending, preview_rel)
            yield Event("written", scene, win.index, count=n)
        return


def _already_done(writer, scene: str, win: Window, n: int, known: Decision, opts: BuildOptions) -> bool:
    if known.action == "reject":
        return True
    if known.action != "accept":
        return False
    last = f"{scene}/{win.name}" if opts.write == "clean" else f"{scene}/{win.name}/f{win.start + n - 1:06d}"
    return writer.has(last)


def _write_window(source, scene, win, stack, result, score, drift, decision, writer, opts, pool, pending, preview_rel):
    # Records of the previous window can join the manifest now: their images had the whole
    # estimation of this window to be written.
    _flush(writer, pending)
    n = stack.shape[0]
    clean_rel = writer.write_image(f"clean/{scene}/{win.name}", result.image)
    common = {
        "scene": scene,
        "window": win.index,
        "source": str(source),
        "n_frames": n,
        "p_hat": result.p_hat,
        "select": opts.select,
        "method": opts.method,
        "density": opts.density,
        "review": decision.action,
        "reviewed_by": decision.by,
        "score": score,
        "light_drift": round(float(drift), 4),
        "mask_threshold": opts.mask_threshold if opts.mask_mode == "threshold" else "any",
        "preview": preview_rel,
    }
    if opts.write == "clean":
        records = [{"id": f"{scene}/{win.name}", "clean": clean_rel, "frames": [win.start, win.start + n], **common}]
        pending.append(([], records))
        return
    futures, records = [], []
    for i in range(n):
        idx = win.start + i
        stem = f"{scene}/{win.name}/f{idx:06d}"
        rainy_rel = f"rain/{stem}" + (".png" if writer.image_ext == ".png" else ".jpg")
        futures.append(pool.submit(_write_pair, writer, stem, stack[i], result.image, opts))
        records.append(
            {"id": stem, "rainy": rainy_rel, "clean": clean_rel, "mask": f"mask/{stem}.png", "frame": idx, **common}
        )
    pending.append((futures, records))


def _write_pair(writer, stem: str, rainy: np.ndarray, clean: np.ndarray, opts: BuildOptions) -> None:
    writer.write_image(f"rain/{stem}", rainy)
    writer.write_image(f"mask/{stem}", rain_mask(rainy, clean, threshold=opts.mask_threshold, mode=opts.mask_mode))


def scene_ids(inputs) -> list[str]:
    """One stable scene id per input; a repeated name gets its parent folder's name prefixed
    (then a counter), the same on every run for the same list of inputs."""
    ids: list[str] = []
    for p in inputs:
        sid = scene_id(p)
        if sid in ids:
            sid = f"{scene_id(Path(p).resolve().parent)}_{sid}"
        base, k = sid, 2
        while sid in ids:
            sid, k = f"{base}_{k}", k + 1
        ids.append(sid)
    return ids


# --- several inputs in worker processes ------------------------------------------------------


class _LocalWriter:
    """Stands in for the dataset writer inside a worker: writes images, collects records."""

    def __init__(self, root: Path, image_ext: str, jpeg_quality: int, known_ids: set[str]):
        self.root = root
        self.image_ext = image_ext
        self.jpeg_quality = jpeg_quality
        self.known = known_ids
        self.records: list[dict] = []
        self.sources: list[tuple[str, str]] = []

    def has(self, sample_id: str) -> bool:
        return sample_id in self.known

    def add(self, record: dict) -> None:
        self.known.add(record["id"])
        self.records.append(record)

    def add_source(self, path, *, note: str) -> None:
        self.sources.append((str(path), note))

    def write_image(self, stem: str, image: np.ndarray) -> str:
        from rainset.dataset import store_image

        fmt = "png" if self.image_ext == ".png" else "jpg"
        return store_image(self.root, stem, image, image_format=fmt, jpeg_quality=self.jpeg_quality)


class _LocalLog:
    """Stands in for the review log inside a worker: answers from the main log, collects new."""

    def __init__(self, decisions: dict):
        self._known = decisions
        self.new: list[tuple[Candidate, Decision]] = []

    def get(self, key: str) -> Decision | None:
        d = self._known.get(key)
        return None if d is None else Decision(d["action"], d.get("reason", ""), d.get("by", "user"))

    def record(self, candidate: Candidate, decision: Decision) -> None:
        self.new.append((candidate, decision))


def _scene_job(args):
    source, scene, root, image_ext, jpeg_quality, known_ids, decisions, reviewer, opts, device, note = args
    writer = _LocalWriter(Path(root), image_ext, jpeg_quality, set(known_ids))
    log_ = _LocalLog(decisions)
    events: list[Event] = []
    try:
        events = list(build_scene(source, writer, log_, reviewer, opts, scene=scene, device=device, source_note=note))
    except InputError as exc:
        events.append(Event("failed", scene, message=str(exc)))
    # Candidates carry their clean image; decisions only need the key fields.
    new = [(Candidate(c.scene, c.window, c.n_frames, np.zeros((1, 1, 3), np.uint8), score=c.score), d)
           for c, d in log_.new]
    return events, writer.records, writer.sources, new


def build_parallel(jobs, writer, review_log, reviewer, opts, *, device="cpu", workers=2, source_note=""):
    """Run :func:`build_scene` for several ``(source, scene)`` inputs in worker processes.

    Only batch reviewers (accept, auto, file: picklable functions) can be used. Images are
    written by the workers; records and decisions reach the manifest and the review file in
    the main process, input by input.
    """
    from concurrent.futures import ProcessPoolExecutor

    known = writer.ids()
    args = [
        (str(src), scene, str(writer.root), writer.image_ext, getattr(writer, "jpeg_quality", 95),
         known, review_log.decisions, reviewer, opts, device, source_note)
        for src, scene in jobs
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for events, records, sources, new in pool.map(_scene_job, args):
            for path, note in sources:
                writer.add_source(path, note=note)
            for cand, dec in new:
                review_log.record(cand, dec)
            for r in records:
                if not writer.has(r["id"]):
                    writer.add(r)
            yield from events
