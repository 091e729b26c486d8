"""``rainset pairs``: static segments of rainy footage, N frames each, and frame pairs."""

from __future__ import annotations

from pathlib import Path

import click

from rainset.motion import MotionPolicy
from rainset_cli.common import (
    FiniteFloat,
    check_test_scenes,
    console,
    format_options,
    out_path,
    progress,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.inputs_opts import planned, scene_options

# Defaults as literals so that `rainset --help` does not import OpenCV and PyAV; they equal
# rainset.timelapse.StaticConfig's and rainset.pairs.PairsOptions' (tests/test_pairs_cli.py
# checks that they stay equal). The static-camera ones come from the one policy
# (rainset.motion, which imports nothing heavy), shared with build-gt.
DEFAULTS = {
    "n_frames": 30, "seed": 0, "select": "even", "max_shift": MotionPolicy.max_shift, "max_cut": 0.3,
    "max_illumination": MotionPolicy.max_drift, "max_foreground": 0.3, "foreground_level": 20,
    "analysis_size": MotionPolicy.size,
}  # fmt: skip


@click.command("pairs")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=out_path,
    help="Output dataset folder (rerun the same command to resume).",
)
@click.option(
    "-n",
    "--frames",
    "n_frames",
    type=click.IntRange(2),
    default=DEFAULTS["n_frames"],
    show_default=True,
    help="Frames kept per static segment; also its shortest length.",
)
@click.option(
    "--pairs-per-scene",
    "--pairs-per-segment",
    "pairs_per_segment",
    type=click.IntRange(1),
    default=None,
    help="Pairs drawn per segment (a segment is one of the paper's sequences).  "
    "[default: all C(N, 2)]",
)
@click.option(
    "--seed", type=int, default=DEFAULTS["seed"], show_default=True, help="Seed of the pair draw."
)
@click.option(
    "--select",
    type=click.Choice(["even", "consistent"]),
    default=DEFAULTS["select"],
    show_default=True,
    help="even: spread over the segment; consistent: per bin, the frame closest to "
    "the segment's temporal median.",
)
@click.option(
    "--pseudo-gt",
    is_flag=True,
    help="Also write each segment's clean image (build-gt's percentile estimator).",
)
@click.option("--no-masks", is_flag=True, help="Do not write foreground masks.")
@click.option(
    "--max-shift",
    type=FiniteFloat(min=0, min_open=True),
    default=DEFAULTS["max_shift"],
    show_default=True,
    help="Largest camera displacement (full-resolution px) of a frame against the segment's "
    "first frame (the one static-camera policy, as build-gt's).",
)
@click.option(
    "--max-cut",
    type=FiniteFloat(0, 2, min_open=True),
    default=DEFAULTS["max_cut"],
    show_default=True,
    help="Cut score (1 - NCC of consecutive frames) that ends a shot.",
)
@click.option(
    "--max-illumination",
    type=FiniteFloat(min=0, min_open=True),
    default=DEFAULTS["max_illumination"],
    show_default=True,
    help="Relative change of mean luma that ends a segment.",
)
@click.option(
    "--max-foreground",
    type=FiniteFloat(0, 1, min_open=True),
    default=DEFAULTS["max_foreground"],
    show_default=True,
    help="Fraction of moving-foreground pixels above which a frame is dropped.",
)
@click.option(
    "--foreground-level",
    type=click.IntRange(1, 255),
    default=DEFAULTS["foreground_level"],
    show_default=True,
    help="Luma difference (levels) that counts as foreground.",
)
@click.option(
    "--analysis-size",
    type=click.IntRange(32),
    default=DEFAULTS["analysis_size"],
    show_default=True,
    help="Longest side of the downscaled analysis image (pixels).",
)
@click.option(
    "--stabilize",
    type=click.Choice(["translation", "similarity"]),
    is_flag=False,
    flag_value="translation",
    default=None,
    help="Keep shaky stretches: register each segment's frames to its first and crop to the "
    "area all cover (bare --stabilize: translation; similarity adds rotation and scale).",
)
@format_options("Frame image format.")
@split_options("scene id")
@click.option("--note", default="", help="Licence / provenance note recorded with each source.")
@scene_options()
@executor_options(workers=True)
def pairs(input_path: Path, out: Path, n_frames: int, pairs_per_segment: int | None, seed: int,
          select: str, pseudo_gt: bool, no_masks: bool, max_shift: float, max_cut: float,
          max_illumination: float, max_foreground: float, foreground_level: int,
          analysis_size: int, stabilize: str | None, image_format: str, jpeg_quality: int, test_scenes: str,
          test_fraction: float, note: str, root: Path | None, scene_name: str | None,
          allow_duplicate_sources: bool, executor: str = "local", address: str | None = None,
          staging: Path | None = None, workers: int = 1) -> None:  # fmt: skip
    """Find the static stretches of rainy footage and write N frames of each plus frame pairs.

    INPUT is a video, a folder of frames, or a folder whose entries (videos and sub-folders of
    frames) are scenes. Every frame is scored (camera shift, cut, light change, moving
    foreground); stretches where the camera is still, with no cut and steady light, of at
    least N frames, are kept. OUT gets a timelapse dataset (frames, foreground masks,
    pairs.jsonl), stats/<scene>.csv with every score, sheets/*.png and report.md saying why
    each stretch was kept or rejected.
    """
    from rainset.dataset import SplitRule
    from rainset.pairs import PairsOptions, build_pairs, check_sources, plan_scenes
    from rainset.timelapse import StaticConfig

    check_executor(executor, address, staging)
    scenes = planned(lambda: plan_scenes(
        input_path, out, root=root, scene=scene_name, allow_duplicate_sources=allow_duplicate_sources,
    ))  # fmt: skip
    for line in scenes.notes:
        say(f"[yellow]note[/] {line}")
    named = [s.strip() for s in test_scenes.split(",") if s.strip()]
    check_test_scenes(named, [s.scene for s in scenes.sources], input_path)
    config = StaticConfig(
        max_shift=max_shift, max_cut=max_cut, max_illumination=max_illumination,
        max_foreground=max_foreground, foreground_level=foreground_level, size=analysis_size,
        stabilize=stabilize,
    )  # fmt: skip
    options = PairsOptions(
        n_frames=n_frames, pairs_per_segment=pairs_per_segment, seed=seed, select=select,
        masks=not no_masks, pseudo_gt=pseudo_gt, static=config,
    )  # fmt: skip
    rule = SplitRule(test_scenes=tuple(named), test_fraction=test_fraction)
    check_sources(scenes, out)  # every input is opened before a line is printed or written
    say(f"{len(scenes.sources)} scene(s) in {input_path}")
    if executor == "ray" or workers > 1:
        results = _pairs_sharded(scenes, out, options, rule, image_format, jpeg_quality, note, input_path,
                                 executor=executor, workers=workers, address=address, staging=staging)
        _summary(results, out)
        from rainset.pairs import require_frames

        require_frames(results, out)
        return
    results = list(
        progress(
            build_pairs(input_path, out, options=options, split_rule=rule,
                        image_format=image_format, jpeg_quality=jpeg_quality, note=note,
                        scenes=scenes),
            total=len(scenes.sources), desc="scenes",
        )
    )  # fmt: skip
    _summary(results, out)
    from rainset.pairs import require_frames

    require_frames(results, out)  # an empty dataset is an error, said in one line


