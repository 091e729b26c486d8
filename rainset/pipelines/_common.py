"""What every pipeline call shares: progress events, results, reviewers, sharded runs.

Light to import (no OpenCV, NumPy or PyAV at module level).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rainset.errors import ParameterError


@dataclass(frozen=True)
class Event:
    """One step of a pipeline call, passed to its ``progress`` callback.

    Attributes
    ----------
    pipeline : ``"build-gt"``, ``"pairs"``, ``"synth"``, ``"import"`` or ``"export"``.
    kind : what happened:

        - ``"start"``: the run begins; ``total`` items (inputs, scenes, samples, tasks) when known.
        - ``"note"``: something the user should know (``message``).
        - ``"frames"`` (build-gt): window ``window`` of ``scene`` is estimated from ``count`` frames.
        - ``"candidate"`` (build-gt): a clean image is up for review (``message``: its preview).
        - ``"decision"`` (build-gt): ``message`` is the action (accept, more, reject) at ``count`` frames.
        - ``"written"``: an item was written (build-gt: a window at ``count`` frames; synth,
          import: a sample; pairs: a scene).
        - ``"skipped"``: an item was already there (a resumed run).
        - ``"failed"``: an input failed (``message`` says why); the others go on.
        - ``"task"``: a sharded task ended (``message``: its error, "" when it succeeded).
        - ``"done"``: the run is over.
    scene : the scene, input, sample or task the event is about ("" for the whole run).
    window : build-gt's window index (-1 otherwise).
    message : text of a note, a decision, a failure.
    count : build-gt: frames in the window.
    done, total : items finished so far, and in all (None when not known).
    """

    pipeline: str
    kind: str
    scene: str = ""
    window: int = -1
    message: str = ""
    count: int = 0
    done: int = 0
    total: int | None = None


Progress = Callable[[Event], None]


@dataclass(frozen=True)
class Refusal:
    """Something a run did not write, and why: a failed input, a rejected window or photo."""

    what: str
    reason: str


@dataclass
class Result:
    """What a pipeline call did.

    Attributes
    ----------
    out : the dataset folder.
    written : samples this call wrote.
    skipped : samples already there (written by an earlier, interrupted run).
    refused : what was not written and why (rejected windows and photos, rejected segments).
    failed : inputs that failed; the others were written (:attr:`ok` is False).
    counts : the dataset's counts after the run (``rainset.json``: ``samples``,
        ``per_split``, ...).
    notes : what the user should know (shortened windows, unmatched files, ...).
    """

    out: Path
    written: int = 0
    skipped: int = 0
    refused: list[Refusal] = field(default_factory=list)
    failed: list[Refusal] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no input failed."""
        return not self.failed


class Reporter:
    """Calls a ``progress`` callback (if any) with events of one pipeline; counts items."""

    def __init__(self, pipeline: str, progress: Progress | None) -> None:
        self.pipeline = pipeline
        self.progress = progress
        self.done = 0
        self.total: int | None = None

    def __call__(self, kind: str, scene: str = "", **kw) -> None:
        if self.progress is None:
            return
        kw.setdefault("done", self.done)
        kw.setdefault("total", self.total)
        self.progress(Event(self.pipeline, kind, scene, **kw))

    def start(self, total: int | None) -> None:
        self.total = total
        self("start")

    def item(self, kind: str, scene: str = "", **kw) -> None:
        """One item done (``written`` or ``skipped``)."""
        self.done += 1
        self(kind, scene, **kw)


def as_paths(inputs) -> list[Path]:
    """One path or several, as a list."""
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    return [Path(p) for p in inputs]


def planned(call):
    """Run ``call()`` (a plan of the inputs); a scene-id clash names this API's parameters
    (``allow_duplicate_sources``, where :func:`rainset.inputs.plan_inputs` says
    ``allow_duplicates``)."""
    from rainset.inputs import SceneIdError

    try:
        return call()
    except SceneIdError as exc:
        params = tuple("allow_duplicate_sources" if p == "allow_duplicates" else p for p in exc.params)
        raise SceneIdError(exc.text, params) from None


def check_test_scenes(named: Iterable[str], scenes: Iterable[str], where: object) -> None:
    """Refuse ``test_scenes`` entries that name no scene of the run."""
    known = dict.fromkeys(scenes)  # in order, and a set to look names up in
    unknown = [s for s in dict.fromkeys(named) if s not in known]
    if unknown:
        shown = ", ".join(list(known)[:10]) + (" ..." if len(known) > 10 else "")
        raise ParameterError(
            "test_scenes", f"no scene {', '.join(unknown)} in {where} (scenes: {shown or 'none'})"
        )


def make_reviewer(review, *, decisions=None, auto_threshold: float | None = None):
    """The reviewer callable of ``review``: a batch mode (``"accept"``, ``"auto"``,
    ``"file"``) or a callable ``reviewer(candidate) -> Decision`` (returned as it is)."""
    if callable(review):
        return review
    from rainset.review import accept_reviewer, auto_reviewer, file_reviewer

    if review == "accept":
        return accept_reviewer
    if review == "auto":
        return auto_reviewer(auto_threshold)
    if review == "file":
        if decisions is None:
            raise ParameterError("decisions", "`review` 'file' needs a decisions file")
        return file_reviewer(decisions)
    raise ParameterError(
        "review",
        f"{review!r} needs a person (the command line's terminal or browser); from Python pass "
        "'accept', 'auto', 'file' or a reviewer callable",
    )


def require_batch(review, run) -> None:
    """Local worker processes need a reviewer callable they can receive (a module-level
    function); the batch modes' own reviewers travel as they always have."""
    if not callable(review) or run.workers <= 1 or run.executor == "ray":
        return  # ray pickles closures itself (cloudpickle)
    try:
        pickle.dumps(review)
    except Exception:  # noqa: BLE001 - any failure means it cannot travel
        raise ParameterError(
            "workers",
            "needs a batch review (`review` 'accept', 'auto', 'file', or a picklable reviewer "
            "function): this reviewer cannot be sent to worker processes",
        ) from None


def dataset_counts(out: Path) -> dict:
    """The counts a dataset records (empty when there is none)."""
    from rainset.dataset import open_dataset

    try:
        return dict(open_dataset(out).meta.get("counts", {}))
    except Exception:  # noqa: BLE001 - no dataset (nothing written): no counts
        return {}


def run_tasks(tasks, merger, run, report: Reporter) -> list:
    """Run ``tasks`` sharded on ``run.executor`` (:func:`rainset.executor.run_sharded`);
    returns the outcomes in task order, reporting a ``task`` event as each ends."""
    from rainset.executor import make_executor, run_sharded

    engine = make_executor(run.executor, workers=run.workers, address=run.address)
    outcomes = []
    report.start(len(tasks))
    try:
        for oc in run_sharded(tasks, merger, engine, staging=run.staging):
            outcomes.append(oc)
            report.done += 1
            report("task", oc.task.label, message="" if oc.error is None else str(oc.error))
    finally:
        engine.close()
    return outcomes


def shard_identity_of(writer) -> dict:
    """What a sharded run's shards share with its output (:class:`rainset.merge.Merger`'s
    ``identity``): that of the writer the run opened ``out`` with for the checks."""
    from rainset.merge import shard_identity

    return shard_identity(writer._identity())


def failures(outcomes) -> list[Refusal]:
    """The failed tasks of a sharded run."""
    return [Refusal(oc.task.label, str(oc.error)) for oc in outcomes if oc.error is not None]
