"""``rainset build-gt`` and ``rainset demo``: clean ground truth from real rain video."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from rainset.motion import MotionPolicy
from rainset_cli.common import (
    FiniteFloat,
    check_test_scenes,
    console,
    err_console,
    format_options,
    make_reviewer,
    out_path,
    prompt_reviewer,
    quiet,
    review_mode,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.inputs_opts import planned, scene_options

_DENSITIES = ("sparse", "normal", "dense")


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
        return 13, "any"
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
@click.option("--density", type=click.Choice(_DENSITIES), default="normal", show_default=True,
              help="Rain density: starts at 20/100/200 frames, grows by 10/20/50.")
@click.option("--frames", "n_frames", type=click.IntRange(2), help="Start with this many frames instead of the density's.")
@click.option("--max-frames", type=click.IntRange(2), default=300, show_default=True, help="Cap on frames per window.")
@click.option("--start", default="0", show_default=True, help="First frame (120) or time (4.5s, 1:02.5).")
@click.option("--windows", type=click.IntRange(1), default=1, show_default=True, help="Clean images per video, from successive windows.")
@click.option("--every", type=FiniteFloat(min=0, min_open=True), help="Start a window every SECONDS (instead of back to back).")
@click.option("--crop", help="Crop x,y,w,h (pixels) before estimating.")
@click.option("--select", type=click.Choice(["luma", "rgb"]), default="luma", show_default=True,
              help="Percentile vote on luma (the released notebook) or over all RGB channels.")
@click.option("--method", type=click.Choice(["spa", "robust", "anchored"]), default="spa", show_default=True,
              help="spa: the paper's percentile; robust: rain-rejecting mean (less noise); "
                   "anchored: mean of the samples near the SPA value (docs/groundtruth.md).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--mask-threshold", default="13", show_default=True, help="Rain mask: levels (1..255) or 'any' (SPANet's code).")
@click.option("--write", type=click.Choice(["all", "clean"]), default="all", show_default=True,
              help="all: rainy frames, masks and clean images; clean: clean images and previews only.")
@click.option("--review", type=click.Choice(["prompt", "accept", "auto", "file"]),
              help="Who decides: terminal prompt (default on a terminal), accept all, auto score, or a decisions file.")
@click.option("--decisions", type=click.Path(dir_okay=False, path_type=Path), help="Decisions file for --review file.")
@click.option("--auto-threshold", type=FiniteFloat(min=0), default=None,
              help="--review auto accepts at or under this residual-rain score (mean split-half disagreement, levels; 1.0 predicts an error of 0.31 levels).  [default: 1.0]")
@click.option("--open", "open_viewer", is_flag=True, help="Open each preview sheet with the system viewer.")
@click.option("--allow-motion", is_flag=True, help="Estimate even when the camera moves (results blur).")
@click.option("--max-shift", type=FiniteFloat(min=0), default=MotionPolicy.max_shift, show_default=True,
              help="Largest camera displacement (full-resolution px) of a frame against the window's first "
              "frame counted as static (the one static-camera policy, as pairs').")
@click.option("--stabilize", type=click.Choice(["translation", "similarity"]), is_flag=False, flag_value="translation",
              default=None, help="Register every frame of a window to its first before estimating, and crop to the "
              "area all cover (shaky footage; bare --stabilize: translation; similarity adds rotation and scale).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Inputs processed in parallel (batch review modes).")
@executor_options
@format_options("Rainy frames and clean images (masks: always PNG).")
@split_options("scene")
@click.option("--example", is_flag=True, help="Run on the bundled example clip (see `rainset demo`).")
@scene_options()
def build_gt(inputs, out, density, n_frames, max_frames, start, windows, every, crop, select, method, device,
             mask_threshold, write, review, decisions, auto_threshold, open_viewer, allow_motion, max_shift,
             stabilize, workers, executor, address, staging, image_format, jpeg_quality, test_scenes,
             test_fraction, example, root, scene_name, allow_duplicate_sources):
    """Build clean ground truth from rain videos shot by a static camera (SPANet, CVPR 2019).

    Each INPUT (video file or frame folder) is one scene. Per window the clean image is each
    pixel's percentile p_hat, chosen by vote so it crosses most pixels' temporal-mode ranges;
    a reviewer accepts it, asks for more frames, or rejects the window.
    """
    from rainset.buildgt import AUTO_THRESHOLD, BuildOptions
    from rainset.errors import ParameterError

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
                f"drop {names} (or run build-gt on {(out or Path('rainset-demo')) / 'example.mp4'} after it)."
            )
        ctx.invoke(demo, out=out or Path("rainset-demo"))
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
    if workers > 1 and review == "prompt":
        raise click.BadParameter("--workers > 1 needs a batch review mode (accept, auto, file)", param_hint="--workers")
    try:
        opts = BuildOptions(
            density=density, frames=n_frames, max_frames=max_frames, start=start_v, start_seconds=start_s,
            windows=windows, every=every, crop=_parse_crop(crop), select=select, method=method,
            mask_threshold=mask_t, mask_mode=mask_mode, write=write, allow_motion=allow_motion,
            max_shift=max_shift, score=(review == "auto"), stabilize=stabilize,
        )
    except ParameterError:
        raise  # main names its option
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from rainset.groundtruth import check_device

    check_device(device)  # before anything is written
    run_build(
        inputs, out, opts, review=review, decisions=decisions,
        auto_threshold=AUTO_THRESHOLD if auto_threshold is None else auto_threshold,
        open_viewer=open_viewer, device=device, workers=workers, image_format=image_format,
        jpeg_quality=jpeg_quality, test_scenes=tuple(s for s in test_scenes.split(",") if s),
        test_fraction=test_fraction, root=root, scene=scene_name,
        allow_duplicate_sources=allow_duplicate_sources, executor=executor, address=address, staging=staging,
    )


def run_build(inputs, out, opts, *, review, decisions=None, auto_threshold=0.5, open_viewer=False,
              device="cpu", workers=1, image_format="png", jpeg_quality=95, test_scenes=(), test_fraction=0.2,
              source_note="", root=None, scene=None, allow_duplicate_sources=False, executor="local",
              address=None, staging=None):
    """Run build-gt over several inputs and print a summary; returns the summary rows."""
    from rainset.inputs import plan_inputs

    prompt = prompt_reviewer(
        _describe, open_viewer=open_viewer, more="[m]ore frames", reject="[r]eject",
        at_limit="Cannot add frames: this window is already at {limit}. Accept or reject.",
    )
    reviewer = make_reviewer(review, prompt=prompt, decisions=decisions, auto_threshold=auto_threshold)
    plan = planned(lambda: plan_inputs(inputs, out, root=root, scene=scene,
                                       allow_duplicates=allow_duplicate_sources))
    for line in plan.notes:
        say(f"[yellow]note[/] {line}")
    jobs = [(s.path, s.scene, s.sha256) for s in plan.sources]
    scenes = [s.scene for s in plan.sources]
    check_test_scenes(test_scenes, scenes, inputs[0] if len(inputs) == 1 else f"the {len(inputs)} inputs")
    if executor == "ray":
        return _run_build_sharded(jobs, out, opts, reviewer, device=device, workers=workers, address=address,
                                  staging=staging, image_format=image_format, jpeg_quality=jpeg_quality,
                                  test_scenes=test_scenes, test_fraction=test_fraction, source_note=source_note)
    writer, review_log = open_outputs(out, opts, image_format=image_format, jpeg_quality=jpeg_quality,
                                      test_scenes=test_scenes, test_fraction=test_fraction)
    rows: list[dict] = []
    failures: list[str] = []
    with writer:
        if workers > 1 and len(jobs) > 1:
            from rainset.buildgt import build_parallel

            events = build_parallel(jobs, writer, review_log, reviewer, opts,
                                    device=device, workers=workers, source_note=source_note)
            _consume(events, rows, failures)
        else:
            from rainset.buildgt import build_scene
            from rainset.errors import InputError

            for src, scene, sha in jobs:
                try:
                    _consume(build_scene(src, writer, review_log, reviewer, opts, scene=scene,
                                         device=device, source_note=source_note, source_sha256=sha),
                             rows, failures,
                             bar_ok=review != "prompt")  # a live bar would garble the prompt
                except InputError as exc:
                    if len(jobs) == 1:
                        raise
                    failures.append(str(exc))
                    err_console.print(f"[red]skipped[/] {scene}: {exc}")
    _summary(rows, out)
    if failures:
        err_console.print(f"{len(failures)} input(s) failed; the others were written to {out}.")
        sys.exit(1)
    from rainset.buildgt import require_samples

    require_samples(writer, review_log)  # an empty dataset is an error, said in one line
    return rows


def _run_build_sharded(jobs, out, opts, reviewer, *, device, workers, address, staging, image_format,
                       jpeg_quality, test_scenes, test_fraction, source_note):
    """build-gt with one task per input on an executor (rainset.executor), each writing a
    shard merged into ``out`` as it finishes."""
    from rainset.buildgt import require_samples
    from rainset.executor import Task
    from rainset.merge import Merger
    from rainset.review import ReviewLog
    from rainset.tasks import buildgt_shard
    from rainset_cli.executor_opts import report_failures, run_tasks

    writer, review_log = open_outputs(out, opts, image_format=image_format, jpeg_quality=jpeg_quality,
                                      test_scenes=test_scenes, test_fraction=test_fraction)  # the checks
    identity = {"kind": writer.kind, "tool": writer.tool, "params": writer.params,
                "image_format": image_format, "jpeg_quality": jpeg_quality if image_format == "jpg" else None}
    writer_args = {"split_rule": writer.split_rule, "image_format": image_format, "jpeg_quality": jpeg_quality}
    tasks = [
        Task(scene, str(src), buildgt_shard, fingerprint=sha, args=(
            str(src), scene, sha, opts, reviewer,
            {k: d for k, d in review_log.decisions.items() if d.get("scene") == scene},
            writer_args, device, source_note,
        ))  # fmt: skip
        for src, scene, sha in jobs
    ]
    rows: list[dict] = []
    # The merger is the output's one writer: it holds the folder's lock for the whole run.
    with Merger(out, identity, writer_args["split_rule"]) as merger:
        outcomes = run_tasks(tasks, merger, executor="ray", workers=workers, address=address,
                             staging=staging, desc="build-gt")
        for oc in outcomes:
            _consume(oc.value or [], rows, [], bar_ok=False)
    _summary(rows, out)
    report_failures(outcomes, out)
    require_samples(merger.writer, ReviewLog(out / "review.json", params=opts.params()))
    return rows


def open_outputs(out, opts, *, image_format="png", jpeg_quality=95, test_scenes=(), test_fraction=0.2):
    """The dataset writer and review log of a build-gt run into ``out``.

    Both refuse here a folder that holds another dataset or review; neither changes anything
    on disk until the first write, so calling this is also the check before a run.
    """
    from rainset.dataset import DatasetWriter, SplitRule
    from rainset.review import ReviewLog

    params = opts.params()
    review_log = ReviewLog(out / "review.json", params=params)
    writer = DatasetWriter(
        out, kind="clean" if opts.write == "clean" else "paired", params=params,
        split_rule=SplitRule(test_scenes=test_scenes, test_fraction=test_fraction),
        image_format=image_format, jpeg_quality=jpeg_quality, tool="rainset build-gt",
    )
    return writer, review_log


def _consume(events, rows, failures, *, bar_ok=True):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True,
                  disable=quiet() or not bar_ok or not sys.stderr.isatty()) as bar:
        task = bar.add_task("build-gt", total=None)
        for ev in events:
            if ev.kind == "note":
                say(f"[yellow]note[/] {ev.scene}: {ev.message}")
            elif ev.kind == "frames":
                bar.update(task, description=f"{ev.scene} w{ev.window:02d}: estimating from {ev.count} frames")
            elif ev.kind == "decision":
                rows.append({"scene": ev.scene, "window": ev.window, "n": ev.count, "decision": ev.message})
                if ev.message == "reject":
                    say(f"{ev.scene} w{ev.window:02d}: rejected at N={ev.count}")
            elif ev.kind == "written":
                say(f"{ev.scene} w{ev.window:02d}: accepted at N={ev.count}, written")
            elif ev.kind == "failed":
                failures.append(ev.message)
                err_console.print(f"[red]skipped[/] {ev.scene}: {ev.message}")


def _summary(rows, out: Path) -> None:
    from rich.table import Table

    final: dict[tuple, dict] = {}
    for r in rows:
        final[(r["scene"], r["window"])] = r
    if quiet():
        return
    table = Table("scene", "window", "frames", "decision", title=f"build-gt -> {out}")
    for (scene, w), r in sorted(final.items()):
        table.add_row(scene, f"w{w:02d}", str(r["n"]), r["decision"])
    console.print(table)


@click.command()
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("rainset-demo"),
              callback=out_path, show_default=True, help="Output folder (the clip, the dataset, the previews).")
@click.option("--frames", "n_frames", type=click.IntRange(10), default=60, show_default=True, help="Frames in the example clip.")
@click.option("--photo", default="coffee", show_default=True, help="scikit-image bundled photo to use as the clean scene.")
def demo(out: Path, n_frames: int, photo: str) -> None:
    """Build ground truth from a bundled example: a static rainy H.264 clip made offline from a
    scikit-image photo and rainset's own rain, then build-gt with --review accept, and PSNR of
    the result against the known clean photo."""
    from rainset.buildgt import BuildOptions
    from rainset.demo import example_photo, make_example_clip
    from rainset.image import read_image
    from rainset.metrics import psnr

    try:
        example_photo(photo)  # an unknown --photo is refused before anything is written
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--photo") from None
    opts = BuildOptions(density="sparse", frames=n_frames, max_frames=n_frames)
    dataset = out / "dataset"
    # A dataset of another demo run (other --frames or --photo) is refused now, before
    # example.mp4 (its source) is replaced.
    open_outputs(dataset, opts)
    try:
        clip, clean, note = make_example_clip(out / "example.mp4", n_frames=n_frames, photo=photo)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--photo") from None
    say(f"example clip: {clip} ({n_frames} frames, H.264)")
    run_build([clip], dataset, opts, review="accept", source_note=f"rainset demo: {note}, with synthetic rain")
    result = read_image(next((dataset / "clean").rglob("*.png")))
    one = read_image(next((dataset / "rain").rglob("*.png")))
    console.print(
        f"clean image: {dataset / 'clean'}  PSNR vs the true photo: [bold]{psnr(result, clean):.2f} dB[/] "
        f"(one rainy frame: {psnr(one, clean):.2f} dB)"
    )


build_gt.library_params = {"scene": "scene_name"}
commands = [build_gt, demo]
