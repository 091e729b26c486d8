"""The build-gt pipeline: windows, static-camera check, review loop, dataset output.

Around the estimator of :mod:`rainset.groundtruth` this module lays windows out over a video,
decodes each window once (growing it as the reviewer asks for more frames), refuses a moving
camera, asks the reviewer, and writes accepted windows in the dataset format: the clean image,
every rainy frame of the window and its rain mask (SPANet paper, Sec. 3; ARCHITECTURE.md
sec. 2-3).

About 640 lines, on purpose: the window loop (decode, grow on "more", motion check, review,
write) is one piece of state that reads best in one place; the estimator, the motion policy,
the format and the orchestration over many inputs (:mod:`rainset.pipelines.gt`) live elsewhere.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rainset._encode import EncodePool
from rainset.dataset import layout
from rainset.dataset.worker import MESSAGES as WORKER_MESSAGES
from rainset.errors import (
    EmptyResultError,
    InputError,
    ParameterError,
    RainsetError,
    ReviewFileError,
)
from rainset.groundtruth import FrameStack, estimate_clean, warm_up
from rainset.image import rain_mask, write_image
from rainset.inputs import scene_id
from rainset.options import AUTO_THRESHOLD, DENSITY, BuildOptions  # noqa: F401 - the options live there
from rainset.registration import IMPORT_LOCK, MotionMeter, _pocketfft
from rainset.review import (
    Candidate,
    Decision,
    ReviewLog,
    accept_reviewer,
    decision_key,
    preview_sheet,
    split_half_score,
)
from rainset.video import iter_frames, probe, read_ahead

log = logging.getLogger(__name__)

#: Fewest frames a window may have: one frame is the rainy frame itself, not a clean image.
MIN_WINDOW = 2
#: The static-camera check measures the frames fed so far every this many frames, while the
#: rest decode, so that little of it is left once the window is full.
_MEASURE_EVERY = 16


@dataclass(frozen=True)
class Window:
    """Frames ``start .. start + capacity - 1`` of a video, reserved for one clean image."""

    index: int
    start: int
    capacity: int

    @property
    def name(self) -> str:
        return f"w{self.index:02d}"


def plan_windows(
    total: int, fps: float | None, opts: BuildOptions, *, source: str | os.PathLike | None = None
) -> tuple[list[Window], list[str]]:
    """Lay windows out so that each can grow to the frame cap without running into the next.

    Parameters
    ----------
    total : frames in the video (from its header; decoding may find fewer).
    fps : frame rate, needed for ``start`` in seconds and ``every``.
    source : the input, named in error messages.

    Returns
    -------
    windows, notes : the windows and human-readable notes on what was shortened.
    """
    notes: list[str] = []
    where = f"{source}: " if source is not None else ""
    if (opts.start_seconds or opts.every) and not fps:
        uses = "`start` in seconds" if opts.start_seconds else "`every`"
        raise InputError(f"{where}this input has no frame rate, so {uses} cannot be used.")
    start = round(opts.start * fps) if opts.start_seconds else int(opts.start)
    if start >= total:
        raise InputError(f"{where}`start` is frame {start} but the input has only {total} frames.")
    cap = opts.max_frames
    stride = cap if opts.every is None else round(opts.every * fps)
    if stride < cap:
        raise ParameterError(
            "every",
            f"windows every {opts.every:g} s ({stride} frames at {fps:g} fps) would overlap: each "
            f"window needs room for {cap} frames (`max_frames`)",
        )
    windows = []
    for k in range(opts.windows):
        s = start + k * stride
        if s >= total or (k > 0 and total - s < opts.first_n):
            notes.append(f"asked for {opts.windows} windows; the input has room for {k}")
            break
        windows.append(Window(k, s, min(cap, total - s)))
    if windows and windows[0].capacity < MIN_WINDOW:
        raise InputError(
            f"{where}the first window starts at frame {start} of the input's {total}, leaving "
            f"{windows[0].capacity} frame; a clean image needs at least {MIN_WINDOW} frames."
        )
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


class _Frames:
    """Sequential decoder over one input that serves window after window (no seeking)."""

    def __init__(self, source: Path, crop: tuple[int, int, int, int] | None):
        self._it = read_ahead(iter_frames(source), 6)  # decode ahead, at most 6 frames
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
                        f"`crop` {x},{y},{w},{h} reaches outside the {f.shape[1]}x{f.shape[0]} frames."
                    )
                f = f[y : y + h, x : x + w]
            yield f

    def close(self) -> None:
        """Stop decoding and wait for the decode thread."""
        self._it.close()


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
    source_sha256: str | None = None,
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
    windows, notes = plan_windows(info.frame_count, info.fps, opts, source=source)
    for note in notes:
        yield Event("note", scene, message=note)
    writer.add_source(source, note=source_note or "user-supplied footage", sha256=source_sha256, scene=scene)
    frames = _Frames(source, opts.crop)
    # Frame pairs encode on every core while the next window decodes and estimates. At most
    # one window's pairs are outstanding (_flush waits for them before the next is handed
    # over), and their arrays are views of that window's stack, held until then anyway.
    pool = EncodePool(max_pending=opts.max_frames)
    pending: list[tuple[list[Future], list[dict]]] = []
    finished = False
    warm = None
    try:
        # While the first frames decode: the FFT binding of the static-camera check
        # (rainset.registration._pocketfft: loaded from its file, importing no package), here
        # before the warm-up thread starts importing numba and scipy.
        _pocketfft()

        if device == "cpu":
            # Kernels load while the first frames decode; joined below, so that no thread is
            # still loading them when the interpreter exits (a traceback, or an abort, at exit).
            warm = threading.Thread(
                target=_warm_up_quietly, args=(opts,), name="rainset-warm-up", daemon=True
            )
            warm.start()
        for win in windows:
            frames.skip_to(win.start)
            yield from _build_window(
                source, scene, win, frames, writer, review_log, reviewer, opts, device, pool, pending
            )
        _flush(writer, pending)
        finished = True
    finally:
        frames.close()
        pool.close(cancel=not finished)  # interrupted: drop the writes not yet started
        if warm is not None:
            warm.join()


def _warm_up_quietly(opts: BuildOptions) -> None:
    """warm_up in a thread: a failure here shows again (and properly) on first real use."""
    try:
        with IMPORT_LOCK:  # numba imports scipy: one thread at a time (rainset.registration)
            warm_up(select=opts.select, method=opts.method)
    except Exception as exc:  # noqa: BLE001 - reported by the estimate that follows
        log.debug("kernel warm-up failed: %s", exc)


def require_samples(writer, review_log) -> None:
    """Raise :class:`EmptyResultError` when the dataset holds no sample after a run.

    The message says why, from the review decisions: every window rejected (with the scores
    and a reviewer's reason), or no window reviewed at all.
    """
    if writer.counts()["samples"]:
        return
    final: dict[tuple, dict] = {}
    for d in review_log.decisions.values():
        key = (d.get("scene"), d.get("window"))
        if key not in final or d.get("n_frames", 0) >= final[key].get("n_frames", 0):
            final[key] = d
    where = writer.root
    if not final:
        raise EmptyResultError(f"no window was reviewed, so nothing was written to {where}.")
    rejected = [d for d in final.values() if d.get("action") == "reject"]
    scores = [d["score"] for d in rejected if isinstance(d.get("score"), (int, float))]
    detail = f", residual-rain scores {min(scores):.2f} to {max(scores):.2f}" if scores else ""
    reason = next((d.get("reason") for d in rejected if d.get("reason")), "")
    hint = (
        "; accept more with a higher `auto_threshold`, or review them yourself"
        if any(d.get("by") == "auto" for d in rejected)
        else ""
    )
    raise EmptyResultError(
        f"every window was rejected ({len(rejected)} of {len(final)}{detail}"
        + (f"; e.g. {reason}" if reason else "")
        + f"), so the dataset {where} holds no sample; the previews are in {layout.previews_dir(where)}"
        + hint + "."
    )


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
    frames_in.prefault(n)  # first touch of the stack's memory off the copy loop
    meter = MotionMeter(opts.policy)
    meter.update(first)
    checked = 0
    drift = 0.0
    motion: dict = {}
    registered = None
    while True:
        for f in frames.take(n - len(frames_in)):
            frames_in.append(f)
            meter.update(f)
            if len(meter) % _MEASURE_EVERY == 0:
                meter.report(len(meter))  # measures the frames whose neighbours are in
        filled = len(frames_in)
        stack = frames_in.frames
        if filled < MIN_WINDOW:
            if win.index == 0:
                raise InputError(
                    f"{source}: window {win.name} decodes to {filled} frame from frame {win.start}; "
                    f"a clean image needs at least {MIN_WINDOW} frames."
                )
            yield Event("note", scene, win.index, f"window {win.name}: only {filled} frame left; skipped")
            return
        if filled < n:
            yield Event("note", scene, win.index, f"window {win.name}: only {filled} frames, fewer than {n}; using them")
            n = filled
        yield Event("frames", scene, win.index, count=n)
        if checked < n:
            rep = meter.report(n)
            drift = rep.drift
            checked = n
            finite = rep.max_shift < float("inf")  # inf: the picture changed beyond measuring
            motion = {"max_shift_px": round(rep.max_shift, 3) if finite else None,
                      "confidence": round(rep.confidence, 3), "unmeasured": rep.unmeasured}  # fmt: skip
            registered = None
            if opts.stabilize:
                from rainset.stabilize import stabilize

                stab, registered = stabilize(stack[:n], opts.stabilize, opts.policy, summary=rep)
                if not stab.ok:
                    registered = None
                    if not opts.allow_motion:
                        raise InputError(
                            f"{source}: frames {win.start}-{win.start + n - 1} cannot be stabilised: "
                            f"{stab.refused}; choose a steadier stretch with `start`/`crop`, or pass "
                            "`allow_motion` to average it anyway."
                        )
                motion["stabilize"] = stab.record() if stab.ok else {"mode": stab.mode, "refused": stab.refused}
            elif not rep.static and not opts.allow_motion:
                what = (
                    f"the camera moves: {rep.max_shift:.1f} px at frame {win.start + rep.worst} against "
                    f"frame {win.start} (limit {opts.max_shift:g} px, confidence {rep.confidence:.2f})"
                    if finite else
                    f"the camera moves beyond measuring at frame {win.start + rep.worst} against frame "
                    f"{win.start} (limit {opts.max_shift:g} px; the picture no longer matches: motion "
                    "faster than the tiles follow, or moving foreground filling the frame)"
                )  # fmt: skip
                raise InputError(
                    f"{source}: {what}; build-gt needs "
                    "a static camera — choose a still stretch with `start`/`crop`, pass `stabilize` "
                    "to register shaky frames, or pass `allow_motion` to average it anyway."
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
        used = registered if registered is not None else stack[:n]  # registered: pixel-aligned
        result = estimate_clean(used, select=opts.select, method=opts.method, device=device)
        score = None
        if opts.score and n >= 4:
            score = split_half_score(
                used, lambda s: estimate_clean(s, select=opts.select, method=opts.method, device=device).image
            )
        flag = f"  LIGHT DRIFT {100 * drift:.0f}%" if drift > opts.max_drift else ""
        title = (
            f"{scene} {win.name}  N={n}  p={result.p_hat}  frame {win.start}"
            + (f"  score={score:.2f}" if score is not None else "") + flag
        )
        preview_rel = layout.gt_preview(scene, win.name, n)
        preview = writer.root / preview_rel
        if known is None and reviewer is not accept_reviewer:  # a reviewer may look at it now
            _write_preview(preview, used[0], result.image, title)
            preview_written = []
        else:  # drawn and encoded while the clean image is written
            preview_written = [pool.submit(_write_preview, preview, used[0], result.image, title)]
        cand = Candidate(
            scene, win.index, n, result.image, preview=preview, score=score,
            can_grow=can_grow, grow_limit=limit, info={"p_hat": result.p_hat, "drift": drift, "motion": motion, "frames": used},
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
        if decision.action == "accept":
            _write_window(source, scene, win, used, result, score, drift, decision, writer, opts, pool, pending, preview_rel,
                          motion=motion, preview_written=preview_written)
            yield Event("written", scene, win.index, count=n)
            return
        pending.append((preview_written, []))  # the previews of windows not written stay too
        if decision.action == "more":
            n = min(n + opts.step, win.capacity)
            continue
        return


def _already_done(writer, scene: str, win: Window, n: int, known: Decision, opts: BuildOptions) -> bool:
    if known.action == "reject":
        return True
    if known.action != "accept":
        return False
    if opts.write == "clean":
        return writer.has(f"{scene}/{win.name}")
    # Every frame, not only the last: a file deleted since is written again.
    return all(writer.has(f"{scene}/{win.name}/f{i:06d}") for i in range(win.start, win.start + n))


def _write_window(source, scene, win, stack, result, score, drift, decision, writer, opts, pool, pending, preview_rel,
                  motion=None, preview_written=()):
    # Records of the previous window can join the manifest now: their images had the whole
    # estimation of this window to be written.
    _flush(writer, pending)
    n = stack.shape[0]
    clean_rel = writer.write_image(layout.gt_clean(scene, win.name), result.image)
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
        **_motion_fields(motion),
        "mask_threshold": opts.mask_threshold if opts.mask_mode == "threshold" else "any",
        "preview": preview_rel,
    }
    if opts.write == "clean":
        records = [{"id": f"{scene}/{win.name}", "clean": clean_rel, "frames": [win.start, win.start + n], **common}]
        pending.append((list(preview_written), records))
        return
    futures, records = list(preview_written), []
    transforms = ((motion or {}).get("stabilize") or {}).get("transforms")
    for i in range(n):
        idx = win.start + i
        stem = f"{scene}/{win.name}/f{idx:06d}"
        rainy_rel = writer.image_relpath(layout.gt_rainy(stem), stack[i])
        futures.append(pool.submit(_write_pair, writer, stem, stack[i], result.image, opts))
        rec = {"id": stem, "rainy": rainy_rel, "clean": clean_rel}
        if opts.masks:
            rec["mask"] = writer.image_relpath(layout.gt_mask(stem), lossless=True)  # a mask: PNG
        rec.update({"frame": idx, **common})
        if transforms:  # 2 x 3, row-major: reference pixel -> where this source frame shows it
            rec["transform"] = transforms[i]
        records.append(rec)
    pending.append((futures, records))


def _motion_fields(motion: dict | None) -> dict:
    """The manifest's camera-motion fields: the policy's figures and, when stabilised, the
    mode, residual and crop (the per-frame transforms go in each frame's record)."""
    if not motion:
        return {}
    out = {"camera_shift_px": motion["max_shift_px"], "motion_confidence": motion["confidence"]}
    stab = motion.get("stabilize")
    if stab:
        out["stabilize"] = {k: v for k, v in stab.items() if k != "transforms"}
    return out


def _write_pair(writer, stem: str, rainy: np.ndarray, clean: np.ndarray, opts: BuildOptions) -> None:
    writer.write_image(layout.gt_rainy(stem), rainy)
    if opts.masks:
        writer.write_image(layout.gt_mask(stem), rain_mask(rainy, clean, threshold=opts.mask_threshold, mode=opts.mask_mode))


def _write_preview(path: Path, rainy: np.ndarray, clean: np.ndarray, title: str) -> None:
    write_image(path, preview_sheet(rainy, clean, title=title))


# --- several inputs in worker processes ------------------------------------------------------


class _WorkerLog:
    """The review log inside a worker: answers as the real one (its ``get``) from the main log's
    decisions of this scene; a new decision goes to the main process, which records it."""

    get = ReviewLog.get

    def __init__(self, decisions: dict, send):
        self.decisions = decisions
        self._send = send

    def record(self, candidate: Candidate, decision: Decision) -> None:
        # Candidates carry their clean image (and frames); decisions only need the key fields.
        c = candidate
        small = Candidate(c.scene, c.window, c.n_frames, np.zeros((1, 1, 3), np.uint8), score=c.score)
        self._send("decision", (small, decision))


_queue = None  # a worker's channel to the main process (set by _init_queue)


def _init_queue(q) -> None:
    global _queue
    _queue = q


def _scene_job(args):
    """One input in a worker: every record, source, decision and event goes to the main
    process as it happens, then ``("done", None)``."""
    job, source, scene, handle, decisions, reviewer, opts, device, note, sha = args

    def send(kind, payload):
        _queue.put((job, kind, payload))

    writer = handle.connect(send)
    log_ = _WorkerLog(decisions, send)
    try:
        for ev in build_scene(source, writer, log_, reviewer, opts, scene=scene, device=device, source_note=note,
                              source_sha256=sha):
            send("event", ev)
    except InputError as exc:
        send("event", Event("failed", scene, message=str(exc)))
    finally:
        send("done", None)


def build_parallel(jobs, writer, review_log, reviewer, opts, *, device="cpu", workers=2, source_note=""):
    """Run :func:`build_scene` for several ``(source, scene, sha256)`` inputs in worker processes.

    Only batch reviewers (accept, auto, file: picklable functions) can be used. Images are
    written by the workers; records, sources and decisions reach the manifest and the review
    file in the main process as windows finish. The input first in order is recorded live;
    what later inputs send waits until the inputs before them are done, so the manifest is in
    input order whatever the timing (the same bytes as one worker), and a killed run keeps
    everything recorded so far.
    """
    import multiprocessing

    from rainset._workers import worker_pool

    known = writer.ids()
    # Each job gets the finished ids and decisions of its own scene only (all of them would be
    # megabytes per task at 200k ids).
    args = [
        (job, str(src), scene, writer.handle(known={i for i in known if i.startswith(f"{scene}/")}),
         {k: d for k, d in review_log.decisions.items() if d.get("scene") == scene},
         reviewer, opts, device, source_note, sha)
        for job, (src, scene, sha) in enumerate(jobs)
    ]
    channel = multiprocessing.get_context().Queue()

    def idle(head):
        if futures[head].done() and futures[head].exception() is not None:
            raise futures[head].exception() from None

    with worker_pool(workers, initializer=_init_queue, initargs=(channel,)) as pool:
        futures = [pool.submit(_scene_job, a) for a in args]
        # futures[head].result(): a worker's unexpected error is raised once its input is done
        for kind, payload in in_input_order(channel, len(args), timeout=0.5, idle=idle,
                                            done=lambda head: futures[head].result()):
            if kind in WORKER_MESSAGES:  # a record or a source: the writer's own protocol
                writer.receive(kind, payload)
            elif kind == "decision":
                review_log.record(*payload)
            elif kind == "event":
                yield payload


def in_input_order(channel, n: int, *, timeout: float, idle=None, done=None):
    """The ``(kind, payload)`` messages of jobs ``0 .. n-1`` from ``channel`` (a queue of
    ``(job, kind, payload)``, each job ending with ``("done", None)``), job after job: what a
    later job sends waits until the jobs before it are done. ``idle(head)`` runs when nothing
    came for ``timeout`` seconds, ``done(head)`` when job ``head`` is done and passed on (the
    next job's messages then flow live)."""
    waiting: dict[int, list] = {job: [] for job in range(n)}
    finished: set[int] = set()
    head = 0
    while head < n:
        try:
            job, kind, payload = channel.get(timeout=timeout)
        except queue.Empty:
            if idle is not None:
                idle(head)
            continue
        waiting[job].append((kind, payload))
        if kind == "done":
            finished.add(job)
        while head < n:
            yield from waiting[head]
            waiting[head] = []
            if head not in finished:
                break
            if done is not None:
                done(head)
            head += 1
