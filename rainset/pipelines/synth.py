"""``rainset.synthesize``: directional rain on clean photos, with labels, masks and tiers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rainset.errors import ParameterError
from rainset.options import (
    TIER_DETAIL_KEPT,
    OutputOptions,
    ReviewOptions,
    RunOptions,
    SynthConfig,
    SynthOptions,
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
    make_reviewer,
    run_tasks,
    shard_identity_of,
)


@dataclass
class SynthResult(Result):
    """What :func:`synthesize` did; photos the tier review rejected are in ``refused``."""


def synthesize(
    photos,
    out: str | os.PathLike,
    *,
    options: SynthOptions | None = None,
    output: OutputOptions | None = None,
    run: RunOptions | None = None,
    review=ReviewOptions.review,
    decisions: str | os.PathLike | None = ReviewOptions.decisions,
    semantic: str | os.PathLike | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    **fields,
) -> SynthResult:
    """Turn clean photos into rainy/clean pairs with direction labels, rain maps, masks and
    low-pass ground-truth tiers. Same seed, same bytes; an interrupted run resumes.

    Parameters
    ----------
    photos : a folder (searched recursively), a list of :class:`rainset.synth.Photo`, or None
        for scikit-image's bundled CC0 / public-domain photos.
    out : the dataset folder.
    options : :class:`rainset.options.SynthOptions`; its fields and those of its ``config``
        (:class:`~rainset.options.SynthConfig`) may be keywords instead (``per_image=3``,
        ``angles=(0, 15, -15)`` or ``angles="0,15"``, ``radii=(0.4,)``).
    output, run : :class:`~rainset.options.OutputOptions`,
        :class:`~rainset.options.RunOptions` (or their fields as keywords).
    review, decisions : with ``tier_choice="review"``: who picks each photo's tier
        (``"accept"``: the first, 3x3; ``"auto"``: the rule's threshold; ``"file"``; or a
        reviewer callable).
    semantic : folder of label maps matched by file name (Cityscapes-style), copied along.
    limit : use only the first ``limit`` photos.
    progress : called with an :class:`~rainset.pipelines.Event` per sample.

    Raises
    ------
    EmptyResultError
        The review rejected every photo.
    """
    given = split_fields(fields, SynthOptions, SynthConfig, OutputOptions, RunOptions)
    opts = merged(options or SynthOptions, given[0])
    if given[1]:
        cfg = dict(given[1])
        if isinstance(cfg.get("angles"), str):
            from rainset.synth import parse_angles

            try:
                cfg["angles"] = parse_angles(cfg["angles"])
            except ValueError as exc:
                raise ParameterError("angles", str(exc)) from None
        opts = merged(opts, {"config": merged(opts.config, cfg)})
    output = merged(output or OutputOptions, given[2])
    run = merged(run or RunOptions, given[3])
    ReviewOptions(review, decisions)  # the checks
    if limit is not None and limit < 1:
        raise ParameterError("limit", f"must be >= 1, got {limit}")
    from rainset import synth as S
    from rainset.dataset import SplitRule

    out = Path(out)
    report = Reporter("synth", progress)
    result = SynthResult(out)
    if out.exists() and not out.is_dir():
        raise ParameterError("out", f"{out} is a file; the dataset needs a folder")
    from rainset.inputs import check_outputs

    folders = [p for p in (photos if isinstance(photos, (str, os.PathLike)) else None, semantic) if p is not None]
    for line in check_outputs({"out": out}, folders):
        result.notes.append(line)
        report("note", message=line)
    if isinstance(photos, (str, os.PathLike)):
        where: object = photos
        photos = S.find_photos(photos, exclude=[out])
    elif photos is None:
        where = "the bundled photos"
        photos = S.bundled_photos()
    else:
        where = "the photos"
        photos = list(photos)
    photos = photos[:limit] if limit else photos
    check_test_scenes(output.test_scenes, [p.key for p in photos], where)
    rule = SplitRule(test_scenes=output.test_scenes, test_fraction=output.test_fraction)
    S.check_photos(photos)  # an unreadable photo fails before a sheet or sample is written
    decided = None
    if opts.tier_choice == "review":
        reviewer = make_reviewer(review, decisions=decisions, auto_threshold=TIER_DETAIL_KEPT)
        decided = dict(S.review_tiers(photos, out, reviewer, options=opts))
        result.refused = [Refusal(k, "the review rejected every tier") for k, v in decided.items() if v is None]
    total = sum(1 for p in photos if decided is None or decided.get(p.key)) * opts.per_image
    if run.executor == "ray":
        _sharded(photos, out, opts, rule, output, semantic, decided, run, result, report)
    else:
        report.start(total)
        events = S.synthesize(photos, out, options=opts, workers=run.workers, split_rule=rule,
                              image_format=output.image_format, jpeg_quality=output.jpeg_quality,
                              semantic_dir=semantic, tier_decisions=decided)  # fmt: skip
        for event in events:
            result.skipped += event.skipped
            result.written += not event.skipped
            report.item("skipped" if event.skipped else "written", event.id)
    report("done")
    if not result.written and not result.skipped and not result.failed:
        from rainset.errors import EmptyResultError

        exc = EmptyResultError(
            f"the review rejected every photo ({len(photos)}), so the dataset {out} holds no sample."
        )
        exc.result = result  # for a caller's summary
        raise exc
    result.counts = dataset_counts(out)
    return result


def _sharded(photos, out, options, rule, output, semantic, decided, run, result, report):
    """One task per batch of photos on Ray, each writing a shard merged into ``out``."""
    from rainset.dataset import DatasetWriter
    from rainset.executor import Task
    from rainset.merge import Merger
    from rainset.tasks import SYNTH_BATCH, synth_params, synth_shard

    fmt, quality = output.image_format, output.jpeg_quality
    params = synth_params(options, semantic)
    writer = DatasetWriter(out, kind="paired", params=params, split_rule=rule, image_format=fmt,
                           jpeg_quality=quality, tool="rainset synth")  # the checks, before any task
    identity = shard_identity_of(writer)
    tasks, expected = [], {}
    for i in range(0, len(photos), SYNTH_BATCH):
        batch = photos[i : i + SYNTH_BATCH]
        sub = None if decided is None else {p.key: decided[p.key] for p in batch}
        label = batch[0].key + (f" .. {batch[-1].key}" if len(batch) > 1 else "")
        tasks.append(Task(f"photos{i:06d}-{batch[0].key}", label, synth_shard,
                          (batch, options, rule, fmt, quality, semantic, sub),
                          fingerprint="|".join(p.key for p in batch)))  # fmt: skip
        expected[tasks[-1].key] = sum(1 for p in batch if sub is None or sub.get(p.key)) * options.per_image
    with Merger(out, identity, rule) as merger:
        outcomes = run_tasks(tasks, merger, run, report)
    result.failed.extend(failures(outcomes))
    result.written = sum(oc.value[0] for oc in outcomes if oc.value)
    result.skipped = sum(oc.value[1] for oc in outcomes if oc.value)
    result.skipped += sum(expected[oc.task.key] for oc in outcomes if oc.skipped)  # merged by an earlier run

