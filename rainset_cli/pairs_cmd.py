"""``rainset pairs``: static segments of rainy footage, N frames each, and frame pairs."""

from __future__ import annotations

from pathlib import Path

import click

from rainset.options import PairsOptions, SceneOptions, StaticConfig
from rainset_cli.common import (
    FiniteFloat,
    console,
    format_options,
    out_path,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.inputs_opts import planned, scene_options

# The defaults are the library's (rainset.options imports nothing heavy, so `rainset --help`
# stays fast); tests/test_cli_defaults.py checks every one.
_P, _S = PairsOptions, StaticConfig
DEFAULTS = {
    "n_frames": _P.n_frames, "seed": _P.seed, "select": _P.select, "max_shift": _S.max_shift,
    "max_cut": _S.max_cut, "max_illumination": _S.max_illumination, "max_foreground": _S.max_foreground,
    "foreground_level": _S.foreground_level, "analysis_size": _S.size,
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
    default=_P.pairs_per_segment,
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
    default=_S.stabilize,
    help="Keep shaky stretches: register each segment's frames to its first and crop to the "
    "area all cover (bare --stabilize: translation; similarity adds rotation and scale).",
)
@format_options("Frame image format.")
@split_options("scene id")
@click.option("--note", default=SceneOptions.note, help="Licence / provenance note recorded with each source.")
@scene_options()
@executor_options(workers=True)
def pairs(input_path: Path, out: Path, n_frames: int, pairs_per_segment: int | None, seed: int,
          select: str, pseudo_gt: bool, no_masks: bool, max_shift: float, max_cut: float,
          max_illumination: float, max_foreground: float, foreground_level: int,
          analysis_size: int, stabilize: str | None, image_format: str, jpeg_quality: int, test_scenes: str,
          test_fraction: float, note: str, root: Path | None, scene_name: str | None,
          allow_duplicate_sources: bool, executor: str, address: str | None, staging: Path | None,
          workers: int) -> None:  # fmt: skip
    """Find the static stretches of rainy footage and write N frames of each plus frame pairs.

    INPUT is a video, a folder of frames, or a folder whose entries (videos and sub-folders of
    frames) are scenes. Every frame is scored (camera shift, cut, light change, moving
    foreground); stretches where the camera is still, with no cut and steady light, of at
    least N frames, are kept. OUT gets a timelapse dataset (frames, foreground masks,
    pairs.jsonl), stats/<scene>.csv with every score, sheets/*.png and report.md saying why
    each stretch was kept or rejected.
    """
    import rainset

    check_executor(executor, address, staging)
    config = StaticConfig(
        max_shift=max_shift, max_cut=max_cut, max_illumination=max_illumination,
        max_foreground=max_foreground, foreground_level=foreground_level, size=analysis_size,
        stabilize=stabilize,
    )  # fmt: skip
    options = PairsOptions(
        n_frames=n_frames, pairs_per_segment=pairs_per_segment, seed=seed, select=select,
        masks=not no_masks, pseudo_gt=pseudo_gt, static=config,
    )  # fmt: skip
    from rainset_cli.show import Show, report_failed

    lines = {"start": lambda ev, show: say(f"{ev.total} scene(s) in {input_path}")}
    from rainset.errors import EmptyResultError

    with Show("scenes", lines=lines) as show:
        try:
            result = planned(lambda: rainset.find_pairs(
                input_path, out, options=options, image_format=image_format, jpeg_quality=jpeg_quality,
                test_scenes=test_scenes, test_fraction=test_fraction, note=note, root=root, scene=scene_name,
                allow_duplicate_sources=allow_duplicate_sources, executor=executor, workers=workers,
                address=address, staging=staging, progress=show,
            ))  # fmt: skip
        except EmptyResultError as exc:  # no static stretch anywhere: the table, then the one line
            if getattr(exc, "result", None) is not None:
                _summary(exc.result, out)
            raise
    _summary(result, out)
    report_failed(result, out, merged=True)


def _summary(result, out: Path) -> None:
    """The per-scene table of a :class:`rainset.pipelines.PairsResult`, and its totals."""
    from rich.table import Table

    table = Table("scene", "frames", "kept segments", "rejected", "frames out", "pairs",
                  title=f"rainset pairs -> {out}")  # fmt: skip
    for r in result.scenes:
        kept = ", ".join(f"{s.start}-{s.stop - 1}" for s in r.segments) or "-"
        rej = ", ".join(f"{x.start}-{x.stop - 1} {x.reason}" for x in r.rejections) or "-"
        table.add_row(r.scene, str(r.n_frames), kept, rej,
                      str(sum(len(v) for v in r.frames.values())), str(sum(r.pairs.values())))  # fmt: skip
    console.print(table)
    console.print(f"{result.segments} static segment(s), {result.pairs} pair(s); report: {out / 'report.md'}")


pairs.library_params = {"scene": "scene_name", "size": "analysis_size", "masks": "no_masks"}
commands = [pairs]
