"""``rainset build-gt`` and ``rainset demo``: clean ground truth from real rain video."""

from __future__ import annotations

import re
from pathlib import Path

import click

from rainset.options import DENSITY, BuildOptions, ReviewOptions, RunOptions
from rainset_cli import cli_defaults
from rainset_cli.common import (
    FiniteFloat,
    console,
    err_console,
    format_options,
    out_path,
    prompt_reviewer,
    quiet,
    review_mode,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.inputs_opts import planned, scene_options
from rainset_cli.review_cmd import check_web_options, web_options, web_reviewer

_DENSITIES = tuple(DENSITY)
_B = BuildOptions  # the defaults


def _parse_start(value: str) -> tuple[float, bool]:
    """'120' -> frame 120; '4.5s' or '1:02.5' -> seconds."""
    v = value.strip()
    if re.fullmatch(r"\d+", v):
        return int(v), False
    m = re.fullmatch(r"(\d+(?:\.\d*)?)s", v)
    if m:
        return float(m.group(1)), True
    m = re.fullmatch(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)", v)
    if m:
        h, mnt, s = m.groups()
        # The leading field may be large (90:00 is 90 minutes); the ones after it are clock
        # fields: 1:99:99 is no time.
        if float(s) >= 60 or (h is not None and int(mnt) >= 60):
            raise click.BadParameter(
                f"{value!r} is not a time: minutes and seconds after the first field must be "
                "under 60 (1:02:05.5, 62:05.5)",
                param_hint="--start",
            )
        return int(h or 0) * 3600 + int(mnt) * 60 + float(s), True
    raise click.BadParameter(
        f"{value!r} is neither a frame index (120) nor a time (4.5s, 1:02.5)", param_hint="--start"
    )


def _parse_crop(value: str | None) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    parts = value.split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"expected x,y,w,h in pixels, got {value!r}", param_hint="--crop") from None
    if x < 0 or y < 0 or w < 8 or h < 8:
        raise click.BadParameter(f"expected x,y >= 0 and w,h >= 8, got {value!r}", param_hint="--crop")
    return x, y, w, h


def _parse_mask(value: str) -> tuple[int, str]:
    if value == "any":
        return _B.mask_threshold, "any"
    try:
        t = int(value)
    except ValueError:
        raise click.BadParameter(f"expected levels 1..255 or 'any', got {value!r}", param_hint="--mask-threshold") from None
    if not 1 <= t <= 255:
        raise click.BadParameter(f"expected levels 1..255 or 'any', got {value!r}", param_hint="--mask-threshold")
    return t, "threshold"


def _describe(c) -> str:
    from rainset.review import predicted_error

    return (
        f"\n[bold]{c.scene}[/] window {c.window}: clean image from [bold]{c.n_frames}[/] frames"
        + (f", residual-rain score {c.score:.2f} (predicted error {predicted_error(c.score):.2f} levels)"
           if c.score is not None else "")
        + (f", light drift {100 * c.info['drift']:.0f} %" if c.info.get("drift", 0) > 0.1 else "")
        + f"\npreview: {c.preview}"
    )


@click.command("build-gt")
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), callback=out_path,
              help="Output dataset folder.  [required unless --example]")
@click.option("--density", type=click.Choice(_DENSITIES), default=_B.density, show_default=True,
              help="Rain density: starts at 20/100/200 frames, grows by 10/20/50.")
@click.option("--frames", "n_frames", type=click.IntRange(2), default=_B.frames,
              help="Start with this many frames instead of the density's.")
@click.option("--max-frames", type=click.IntRange(2), default=_B.max_frames, show_default=True, help="Cap on frames per window.")
@click.option("--start", default=f"{_B.start:g}", show_default=True, help="First frame (120) or time (4.5s, 1:02.5).")
@click.option("--windows", type=click.IntRange(1), default=_B.windows, show_default=True, help="Clean images per video, from successive windows.")
@click.option("--every", type=FiniteFloat(min=0, min_open=True), default=_B.every,
              help="Start a window every SECONDS (instead of back to back).")
@click.option("--crop", default=_B.crop, help="Crop x,y,w,h (pixels) before estimating.")
@click.option("--select", type=click.Choice(["luma", "rgb"]), default=_B.select, show_default=True,
              help="Percentile vote on luma (the released notebook) or over all RGB channels.")
