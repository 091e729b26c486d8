"""``rainset validate``, ``rainset derain`` and ``rainset import paired``.

torch is imported inside the commands only, so ``rainset --help`` stays light.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from rainset.options import PAIRED_IMPORT, DerainOptions, ValidateOptions
from rainset_cli import cli_defaults
from rainset_cli.common import (
    FiniteFloat,
    RecordingGroup,
    console,
    err_console,
    out_path,
    quiet,
    require_dataset,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.inputs_opts import planned, scene_options


class _Progress:
    """Shows the library's progress events on stderr.

    On a terminal: a tqdm bar per stage (training, each evaluation, tiles, video frames). Off
    a terminal (a log file, CI): plain lines with the count, rate and ETA, at the first and
    last item of a stage, at every tenth of it and at least every ``every`` seconds.
    """

    UNITS = {"step": "step", "scored": "img", "tile": "tile", "frame": "frame", "written": "file"}

    def __init__(self, *, every: float = 30.0) -> None:
        self.quiet = quiet()
        self.tty = sys.stderr.isatty()
        self.every = every
        self.bars: dict = {}
        self.state: dict = {}  # stage -> (t0, done0, last print time, last tenth)

    def __call__(self, ev) -> None:
        if self.quiet:
            return
        if ev.kind == "note":
            say(f"[yellow]note[/] {ev.message}" if "inside the input" in ev.message else ev.message)
            return
        if ev.kind == "done":
            self.close()
            return
        if ev.kind == "start":  # a stage starts: its rate counts from now
            if ev.pipeline == "derain":
                key = ("written",)
            else:
                key = ("step" if ev.scene == "train" else "scored", ev.scene)
            self.state[key] = (time.monotonic(), ev.done, 0.0, -1, ev.done)
            return
        unit = self.UNITS.get(ev.kind)
        if unit is None:
            return
        key = (ev.kind,) if ev.kind == "written" else (ev.kind, ev.scene)
        if ev.done == 0:  # nothing done yet: the stage (an image's tiles) starts now
            self.state[key] = (time.monotonic(), 0, 0.0, -1, 0)
            return
        label = self._label(ev)
        if self.tty:
            self._bar(key, label, ev, unit)
        else:
            self._line(key, label, ev, unit)

    @staticmethod
    def _label(ev) -> str:
        if ev.kind == "step":
            return "train"
        if ev.kind == "scored":
            return f"eval {ev.scene}"
        if ev.kind == "tile":
            return f"tiles {ev.scene}"
        if ev.kind == "frame":
            return ev.scene
        return "derain"

    def _bar(self, key, label, ev, unit) -> None:
        from tqdm import tqdm

        bar = self.bars.get(key)
        if bar is None or ev.done <= bar.n:
            if bar is not None:
                bar.close()
            start = max(0, ev.done - 1)
            bar = tqdm(total=ev.total, initial=start, desc=label, unit=unit, leave=False)
            self.bars[key] = bar
        bar.update(ev.done - bar.n)
        loss = ev.info.get("loss")
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{ev.info.get('images_per_s') or 0:.1f}")
        if ev.total is not None and ev.done >= ev.total:
            bar.close()
            del self.bars[key]

    def _line(self, key, label, ev, unit) -> None:
        now = time.monotonic()
        t0, done0, last, tenth, seen = self.state.get(key, (None, 0, 0.0, -1, 0))
        if t0 is None or ev.done <= seen:  # a new run of this stage without a start event
            t0, done0, last, tenth = now, max(0, ev.done - 1), 0.0, -1
            # (when no start event came, the first item's own time is unknown)
        cur_tenth = (10 * ev.done) // ev.total if ev.total else -1
        first = ev.done == done0 + 1
        final = ev.total is not None and ev.done >= ev.total
        if first or final or cur_tenth > tenth or now - last >= self.every:
            rate = (ev.done - done0) / (now - t0) if now > t0 else 0.0
            parts = [f"{label} {ev.done}/{ev.total if ev.total is not None else '?'}"]
            if ev.total:
                parts[0] += f" ({100 * ev.done // ev.total} %)"
            if rate > 0:
                parts.append(f"{rate:.2f} {unit}/s" if rate >= 0.1 else f"{1 / rate:.1f} s/{unit}")
                if ev.total and not final:
                    parts.append(f"ETA {_duration((ev.total - ev.done) / rate)}")
            parts.append(f"elapsed {_duration(now - t0)}")
            loss = ev.info.get("loss")
            if loss is not None:
                parts.append(f"loss {loss:.4f}")
            say("  ".join(parts))
            last = now
            tenth = max(tenth, cur_tenth)
        self.state[key] = (t0, done0, last, tenth, ev.done)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


_V = ValidateOptions
_D = DerainOptions


@click.command()
@click.argument(
    "dataset",
    required=False,
    default=cli_defaults.DATASET_HERE,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--out",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=out_path,
    help="Run folder: checkpoint, logs, report.md, report.json.",
)
@click.option(
    "--train",
    "model_name",
    type=click.Choice(["spanet"]),
    default=_V.model,
    show_default=True,
    help="Reference model to train.",
)
@click.option(
    "--preset",
    type=click.Choice(["quick", "paper", "released"]),
    default=_V.preset,
    show_default=True,
    help="quick: minutes on a GPU, 64x64 patches on a CPU; paper: Sec. 4.2 schedule.",
)
@click.option("--iters", type=int, default=_V.iters, help="Override the preset's steps.")
@click.option("--batch", type=int, default=_V.batch, help="Override the preset's batch (global).")
@click.option(
    "--lr",
    type=FiniteFloat(min=0, min_open=True),
    default=_V.lr,
    help="Override the preset's learning rate.",
)
@click.option("--crop", type=int, default=_V.crop, help="Override the preset's patch size.")
@click.option("--device", default=_V.device, show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=_V.seed, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=_V.threads, help="torch CPU threads.")
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=_V.workers,
    help="Data-loader processes (default 0 on a CPU, 4 on a GPU).",
)
@click.option(
    "--irnn",
    type=click.Choice(["auto", "loop", "sweep", "scan", "numba"]),
    default=_V.irnn,
    show_default=True,
    help="IRNN implementation (all compute the same thing; numba: CPU inference only).",
)
@click.option("--no-amp", is_flag=True, help="Train in float32 on a GPU (default: bf16 autocast).")
@click.option(
    "--mask-threshold",
    type=int,
    default=_V.mask_threshold,
    help="Rain-mask threshold (8-bit levels) for samples without a stored mask.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option(
    "--objective",
    type=click.Choice(["paired", "timelapse"]),
    default=_V.objective,
    help="paired: SPANet's loss against the clean image; timelapse: the time-lapse losses on "
    "frame pairs (no clean images). Default: timelapse for a time-lapse dataset, else paired.",
)
@click.option(
    "--direction-loss",
    is_flag=True,
    help="Add the rain-direction loss (weight 1.2) for a synth dataset's rain maps and labels.",
)
@click.option(
    "--eval-on",
    "eval_on",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also evaluate on another dataset's test split (repeatable).",
)
@click.option(
    "--eval-max",
    type=int,
    default=_V.eval_max,
    help="Evaluate at most this many images per scene, evenly spaced (default: all).",
)
@click.option(
    "--eval-crop",
    type=int,
    default=_V.eval_crop,
    help="Evaluate on centre crops of this size (pixels, >= 16; default: whole images).",
)
@click.option(
    "--save-outputs",
    is_flag=True,
    help="Write each evaluated output to OUT/outputs/<evaluation>/<id>.png (for `rainset "
    "evaluate`).",
)
@click.option(
    "--tile",
    type=int,
    default=_V.tile,
    show_default=True,
    help="Evaluate larger images in tiles of this size.",
)
@click.option(
    "--examples",
    type=click.IntRange(0),
    default=_V.examples,
    show_default=True,
    help="Test images shown in the report's example grid.",
)
def validate(dataset, run_dir, model_name, no_amp, **options):
    """Train a reference derainer on DATASET's train split and report on its test split.

    DATASET defaults to the current folder. Run under torchrun for several GPUs (DDP).
    """
    require_dataset(dataset)
    from rainset.train import validate as run

    options["eval_on"] = tuple(options["eval_on"])
    show = _Progress()
    try:
        result = run(dataset, run_dir, model=model_name, amp=not no_amp, progress=show, **options)
    except KeyboardInterrupt as exc:  # the library's note names `resume`; a user types --resume
        from rainset_cli.main import with_flags

        raise KeyboardInterrupt(with_flags(str(exc), click.get_current_context().command)) from None
    finally:
        show.close()
    if result.report == {}:  # a DDP rank other than 0
        return
    for title, summary in result.evaluations.items():
        m, b = summary["model"], summary["baseline"]
        console.print(
            f"{title}: SPANet PSNR {m['psnr_rgb']:.2f} dB / SSIM {m['ssim_rgb']:.4f}  vs  "
            f"identity {b['psnr_rgb']:.2f} dB / {b['ssim_rgb']:.4f}  (RGB; Y: "
            f"{m['psnr_y']:.2f} vs {b['psnr_y']:.2f} dB)"
        )
    console.print(
        f"training {result.train_seconds:.0f} s, evaluation {result.eval_seconds:.0f} s"
    )
    if result.too_short:
        from rainset.train.report import too_short_note
        from rainset_cli.main import with_flags

        note = with_flags(too_short_note(result.report["trend"]), click.get_current_context().command)
        err_console.print(f"[yellow]{note}[/]", highlight=False)
    for title, folder in result.outputs.items():
        console.print(f"outputs of {title}: {folder}")
    console.print(f"report: {run_dir / 'report.md'}")


validate.library_params = {
    "out": "run_dir",
    "model": "model_name",
    "amp": "no_amp",
}


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=out_path,
    help="Output folder.",
)
@click.option("--device", default=_D.device, show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--tile",
    type=int,
    default=_D.tile,
    show_default=True,
    help="Process larger images in tiles of this size.",
)
@click.option("--overlap", type=int, default=_D.overlap, show_default=True, help="Tile overlap (pixels).")
@click.option("--crf", type=click.IntRange(0, 51), default=_D.crf, show_default=True,
              help="x264 quality for videos (0 lossless .. 51).")
def derain(checkpoint, inputs, out, **options):
    """Apply a trained SPANet (a run folder or model.safetensors) to images, folders or videos.

    Images become OUT/<name>.png, folders OUT/<folder>/..., videos OUT/<name>.mp4.
    """
    from rainset.train import derain_files

    show = _Progress()
    try:
        result = derain_files(checkpoint, list(inputs), out, progress=show, **options)
    finally:
        show.close()
    step = result.step
    console.print(
        f"{len(result.written)} input(s) derained into {out}"
        + (f" (model at step {step})" if step else "")
    )


@click.group("import", cls=RecordingGroup)
def import_group():
    """Bring existing datasets into the rainset format."""


@import_group.command("paired")
@click.argument("rain_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("clean_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=out_path,
    help="Dataset folder to write (rerun to resume).",
)
@click.option(
    "--key",
    default=None,
    help="Regex for the pairing key, searched in each file's relative path without "
    "suffix (group 1 or the match). Default: folders + the name's last number.",
)
@click.option(
    "--scene", default=None, help="Regex for the scene, searched in the rainy file's relative path."
)
@click.option(
    "--scene-every",
    type=int,
    default=None,
    help="Scenes are consecutive chunks of this many frames (one sequence).",
)
@split_options("scene")
@click.option(
    "--format", "image_format", type=click.Choice(["png", "jpg", "keep"]), default=PAIRED_IMPORT.image_format,
    show_default=True,
    help="Image format written; keep: every file as it is (linked or copied, see --link).",
)
@click.option(
    "--link", type=click.Choice(["symlink", "hardlink", "copy"]), default=None,
    help="With --format keep: how files get in. Default: hard links where possible, else copies.",
)
@click.option(
    "--note",
    default=PAIRED_IMPORT.note,
    help="Licence / provenance note recorded with the sources.",
)
@scene_options(scene=False)
@executor_options(workers=True)
def import_paired_cmd(
    rain_dir,
    clean_dir,
    out,
    key,
    scene,
    scene_every,
    test_scenes,
    test_fraction,
    image_format,
    note,
    root,
    allow_duplicate_sources,
    link=None,
    executor="local",
    address=None,
    staging=None,
    workers=1,
):
    """Import a folder of rainy images and a folder of clean images as a paired dataset.

    Files pair up by key (Rain100L's rain-001.png / norain-001.png, NTURain's 00001.jpg);
    several rainy files may share one clean image.
    """
    import rainset
    from rainset.errors import ParameterError
    from rainset_cli.show import Show, report_failed

    check_executor(executor, address, staging)
    lines = {"note": lambda ev, show: say(("" if ev.message.startswith("scenes: ") else "[yellow]note[/] ")
                                          + ev.message)}  # fmt: skip
    with Show("import", lines=lines) as show:
        try:
            result = planned(lambda: rainset.import_dataset(
                "paired", (rain_dir, clean_dir), out, key=key, scene=scene, scene_every=scene_every,
                test_scenes=test_scenes, test_fraction=test_fraction, image_format=image_format, link=link,
                note=note, root=root, allow_duplicate_sources=allow_duplicate_sources, executor=executor,
                workers=workers, address=address, staging=staging, progress=show,
            ))  # fmt: skip
        except ParameterError:
            raise  # named by its option in main
        except ValueError as exc:  # the key or scene pattern
            raise click.BadParameter(str(exc), param_hint="--key/--scene") from None
    report_failed(result, out, merged=True)
    per = result.counts["per_split"]
    console.print(
        f"{out}: {result.counts['samples']} pairs in {result.scenes} scenes "
        f"(train {per['train']}, test {per['test']})"
    )
    if not per["test"]:
        err_console.print(
            "warning: the test split is empty; `rainset validate` needs --test-scenes."
        )


def _add_layout_commands() -> None:
    # import spa|gtrain|basicsr|rain100: published layouts by their own rules (import_layouts).
    from rainset_cli.import_layouts import layout_commands

    for command in layout_commands:
        import_group.add_command(command)


_add_layout_commands()
commands = [validate, derain, import_group]