def _pairs_sharded(scenes, out, options, rule, image_format, jpeg_quality, note, input_path, *, executor,
                   workers, address, staging):
    """pairs with one task per scene on an executor, each writing a shard merged into ``out``;
    report.md is written for the whole run once the shards are merged. Exits 1 listing the
    scenes that failed."""
    import json

    from rainset.dataset import DatasetWriter
    from rainset.executor import Task
    from rainset.merge import Merger
    from rainset.pairs import SceneResult, write_report
    from rainset.tasks import pairs_shard
    from rainset_cli.executor_opts import report_failures, run_tasks

    writer = DatasetWriter(out, kind="timelapse", params=options.params(), split_rule=rule,
                           image_format=image_format, jpeg_quality=jpeg_quality, tool="rainset pairs")  # the checks
    identity = {"kind": "timelapse", "tool": writer.tool, "params": writer.params, "image_format": image_format,
                "jpeg_quality": jpeg_quality if image_format == "jpg" else None}
    tasks = [Task(s.scene, str(s.path), pairs_shard, (s, options, rule, image_format, jpeg_quality, note),
                  fingerprint=s.sha256) for s in scenes.sources]  # fmt: skip
    with Merger(out, identity, rule) as merger:
        outcomes = run_tasks(tasks, merger, executor=executor, workers=workers, address=address,
                             staging=staging, desc="pairs")
    results = []
    for oc in outcomes:
        done = out / "scenes" / f"{oc.task.key}.json"
        if oc.error is None and done.is_file():
            results.append(SceneResult.from_json(json.loads(done.read_text(encoding="utf-8"))))
    write_report(out, results, options, str(input_path))
    report_failures(outcomes, out)
    return results


def _summary(results, out: Path) -> None:
    from rich.table import Table

    table = Table("scene", "frames", "kept segments", "rejected", "frames out", "pairs",
                  title=f"rainset pairs -> {out}")  # fmt: skip
    for r in results:
        kept = ", ".join(f"{s.start}-{s.stop - 1}" for s in r.segments) or "-"
        rej = ", ".join(f"{x.start}-{x.stop - 1} {x.reason}" for x in r.rejections) or "-"
        table.add_row(r.scene, str(r.n_frames), kept, rej,
                      str(sum(len(v) for v in r.frames.values())), str(sum(r.pairs.values())))  # fmt: skip
    console.print(table)
    n_seg = sum(len(r.segments) for r in results)
    n_pairs = sum(sum(r.pairs.values()) for r in results)
    console.print(f"{n_seg} static segment(s), {n_pairs} pair(s); report: {out / 'report.md'}")


pairs.library_params = {"scene": "scene_name"}
commands = [pairs]
