"""``rainset validate``, ``rainset derain`` and ``rainset import paired``.

torch is imported inside the commands only, so ``rainset --help`` stays light.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from rainset_cli.common import (
    FiniteFloat,
    RecordingGroup,
    check_test_scenes,
    console,
    err_console,
    out_path,
    progress,
    quiet,
    say,
    split_options,
)
from rainset_cli.executor_opts import check_executor, executor_options
from rainset_cli.inputs_opts import planned, scene_options


def _bar(iterable, *, total: int, desc: str, initial: int = 0):
    """A tqdm bar on stderr with loss and speed; periodic lines when stderr is no terminal."""
    from tqdm import tqdm

    if quiet():
        yield from iterable
        return
    if not sys.stderr.isatty():
        every = max(1, total // 20)
        for rec in iterable:
            if rec["step"] % every == 0 or rec["step"] == total:
                say(
                    f"{desc} step {rec['step']}/{total}  loss {rec['loss']:.4f}  "
                    f"{rec['images_per_s'] or 0:.1f} img/s"
                )
            yield rec
        return
    with tqdm(total=total, initial=initial, desc=desc, unit="step", leave=False) as bar:
        for rec in iterable:
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s'] or 0:.1f}")
            yield rec


def _csv(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


@click.command()
@click.argument(
    "dataset",
    required=False,
    default=".",
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
    default="spanet",
    show_default=True,
    help="Reference model to train.",
)
@click.option(
    "--preset",
    type=click.Choice(["quick", "paper", "released"]),
    default="quick",
    show_default=True,
    help="quick: minutes on a GPU, 64x64 patches on a CPU; paper: Sec. 4.2 schedule.",
)
@click.option("--iters", type=int, default=None, help="Override the preset's steps.")
@click.option("--batch", type=int, default=None, help="Override the preset's batch (global).")
@click.option(
    "--lr",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Override the preset's learning rate.",
)
@click.option("--crop", type=int, default=None, help="Override the preset's patch size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="torch CPU threads.")
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Data-loader processes (default 0 on a CPU, 4 on a GPU).",
)
@click.option(
    "--irnn",
    type=click.Choice(["auto", "loop", "sweep", "scan"]),
    default="auto",
    show_default=True,
    help="IRNN implementation (all compute the same thing).",
)
@click.option("--no-amp", is_flag=True, help="Train in float32 on a GPU (default: bf16 autocast).")
@click.option(
    "--mask-threshold",
    type=int,
    default=None,
    help="Rain-mask threshold (8-bit levels) for samples without a stored mask.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option(
    "--eval-on",
    "eval_on",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also evaluate on another dataset's test split (repeatable).",
)
@click.option(
    "--tile",
    type=int,
    default=1024,
    show_default=True,
    help="Evaluate larger images in tiles of this size.",
)
@click.option(
    "--examples",
    type=click.IntRange(0),
    default=4,
    show_default=True,
    help="Test images shown in the report's example grid.",
)
def validate(
    dataset,
    run_dir,
    model_name,
    preset,
    iters,
    batch,
    lr,
    crop,
    device,
    seed,
    threads,
    workers,
    irnn,
    no_amp,
    mask_threshold,
    resume,
    eval_on,
    tile,
    examples,
):
    """Train a reference derainer on DATASET's train split and report on its test split.

    DATASET defaults to the current folder. Run under torchrun for several GPUs (DDP).
    """
    from rainset.dataset import check, open_dataset

    if not (dataset / "rainset.json").is_file():
        raise click.BadParameter(
            f"{dataset} is not a rainset dataset (no rainset.json)", param_hint="DATASET"
        )
    from rainset.inputs import check_outputs

    check_outputs({"run_dir": run_dir}, [dataset, *eval_on])  # the run may sit inside a dataset
    for name, value in (("--iters", iters), ("--batch", batch), ("--crop", crop), ("--tile", tile)):
        if value is not None and value < 1:
            raise click.BadParameter("must be >= 1", param_hint=name)
    if crop is not None and crop < 16:
        raise click.BadParameter("must be >= 16", param_hint="--crop")
    if lr is not None and not lr > 0:
        raise click.BadParameter("must be > 0", param_hint="--lr")
    if mask_threshold is not None and not 1 <= mask_threshold <= 255:
        raise click.BadParameter("must be in 1..255", param_hint="--mask-threshold")
    if tile < 64:
        raise click.BadParameter("must be >= 64", param_hint="--tile")
    problems = check(dataset, decode=False)
    if problems:
        for p in problems[:10]:
            err_console.print(f"[red]problem[/] {p}", highlight=False)
        err_console.print(
            f"{dataset}: {len(problems)} problem(s); fix them first (`rainset check`)."
        )
        sys.exit(1)

    import torch

    from rainset.train.derain import derain_image, pick_device
    from rainset.train.loop import Trainer, preset_config
    from rainset.train.report import evaluate, summarize, write_report
    from rainset.train.spanet import count_parameters

    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    options = {
        "seed": seed,
        "irnn": irnn,
        "amp": not no_amp,
        "threads": threads,
        "workers": workers if workers is not None else (4 if dev.type == "cuda" else 0),
    }
    if mask_threshold is not None:
        options["mask_threshold"] = mask_threshold
    config = preset_config(
        preset, device=device, iters=iters, batch=batch, lr=lr, crop=crop, **options
    )
    ds = open_dataset(dataset)
    # Every dataset is opened before the run folder is made (a bad --eval-on fails now, not
    # after the training).
    others = [(str(p), open_dataset(p)) for p in eval_on]
    trainer = Trainer(config, ds, run_dir, resume=resume)
    if trainer.rank == 0:
        say(
            f"training SPANet on {len(trainer.train_items)} images of {dataset} "
            f"({trainer.device}, preset {config.preset}: {config.iters} steps, batch "
            f"{config.batch}, crop {config.crop}); test: {len(trainer.test_items)} images"
        )
    start = trainer.step
    t0 = time.perf_counter()
    try:
        for _ in _bar(trainer.run(), total=config.iters, desc="train", initial=start):
            pass
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_interrupted(trainer, config)) from None
    train_seconds = time.perf_counter() - t0
    trainer.close()
    if trainer.rank != 0:
        return
    model = trainer.model.eval()

    def run_model(img):
        return derain_image(model, img, tile=tile, amp=config.amp)

    evaluations = {}
    targets = [("test", ds), *others]
    for name, target in targets:
        from rainset.train.data import items

        n = len(items(target, split="test"))
        split = "test" if n else None
        if not n:
            n = len(items(target, split=None))
            say(f"{target.root}: no test split; evaluating on all {n} images")
        scores = list(
            progress(
                evaluate(run_model, target, split=split, examples=examples),
                total=n,
                desc=f"eval {name}",
            )
        )
        title = "test split" if name == "test" else f"{name} ({'test split' if split else 'all'})"
        evaluations[title] = (summarize(scores), scores)
    log = _read_log(run_dir / "log.jsonl")
    info = {
        "dataset": str(dataset),
        "model": model_name,
        "parameters": count_parameters(model),
        "device": str(trainer.device)
        + (
            f" ({torch.cuda.get_device_name(trainer.device)})"
            if trainer.device.type == "cuda"
            else ""
        ),
        "world_size": trainer.world,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": config.to_json(),
        "steps": trainer.step,
        "resumed_from": start or None,
        "train_images": len(trainer.train_items),
        "test_images": len(trainer.test_items),
        "train_seconds": round(train_seconds, 1),
        "mask_threshold": config.mask_threshold,
        "checkpoint": str(run_dir / "checkpoint" / "model.safetensors"),
    }
    write_report(run_dir, info=info, evaluations=evaluations, log=log)
    for title, (summary, _) in evaluations.items():
        m, b = summary["model"], summary["baseline"]
        console.print(
            f"{title}: SPANet PSNR {m['psnr_rgb']:.2f} dB / SSIM {m['ssim_rgb']:.4f}  vs  "
            f"identity {b['psnr_rgb']:.2f} dB / {b['ssim_rgb']:.4f}  (RGB; Y: "
            f"{m['psnr_y']:.2f} vs {b['psnr_y']:.2f} dB)"
        )
    console.print(f"report: {run_dir / 'report.md'}")


def _interrupted(trainer, config) -> str:
    """What a Ctrl-C of validate leaves: the checkpoint a ``--resume`` would continue from."""
    import json

    saved = None
    weights = trainer.ckpt_dir / "model.safetensors"
    if weights.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                saved = int(json.loads(f.metadata()["rainset"])["step"])
        except Exception:  # noqa: BLE001 - an unreadable checkpoint is as good as none here
            saved = None
    if saved is None:
        return (
            f"Interrupted at step {trainer.step}, before the first checkpoint (step "
            f"{min(config.checkpoint_every, config.iters)}): nothing was saved to resume from; "
            "rerun the command to start over."
        )
    return (
        f"Interrupted at step {trainer.step}; rerun with --resume to continue from the "
        f"checkpoint at step {saved} (later steps are trained again)."
    )


def _read_log(path: Path) -> list[dict]:
    import json

    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


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
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--tile",
    type=int,
    default=1024,
    show_default=True,
    help="Process larger images in tiles of this size.",
)
@click.option("--overlap", type=int, default=32, show_default=True, help="Tile overlap (pixels).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="x264 quality for videos (0 lossless .. 51).")
def derain(checkpoint, inputs, out, device, tile, overlap, crf):
    """Apply a trained SPANet (a run folder or model.safetensors) to images, folders or videos.

    Images become OUT/<name>.png, folders OUT/<folder>/..., videos OUT/<name>.mp4.
    """
    if tile < 64:
        raise click.BadParameter("must be >= 64", param_hint="--tile")
    if not 0 <= overlap <= tile // 2:
        raise click.BadParameter("must be in [0, tile / 2]", param_hint="--overlap")
    from rainset.dataset import image_size
    from rainset.image import is_image_path, read_image, write_image
    from rainset.inputs import check_destinations, check_outputs, iter_files, natural_sorted
    from rainset.train.derain import derain_image, load_model
    from rainset.video import probe as probe_input

    # OUT may not be or hold an input; inside a folder input it is skipped; two inputs may
    # not be written to one output file.
    for line in check_outputs({"out": out}, inputs):
        say(f"[yellow]note[/] {line}")
    jobs = []  # (input, its files: (file, output file))
    for src in inputs:
        if src.is_dir():
            files = natural_sorted(
                (p for p in iter_files(src, exclude=[out]) if is_image_path(p)),
                key=lambda p: p.relative_to(src).as_posix(),
            )
            jobs.append((src, [(p, out / src.name / p.relative_to(src).with_suffix(".png")) for p in files]))
        else:
            suffix = ".png" if is_image_path(src) else ".mp4"
            jobs.append((src, [(src, out / (src.stem + suffix))]))
    check_destinations(pair for _, files in jobs for pair in files)

    # Every input is looked at before anything is written: an unreadable one fails now, not
    # after the others were derained into OUT.
    for src in inputs:
        if src.is_dir():
            continue
        if is_image_path(src):
            image_size(src, decode=False)
        else:
            vi = probe_input(src, decode=False)
            if vi.width % 2 or vi.height % 2:
                from rainset.errors import InputError

                raise InputError(
                    f"{src}: the video is {vi.width}x{vi.height}; the derained H.264 video needs "
                    "an even width and height (crop or pad it by a pixel first)."
                )
    try:
        model, meta = load_model(checkpoint, device=device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None

    def run(img):
        return derain_image(model, img, tile=tile, overlap=overlap)

    n = 0
    for src, files in jobs:
        if src.is_dir():
            for p, dst in progress(files, total=len(files), desc=src.name):
                write_image(dst, run(_as_uint8(read_image(p))))
                n += 1
        elif is_image_path(src):
            write_image(files[0][1], run(_as_uint8(read_image(src))))
            n += 1
        else:
            from rainset.video import iter_frames, probe, write_video

            info = probe(src)
            frames = progress(
                (run(f) for f in iter_frames(src)), total=info.frame_count or None, desc=src.name
            )
            write_video(files[0][1], frames, fps=info.fps or 25, crf=crf)
            n += 1
    step = meta.get("step")
    console.print(
        f"{n} input(s) derained into {out}" + (f" (model at step {step})" if step else "")
    )


def _as_uint8(img):
    import numpy as np

    if img.dtype == np.uint16:
        return (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    return img


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
    "--format", "image_format", type=click.Choice(["png", "jpg", "keep"]), default="png",
    show_default=True,
    help="Image format written; keep: every file as it is (linked or copied, see --link).",
)
@click.option(
    "--link", type=click.Choice(["symlink", "hardlink", "copy"]), default=None,
    help="With --format keep: how files get in. Default: hard links where possible, else copies.",
)
@click.option(
    "--note",
    default="imported paired folders",
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
    from rainset.dataset import SplitRule
    from rainset.errors import ParameterError
    from rainset.importer import check_headers, import_paired, plan_paired

    check_executor(executor, address, staging)
    if link is not None and image_format != "keep":
        raise click.BadParameter("needs --format keep (files are placed as they are)",
                                 param_hint="--link")
    if image_format == "keep" and (executor == "ray" or workers > 1):
        raise click.BadParameter("--format keep imports in one process (it only links)",
                                 param_hint="--format")
    if scene is not None and scene_every is not None:
        raise click.BadParameter("give --scene or --scene-every, not both", param_hint="--scene")
    if scene_every is not None and scene_every < 1:
        raise click.BadParameter("must be >= 1", param_hint="--scene-every")
    from rainset.inputs import check_outputs

    for line in check_outputs({"out": out}, [rain_dir, clean_dir]):
        say(f"[yellow]note[/] {line}")
    try:
        plans = plan_paired(rain_dir, clean_dir, key=key, scene=scene, scene_every=scene_every,
                            root=root, exclude=[out])
    except ParameterError:
        raise  # named by its option in main
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--key/--scene") from None
    tests = _csv(test_scenes)
    scenes = sorted({p.scene for p in plans})
    check_test_scenes(tests, scenes, rain_dir)
    check_headers(plans)  # an unreadable image fails the import before a line is printed
    say(f"scenes: {plans.reason}")
    params = {"key": key, "scene": scene, "scene_every": scene_every}
    rule = SplitRule(test_scenes=tests, test_fraction=test_fraction)
    if executor == "ray" or workers > 1:
        _import_sharded(plans, out, rule, image_format, params, ((rain_dir, note), (clean_dir, note)),
                        allow_duplicate_sources, executor=executor, workers=workers, address=address,
                        staging=staging)
        ids = ()
    else:
        ids = import_paired(
            plans,
            out,
            split_rule=rule,
            image_format=image_format,
            params=params,
            sources=((rain_dir, note), (clean_dir, note)),
            allow_duplicate_sources=allow_duplicate_sources,
            link=link,
        )
    planned(lambda: [None for _ in progress(ids, total=len(plans), desc="import")])
    from rainset.dataset import open_dataset

    counts = open_dataset(out).meta["counts"]
    per = counts["per_split"]
    console.print(
        f"{out}: {counts['samples']} pairs in {len(scenes)} scenes "
        f"(train {per['train']}, test {per['test']})"
    )
    if not per["test"]:
        err_console.print(
            "warning: the test split is empty; `rainset validate` needs --test-scenes."
        )


def _import_sharded(plans, out, rule, image_format, params, sources, allow_duplicate_sources, *, executor,
                    workers, address, staging):
    """import paired with one task per scene on an executor, each writing a shard merged into
    ``out`` (scenes in order of their first pair); exits 1 listing the scenes that failed."""
    from rainset.dataset import SplitRule
    from rainset.executor import Task
    from rainset.inputs import plan_inputs
    from rainset.merge import Merger
    from rainset.tasks import import_shard
    from rainset_cli.executor_opts import report_failures, run_tasks

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
                "image_format": image_format, "jpeg_quality": None if image_format == "png" else 95}
    with Merger(out, identity, rule) as merger:
        for path, what in sources:  # the input folders, hashed once here
            merger.writer.add_source(path, note=what)
        outcomes = run_tasks(tasks, merger, executor=executor, workers=workers, address=address,
                             staging=staging, desc="import")
    report_failures(outcomes, out)


def _add_layout_commands() -> None:
    # import spa|gtrain|basicsr|rain100: published layouts by their own rules (import_layouts).
    from rainset_cli.import_layouts import layout_commands

    for command in layout_commands:
        import_group.add_command(command)


_add_layout_commands()
commands = [validate, derain, import_group]
