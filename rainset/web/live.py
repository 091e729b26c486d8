"""Build-gt judged on the page: a reviewer that waits for the page, and a bounded look-ahead.

Design. build-gt asks its reviewer synchronously (``reviewer(candidate) -> Decision`` inside
:func:`rainset.buildgt.build_scene`), so estimating ahead of the reviewer means running the
next inputs while the current one waits. :func:`build_lookahead` runs up to ``1 + lookahead``
inputs at once, each in a thread with its own :func:`~rainset.buildgt.build_scene`; the
:class:`WebReviewer` puts every candidate on the board the moment it exists and blocks that
input's thread until the page decides. Memory stays bounded: each running input holds one
window's frames. What the output records stays in input order, whatever order the reviewer
works in: the first unfinished input writes its records live; later inputs write their images
at once but their manifest records wait, in memory, until every input before them is done
(as :func:`rainset.buildgt.build_parallel` does with processes), so the dataset is the bytes a
sequential run (``--review file`` with the same decisions) writes. Decisions are not held
back: each is recorded in ``review.json`` when it is made, so Ctrl-C loses none.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from rainset.errors import InputError
from rainset.review import Candidate, Decision, decision_key
from rainset.web.board import Board, ReviewClosed

#: Inputs estimated ahead of the one being reviewed (each holds one window of frames).
LOOKAHEAD = 2


class WebReviewer:
    """A build-gt reviewer whose answers come from the review page.

    Calling it puts the candidate on ``board`` and blocks until the page decides it (or the
    board closes: :class:`~rainset.web.board.ReviewClosed`). Safe to call from several threads.
    """

    #: How many inputs the build may estimate ahead of the one being reviewed
    #: (:func:`rainset.build_gt` runs them with :func:`build_lookahead`).
    lookahead = LOOKAHEAD

    def __init__(self, board: Board, *, lookahead: int = LOOKAHEAD):
        self.board = board
        self.lookahead = lookahead
        self._estimate = None

    def prepare(self, opts, device: str = "cpu") -> None:
        """Learn the build's estimator, to score candidates that come without a score."""
        from rainset.groundtruth import estimate_clean

        self._estimate = lambda s: estimate_clean(s, select=opts.select, method=opts.method, device=device).image

    def __call__(self, candidate: Candidate) -> Decision:
        item = self.board.add_candidate(candidate)
        frames = (candidate.info or {}).get("frames")
        if candidate.score is None and self._estimate is not None and frames is not None and len(frames) >= 4:
            # Shown on the page only: the dataset and review.json stay what a replay of the
            # same decisions (--review file) writes.
            from rainset.review import predicted_error, split_half_score

            score = split_half_score(frames, self._estimate)
            self.board.update(item.id, score=score, predicted_error=round(predicted_error(score), 3))
        item = self.board.wait(item.id)
        return Decision(item.status, item.reason, by="web")


class _Writer:
    """One input's view of the dataset writer: images go straight to disk; records are held
    back (``hold``) until the inputs before it are done, then replayed in order."""

    def __init__(self, writer, lock: threading.Lock):
        self._w = writer
        self._lock = lock
        self._held: list[tuple[str, tuple, dict]] = []
        self._ids: set[str] = set()
        self.live = False

    def __getattr__(self, name):  # root, image_ext, write_image, ... of the real writer
        return getattr(self._w, name)

    def _call(self, name, args, kwargs):
        with self._lock:
            if self.live:
                return getattr(self._w, name)(*args, **kwargs)
            self._held.append((name, args, kwargs))
            return None

    def add(self, record, *args, **kwargs):
        self._ids.add(record["id"])
        return self._call("add", (record, *args), kwargs)

    def add_source(self, *args, **kwargs):
        return self._call("add_source", args, kwargs)

    def has(self, sample_id: str) -> bool:
        with self._lock:
            return sample_id in self._ids or self._w.has(sample_id)

    def go_live(self) -> None:
        """Replay what was held, in order, and write through from now on."""
        with self._lock:
            for name, args, kwargs in self._held:
                if name == "add" and self._w.has(args[0]["id"]):
                    continue
                getattr(self._w, name)(*args, **kwargs)
            self._held = []
            self.live = True


class _Log:
    """The review log, shared by the inputs' threads (decisions recorded as they are made)."""

    def __init__(self, review_log, lock: threading.Lock):
        self._log = review_log
        self._lock = lock

    def get(self, key: str):
        with self._lock:
            return self._log.get(key)

    def record(self, candidate, decision) -> None:
        with self._lock:
            self._log.record(candidate, decision)

    def __getattr__(self, name):
        return getattr(self._log, name)


