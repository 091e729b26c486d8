"""``rainset validate``, ``rainset derain`` and ``rainset import paired``.

torch is imported inside the commands only, so ``rainset --help`` stays light.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from rainset_cli.common import (
    RecordingGroup,
    console,
    err_console,
    format_options,
    progress,
    quiet,
    say,
    split_options,
)


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
    type=click.Path(path_type=Path),
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
@click.option("--lr", type=float, default=None, help="Override the preset's learning rate.")
@click.option("--crop", type=int, default=None, help="Override the preset's patch size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option(
    "--workers",
    type=int,
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
    type=int,
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
    trainer = Trainer(config, ds, run_dir, resume=resume)
    if trainer.rank == 0:
        say(
            f"training SPANet on {len(trainer.train_items)} images of {dataset} "
            f"({trainer.device}, preset {config.preset}: {config.iters} steps, batch "
            f"{config.batch}, crop {config.crop}); test: {len(trainer.test_items)} images"
        )
    start = trainer.step
    t0 = time.perf_counter()
    for _ in _bar(trainer.run(), total=config.iters, desc="train", initial=start):
        pass
    train_seconds = time.perf_counter() - t0
    trainer.close()
    if trainer.rank != 0:
        return
    model = trainer.model.eval()

    def run_model(img):
        return derain_image(model, img, tile=tile, amp=config.amp)

    evaluations = {}
    targets = [("test", ds)] + [(str(p), open_dataset(p)) for p in eval_on]
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
@click.option("--crf", type=int, default=18, show_default=True, help="x264 quality for videos.")
def derain(checkpoint, inputs, out, device, tile, overlap, crf):
    """Apply a trained SPANet (a run folder or model.safetensors) to images, folders or videos.

    Images become OUT/<name>.png, folders OUT/<folder>/..., videos OUT/<name>.mp4.
    """
    if tile < 64:
        raise click.BadParameter("must be >= 64", param_hint="--tile")
    if not 0 <= overlap <= tile // 2:
        raise click.BadParameter("must be in [0, tile / 2]", param_hint="--overlap")
    from rainset.image import is_image_path, read_image, write_image
    from rainset.train.derain import derain_image, load_model

    try:
        model, meta = load_model(checkpoint, device=device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None

    def run(img):
        return derain_image(model, img, tile=tile, overlap=overlap)

    n = 0
    for src in inputs:
        if src.is_dir():
            files = sorted(p for p in src.rglob("*") if p.is_file() and is_image_path(p))
            for p in progress(files, total=len(files), desc=src.name):
                dst = out / src.name / p.relative_to(src).with_suffix(".png")
                write_image(dst, run(_as_uint8(read_image(p))))
                n += 1
        elif is_image_path(src):
            write_image(out / (src.stem + ".png"), run(_as_uint8(read_image(src))))
            n += 1
        else:
            from rainset.video import iter_frames, probe, write_video

            info = probe(src)
            frames = progress(
                (run(f) for f in iter_frames(src)), total=info.frame_count or None, desc=src.name
            )
            write_video(out / (src.stem + ".mp4"), frames, fps=info.fps or 25, crf=crf)
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
@format_options("Image format written.", jpeg_quality=False)
@click.option(
    "--note",
    default="imported paired folders",
    help="Licence / provenance note recorded with the sources.",
)
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
):
    """Import a folder of rainy images and a folder of clean images as a paired dataset.

    Files pair up by key (Rain100L's rain-001.png / norain-001.png, NTURain's 00001.jpg);
    several rainy files may share one clean image.
    """
    from rainset.dataset import SplitRule
    from rainset.importer import import_paired, plan_paired

    if scene is not None and scene_every is not None:
        raise click.BadParameter("give --scene or --scene-every, not both", param_hint="--scene")
    if scene_every is not None and scene_every < 1:
        raise click.BadParameter("must be >= 1", param_hint="--scene-every")
    try:
        plans = plan_paired(rain_dir, clean_dir, key=key, scene=scene, scene_every=scene_every)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--key/--scene") from None
    tests = _csv(test_scenes)
    scenes = sorted({p.scene for p in plans})
    missing = [s for s in tests if s not in scenes]
    if missing:
        shown = ", ".join(scenes[:20]) + (" ..." if len(scenes) > 20 else "")
        raise click.BadParameter(
            f"{', '.join(missing)} not among the scenes ({shown})", param_hint="--test-scenes"
        )
    params = {"key": key, "scene": scene, "scene_every": scene_every}
    rule = SplitRule(test_scenes=tests, test_fraction=test_fraction)
    ids = import_paired(
        plans,
        out,
        split_rule=rule,
        image_format=image_format,
        params=params,
        sources=((rain_dir, note), (clean_dir, note)),
    )
    for _ in progress(ids, total=len(plans), desc="import"):
        pass
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


commands = [validate, derain, import_group]
