"""``rainset pairs``: static segments of rainy footage, N frames each, and frame pairs."""

from __future__ import annotations

from pathlib import Path

import click

from rainset_cli.common import console, format_options, progress, say, split_options

# Defaults as literals so that `rainset --help` does not import OpenCV and PyAV; they equal
# rainset.timelapse.StaticConfig's and rainset.pairs.PairsOptions' (tests/test_pairs_cli.py
# checks that they stay equal).
DEFAULTS = {
    "n_frames": 30, "seed": 0, "select": "even", "max_shift": 2.0, "max_cut": 0.3,
    "max_illumination": 0.10, "max_foreground": 0.3, "foreground_level": 20, "analysis_size": 320,
}  # fmt: skip


@click.command("pairs")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
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
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS["max_shift"],
    show_default=True,
    help="Camera shift (full-resolution px) allowed between frames of a segment.",
)
@click.option(
    "--max-cut",
    type=click.FloatRange(0, 2, min_open=True),
    default=DEFAULTS["max_cut"],
    show_default=True,
    help="Cut score (1 - NCC of consecutive frames) that ends a shot.",
)
@click.option(
    "--max-illumination",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULTS["max_illumination"],
    show_default=True,
    help="Relative change of mean luma that ends a segment.",
)
@click.option(
    "--max-foreground",
    type=click.FloatRange(0, 1, min_open=True),
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
@format_options("Frame image format.")
@split_options("scene id")
@click.option("--note", default="", help="Licence / provenance note recorded with each source.")
def pairs(input_path: Path, out: Path, n_frames: int, pairs_per_segment: int | None, seed: int,
          select: str, pseudo_gt: bool, no_masks: bool, max_shift: float, max_cut: float,
          max_illumination: float, max_foreground: float, foreground_level: int,
          analysis_size: int, image_format: str, jpeg_quality: int, test_scenes: str,
          test_fraction: float, note: str) -> None:  # fmt: skip
    """Find the static stretches of rainy footage and write N frames of each plus frame pairs.

    INPUT is a video, a folder of frames, or a folder whose entries (videos and sub-folders of
    frames) are scenes. Every frame is scored (camera shift, cut, light change, moving
    foreground); stretches where the camera is still, with no cut and steady light, of at
    least N frames, are kept. OUT gets a timelapse dataset (frames, foreground masks,
    pairs.jsonl), stats/<scene>.csv with every score, sheets/*.png and report.md saying why
    each stretch was kept or rejected.
    """
    from rainset.dataset import SplitRule
    from rainset.pairs import PairsOptions, build_pairs, find_scenes
    from rainset.timelapse import StaticConfig

    scenes = find_scenes(input_path)
    named = [s.strip() for s in test_scenes.split(",") if s.strip()]
    unknown = sorted(set(named) - {sid for sid, _ in scenes})
    if unknown:
        raise click.BadParameter(
            f"no scene {', '.join(unknown)} in {input_path} (scenes: "
            f"{', '.join(sid for sid, _ in scenes[:10])}{' ...' if len(scenes) > 10 else ''})",
            param_hint="--test-scenes",
        )
    config = StaticConfig(
        max_shift=max_shift, max_cut=max_cut, max_illumination=max_illumination,
        max_foreground=max_foreground, foreground_level=foreground_level, size=analysis_size,
    )  # fmt: skip
    options = PairsOptions(
        n_frames=n_frames, pairs_per_segment=pairs_per_segment, seed=seed, select=select,
        masks=not no_masks, pseudo_gt=pseudo_gt, static=config,
    )  # fmt: skip
    rule = SplitRule(test_scenes=tuple(named), test_fraction=test_fraction)
    say(f"{len(scenes)} scene(s) in {input_path}")
    results = list(
        progress(
            build_pairs(input_path, out, options=options, split_rule=rule,
                        image_format=image_format, jpeg_quality=jpeg_quality, note=note,
                        scenes=scenes),
            total=len(scenes), desc="scenes",
        )
    )  # fmt: skip
    _summary(results, out)


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


commands = [pairs]
