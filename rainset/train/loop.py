"""The training loop: presets, seeding, checkpoints and resume, logs, DDP.

One :class:`TrainConfig` describes a run; :func:`preset_config` makes the ``quick`` and
``paper`` ones. :class:`Trainer` owns the model, optimizer and data stream of one process and
yields one log record per step from :meth:`Trainer.run`, so the command line can draw a
progress bar. A run folder holds::

    log.jsonl, log.csv           one line per step (rank 0)
    checkpoint/model.safetensors weights + metadata (for `rainset derain` and evaluation)
    checkpoint/state.pt          weights, optimizer state, step, RNG states (for --resume)

Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer joins the process
group (NCCL on CUDA, gloo on the CPU), wraps the model in DistributedDataParallel, splits the
batch over the processes and lets rank 0 alone write files.

About 530 lines: the configuration with its presets and the trainer with its objectives,
resume state and distributed set-up; the losses live in :mod:`rainset.train.losses` and
:mod:`rainset.train.objectives`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from rainset._checks import require_finite, require_finite_all
from rainset.dataset import Dataset
from rainset.dataset.jsonl import scan_jsonl
from rainset.errors import InputError, ParameterError
from rainset.fsutil import atomic_path, atomic_write_text
from rainset.image import MASK_THRESHOLD
from rainset.train.data import (
    DirectionPatchSource,
    PairPatchSource,
    PatchSource,
    PatchStream,
    check_splits,
    pair_items,
    pair_test_items,
)
from rainset.train.derain import WEIGHTS_NAME, pick_device
from rainset.train.losses import spanet_loss
from rainset.train.objectives import OBJECTIVES, DirectionTerm, TimelapseObjective, identity_init
from rainset.train.spanet import SPANet, count_parameters

__all__ = ["TrainConfig", "preset_config", "Trainer", "PRESETS", "lr_at"]

logger = logging.getLogger(__name__)

STATE_NAME = "state.pt"
LOG_FIELDS = (
    "step", "loss", "l1", "ssim", "att", "dir", "lb", "ls", "lv", "gamma", "lr", "seconds",
    "images_per_s",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    Parameters
    ----------
    preset : the preset it came from (recorded only).
    iters : optimizer steps.
    batch : patches per step over all processes (divided among DDP ranks).
    lr : Adam's initial learning rate.
    crop : patch side in pixels.
    milestones : steps after which the learning rate is multiplied by ``gamma``.
    gamma : the learning-rate factor at each milestone.
    scale : (min, max) random scale of the patch region (:class:`~rainset.train.data.PatchSource`).
    flip : random horizontal flips.
    mask_threshold : rain-mask threshold in 8-bit levels, for samples without a stored mask.
    seed : seeds weights, patches and everything random.
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:N]"``.
    amp : bfloat16 autocast on CUDA (no effect on the CPU).
    channels_last : channels-last memory format on CUDA (no effect on the CPU).
    irnn : IRNN implementation (:func:`rainset.train.irnn.irnn`).
    workers : data-loader worker processes (0: patches are cut in the training process).
    threads : torch CPU threads (None: torch's default, divided among local DDP ranks).
    checkpoint_every : steps between checkpoints (one is always written at the end).
    cache_bytes : decoded training images kept in memory per process.
    objective : ``"paired"`` (SPANet's loss against the clean image) or ``"timelapse"`` (the
        time-lapse losses on frame pairs, :mod:`rainset.train.objectives`; a step of ``batch``
        images is ``batch // 2`` pairs).
    direction_weight : lambda of the rain-direction loss added to the paired objective (0: off;
        1.2 is the paper's, :data:`rainset.train.objectives.DIRECTION_WEIGHT`); needs the rain
        maps and direction labels of a ``rainset synth`` dataset.
    """

    preset: str = "custom"
    iters: int = 1000
    batch: int = 16
    lr: float = 5e-3
    crop: int = 128
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    scale: tuple[float, float] = (0.5, 1.0)
    flip: bool = True
    mask_threshold: int = MASK_THRESHOLD
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    irnn: Literal["auto", "loop", "sweep", "scan"] = "auto"
    workers: int = 0
    threads: int | None = None
    checkpoint_every: int = 500
    cache_bytes: int = field(default=2 << 30)
    objective: Literal["paired", "timelapse"] = "paired"
    direction_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ParameterError(
                "objective", f"must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        require_finite("direction_weight", self.direction_weight)
        if self.direction_weight < 0:
            raise ParameterError("direction_weight", f"must be >= 0, got {self.direction_weight}")
        if self.direction_weight and self.objective != "paired":
            raise ParameterError(
                "direction_weight", "the rain-direction loss is for the paired objective only"
            )
        require_finite("lr", self.lr)
        require_finite("gamma", self.gamma)
        require_finite_all("scale", self.scale)
        for name in ("iters", "batch", "crop", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(name, f"must be >= 1, got {getattr(self, name)}")
        if self.crop < 16:
            raise ParameterError("crop", f"must be >= 16 pixels, got {self.crop}")
        if not self.lr > 0:
            raise ParameterError("lr", f"must be > 0, got {self.lr}")
        if self.workers < 0:
            raise ParameterError("workers", f"must be >= 0, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ParameterError("threads", f"must be >= 1 (or None), got {self.threads}")
        if self.irnn not in ("auto", "loop", "sweep", "scan"):
            raise ParameterError("irnn", f"must be auto, loop, sweep or scan, got {self.irnn!r}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        object.__setattr__(self, "scale", tuple(float(s) for s in self.scale))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# Learning-rate milestones as fractions of the run, so --iters rescales them.
# paper: lr 5e-3 divided by 10 after 5K, 15K, 30K and 50K of 60K iterations, batch 32
# (SPANet seed, Sec. 4.2); crop 256 from the released code (the paper gives none).
# released: the released code's schedule, lr 5e-3 x 0.1 at 30K of 40K, batch 16, crop 256.
# quick: short runs; one drop at 80 %. On a CPU, small patches and batches (minutes on 2 cores).
PRESETS: dict[str, dict] = {
    "quick": {"iters": 3000, "batch": 16, "lr": 5e-3, "crop": 128, "milestones": (0.8,)},
    "quick-cpu": {"iters": 500, "batch": 8, "lr": 2e-3, "crop": 64, "milestones": (0.8,)},
    "paper": {
        "iters": 60000,
        "batch": 32,
        "lr": 5e-3,
        "crop": 256,
        "milestones": (5 / 60, 15 / 60, 30 / 60, 50 / 60),
    },
    "released": {"iters": 40000, "batch": 16, "lr": 5e-3, "crop": 256, "milestones": (0.75,)},
}


#: The time-lapse objective's fixed learning rate (time-lapse seed, Sec. III-E).
TIMELAPSE_LR = 1e-4


def preset_config(
    name: Literal["quick", "paper", "released"],
    *,
    device: str = "auto",
    iters: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    crop: int | None = None,
    **options,
) -> TrainConfig:
    """A :class:`TrainConfig` from a preset, with overrides.

    Parameters
    ----------
    name : ``"quick"`` (minutes on a GPU; on a CPU the ``quick-cpu`` values: 64x64 patches,
        batch 8, about ten minutes on two cores), ``"paper"`` (Sec. 4.2) or ``"released"``.
    device : where it will run; picks the CPU or GPU variant of ``quick``.
    iters, batch, lr, crop : override the preset; milestones scale with ``iters``. With
        ``objective="timelapse"`` the learning rate is the time-lapse paper's fixed 1e-4 (no
        milestones) unless ``lr`` is given.
    options : any other :class:`TrainConfig` field.
    """
    if name not in ("quick", "paper", "released"):
        raise ValueError(f"preset must be 'quick', 'paper' or 'released', got {name!r}")
    key = name
    if name == "quick" and pick_device(device).type != "cuda":
        key = "quick-cpu"
    p = dict(PRESETS[key])
    if options.get("objective") == "timelapse":
        # Time-lapse seed, Sec. III-E: Adam with a fixed learning rate of 1e-4. (At the SPANet
        # presets' 2e-3 to 5e-3 the time-lapse losses pull SPANet to a constant image in tens of
        # steps: L_b is smallest there and L_s weighs 1e-5 after 30 % of the run.)
        p["lr"], p["milestones"] = TIMELAPSE_LR, ()
    for k, v in (("iters", iters), ("batch", batch), ("lr", lr), ("crop", crop)):
        if v is not None:
            p[k] = v
    fractions = p.pop("milestones")
    milestones = tuple(sorted({max(1, round(f * p["iters"])) for f in fractions}))
    return TrainConfig(preset=key, milestones=milestones, device=device, **p, **options)


def lr_at(config: TrainConfig, step: int) -> float:
    """The learning rate of (0-based) step ``step``: ``lr * gamma ** #(milestones <= step)``."""
    return config.lr * config.gamma ** sum(1 for m in config.milestones if step >= m)


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group when launched by torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), local


class Trainer:
    """Train SPANet on a dataset's train split (one process; DDP when launched so).

    Parameters
    ----------
    config : the run's configuration.
    dataset : the opened dataset.
    run_dir : the run folder (created).
    resume : continue from ``run_dir/checkpoint``; without it an existing checkpoint is an
        error, so a run is never overwritten by accident.

    Raises
    ------
    InputError
        Empty train or test split; resuming without a checkpoint; a checkpoint without
        ``resume``; a damaged checkpoint.

    Attributes
    ----------
    step : steps done so far.
    model : the (unwrapped) SPANet.
    device : torch device.
    rank, world : DDP rank and number of processes (0 and 1 without DDP).
    """

    def __init__(
        self, config: TrainConfig, dataset: Dataset, run_dir: str | os.PathLike, *, resume: bool
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoint"
        self.rank, self.world, local = _distributed()
        if config.batch % self.world:
            raise ValueError(f"batch {config.batch} does not divide among {self.world} processes")
        device = pick_device(config.device)
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        self.device = device
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        elif device.type == "cpu" and self.world > 1:
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.world))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        self.objective = None  # the time-lapse loss module (it has trainable parameters)
        self.direction = DirectionTerm(config.direction_weight) if config.direction_weight else None
        if config.objective == "timelapse":
            self.train_items = pair_items(dataset, split="train")
            if not self.train_items:
                raise InputError(
                    f"{dataset.root}: the train split has no frame pairs (scenes: "
                    f"{', '.join(dataset.scenes()[:10]) or 'none'}); rebuild it with fewer "
                    "`test_scenes`."
                )
            self.test_items = pair_test_items(dataset)  # [] without pseudo ground truth
        else:
            self.train_items, self.test_items = check_splits(dataset)

        torch.manual_seed(config.seed)
        self.model = SPANet(irnn_method=config.irnn).to(device)
        params = list(self.model.parameters())
        if config.objective == "timelapse":
            identity_init(self.model)
            self.objective = TimelapseObjective(config.iters).to(device)
            params += list(self.objective.parameters())
        self.cuda_fast = device.type == "cuda"
        if self.cuda_fast and config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.step = 0
        have = (self.ckpt_dir / STATE_NAME).is_file()
        if resume:
            if not have:
                raise InputError(
                    f"{self.ckpt_dir / STATE_NAME}: no checkpoint to resume from; run without "
                    "`resume` to start training."
                )
            self._load_state()
        elif have:
            raise InputError(
                f"{self.run_dir}: this run folder already has a checkpoint; pass `resume` to "
                "continue it, or choose another output folder."
            )
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        per_rank = config.batch // self.world
        cut = {"crop": config.crop, "scale": config.scale, "flip": config.flip,
               "cache_bytes": config.cache_bytes}  # fmt: skip
        if config.objective == "timelapse":
            source = PairPatchSource(dataset, self.train_items, **cut)
            per_rank = max(1, per_rank // 2)  # pairs: two frames each
        else:
            source = (DirectionPatchSource if self.direction else PatchSource)(
                dataset, self.train_items, mask_threshold=config.mask_threshold, **cut
            )
        stream = PatchStream(
            source,
            batch=per_rank,
            seed=config.seed,
            rank=self.rank,
            start_step=self.step,
        )
        self.loader = torch.utils.data.DataLoader(
            stream,
            batch_size=None,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            persistent_workers=config.workers > 0,
        )
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._trim_logs()
        logger.info(
            "SPANet (%d parameters) on %s, %d train / %d test images, step %d of %d",
            count_parameters(self.model),
            device,
            len(self.train_items),
            len(self.test_items),
            self.step,
            config.iters,
        )

    # -- checkpoints

    def _load_state(self) -> None:
        path = self.ckpt_dir / STATE_NAME
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            if self.objective is not None:
                self.objective.load_state_dict(state["objective"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise InputError(f"{path}: damaged checkpoint ({str(exc).splitlines()[0]}).") from None
        old = state.get("config", {})
        changed = [k for k, v in self.config.to_json().items() if k in old and old[k] != v]
        if changed:
            logger.info("resuming with changed settings: %s", ", ".join(sorted(changed)))
        torch.set_rng_state(state["torch_rng"])
        logger.info("resumed %s at step %d", self.run_dir, self.step)

    def save(self) -> None:
        """Write the checkpoint (rank 0 only; other ranks return at once)."""
        if self.rank != 0:
            return
        from safetensors.torch import save_file

        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        meta = {
            "model": "spanet",
            "parameters": count_parameters(self.model),
            "step": self.step,
            "config": self.config.to_json(),
            "dataset": str(self.dataset.root),
        }
        state = {
            "model": weights,
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "config": self.config.to_json(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.objective is not None:
            state["objective"] = {k: v.detach().cpu() for k, v in self.objective.state_dict().items()}
        buf = io.BytesIO()
        torch.save(state, buf)
        with atomic_path(self.ckpt_dir / STATE_NAME) as tmp:
            tmp.write_bytes(buf.getvalue())
        with atomic_path(self.ckpt_dir / WEIGHTS_NAME) as tmp:
            save_file(weights, str(tmp), metadata={"rainset": json.dumps(meta)})

    # -- logs

    def _trim_logs(self) -> None:
        """Drop log lines past the checkpoint's step (they will be trained again)."""
        path = self.run_dir / "log.jsonl"
        keep = []
        if path.is_file():
            for _, rec in scan_jsonl(path).records:  # bad lines (a torn last one) are dropped
                if isinstance(rec, dict) and int(rec.get("step", 0)) <= self.step:
                    keep.append(rec)
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(keep)
        atomic_write_text(self.run_dir / "log.csv", buf.getvalue())

    def _log(self, rec: dict) -> None:
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        with open(self.run_dir / "log.csv", "a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore").writerow(rec)

    # -- training

    def run(self) -> Iterator[dict]:
        """Train to ``config.iters`` steps, yielding each step's log record.

        Yields
        ------
        record : dict
            ``step`` (1-based count of steps done), ``loss``, ``l1``, ``ssim`` (the 1 - SSIM
            term), ``att``, ``dir`` (the unweighted rain-direction term, with
            ``direction_weight``), ``lr``, ``seconds`` (of the step), ``images_per_s`` (all
            ranks); for the time-lapse objective ``lb``, ``ls`` (with gamma), ``lv`` and
            ``gamma`` instead of ``l1``, ``ssim``, ``att``.
        """
        cfg = self.config
        self.net.train()
        autocast = self.cuda_fast and cfg.amp
        batches = iter(self.loader)
        while self.step < cfg.iters:
            t0 = time.perf_counter()
            batch = [t.to(self.device, non_blocking=True) for t in next(batches)]
            lr = lr_at(cfg, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if self.objective is not None:  # time-lapse: frames m and n in one forward pass
                frame_a, frame_b, mask_a, mask_b = batch
                rainy = torch.cat([frame_a, frame_b])
            else:
                rainy, clean, mask = batch[:3]
            net_in = rainy
            if self.cuda_fast and cfg.channels_last:
                net_in = rainy.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                out, maps = self.net(net_in)
            if self.objective is not None:
                back_a, back_b = out.float().chunk(2)
                loss, parts = self.objective(
                    frame_a, frame_b, back_a, back_b, mask_a, mask_b, step=self.step
                )
            else:
                loss, parts = spanet_loss(out, clean, maps[0], mask)
                if self.direction is not None:
                    extra, parts["dir"] = self.direction(rainy, out, batch[3], batch[4])
                    loss = loss + extra
                    parts["loss"] = float(loss.detach())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.objective is not None and self.world > 1:
                # L_v's centres are outside the DDP-wrapped model: average their gradients too
                import torch.distributed as dist

                for p in self.objective.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= self.world
            self.optimizer.step()
            self.step += 1
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            dt = time.perf_counter() - t0
            rec = {"step": self.step, **parts, "lr": lr, "seconds": round(dt, 4)}
            rec["images_per_s"] = round(cfg.batch / dt, 2) if dt > 0 else None
            if self.rank == 0:
                self._log(rec)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.iters:
                self.save()
            yield rec

    def close(self) -> None:
        """Leave the process group (when this trainer joined one)."""
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