@click.option("--method", type=click.Choice(["spa", "robust", "anchored"]), default=_B.method, show_default=True,
              help="spa: the paper's percentile; robust: rain-rejecting mean (less noise); "
                   "anchored: mean of the samples near the SPA value (docs/groundtruth.md).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=RunOptions.device, show_default=True)
@click.option("--mask-threshold", default=str(_B.mask_threshold), show_default=True,
              help="Rain mask: levels (1..255) or 'any' (SPANet's code).")
@click.option("--write", type=click.Choice(["all", "clean"]), default=_B.write, show_default=True,
              help="all: rainy frames, masks and clean images; clean: clean images and previews only.")
@click.option("--masks/--no-masks", default=_B.masks, show_default=True,
              help="With --write all: write each rainy frame's rain mask (SPANet's trainer uses them; "
              "--no-masks: one PNG fewer per frame, masks recomputed from the pair when needed).")
@click.option("--review", type=click.Choice(["prompt", "web", "accept", "auto", "file"]), default=None,
              help="Who decides: terminal prompt (default on a terminal), the review page in a browser "
              "(docs/review.md), accept all, auto score, or a decisions file.")
@click.option("--decisions", type=click.Path(dir_okay=False, path_type=Path), default=ReviewOptions.decisions,
              help="Decisions file for --review file.")
@click.option("--auto-threshold", type=FiniteFloat(min=0), default=None,
              help="--review auto accepts at or under this residual-rain score (split-half disagreement in "
              "levels, weighted by N under a codec; 1.0 predicts an error of 0.31 levels without one).  "
              f"[default: {ReviewOptions.auto_threshold:g}]")
@click.option("--open", "open_viewer", is_flag=True, help="Open each preview sheet with the system viewer.")
@web_options
@click.option("--allow-motion", is_flag=True, default=_B.allow_motion, help="Estimate even when the camera moves (results blur).")
@click.option("--max-shift", type=FiniteFloat(min=0), default=_B.max_shift, show_default=True,
              help="Largest camera displacement (full-resolution px) of a frame against the window's first "
              "frame counted as static (the one static-camera policy, as pairs').")
@click.option("--stabilize", type=click.Choice(["translation", "similarity"]), is_flag=False, flag_value="translation",
              default=_B.stabilize, help="Register every frame of a window to its first before estimating, and crop to the "
              "area all cover (shaky footage; bare --stabilize: translation; similarity adds rotation and scale).")
@click.option("--workers", type=click.IntRange(1), default=RunOptions.workers, show_default=True,
              help="Inputs processed in parallel (batch review modes).")
@executor_options
@format_options("Rainy frames and clean images (masks: always PNG).")
@split_options("scene")
@click.option("--example", is_flag=True, help="Run on the bundled example clip (see `rainset demo`).")
@scene_options()
def build_gt(inputs, out, density, n_frames, max_frames, start, windows, every, crop, select, method, device,
             mask_threshold, write, masks, review, decisions, auto_threshold, open_viewer, host, port, allow_motion, max_shift,
             stabilize, workers, executor, address, staging, image_format, jpeg_quality, test_scenes,
             test_fraction, example, root, scene_name, allow_duplicate_sources):
    """Build clean ground truth from rain videos shot by a static camera (SPANet, CVPR 2019).

    Each INPUT (video file or frame folder) is one scene. Per window the clean image is each
    pixel's percentile p_hat, chosen by vote so it crosses most pixels' temporal-mode ranges;
    a reviewer accepts it, asks for more frames, or rejects the window.
    """
    if example:
        ctx = click.get_current_context()
        from click.core import ParameterSource

        given = [
            p for p in ctx.command.params
            if p.name not in ("example", "out") and p.expose_value
            and ctx.get_parameter_source(p.name) not in (ParameterSource.DEFAULT, None)
        ]
        if given:
            names = ", ".join(p.opts[-1] if isinstance(p, click.Option) else p.human_readable_name for p in given)
            raise click.UsageError(
                f"--example runs the bundled example with its own settings and takes only -o; "
                f"drop {names} (or run build-gt on {(out or cli_defaults.DEMO_OUT) / 'example.mp4'} after it)."
            )
        ctx.invoke(demo, out=out or cli_defaults.DEMO_OUT)
        return
    if not inputs:
        raise click.UsageError("give at least one video or frame folder (or --example).")
    if out is None:
        raise click.BadParameter("an output folder is required", param_hint="-o/--out")
    start_v, start_s = _parse_start(start)
    mask_t, mask_mode = _parse_mask(mask_threshold)
    review = review_mode(review, decisions)
    check_executor(executor, address, staging, review)
    if auto_threshold is not None and review != "auto":
        raise click.BadParameter("only used with --review auto", param_hint="--auto-threshold")
    if workers > 1 and review in ("prompt", "web"):
        raise click.BadParameter("--workers > 1 needs a batch review mode (accept, auto, file)", param_hint="--workers")
    check_web_options(review, host, port)
    opts = BuildOptions(
        density=density, frames=n_frames, max_frames=max_frames, start=start_v, start_seconds=start_s,
        windows=windows, every=every, crop=_parse_crop(crop), select=select, method=method,
        mask_threshold=mask_t, mask_mode=mask_mode, write=write, masks=masks, allow_motion=allow_motion,
        max_shift=max_shift, stabilize=stabilize,
    )  # fmt: skip
    if review == "prompt":
        review = prompt_reviewer(
            _describe, open_viewer=open_viewer, more="[m]ore frames", reject="[r]eject",
            at_limit="Cannot add frames: this window is already at {limit}. Accept or reject.",
        )  # fmt: skip
    kw = dict(device=device, workers=workers, image_format=image_format, jpeg_quality=jpeg_quality,
              test_scenes=tuple(s for s in test_scenes.split(",") if s), test_fraction=test_fraction, root=root,
              scene=scene_name, allow_duplicate_sources=allow_duplicate_sources)  # fmt: skip
    if review == "web":  # the page is served while the build runs (rainset_cli/review_cmd.py)
        with web_reviewer(host, port) as reviewer:
            return run_build(inputs, out, opts, review=reviewer, **kw)
    run_build(
        inputs, out, opts, review=review, decisions=decisions,
        auto_threshold=ReviewOptions.auto_threshold if auto_threshold is None else auto_threshold,
        executor=executor, address=address, staging=staging, **kw,
    )  # fmt: skip


def run_build(inputs, out, opts, *, review, source_note="", **kw):
    """:func:`rainset.build_gt` with the command line's progress lines and summary table.

    ``review`` is a mode or a reviewer callable (the terminal prompt, the web review);
    the other keywords are :func:`rainset.build_gt`'s. Exits 1 when some inputs failed.
    """
    import rainset
    from rainset.errors import EmptyResultError

    prompting = callable(review) and not isinstance(review, str)
    lines = {
        "frames": lambda ev, show: show.describe(f"{ev.scene} w{ev.window:02d}: estimating from {ev.count} frames"),
        "decision": lambda ev, show: ev.message == "reject" and say(f"{ev.scene} w{ev.window:02d}: rejected at N={ev.count}"),
        "written": lambda ev, show: say(f"{ev.scene} w{ev.window:02d}: accepted at N={ev.count}, written"),
        "failed": lambda ev, show: err_console.print(f"[red]skipped[/] {ev.scene}: {ev.message}"),
    }  # fmt: skip
    from rainset_cli.show import Show, report_failed

    with Show("build-gt", lines=lines, bar=not prompting) as show:  # a live bar would garble a prompt
        try:
            result = planned(lambda: rainset.build_gt(inputs, out, options=opts, review=review, note=source_note,
                                                      progress=show, **kw))
        except EmptyResultError as exc:  # every window rejected: the table, then the one line
            if getattr(exc, "result", None) is not None:
                _summary(exc.result.windows, out)
            raise
    _summary(result.windows, out)
    report_failed(result, out, merged=kw.get("executor") == "ray")
    return result


def _summary(windows, out: Path) -> None:
    from rich.table import Table

    if quiet():
        return
    table = Table("scene", "window", "frames", "decision", title=f"build-gt -> {out}")
    for r in windows:
        table.add_row(r.scene, f"w{r.window:02d}", str(r.n_frames), r.decision)
    console.print(table)


@click.command()
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=cli_defaults.DEMO_OUT,
              callback=out_path, show_default=True, help="Output folder (the clip, the dataset, the previews).")
