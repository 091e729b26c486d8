"""``rainset.build_gt``: clean ground truth from rain videos, one call for several inputs.

The orchestration of :mod:`rainset.buildgt` (which builds one input): plan the inputs' scene
ids, open the dataset and the review log, run every input (here, in worker processes, or one
task per input on an executor), collect what was written, refused and failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from rainset.errors import ParameterError
from rainset.options import (
    BuildOptions,
    OutputOptions,
    ReviewOptions,
    RunOptions,
    SceneOptions,
    merged,
    split_fields,
)
from rainset.pipelines._common import (
    Progress,
    Refusal,
    Reporter,
    Result,
    as_paths,
    check_test_scenes,
    dataset_counts,
    failures,
    make_reviewer,
    planned,
    require_batch,
    run_tasks,
    shard_identity_of,
)


@dataclass(frozen=True)
class WindowRow:
    """The final decision about one window: ``decision`` is accept or reject."""

    scene: str
    window: int
    n_frames: int
    decision: str


@dataclass
class BuildResult(Result):
    """What :func:`build_gt` did; ``windows`` holds the last decision of every window reviewed
    (accepted ones were written, rejected ones are in ``refused``). ``written`` and
    ``skipped`` count windows: written by this call, or accepted and already complete from an
    earlier run (a resumed run)."""

    windows: list[WindowRow] = field(default_factory=list)


def build_gt(
    inputs,
    out: str | os.PathLike,
    *,
    options: BuildOptions | None = None,
    review=ReviewOptions.review,
    decisions: str | os.PathLike | None = ReviewOptions.decisions,
    auto_threshold: float = ReviewOptions.auto_threshold,
    output: OutputOptions | None = None,
    run: RunOptions | None = None,
    scenes: SceneOptions | None = None,
    progress: Progress | None = None,
    **fields,
) -> BuildResult:
    """Build clean ground truth from rain videos shot by a static camera (SPANet, CVPR 2019).

    Each input (a video file or frame folder) is one scene. Per window the clean image is each
    pixel's percentile, chosen by vote; the reviewer accepts it, asks for more frames, or
    rejects the window. Accepted windows are written to ``out`` with every rainy frame and its
    rain mask (``write="clean"``: the clean image only). Rerunning resumes.

    Parameters
    ----------
    inputs : a path or a list of paths.
    out : the dataset folder.
    options : :class:`rainset.options.BuildOptions`; single fields may be given as keywords
        instead (``density="sparse"``, ``frames=40``).
    review : ``"accept"``, ``"auto"`` (the residual-rain score, at or under
        ``auto_threshold``), ``"file"`` (``decisions``), or a reviewer callable
        ``reviewer(candidate) -> rainset.review.Decision``.
    output, run, scenes : :class:`~rainset.options.OutputOptions` (image format, split),
        :class:`~rainset.options.RunOptions` (workers, executor, device),
        :class:`~rainset.options.SceneOptions` (scene ids, provenance note); their fields may
        be keywords too (``workers=2``, ``image_format="jpg"``, ``scene="street"``).
    progress : called with an :class:`~rainset.pipelines.Event` at each step.

    Returns
    -------
    BuildResult

    Raises
    ------
    InputError
        The single input cannot be used (with several, failed inputs are in ``failed``).
    EmptyResultError
        Nothing was written: every window was rejected, or none was reviewed.
    ParameterError
        An option has a value that cannot be used (``.param`` names it).
    """
    given = split_fields(fields, BuildOptions, OutputOptions, RunOptions, SceneOptions)
    opts = merged(options or BuildOptions, given[0])
    output = merged(output or OutputOptions, given[1])
    run = merged(run or RunOptions, given[2])
    scenes = merged(scenes or SceneOptions, given[3])
    ReviewOptions(review, decisions, auto_threshold)  # the checks
    if review == "auto" and not opts.score:
        opts = replace(opts, score=True)
    from rainset.groundtruth import check_device

    check_device(run.device)  # before anything is written
    reviewer = make_reviewer(review, decisions=decisions, auto_threshold=auto_threshold)
    require_batch(review, run)
    report = Reporter("build-gt", progress)
    out = Path(out)
    paths = as_paths(inputs)
    if not paths:
        raise ParameterError("inputs", "give at least one video or frame folder")
    from rainset.inputs import plan_inputs

    plan = planned(lambda: plan_inputs(paths, out, root=scenes.root, scene=scenes.scene,
                                       allow_duplicates=scenes.allow_duplicate_sources))  # fmt: skip
    result = BuildResult(out)
    for line in plan.notes:
        result.notes.append(line)
        report("note", message=line)
    jobs = [(s.path, s.scene, s.sha256) for s in plan.sources]
    check_test_scenes(output.test_scenes, [s.scene for s in plan.sources],
                      paths[0] if len(paths) == 1 else f"the {len(paths)} inputs")  # fmt: skip
    rows: list[WindowRow] = []
    if run.executor == "ray":
        writer, review_log = _sharded(jobs, out, opts, reviewer, output, run, scenes.note, rows, result, report)
    else:
        writer, review_log = _local(jobs, out, opts, reviewer, output, run, scenes.note, rows, result, report)
    final: dict[tuple, WindowRow] = {}
    for r in rows:
        final[(r.scene, r.window)] = r
    result.windows = [final[k] for k in sorted(final)]
    accepted = sum(1 for r in result.windows if r.decision == "accept")
    # windows: written by this call, or accepted and complete from an earlier run (resumed)
    result.written = min(report.done, accepted) if run.executor != "ray" else accepted
    result.skipped = accepted - result.written
    result.refused = [Refusal(f"{r.scene} w{r.window:02d}", f"rejected at N={r.n_frames}")
                      for r in result.windows if r.decision == "reject"]  # fmt: skip
    report("done")
    if not result.failed:
        from rainset.buildgt import require_samples
        from rainset.errors import EmptyResultError

        try:
            require_samples(writer, review_log)  # an empty dataset is an error, said in one line
        except EmptyResultError as exc:
            exc.result = result  # what was decided, for a caller's summary
            raise
    result.counts = dataset_counts(out)
    return result


def open_outputs(out, opts: BuildOptions, output: OutputOptions | None = None):
    """The dataset writer and review log of a build-gt run into ``out``.

    Both refuse here a folder that holds another dataset or review; neither changes anything
    on disk until the first write, so calling this is also the check before a run.
    """
    from rainset.dataset import DatasetWriter, SplitRule, layout
    from rainset.review import ReviewLog

    output = output or OutputOptions()
    out = Path(out)
    params = opts.params()
    review_log = ReviewLog(layout.review_path(out), params=params)
    writer = DatasetWriter(
        out, kind="clean" if opts.write == "clean" else "paired", params=params,
        split_rule=SplitRule(test_scenes=output.test_scenes, test_fraction=output.test_fraction),
        image_format=output.image_format, jpeg_quality=output.jpeg_quality, tool="rainset build-gt",
    )  # fmt: skip
    return writer, review_log


def _consume(events, rows: list[WindowRow], result: BuildResult, report: Reporter) -> None:
    for ev in events:
        if ev.kind == "note":
            result.notes.append(f"{ev.scene}: {ev.message}")
        elif ev.kind == "decision":
            rows.append(WindowRow(ev.scene, ev.window, ev.count, ev.message))
        elif ev.kind == "failed":
            result.failed.append(Refusal(ev.scene, ev.message))
        if ev.kind == "written":
            report.done += 1
        report(ev.kind, ev.scene, window=ev.window, message=ev.message, count=ev.count)


def _local(jobs, out, opts, reviewer, output, run, note, rows, result, report):
    from rainset.errors import InputError

    writer, review_log = open_outputs(out, opts, output)
    report.start(None)
    with writer:
        if run.workers > 1 and len(jobs) > 1:
            from rainset.buildgt import build_parallel

            events = build_parallel(jobs, writer, review_log, reviewer, opts,
                                    device=run.device, workers=run.workers, source_note=note)  # fmt: skip
            _consume(events, rows, result, report)
        elif getattr(reviewer, "lookahead", 0):
            # A reviewer that can wait in several threads (the review page): later inputs are
            # estimated while it decides (rainset/web/live.py); the output is in input order.
            from rainset.web.live import build_lookahead

            _consume(build_lookahead(jobs, writer, review_log, reviewer, opts, device=run.device,
                                     lookahead=reviewer.lookahead, source_note=note,
                                     board=getattr(reviewer, "board", None)),
                     rows, result, report)  # fmt: skip
        else:
            from rainset.buildgt import build_scene

            for src, scene, sha in jobs:
                try:
                    _consume(build_scene(src, writer, review_log, reviewer, opts, scene=scene,
                                         device=run.device, source_note=note, source_sha256=sha),
                             rows, result, report)  # fmt: skip
                except InputError as exc:
                    if len(jobs) == 1:
                        raise
                    result.failed.append(Refusal(scene, str(exc)))
                    report("failed", scene, message=str(exc))
    return writer, review_log


def _sharded(jobs, out, opts, reviewer, output, run, note, rows, result, report):
    """One task per input on an executor (rainset.executor), each writing a shard merged into
    ``out`` as it finishes."""
    from rainset.executor import Task
    from rainset.merge import Merger
    from rainset.review import ReviewLog
    from rainset.tasks import buildgt_shard

    writer, review_log = open_outputs(out, opts, output)  # the checks
    identity = shard_identity_of(writer)
    writer_args = {"split_rule": writer.split_rule, "image_format": output.image_format,
                   "jpeg_quality": output.jpeg_quality}  # fmt: skip
    tasks = [
        Task(scene, str(src), buildgt_shard, fingerprint=sha, args=(
            str(src), scene, sha, opts, reviewer,
            {k: d for k, d in review_log.decisions.items() if d.get("scene") == scene},
            writer_args, run.device, note,
        ))  # fmt: skip
        for src, scene, sha in jobs
    ]
    # The merger is the output's one writer: it holds the folder's lock for the whole run.
    with Merger(out, identity, writer_args["split_rule"]) as merger:
        outcomes = run_tasks(tasks, merger, run, report)
    for oc in outcomes:
        _consume([ev for ev in oc.value or [] if ev.kind != "failed"], rows, result, report)
    result.failed.extend(failures(outcomes))
    from rainset.dataset import layout

    return merger.writer, ReviewLog(layout.review_path(out), params=opts.params())

