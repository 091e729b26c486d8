"""``rainset.import_dataset`` and ``rainset.export_dataset``: other layouts in and out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rainset.errors import ParameterError
from rainset.options import (
    PAIRED_IMPORT,
    ExportOptions,
    ImportOptions,
    RunOptions,
    merged,
    split_fields,
)
from rainset.pipelines._common import (
    Progress,
    Reporter,
    Result,
    check_test_scenes,
    dataset_counts,
    failures,
    planned,
    run_tasks,
)

#: The layouts :func:`import_dataset` reads: what ``source`` is for each.
LAYOUTS = {
    "paired": "(rain_dir, clean_dir): folders matched by key",
    "spa": "SPA-Data's list file (real_world.txt)",
    "gtrain": "GT-Rain's root folder",
    "basicsr": "(lq_dir, gt_dir): BasicSR's paired folders, rainy first",
    "rain100": "Rain100L/H or Rain200's root folder",
}


@dataclass
class ImportResult(Result):
    """What :func:`import_dataset` did: ``written`` pairs (and ``skipped``, already there),
    ``scenes`` the scene count, ``reason`` how the scenes were found (``paired``)."""

    scenes: int = 0
    reason: str = ""


def import_dataset(
    layout: str,
    source,
    out: str | os.PathLike,
    *,
    options: ImportOptions | None = None,
    run: RunOptions | None = None,
    root: str | os.PathLike | None = None,
    allow_duplicate_sources: bool = False,
    progress: Progress | None = None,
    **fields,
) -> ImportResult:
    """Bring a published dataset, or folders of rainy and clean images, into the rainset format.

    Parameters
    ----------
    layout : ``"paired"``, ``"spa"``, ``"gtrain"``, ``"basicsr"`` or ``"rain100"`` (see
        :data:`LAYOUTS` for what ``source`` is).
    source : a path, or a pair of paths (``paired``: rain_dir, clean_dir; ``basicsr``:
        lq_dir, gt_dir).
    out : the dataset folder (rerunning resumes).
    options : :class:`rainset.options.ImportOptions` (default for ``paired``:
        :data:`rainset.options.PAIRED_IMPORT`); its fields may be keywords instead
        (``image_format="png"``, ``split="test"``, ``key=r"(\\d+)"``).
    run : :class:`~rainset.options.RunOptions` (``paired`` only: workers, executor).
    root, allow_duplicate_sources : ``paired`` only: scene ids relative to ``root``; keep
        inputs whose contents another input already has.
    progress : called with an :class:`~rainset.pipelines.Event` per pair.
    """
    if layout not in LAYOUTS:
        raise ParameterError("layout", f"must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    given = split_fields(fields, ImportOptions, RunOptions)
    opts = merged(options or (PAIRED_IMPORT if layout == "paired" else ImportOptions()), given[0])
    run = merged(run or RunOptions, given[1])
    out = Path(out)
    report = Reporter("import", progress)
    result = ImportResult(out)
    if layout == "paired":
        _paired(source, out, opts, run, root, allow_duplicate_sources, result, report)
    else:
        if run.executor != "local" or run.workers != 1:
            raise ParameterError("workers", f"the {layout} layout imports in one process")
        _layout(layout, source, out, opts, result, report)
    report("done")
    result.counts = dataset_counts(out)
    return result


def _rule(opts: ImportOptions):
    from rainset.dataset import SplitRule

    if opts.split is not None:
        return SplitRule(test_fraction=1.0 if opts.split == "test" else 0.0)
    return SplitRule(test_scenes=opts.test_scenes, test_fraction=opts.test_fraction)


def _two(source, what: str) -> tuple[Path, Path]:
    try:
        a, b = source
    except (TypeError, ValueError):
        raise ParameterError("source", f"must be two folders ({what}), got {source!r}") from None
    return Path(a), Path(b)


def _layout(layout, source, out, opts: ImportOptions, result, report) -> None:
    from rainset.exchange import import_plans
    from rainset.importer import import_paired

    params: dict = {}
    if layout == "spa":
        from rainset.exchange.spa import read_spa

        list_file = Path(source)
        pairs, root, sources = read_spa(list_file), list_file.parent, [list_file.parent]
        params = {"list_file": list_file.name}
    elif layout == "gtrain":
        from rainset.exchange.gtrain import read_gtrain

        root = Path(source)
        pairs, sources = read_gtrain(root), [root]
    elif layout == "basicsr":
        from rainset.exchange.basicsr import read_basicsr

        lq_dir, gt_dir = _two(source, "lq_dir, gt_dir")
        meta = Path(opts.meta_info) if opts.meta_info is not None else None
        root = Path(os.path.commonpath([lq_dir.absolute(), gt_dir.absolute()]))
        sources = [lq_dir, gt_dir] + ([meta] if meta else [])
        pairs = read_basicsr(lq_dir, gt_dir, meta_info=meta)
        params = {"meta_info": meta.name if meta else None}
    else:
        from rainset.exchange.rain100 import read_rain100

        root = Path(source)
        pairs, sources = read_rain100(root), [root]
    if opts.meta_info is not None and layout != "basicsr":
        raise ParameterError("meta_info", "only used with the basicsr layout")
    scenes = sorted({p.scene for p in pairs})
    check_test_scenes(opts.test_scenes, scenes, root)
    result.scenes = len(scenes)
    if pairs.unmatched:
        shown = ", ".join(pairs.unmatched[:3]) + (" ..." if len(pairs.unmatched) > 3 else "")
        line = f"{len(pairs.unmatched)} image files match no pair and are not imported ({shown})"
        result.notes.append(line)
        report("note", message=line)
    plans = import_plans(pairs, root)
    report.start(len(plans))
    ids = import_paired(plans, out, split_rule=_rule(opts), image_format=opts.image_format, link=opts.link,
                        params={"layout": layout, **params}, sources=tuple((s, opts.note) for s in sources),
                        tool=f"rainset import {layout}")  # fmt: skip
    for sid in ids:
        result.written += 1
        report.item("written", sid)


def _paired(source, out, opts: ImportOptions, run, root, allow_duplicate_sources, result, report) -> None:
    from rainset.importer import check_headers, import_paired, plan_paired
    from rainset.inputs import check_outputs

    rain_dir, clean_dir = _two(source, "rain_dir, clean_dir")
    if opts.image_format == "keep" and (run.executor == "ray" or run.workers > 1):
        raise ParameterError("image_format", "`image_format` keep imports in one process (it only links)")
    if opts.meta_info is not None:
        raise ParameterError("meta_info", "only used with the basicsr layout")
    for line in check_outputs({"out": out}, [rain_dir, clean_dir]):
        result.notes.append(line)
        report("note", message=line)
    plans = plan_paired(rain_dir, clean_dir, key=opts.key, scene=opts.scene, scene_every=opts.scene_every,
                        root=root, exclude=[out])  # fmt: skip
    scenes = sorted({p.scene for p in plans})
    check_test_scenes(opts.test_scenes, scenes, rain_dir)
    result.scenes = len(scenes)
    check_headers(plans)  # an unreadable image fails the import before a line is written
    result.reason = plans.reason
    report("note", message=f"scenes: {plans.reason}")
    params = {"key": opts.key, "scene": opts.scene, "scene_every": opts.scene_every}
    sources = ((rain_dir, opts.note), (clean_dir, opts.note))
    rule = _rule(opts)
    if run.executor == "ray" or run.workers > 1:
        _paired_sharded(plans, out, rule, opts.image_format, params, sources, allow_duplicate_sources,
                        run, result, report)  # fmt: skip
        return
    report.start(len(plans))
    ids = import_paired(plans, out, split_rule=rule, image_format=opts.image_format, params=params,
                        sources=sources, allow_duplicate_sources=allow_duplicate_sources, link=opts.link)  # fmt: skip

    def drain() -> None:
        for sid in ids:
            result.written += 1
            report.item("written", sid)

    planned(drain)  # the sources are planned (and a scene-id clash found) as the import starts


def _paired_sharded(plans, out, rule, image_format, params, sources, allow_duplicate_sources, run, result,
                    report) -> None:
    """One task per scene on an executor, each writing a shard merged into ``out`` (scenes in
    order of their first pair)."""
    from rainset.dataset import SplitRule
    from rainset.executor import Task
    from rainset.inputs import plan_inputs
    from rainset.merge import Merger
    from rainset.tasks import import_shard

    scene_sources = list(getattr(plans, "sources", []))
    planned_sources = planned(lambda: plan_inputs(
        [path for _, path in scene_sources], out, ids=[sid for sid, _ in scene_sources],
        allow_duplicates=allow_duplicate_sources, checked=[path for path, _ in sources],
    ))  # fmt: skip
    sha = {s.scene: s.sha256 for s in planned_sources.sources}
    by_scene: dict[str, list] = {}
    for p in plans:
        by_scene.setdefault(p.scene, []).append(p)
    # Shards split by the hash alone: a shard need not hold the named test scenes.
    shard_rule = SplitRule(test_fraction=rule.test_fraction, salt=rule.salt)
    tasks = [
        Task(scene, scene, import_shard, (ps, [(sid, path) for sid, path in scene_sources if sid == scene],
                                          shard_rule, image_format, params), fingerprint=sha.get(scene, ""))
        for scene, ps in by_scene.items()
    ]  # fmt: skip
    identity = {"kind": "paired", "tool": "rainset import paired", "params": params,
                "image_format": image_format, "jpeg_quality": None if image_format == "png" else 95}  # fmt: skip
    with Merger(out, identity, rule) as merger:
        for path, what in sources:  # the input folders, hashed once here
            merger.writer.add_source(path, note=what)
        outcomes = run_tasks(tasks, merger, run, report)
    result.failed.extend(failures(outcomes))
    result.written = dataset_counts(out).get("samples", 0)


def export_dataset(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    to: str,
    options: ExportOptions | None = None,
    progress: Progress | None = None,
    **fields,
):
    """Write ``dataset`` in another trainer's layout (docs/exchange.md): ``to`` is
    ``"basicsr"``, ``"hf"``, ``"webdataset"``, ``"spa"`` or ``"gtrain"``.

    The images are hard-linked (or symlinked, or copied), never re-encoded unless the layout
    needs another format; a dataset that fails ``rainset.dataset.check`` is refused.
    ``options`` is :class:`rainset.options.ExportOptions` (or its fields as keywords:
    ``split="test"``, ``names="restormer"``, ``patch=256``). ``progress`` gets an ``item``
    event per sample (``scene``: the split being written).

    Returns
    -------
    rainset.exchange.ExportResult : ``counts`` (split -> samples written), ``files``,
        ``notes``, ``resumed``.
    """
    (given,) = split_fields(fields, ExportOptions)
    opts = merged(options or ExportOptions, given)
    from rainset.exchange import export

    report = Reporter("export", progress)
    state = {"split": 0}

    def each(done: int, total: int) -> None:
        if done == 1:  # each split's progress starts again at 1
            state["split"] += 1
            report.done = 0
            report.start(total)
        report.done = done
        report("written", message=f"split {state['split']}")

    result = export(dataset, out, to=to, split=opts.split, link=opts.link, names=opts.names,
                    shard_size=opts.shard_size, patch=opts.patch, stride=opts.stride,
                    progress=each if progress is not None else None)  # fmt: skip
    report("done")
    return result