@click.option("--frames", "n_frames", type=click.IntRange(10), default=cli_defaults.DEMO_FRAMES, show_default=True,
              help="Frames in the example clip.")
@click.option("--photo", default=cli_defaults.DEMO_PHOTO, show_default=True, help="scikit-image bundled photo to use as the clean scene.")
def demo(out: Path, n_frames: int, photo: str) -> None:
    """Build ground truth from a bundled example: a static rainy H.264 clip made offline from a
    scikit-image photo and rainset's own rain, then build-gt with --review accept, and PSNR of
    the result against the known clean photo."""
    from rainset.dataset import open_dataset
    from rainset.demo import example_photo, make_example_clip
    from rainset.metrics import psnr

    try:
        example_photo(photo)  # an unknown --photo is refused before anything is written
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--photo") from None
    opts = BuildOptions(density="sparse", frames=n_frames, max_frames=n_frames)
    dataset = out / "dataset"
    # A dataset of another demo run (other --frames or --photo) is refused now, before
    # example.mp4 (its source) is replaced.
    from rainset.pipelines.gt import open_outputs

    open_outputs(dataset, opts)
    try:
        clip, clean, note = make_example_clip(out / "example.mp4", n_frames=n_frames, photo=photo)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--photo") from None
    say(f"example clip: {clip} ({n_frames} frames, H.264)")
    run_build([clip], dataset, opts, review="accept", source_note=f"rainset demo: {note}, with synthetic rain")
    ds = open_dataset(dataset)
    first = next(ds.samples())  # the window's first frame: its clean image and rainy frame
    result, one = ds.load(first, "clean"), ds.load(first, "rainy")
    console.print(
        f"clean image: {ds.path(first['clean'])}  PSNR vs the true photo: [bold]{psnr(result, clean):.2f} dB[/] "
        f"(one rainy frame: {psnr(one, clean):.2f} dB)"
    )


build_gt.library_params = {"scene": "scene_name", "frames": "n_frames"}
commands = [build_gt, demo]
