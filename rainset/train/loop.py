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
from rainset.errors import InputError, ParameterError
from rainset.fsutil import atomic_path, atomic_write_text
from rainset.image import MASK_THRESHOLD
from rainset.train.data import PatchSource, PatchStream, check_splits
from rainset.train.derain import WEIGHTS_NAME, pick_device
from rainset.train.losses import spanet_loss
from rainset.train.spanet import SPANet, count_parameters

__all__ = ["TrainConfig", "preset_config", "Trainer", "PRESETS", "lr_at"]

logger = logging.getLogger(__name__)

STATE_NAME = "state.pt"
LOG_FIELDS = ("step", "loss", "l1", "ssim", "att", "lr", "seconds", "images_per_s")


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

    def __post_init__(self) -> None:
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
    iters, batch, lr, crop : override the preset; milestones scale with ``iters``.
    options : any other :class:`TrainConfig` field.
    """
    if name not in ("quick", "paper", "released"):
        raise ValueError(f"preset must be 'quick', 'paper' or 'released', got {name!r}")
    key = name
    if name == "quick" and pick_device(device).type != "cuda":
        key = "quick-cpu"
    p = dict(PRESETS[key])
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
        self.train_items, self.test_items = check_splits(dataset)

        torch.manual_seed(config.seed)
        self.model = SPANet(irnn_method=config.irnn).to(device)
        self.cuda_fast = device.type == "cuda"
        if self.cuda_fast and config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
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
        source = PatchSource(
            dataset,
            self.train_items,
            crop=config.crop,
            scale=config.scale,
            flip=config.flip,
            mask_threshold=config.mask_threshold,
            cache_bytes=config.cache_bytes,
        )
        stream = PatchStream(
            source,
            batch=config.batch // self.world,
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
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
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
            term), ``att``, ``lr``, ``seconds`` (of the step), ``images_per_s`` (all ranks).
        """
        cfg = self.config
        self.net.train()
        autocast = self.cuda_fast and cfg.amp
        batches = iter(self.loader)
        while self.step < cfg.iters:
            t0 = time.perf_counter()
            rainy, clean, mask = next(batches)
            rainy = rainy.to(self.device, non_blocking=True)
            clean = clean.to(self.device, non_blocking=True)
            mask = mask.to(self.device, non_blocking=True)
            if self.cuda_fast and cfg.channels_last:
                rainy = rainy.contiguous(memory_format=torch.channels_last)
            lr = lr_at(cfg, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                out, maps = self.net(rainy)
            loss, parts = spanet_loss(out, clean, maps[0], mask)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
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
