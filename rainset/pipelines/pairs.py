"""``rainset.find_pairs``: the static stretches of rainy footage, N frames each, and pairs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rainset.options import (
    OutputOptions,
    PairsOptions,
    RunOptions,
    SceneOptions,
    StaticConfig,
    merged,
    split_fields,
)
from rainset.pipelines._common import (
    Progress,
    Refusal,
    Reporter,
    Result,
    check_test_scenes,
    dataset_counts,
    failures,
    planned,
    run_tasks,
    shard_identity_of,
)


@dataclass
class PairsResult(Result):
    """What :func:`find_pairs` did: ``scenes`` holds each scene's
    :class:`rainset.pairs.SceneResult` (segments kept, rejected and why, frames, pairs);
    ``written`` counts frames, ``segments`` and ``pairs`` the kept segments and pairs."""

    scenes: list = field(default_factory=list)
    segments: int = 0
    pairs: int = 0


def find_pairs(
    inputs: str | os.PathLike,
    out: str | os.PathLike,
    *,
    options: PairsOptions | None = None,
    output: OutputOptions | None = None,
    run: RunOptions | None = None,
    scenes: SceneOptions | None = None,
    progress: Progress | None = None,
    **fields,
) -> PairsResult:
    """Find the static stretches of rainy footage and write N frames of each plus frame pairs.

    ``inputs`` is a video, a folder of frames, or a folder whose entries (videos and
    sub-folders of frames) are scenes. Every frame is scored (camera shift, cut, light change,
    moving foreground); stretches where the camera is still, with no cut and steady light, of
    at least N frames, are kept. ``out`` gets a timelapse dataset (frames, foreground masks,
    pairs.jsonl), stats/<scene>.csv with every score, sheets/*.png and report.md saying why
    each stretch was kept or rejected. Rerunning resumes.

    Parameters
    ----------
    options : :class:`rainset.options.PairsOptions`; its fields, and those of its ``static``
        (:class:`~rainset.options.StaticConfig`: ``max_shift``, ``max_cut``, ...), may be
        given as keywords instead (``n_frames=20``, ``max_cut=0.2``).
    output, run, scenes : as :func:`rainset.build_gt` (their fields may be keywords).
    progress : called with an :class:`~rainset.pipelines.Event` per scene.

    Raises
    ------
    EmptyResultError
        No scene has a static stretch of ``n_frames`` frames.
    """
    given = split_fields(fields, PairsOptions, StaticConfig, OutputOptions, RunOptions, SceneOptions)
    opts = merged(options or PairsOptions, given[0])
    if given[1]:
        opts = merged(opts, {"static": merged(opts.static, given[1])})
    output = merged(output or OutputOptions, given[2])
    run = merged(run or RunOptions, given[3])
    scenes = merged(scenes or SceneOptions, given[4])
    from rainset.dataset import SplitRule
    from rainset.pairs import build_pairs, check_sources, plan_scenes, require_frames

    out = Path(out)
    report = Reporter("pairs", progress)
    plan = planned(lambda: plan_scenes(inputs, out, root=scenes.root, scene=scenes.scene,
                                       allow_duplicate_sources=scenes.allow_duplicate_sources))  # fmt: skip
    result = PairsResult(out)
    for line in plan.notes:
        result.notes.append(line)
        report("note", message=line)
    check_test_scenes(output.test_scenes, [s.scene for s in plan.sources], inputs)
    rule = SplitRule(test_scenes=output.test_scenes, test_fraction=output.test_fraction)
    probed = check_sources(plan, out)  # every input is opened before a line is written
    if run.executor == "ray" or run.workers > 1:
        results = _sharded(plan, out, opts, rule, output, scenes.note, inputs, run, result, report)
    else:
        report.start(len(plan.sources))
        results = []
        for r in build_pairs(inputs, out, options=opts, split_rule=rule, image_format=output.image_format,
                             jpeg_quality=output.jpeg_quality, note=scenes.note, scenes=plan,
                             probed=probed):  # fmt: skip
            results.append(r)
            report.item("written", r.scene)
    result.scenes = results
    result.segments = sum(len(r.segments) for r in results)
    result.pairs = sum(sum(r.pairs.values()) for r in results)
    result.written = sum(sum(len(v) for v in r.frames.values()) for r in results)
    result.refused = [Refusal(f"{r.scene} {x.start}-{x.stop - 1}", x.reason) for r in results for x in r.rejections]
    report("done")
    if not result.failed:
        from rainset.errors import EmptyResultError

        try:
            require_frames(results, out)  # an empty dataset is an error, said in one line
        except EmptyResultError as exc:
            exc.result = result  # what each scene gave, for a caller's summary
            raise
    result.counts = dataset_counts(out)
    return result


def _sharded(plan, out, options, rule, output, note, inputs, run, result, report):
    """One task per scene on an executor, each writing a shard merged into ``out``;
    report.md is written for the whole run once the shards are merged."""
    from rainset.dataset import DatasetWriter, layout
    from rainset.executor import Task
    from rainset.merge import Merger
    from rainset.pairs import SceneResult, write_report
    from rainset.tasks import pairs_shard

    fmt, quality = output.image_format, output.jpeg_quality
    writer = DatasetWriter(out, kind="timelapse", params=options.params(), split_rule=rule,
                           image_format=fmt, jpeg_quality=quality, tool="rainset pairs")  # the checks
    identity = shard_identity_of(writer)
    tasks = [Task(s.scene, str(s.path), pairs_shard, (s, options, rule, fmt, quality, note),
                  fingerprint=s.sha256) for s in plan.sources]  # fmt: skip
    with Merger(out, identity, rule) as merger:
        outcomes = run_tasks(tasks, merger, run, report)
    results = []
    for oc in outcomes:
        done = layout.tl_scene_result(out, oc.task.key)
        if oc.error is None and done.is_file():
            results.append(SceneResult.from_json(json.loads(done.read_text(encoding="utf-8"))))
    write_report(out, results, options, str(inputs))
    result.failed.extend(failures(outcomes))
    return results
