"""``rainset synth``: directional rain on clean photos, with labels, masks and low-pass tiers."""

from __future__ import annotations

from pathlib import Path

import click

from rainset.options import RunOptions, SynthConfig, SynthOptions, format_angles, format_numbers
from rainset_cli import cli_defaults
from rainset_cli.common import (
    finite_floats,
    format_options,
    out_path,
    prompt_reviewer,
    review_mode,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.review_cmd import check_web_options, web_options, web_reviewer

_C, _O = SynthConfig, SynthOptions  # the defaults


def _floats(value: str, option: str) -> tuple[float, ...]:
    return finite_floats(value, option)


def _describe(c) -> str:
    return (
        f"\n[bold]{c.scene}[/]: low-pass tier [bold]{c.info['tier']}[/], keeps "
        f"{100 * c.score:.0f} % of the fine detail. Does it show the main content but not "
        f"the details?\nsheet: {c.preview}"
    )


@click.command("synth")
@click.argument(
    "clean_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    callback=out_path,
    help="Output dataset folder (with --preview: the sheet's PNG file).  "
    f"[default: {cli_defaults.SYNTH_OUT}, or {cli_defaults.PREVIEW_OUT}]",
)
@click.option(
    "--angles",
    default=format_angles(_C.angles),
    show_default=True,
    help="Degrees from vertical; 15 means +-15, a signed entry (+15, -15) one side only.",
)
@click.option(
    "--radii",
    default=format_numbers(_C.radii),
    show_default=True,
    help="Gaussian blur radii (the paper's streak sizes), at 512 px image height.",
)
@click.option(
    "--density",
    "densities",
    default=",".join(_C.densities),
    show_default=True,
    help="Density classes to draw from.",
)
@click.option(
    "--length",
    default=",".join(f"{v:g}" for v in _C.length),
    show_default=True,
    help="Streak length range MIN,MAX in px at 512 px image height.",
)
@click.option(
    "--brightness",
    default=",".join(f"{v:g}" for v in _C.brightness),
    show_default=True,
    help="Peak brightness range MIN,MAX of the near streaks (0..1).",
)
@click.option(
    "--layers",
    type=click.IntRange(1, 2),
    default=_C.layers,
    show_default=True,
    help="Depth layers: 2 adds far streaks (shorter, thinner, dimmer).",
)
@click.option("--blend", type=click.Choice(["add", "screen"]), default=_C.blend, show_default=True)
@click.option(
    "--per-image", type=click.IntRange(1), default=_O.per_image, show_default=True, help="Variants per photo."
)
@click.option("--seed", type=int, default=_O.seed, show_default=True)
@click.option(
    "--mask-threshold",
    type=click.IntRange(1, 255),
    default=_C.mask_threshold,
    show_default=True,
    help="Rain mask: max over channels of (rainy - clean) >= this many levels.",
)
@click.option(
    "--tiers",
    type=click.Choice(["store", "lazy"]),
    default=_O.tiers,
    show_default=True,
    help="Write the 3x3..9x9 low-pass tiers, or only record their filters (lazy: the fast choice, "
    "four images fewer per photo).",
)
@click.option(
    "--residual/--no-residual",
    default=_O.residual,
    show_default=True,
    help="Write each sample's exact residual rainy - clean (--no-residual: one image fewer per sample).",
)
@click.option(
    "--tier-choice",
    type=click.Choice(["rule", "review", "all"]),
    default=_O.tier_choice,
    show_default=True,
    help="Pick one tier per photo by rule or by review, or keep all.",
)
@click.option(
    "--review",
    type=click.Choice(["prompt", "web", "accept", "auto", "file"]),
    help="For --tier-choice review: who decides (web: the review page, all four tiers side by side).  "
    "[default: prompt on a terminal]",
)
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Decisions file for --review file.",
)
@click.option("--open", "open_viewer", is_flag=True, help="Open each review sheet in a viewer.")
@web_options
@click.option(
    "--semantic",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of label maps matched by file name (Cityscapes-style), copied along.",
)
@click.option(
    "--max-size", type=click.IntRange(8), default=_O.max_size, help="Shrink photos so the longer side is at most this."
)
@click.option("--limit", type=click.IntRange(1), help="Use only the first N photos.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=RunOptions.workers,
    show_default=True,
    help="Processes; the output does not depend on it.",
)
@format_options("Rainy, clean and tier images (masks, maps: always PNG).")
@split_options("photo path")
@click.option(
    "--preview",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Only write a contact sheet of the angle x radius grid on this image.",
)
@executor_options
def synth(
    clean_dir,
    out,
    angles,
    radii,
    densities,
    length,
    brightness,
    layers,
    blend,
    per_image,
    seed,
    mask_threshold,
    tiers,
    residual,
    tier_choice,
    review,
    decisions,
    open_viewer,
    host,
    port,
    semantic,
    max_size,
    limit,
    workers,
    image_format,
    jpeg_quality,
    test_scenes,
    test_fraction,
    preview,
    executor,
    address,
    staging,
):
    """Turn clean photos into rainy/clean pairs with direction labels, rain maps, masks and
    low-pass ground-truth tiers (intensity-aware deraining dataset, rain-direction labels).

    CLEAN_DIR is searched recursively; without it, scikit-image's bundled CC0 / public-domain
    photos are used. Same seed, same bytes; an interrupted run resumes when rerun.
    """
    import rainset
    from rainset import synth as S

    check_executor(executor, address, staging, (review or "prompt") if tier_choice == "review" else None)
    try:
        angle_set = S.parse_angles(angles)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--angles") from None
    pair = {
        "--length": _floats(length, "--length"),
        "--brightness": _floats(brightness, "--brightness"),
    }
    for name, v in pair.items():
        if len(v) != 2:
            raise click.BadParameter(f"expected MIN,MAX, got {v}", param_hint=name)
    config = SynthConfig(
        angles=angle_set,
        radii=_floats(radii, "--radii"),
        densities=tuple(d.strip() for d in densities.split(",") if d.strip()),
        length=pair["--length"],
        brightness=pair["--brightness"],
        layers=layers,
        blend=blend,
        mask_threshold=mask_threshold,
    )
    from rainset.inputs import check_outputs

    if preview is not None:
        sheet = out or cli_defaults.PREVIEW_OUT
        check_outputs({"out": sheet}, [preview])
        _write_preview(preview, sheet, config, seed, max_size)
        return
    out = out or cli_defaults.SYNTH_OUT
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file; the dataset needs a folder", param_hint="-o/--out")
    if tier_choice != "review" and (review or decisions):
        raise click.BadParameter("only used with --tier-choice review", param_hint="--review")
    options = SynthOptions(config=config, per_image=per_image, seed=seed, tiers=tiers, tier_choice=tier_choice,
                           max_size=max_size, residual=residual)  # fmt: skip
    reviewer = "accept"
    if tier_choice == "review":
        reviewer = review_mode(review, decisions)
        if reviewer == "prompt":
            reviewer = prompt_reviewer(
                _describe, open_viewer=open_viewer, more="[m]ore blur", reject="[r]eject photo",
                at_limit="No blurrier tier: {limit}. Accept or reject.",
            )  # fmt: skip
    from rainset.errors import EmptyResultError
    from rainset_cli.show import Show, report_failed

    def summary(result) -> None:
        dropped = f", {len(result.refused)} photos rejected" if tier_choice == "review" else ""
        say(f"{result.written} samples written, {result.skipped} already there{dropped}: {out}")

    from contextlib import ExitStack

    page = ExitStack()
    check_web_options(reviewer if isinstance(reviewer, str) else "prompt", host, port)
    if reviewer == "web":  # the page shows each photo's four tiers (rainset_cli/review_cmd.py)
        reviewer = page.enter_context(web_reviewer(host, port, tiers=True))
    with page, Show("synth", bar=not callable(reviewer)) as show:
        try:
            result = rainset.synthesize(
                clean_dir, out, options=options, image_format=image_format, jpeg_quality=jpeg_quality,
                test_scenes=test_scenes, test_fraction=test_fraction, semantic=semantic, limit=limit,
                review=reviewer, decisions=decisions, executor=executor, workers=workers, address=address,
                staging=staging, progress=show,
            )  # fmt: skip
        except EmptyResultError as exc:  # the review rejected every photo: the count, then the line
            if getattr(exc, "result", None) is not None:
                summary(exc.result)
            raise
    report_failed(result, out, merged=True)
    summary(result)


def _write_preview(image: Path, out: Path, config, seed: int, max_size: int | None) -> None:
    from rainset import synth as S
    from rainset.image import write_image

    if out.suffix.lower() != ".png":
        raise click.BadParameter(
            f"the preview sheet is a PNG file, got {out}", param_hint="-o/--out"
        )
    img = S.load_photo(image, max_size=max_size)
    sheet = S.preview_sheet(img, angles=config.angles, radii=config.radii, config=config, seed=seed)
    write_image(out, sheet)
    say(
        f"preview: {out} (rows: angles {', '.join(f'{a:+g}' for a in config.angles)}; "
        f"columns: radius {', '.join(f'{r:g}' for r in config.radii)})"
    )


commands = [synth]