def build_lookahead(jobs, writer, review_log, reviewer, opts, *, device: str = "cpu", lookahead: int = LOOKAHEAD,
                    source_note: str = "", board: Board | None = None):
    """Run build-gt over ``jobs`` (``(source, scene, sha256)``) with inputs estimated ahead.

    Yields the events of :func:`rainset.buildgt.build_scene`, input after input (an input
    that fails with an :class:`~rainset.errors.InputError` yields a ``failed`` event, as
    :func:`rainset.buildgt.build_parallel`). ``board`` is closed on the way out, so that threads
    waiting for the page end when the caller stops (Ctrl-C).
    """
    from rainset.buildgt import Event, build_scene, in_input_order

    if lookahead < 0:
        raise ValueError(f"lookahead must be >= 0, got {lookahead}")
    jobs = list(jobs)
    if hasattr(reviewer, "prepare"):
        reviewer.prepare(opts, device)
    if board is not None:
        _show_earlier(board, review_log)
    lock = threading.RLock()
    log_lock = threading.Lock()
    shared_log = _Log(review_log, log_lock)
    channel: queue.Queue = queue.Queue()
    writers = [_Writer(writer, lock) for _ in jobs]
    stop = threading.Event()

    def run(job: int, source, scene, sha):
        try:
            if stop.is_set():
                return
            for ev in build_scene(source, writers[job], shared_log, reviewer, opts, scene=scene, device=device,
                                  source_note=source_note, source_sha256=sha):
                channel.put((job, "event", ev))
                if stop.is_set():
                    return
        except InputError as exc:
            if len(jobs) == 1:  # one input: its error is the run's (as build-gt's sequential loop)
                channel.put((job, "error", exc))
            else:
                channel.put((job, "event", Event("failed", scene, message=str(exc))))
        except ReviewClosed:
            pass
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            channel.put((job, "error", exc))
        finally:
            channel.put((job, "done", None))

    def next_live(head):
        if head + 1 < len(jobs):
            writers[head + 1].go_live()

    if jobs:
        writers[0].live = True
    complete = False
    pool = ThreadPoolExecutor(max_workers=1 + lookahead, thread_name_prefix="rainset-lookahead")
    try:
        for j, (src, scene, sha) in enumerate(jobs):
            pool.submit(run, j, src, scene, sha)
        for kind, payload in in_input_order(channel, len(jobs), timeout=0.25, done=next_live):
            if kind == "event":
                yield payload
            elif kind == "error":
                raise payload
        complete = True
    finally:
        stop.set()
        if board is not None and not complete:
            board.close()
        pool.shutdown(wait=True, cancel_futures=True)


def _show_earlier(board: Board, review_log) -> None:
    """A resumed run: the decisions of the earlier run join the queue (without images), so
    the counts are the whole review's."""
    from rainset.web.board import Images

    known = [d for d in review_log.decisions.values()
             if isinstance(d.get("window"), int) and isinstance(d.get("n_frames"), int)]
    for d in sorted(known, key=lambda d: (str(d.get("scene")), d["window"], d["n_frames"])):
        board.add(str(d.get("scene")), d["window"], d["n_frames"],
                  decision_key(str(d.get("scene")), d["window"], d["n_frames"]), Images(),
                  figures={"score": d.get("score"), "earlier": True}, can_grow=False,
                  grow_limit="decided in an earlier run", status=d["action"], reason=d.get("reason", ""),
                  by=d.get("by", ""))


class TierWebReviewer:
    """synth's tier review on the page: each photo's clean image and its four low-pass tiers
    side by side; the tier chosen there answers :func:`rainset.synth.review_tiers`'s questions
    (``more`` below it, ``accept`` at it; ``reject`` drops the photo).

    Candidates need ``info["photo"]`` (the clean photo) and ``info["tiers"]`` (k -> image), which
    :func:`rainset.synth.review_tiers` passes.
    """

    def __init__(self, board: Board):
        self.board = board
        self._chosen: dict[str, tuple[str, int | None, str]] = {}

    def __call__(self, candidate: Candidate) -> Decision:
        from rainset.web.board import TierImages

        photo = candidate.scene
        if photo not in self._chosen:
            info = candidate.info or {}
            tiers = {f"{k}x{k}": img for k, img in sorted(info["tiers"].items())}
            item = self.board.add(photo, 0, candidate.n_frames, candidate.key,
                                  TierImages(info["photo"], tiers),
                                  figures={"tier": None, "width": int(info["photo"].shape[1]),
                                           "height": int(info["photo"].shape[0])},
                                  can_grow=False, grow_limit="choose a tier or reject the photo")
            item = self.board.wait(item.id)
            if item.status == "accept":
                k = int(item.reason.split("x")[0]) if item.reason in tiers else candidate.n_frames
                self.board.update(item.id, tier=f"{k}x{k}")
                self._chosen[photo] = ("accept", k, "")
            else:
                self._chosen[photo] = ("reject", None, item.reason)
        action, k, reason = self._chosen[photo]
        if action == "reject":
            return Decision("reject", reason, by="web")
        if candidate.n_frames < k and candidate.can_grow:
            return Decision("more", f"the page chose {k}x{k}", by="web")
        return Decision("accept", f"{candidate.n_frames}x{candidate.n_frames}", by="web")
