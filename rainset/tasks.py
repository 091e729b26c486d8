"""One input of a pipeline written as one shard: the task functions of :mod:`rainset.executor`.

Each function takes the shard folder first, then what the pipeline needs for one input, and
writes a finished rainset dataset there with the same options (and so the same identity) as
the run's output, so that :mod:`rainset.merge` can join it. They run in other processes and
on other machines: arguments are plain data, options dataclasses and picklable reviewers.
"""

from __future__ import annotations

import time
from pathlib import Path

from rainset.lock import LEASE_S, REFRESH_S, FolderLock, LockedError


def _wait_for_lock(open_writer):
    """``open_writer()``, waiting out the lease of a holder that died on another machine (a
    retried task can land on another host than the attempt it replaces)."""
    deadline = time.monotonic() + LEASE_S + 2 * REFRESH_S
    while True:
        try:
            return open_writer()
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def buildgt_shard(shard, source, scene, sha256, opts, reviewer, decisions, writer_args, device, note):
    """build-gt on one input (a video or frame folder) into the shard folder ``shard``.

    Parameters
    ----------
    decisions : review decisions already known for this scene (the output's, for a resumed
        run or a replayed review); recorded in the shard's ``review.json`` with the new ones.
    writer_args : ``split_rule``, ``image_format``, ``jpeg_quality`` of the output.

    Returns
    -------
    events : list of :class:`rainset.buildgt.Event` (decisions, notes), for the driver's log.
    """
    from rainset.buildgt import build_scene
    from rainset.dataset import DatasetWriter, layout
    from rainset.review import ReviewLog

    shard = Path(shard)
    params = opts.params()

    def open_writer():
        return DatasetWriter(
            shard, kind="clean" if opts.write == "clean" else "paired", params=params,
            tool="rainset build-gt", **writer_args,
        )  # fmt: skip

    writer = _wait_for_lock(open_writer)
    events = []
    with writer:
        log = ReviewLog(layout.review_path(shard), params=params)
        for key, d in decisions.items():
            log.decisions.setdefault(key, d)
        for ev in build_scene(source, writer, log, reviewer, opts, scene=scene, device=device,
                              source_note=note, source_sha256=sha256):  # fmt: skip
            if ev.kind in ("note", "decision", "written"):
                events.append(ev)
        if log.decisions and not log.path.exists():
            log.save()  # replayed answers only: the shard still carries them
    return events


def pairs_shard(shard, source, options, split_rule, image_format, jpeg_quality, note):
    """pairs on one scene (a :class:`rainset.inputs.SceneSource`) into the shard folder.

    Returns
    -------
    result : the scene's :class:`rainset.pairs.SceneResult` as JSON (``to_json``).
    """
    from rainset.inputs import SourcePlan
    from rainset.pairs import build_pairs

    shard = Path(shard)
    # A dead attempt's lock on the shard (another host) is waited out before the writer opens.
    _wait_for_lock(lambda: _check_lock(shard))
    (result,) = build_pairs(
        source.path, shard, options=options, split_rule=split_rule, image_format=image_format,
        jpeg_quality=jpeg_quality, note=note, scenes=SourcePlan([source]),
    )  # fmt: skip
    return result.to_json()


def _check_lock(folder: Path) -> None:
    FolderLock(folder).check()


#: Photos per synth task: enough work to outweigh a task's start, few enough to spread.
SYNTH_BATCH = 8


def synth_params(options, semantic_dir) -> dict:
    """The ``params`` synth records (:func:`rainset.synth.synthesize` writes the same)."""
    return {**options.to_json(), "semantic": semantic_dir is not None}


def synth_shard(shard, photos, options, split_rule, image_format, jpeg_quality, semantic_dir, tier_decisions):
    """synth on one batch of photos into the shard folder.

    Returns
    -------
    (written, skipped) : samples written now and found already written.
    """
    from rainset.synth import synthesize

    shard = Path(shard)
    _wait_for_lock(lambda: _check_lock(shard))
    written = skipped = 0
    for ev in synthesize(
        photos, shard, options=options, split_rule=split_rule, image_format=image_format,
        jpeg_quality=jpeg_quality, semantic_dir=semantic_dir, tier_decisions=tier_decisions,
    ):  # fmt: skip
        skipped += ev.skipped
        written += not ev.skipped
    return written, skipped


def import_shard(shard, plans, scene_sources, split_rule, image_format, params):
    """import paired on one scene's pairs (``plans``, a list of
    :class:`rainset.importer.PairPlan`) into the shard folder; the input folders themselves are
    recorded (and hashed once) by the driver.

    Returns
    -------
    n : pairs in the shard.
    """
    from rainset.importer import PairedPlan, import_paired

    shard = Path(shard)
    _wait_for_lock(lambda: _check_lock(shard))
    sub = PairedPlan(plans)
    sub.sources = list(scene_sources)
    return sum(1 for _ in import_paired(sub, shard, split_rule=split_rule, image_format=image_format,
                                         params=params))  # fmt: skip
