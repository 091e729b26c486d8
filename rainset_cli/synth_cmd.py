"""``rainset synth``: directional rain on clean photos, with labels, masks and low-pass tiers."""

from __future__ import annotations

from pathlib import Path

import click

from rainset_cli.common import (
    check_test_scenes,
    finite_floats,
    format_options,
    make_reviewer,
    out_path,
    progress,
    prompt_reviewer,
    review_mode,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options


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
    "[default: rainset-synth, or preview.png]",
)
@click.option(
    "--angles",
    default="0,15,30,40",
    show_default=True,
    help="Degrees from vertical; 15 means +-15, a signed entry (+15, -15) one side only.",
)
@click.option(
    "--radii",
    default="0.2,0.4,0.6,0.8,1.0",
    show_default=True,
    help="Gaussian blur radii (the paper's streak sizes), at 512 px image height.",
)
@click.option(
    "--density",
    "densities",
    default="light,medium,heavy",
    show_default=True,
    help="Density classes to draw from.",
)
@click.option(
    "--length",
    default="12,40",
    show_default=True,
    help="Streak length range MIN,MAX in px at 512 px image height.",
)
@click.option(
    "--brightness",
    default="0.45,0.85",
    show_default=True,
    help="Peak brightness range MIN,MAX of the near streaks (0..1).",
)
@click.option(
    "--layers",
    type=click.IntRange(1, 2),
    default=2,
    show_default=True,
    help="Depth layers: 2 adds far streaks (shorter, thinner, dimmer).",
)
@click.option("--blend", type=click.Choice(["add", "screen"]), default="add", show_default=True)
@click.option(
    "--per-image", type=click.IntRange(1), default=1, show_default=True, help="Variants per photo."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--mask-threshold",
    type=click.IntRange(1, 255),
    default=13,
    show_default=True,
    help="Rain mask: max over channels of (rainy - clean) >= this many levels.",
)
@click.option(
    "--tiers",
    type=click.Choice(["store", "lazy"]),
    default="store",
    show_default=True,
    help="Write the 3x3..9x9 low-pass tiers, or only record their filters.",
)
@click.option(
    "--tier-choice",
    type=click.Choice(["rule", "review", "all"]),
    default="rule",
    show_default=True,
    help="Pick one tier per photo by rule or by review, or keep all.",
)
@click.option(
    "--review",
    type=click.Choice(["prompt", "accept", "auto", "file"]),
    help="For --tier-choice review: who decides.  [default: prompt on a terminal]",
)
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Decisions file for --review file.",
)
@click.option("--open", "open_viewer", is_flag=True, help="Open each review sheet in a viewer.")
@click.option(
    "--semantic",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of label maps matched by file name (Cityscapes-style), copied along.",
)
@click.option(
    "--max-size", type=click.IntRange(8), help="Shrink photos so the longer side is at most this."
)
@click.option("--limit", type=click.IntRange(1), help="Use only the first N photos.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
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
    tier_choice,
    review,
    decisions,
    open_viewer,
    semantic,
    max_size,
    limit,
    workers,
    image_format,
    jpeg_quality,
    test_scenes,
    test_fraction,
    preview,
    executor="local",
    address=None,
    staging=None,
):
    """Turn clean photos into rainy/clean pairs with direction labels, rain maps, masks and
    low-pass ground-truth tiers (intensity-aware deraining dataset, rain-direction labels).

    CLEAN_DIR is searched recursively; without it, scikit-image's bundled CC0 / public-domain
    photos are used. Same seed, same bytes; an interrupted run resumes when rerun.
    """
    from rainset import synth as S
    from rainset.errors import ParameterError

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
    try:
        config = S.SynthConfig(
            angles=angle_set,
            radii=_floats(radii, "--radii"),
            densities=tuple(d.strip() for d in densities.split(",") if d.strip()),
            length=pair["--length"],
            brightness=pair["--brightness"],
            layers=layers,
            blend=blend,
            mask_threshold=mask_threshold,
        )
    except ParameterError:
        raise  # main names its option
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    from rainset.inputs import check_outputs

    if preview is not None:
        check_outputs({"out": out or Path("preview.png")}, [preview])
        _write_preview(preview, out or Path("preview.png"), config, seed, max_size)
        return
    out = out or Path("rainset-synth")
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file; the dataset needs a folder", param_hint="-o/--out")
    for line in check_outputs({"out": out}, [p for p in (clean_dir, semantic) if p is not None]):
        say(f"[yellow]note[/] {line}")
    photos = S.find_photos(clean_dir, exclude=[out]) if clean_dir else S.bundled_photos()
    photos = photos[:limit] if limit else photos
    options = S.SynthOptions(
        config=config,
        per_image=per_image,
        seed=seed,
        tiers=tiers,
        tier_choice=tier_choice,
        max_size=max_size,
    )
    from rainset.dataset import SplitRule

    named = tuple(s for s in test_scenes.split(",") if s)
    check_test_scenes(named, [p.key for p in photos], clean_dir or "the bundled photos")
    try:
        rule = SplitRule(test_scenes=named, test_fraction=test_fraction)
    except ParameterError:
        raise  # main names its option (--test-fraction, --test-scenes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--test-scenes") from None
    if tier_choice != "review" and (review or decisions):
        raise click.BadParameter("only used with --tier-choice review", param_hint="--review")
    S.check_photos(photos)  # an unreadable photo fails before a sheet or sample is written
    decided = None
    if tier_choice == "review":
        decided = dict(_review(S, photos, out, options, review, decisions, open_viewer))
    if executor == "ray":
        written, skipped = _synth_sharded(photos, out, options, rule, image_format, jpeg_quality, semantic,
                                          decided, workers=workers, address=address, staging=staging)
    else:
        events = S.synthesize(
            photos,
            out,
            options=options,
            workers=workers,
            split_rule=rule,
            image_format=image_format,
            jpeg_quality=jpeg_quality,
            semantic_dir=semantic,
            tier_decisions=decided,
        )
        total = sum(1 for p in photos if decided is None or decided.get(p.key)) * per_image
        written = skipped = 0
        for event in progress(events, total=total, desc="synth"):
            skipped += event.skipped
            written += not event.skipped
    dropped = f", {sum(v is None for v in decided.values())} photos rejected" if decided else ""
    say(f"{written} samples written, {skipped} already there{dropped}: {out}")
    if not written and not skipped:  # an empty dataset is an error, said in one line
        from rainset.errors import EmptyResultError

        raise EmptyResultError(
            f"the review rejected every photo ({len(photos)}), so the dataset {out} holds no sample."
        )


