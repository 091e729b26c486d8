"""``rainset.train.validate``: train a reference derainer on a dataset, report on real scenes.

The one call behind ``rainset validate``: check the dataset, train SPANet on its train split
(:class:`rainset.train.loop.Trainer`), evaluate the model next to the do-nothing baseline on
its test split and on any ``eval_on`` datasets (:func:`rainset.train.report.evaluate`), and
write the run folder's report (:func:`rainset.train.report.write_report`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from rainset.errors import InputError, ParameterError
from rainset.evaluate import ProgressFn, _check_count, _emitter
from rainset.options import ValidateOptions, merged

__all__ = ["validate", "ValidateResult", "OUTPUTS_DIR"]

#: ``save_outputs`` writes ``RUN/outputs/<evaluation>/<id>.png``; the test split is ``test``,
#: the ``eval_on`` datasets ``eval-on-1``, ``eval-on-2``, ...
OUTPUTS_DIR = "outputs"


@dataclass
class ValidateResult:
    """What :func:`validate` did.

    Attributes
    ----------
    run_dir : the run folder (report.md, report.json, loss.png, checkpoint/, outputs/).
    report : what ``report.json`` holds (``info``, ``trend``, ``evaluations``).
    evaluations : title -> summary (:func:`rainset.evaluate.summarize`): ``"test split"``
        first, then one per ``eval_on`` dataset.
    steps : training steps done; ``train_seconds`` and ``eval_seconds`` their wall times.
    too_short : the smoothed loss still fell by more than 5 % over the last 20 % of the steps
        (:func:`rainset.train.report.loss_trend`): the numbers do not judge the dataset.
    outputs : title -> folder of the saved outputs (with ``save_outputs``).
    notes : what the user should know (an evaluation set without a test split, ...).
    """

    run_dir: Path
    report: dict = field(default_factory=dict)
    evaluations: dict = field(default_factory=dict)
    steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    too_short: bool = False
    outputs: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _check(opts: ValidateOptions) -> None:
    def whole(name: str, least: int) -> None:
        _check_count(name, getattr(opts, name), least)

    for name in ("iters", "batch", "eval_max"):
        whole(name, 1)
    whole("crop", 16)
    whole("eval_crop", 16)
    whole("tile", 64)
    whole("examples", 0)
    whole("workers", 0)
    whole("threads", 1)
    if opts.lr is not None and not (isinstance(opts.lr, (int, float)) and opts.lr > 0):
        raise ParameterError("lr", f"must be > 0, got {opts.lr!r}")
    if opts.mask_threshold is not None and not 1 <= int(opts.mask_threshold) <= 255:
        raise ParameterError("mask_threshold", f"must be in 1..255, got {opts.mask_threshold}")
    if opts.model != "spanet":
        raise ParameterError("model", f"must be 'spanet', got {opts.model!r}")


def interrupted(trainer, config) -> str:
    """What an interrupted run leaves: the checkpoint a ``resume`` would continue from."""
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
            "rerun to start over."
        )
    return (
        f"Interrupted at step {trainer.step}; rerun with `resume` to continue from the "
        f"checkpoint at step {saved} (later steps are trained again)."
    )


def validate(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    options: ValidateOptions | None = None,
    progress: ProgressFn | None = None,
    **kwargs,
) -> ValidateResult:
    """Train SPANet on ``dataset``'s train split and report on its test split.

    Parameters
    ----------
    dataset : a rainset dataset folder (with a test split: its scenes are held out).
    out : the run folder (created): checkpoint, logs, ``report.md``, ``report.json``.
    options : :class:`rainset.options.ValidateOptions`; its fields may be given as keywords
        instead (``iters=200``, ``eval_max=5``, ``eval_crop=256``, ``save_outputs=True``).
    progress : called with a :class:`rainset.evaluate.Event` per training step (``"step"``)
        and per evaluated image (``"scored"``), and with ``"note"``s.

    Returns
    -------
    ValidateResult

    Raises
    ------
    InputError
        Not a dataset, an empty split, a damaged dataset (the first problems of
        :func:`rainset.dataset.check`), a checkpoint in ``out`` without ``resume``.
    ParameterError
        A bad option (``param`` names it).
    """
    known = {f.name for f in fields(ValidateOptions)}
    for key in kwargs:
        if key not in known:
            raise ParameterError(key, f"is not an option of validate ({', '.join(sorted(known))})")
    opts = merged(options or ValidateOptions, kwargs)
    _check(opts)
    from rainset.dataset import check, open_dataset
    from rainset.inputs import check_outputs

    dataset = Path(dataset)
    out = Path(out)
    eval_on = [Path(p) for p in opts.eval_on]
    check_outputs({"out": out}, [dataset, *eval_on])  # the run may sit inside a dataset
    ds = open_dataset(dataset)
    problems = check(dataset, decode=False)
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        raise InputError(
            f"{dataset}: {len(problems)} problem(s), fix them first (`rainset check`): {shown}"
        )
    # Every dataset is opened before the run folder is made (a bad eval_on fails now, not
    # after the training).
    others = [(str(p), open_dataset(p)) for p in eval_on]

    import torch

    from rainset.train.derain import derain_image, pick_device
    from rainset.train.loop import TrainConfig, Trainer, preset_config
    from rainset.train.report import count_items, evaluate, summarize, write_report
    from rainset.train.spanet import count_parameters

    emit = _emitter("validate", progress)

    try:
        dev = pick_device(opts.device)
    except ValueError as exc:
        raise ParameterError("device", str(exc)) from None
    config_options = {
        "seed": opts.seed,
        "irnn": opts.irnn,
        "amp": opts.amp,
        "threads": opts.threads,
        "workers": opts.workers if opts.workers is not None else (4 if dev.type == "cuda" else 0),
    }
    if opts.mask_threshold is not None:
        config_options["mask_threshold"] = opts.mask_threshold
    from rainset.train.objectives import DIRECTION_WEIGHT, default_objective

    objective = opts.objective or default_objective(ds.kind)
    if objective == "timelapse" and ds.kind != "timelapse":
        raise ParameterError(
            "objective",
            f"the time-lapse objective needs a time-lapse dataset (`rainset pairs`); {dataset} "
            f"is {ds.kind}",
        )
    config_options["objective"] = objective
    if opts.direction_loss:
        if objective != "paired":
            raise ParameterError("direction_loss", "the rain-direction loss is for the paired objective")
        config_options["direction_weight"] = DIRECTION_WEIGHT
    if objective == "timelapse" and not others:
        from rainset.train.data import pair_test_items

        if not pair_test_items(ds):
            raise ParameterError(
                "eval_on",
                f"{dataset} has no clean test split (a pairs dataset has one only with pseudo "
                "ground truth); give a paired dataset to evaluate on with `eval_on`",
            )
    # Options that are TrainConfig fields by the same name pass through as they are.
    handled = {"preset", "iters", "batch", "lr", "crop", "device", "mask_threshold",
               "direction_weight", *config_options}  # fmt: skip
    train_fields = {f.name for f in fields(TrainConfig)}
    for name in (known & train_fields) - handled:
        config_options[name] = getattr(opts, name)
    config = preset_config(
        opts.preset, device=opts.device, iters=opts.iters, batch=opts.batch, lr=opts.lr,
        crop=opts.crop, **config_options,
    )  # fmt: skip
    trainer = Trainer(config, ds, out, resume=opts.resume)
    result = ValidateResult(out)
    start = trainer.step
    if trainer.rank == 0:
        what = "frame pairs" if config.objective == "timelapse" else "images"
        extra = ", rain-direction loss" if config.direction_weight else ""
        emit(
            "note",
            message=(
                f"training SPANet on {len(trainer.train_items)} {what} of {dataset} "
                f"({config.objective} objective{extra}; {trainer.device}, preset "
                f"{config.preset}: {config.iters} steps, batch {config.batch}, crop "
                f"{config.crop}); test: {len(trainer.test_items)} images"
            ),
        )
        emit("start", "train", done=start, total=config.iters)
    t0 = time.perf_counter()
    try:
        for rec in trainer.run():
            if trainer.rank == 0:
                emit("step", "train", done=rec["step"], total=config.iters,
                     info={"loss": rec["loss"], "images_per_s": rec.get("images_per_s")})  # fmt: skip
    except KeyboardInterrupt:
        raise KeyboardInterrupt(interrupted(trainer, config)) from None
    train_seconds = time.perf_counter() - t0
    trainer.close()
    result.steps = trainer.step
    result.train_seconds = train_seconds
    if trainer.rank != 0:
        return result
    model = trainer.model.eval()
    model = model.to(memory_format=torch.channels_last)  # derain_image feeds channels-last

    def run_model(img):
        return derain_image(model, img, tile=opts.tile, amp=config.amp)

    evaluations, seconds = {}, {}
    targets = [("test", ds), *others] if trainer.test_items else others
    for k, (name, target) in enumerate(targets):
        n = count_items(target, split="test", eval_max=opts.eval_max)
        split = "test" if n else None
        if not n:
            n = count_items(target, split=None, eval_max=opts.eval_max)
            note = f"{target.root}: no test split; evaluating on all its samples"
            result.notes.append(note)
            emit("note", message=note)
        title = "test split" if name == "test" else f"{name} ({'test split' if split else 'all'})"
        save = None
        if opts.save_outputs:
            save = out / OUTPUTS_DIR / ("test" if k == 0 else f"eval-on-{k}")
            result.outputs[title] = save
        emit("start", title, total=n)
        t1 = time.perf_counter()
        scores = []
        for s in evaluate(run_model, target, split=split, examples=opts.examples,
                          eval_max=opts.eval_max, eval_crop=opts.eval_crop, save_outputs=save):  # fmt: skip
            scores.append(s)
            emit("scored", title, message=s.id, done=len(scores), total=n)
        seconds[title] = time.perf_counter() - t1
        evaluations[title] = (summarize(scores), scores)
    from rainset.dataset.jsonl import read_jsonl

    log = read_jsonl(out / "log.jsonl")
    info = {
        "dataset": str(dataset),
        "model": opts.model,
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
        "eval_seconds": round(sum(seconds.values()), 1),
        "eval_max": opts.eval_max,
        "eval_crop": opts.eval_crop,
        "mask_threshold": config.mask_threshold,
        "checkpoint": str(out / "checkpoint" / "model.safetensors"),
    }
    result.report = write_report(
        out, info=info, evaluations=evaluations, log=log, eval_seconds=seconds
    )
    result.evaluations = {title: summary for title, (summary, _) in evaluations.items()}
    result.eval_seconds = sum(seconds.values())
    result.too_short = bool(result.report["trend"]["too_short"])
    emit("done")
    return result