def _synth_sharded(photos, out, options, rule, image_format, jpeg_quality, semantic, decided, *, workers,
                   address, staging):
    """synth with one task per batch of photos on Ray, each writing a shard merged into
    ``out``; returns (written, skipped) and exits 1 listing the batches that failed."""
    from rainset.dataset import DatasetWriter
    from rainset.executor import Task
    from rainset.merge import Merger
    from rainset.tasks import SYNTH_BATCH, synth_params, synth_shard
    from rainset_cli.executor_opts import report_failures, run_tasks

    params = synth_params(options, semantic)
    DatasetWriter(out, kind="paired", params=params, split_rule=rule, image_format=image_format,
                  jpeg_quality=jpeg_quality, tool="rainset synth")  # the checks, before any task
    identity = {"kind": "paired", "tool": "rainset synth", "params": params, "image_format": image_format,
                "jpeg_quality": jpeg_quality if image_format == "jpg" else None}
    tasks, expected = [], {}
    for i in range(0, len(photos), SYNTH_BATCH):
        batch = photos[i : i + SYNTH_BATCH]
        sub = None if decided is None else {p.key: decided[p.key] for p in batch}
        label = batch[0].key + (f" .. {batch[-1].key}" if len(batch) > 1 else "")
        tasks.append(Task(f"photos{i:06d}-{batch[0].key}", label, synth_shard,
                          (batch, options, rule, image_format, jpeg_quality, semantic, sub),
                          fingerprint="|".join(p.key for p in batch)))  # fmt: skip
        expected[tasks[-1].key] = sum(1 for p in batch if sub is None or sub.get(p.key)) * options.per_image
    with Merger(out, identity, rule) as merger:
        outcomes = run_tasks(tasks, merger, executor="ray", workers=workers, address=address,
                             staging=staging, desc="synth")
    report_failures(outcomes, out)
    written = sum(oc.value[0] for oc in outcomes if oc.value)
    skipped = sum(oc.value[1] for oc in outcomes if oc.value)
    skipped += sum(expected[oc.task.key] for oc in outcomes if oc.skipped)  # merged by an earlier run
    return written, skipped


def _review(S, photos, out, options, review, decisions, open_viewer):
    review = review_mode(review, decisions)
    prompt = prompt_reviewer(
        _describe, open_viewer=open_viewer, more="[m]ore blur", reject="[r]eject photo",
        at_limit="No blurrier tier: {limit}. Accept or reject.",
    )
    reviewer = make_reviewer(review, prompt=prompt, decisions=decisions, auto_threshold=S.TIER_DETAIL_KEPT)
    return S.review_tiers(photos, out, reviewer, options=options)


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
