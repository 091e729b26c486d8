"""Training and evaluation data from a rainset dataset: items, random patches, batches.

An *item* is one (rainy, clean, mask) triple of a dataset:

- paired datasets: every sample; its ``mask`` when it has one, else the shared
  :func:`rainset.image.rain_mask` of (rainy, clean) at ``mask_threshold``;
- time-lapse datasets: every frame that carries pseudo ground truth (``clean``), trained like a
  paired sample; its own ``mask`` (foreground objects) is not a rain mask, so the rain mask is
  always computed.

Splits are the dataset's, which are by scene (``rainset.dataset.SplitRule``); this module never
splits frames itself. Patches follow the paper's "scaling and cropping" (SPANet seed,
Sec. 4.2): a square region of side ``crop / s`` for a random scale ``s`` is resized to
``crop x crop``, plus a random horizontal flip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from rainset.dataset import Dataset
from rainset.errors import InputError
from rainset.image import MASK_THRESHOLD, rain_mask

__all__ = ["Item", "items", "check_splits", "PatchSource", "PatchStream", "to_tensor"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One training or evaluation triple; paths are relative to the dataset root."""

    id: str
    scene: str
    rainy: str
    clean: str
    mask: str | None  # None: computed from rainy and clean


def items(dataset: Dataset, *, split: str | None) -> list[Item]:
    """The dataset's (rainy, clean, mask) triples of one split (None: all splits).

    Raises
    ------
    InputError
        A time-lapse dataset without pseudo ground truth (nothing to train on).
    """
    out = []
    if dataset.kind == "paired":
        for rec in dataset.samples(split=split):
            out.append(Item(rec["id"], rec["scene"], rec["rainy"], rec["clean"], rec.get("mask")))
        return out
    n_frames = 0
    for rec in dataset.samples(split=split):
        n_frames += 1
        if isinstance(rec.get("clean"), str):
            out.append(Item(rec["id"], rec["scene"], rec["frame"], rec["clean"], None))
    if n_frames and not out:
        raise InputError(
            f"{dataset.root}: this time-lapse dataset has no pseudo ground truth (no frame has a "
            "'clean' image); rebuild it with pseudo ground truth to train on it."
        )
    return out


def check_splits(dataset: Dataset) -> tuple[list[Item], list[Item]]:
    """Train and test items, refusing an empty split.

    Raises
    ------
    InputError
        The train or the test split is empty; the message names ``--test-scenes`` and lists
        the scenes.
    """
    train, test = items(dataset, split="train"), items(dataset, split="test")
    scenes = dataset.scenes()
    shown = ", ".join(scenes[:10]) + (f" and {len(scenes) - 10} more" if len(scenes) > 10 else "")
    if not test:
        raise InputError(
            f"{dataset.root}: the test split is empty; rebuild the dataset with --test-scenes "
            f"naming the scenes to hold out (scenes: {shown or 'none'})."
        )
    if not train:
        raise InputError(
            f"{dataset.root}: the train split is empty (every scene is a test scene); rebuild "
            f"the dataset with fewer --test-scenes (scenes: {shown})."
        )
    return train, test


def _resize(img: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


class PatchSource:
    """Random augmented patches from a list of items, with an in-memory image cache.

    Parameters
    ----------
    dataset : the opened dataset the items come from.
    item_list : items to draw from (uniformly).
    crop : patch side in pixels.
    scale : (min, max) of the scale factor; a region of side ``crop / s`` is resized to
        ``crop`` (s < 1 zooms out). Limited by the image's shorter side.
    flip : random horizontal flips.
    mask_threshold : rain-mask threshold (8-bit levels) for items without a stored mask.
    cache_bytes : decoded images are kept in memory up to this many bytes.
    """

    def __init__(
        self,
        dataset: Dataset,
        item_list: list[Item],
        *,
        crop: int,
        scale: tuple[float, float] = (0.5, 1.0),
        flip: bool = True,
        mask_threshold: int = MASK_THRESHOLD,
        cache_bytes: int = 2 << 30,
    ) -> None:
        if not item_list:
            raise ValueError("item_list is empty")
        if crop < 11:
            raise ValueError(f"crop must be >= 11 (the SSIM window), got {crop}")
        lo, hi = scale
        if not 0 < lo <= hi:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {scale}")
        self.dataset = dataset
        self.items = list(item_list)
        self.crop = int(crop)
        self.scale = (float(lo), float(hi))
        self.flip = flip
        self.mask_threshold = int(mask_threshold)
        self.cache_bytes = int(cache_bytes)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        self._cached = 0

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(rainy, clean, stored mask or None) of item ``index``: uint8 RGB, (H, W) bool."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        it = self.items[index]
        rainy = self.dataset.load({"id": it.id, "rainy": it.rainy}, "rainy")
        clean = self.dataset.load({"id": it.id, "clean": it.clean}, "clean")
        if rainy.shape != clean.shape:
            raise InputError(
                f"{self.dataset.path(it.rainy)}: size {rainy.shape[:2]} differs from its clean "
                f"image {self.dataset.path(it.clean)} ({clean.shape[:2]}); run `rainset check`."
            )
        if rainy.dtype != np.uint8 or clean.dtype != np.uint8:
            raise InputError(f"{self.dataset.path(it.rainy)}: training needs 8-bit images.")
        mask = None
        if it.mask is not None:
            mask = self.dataset.load_mask({"id": it.id, "mask": it.mask})
        entry = (rainy, clean, mask)
        size = rainy.nbytes + clean.nbytes + (mask.nbytes if mask is not None else 0)
        if self._cached + size <= self.cache_bytes:
            self._cache[index] = entry
            self._cached += size
        return entry

    def patch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One random patch.

        Returns
        -------
        rainy, clean : (crop, crop, 3) uint8 ndarray
        mask : (crop, crop) bool ndarray
        """
        rainy, clean, mask = self.load(int(rng.integers(len(self.items))))
        h, w = rainy.shape[:2]
        s = rng.uniform(*self.scale)
        side = int(min(round(self.crop / s), h, w))
        y = int(rng.integers(h - side + 1))
        x = int(rng.integers(w - side + 1))
        win = (slice(y, y + side), slice(x, x + side))
        r = _resize(rainy[win], self.crop)
        c = _resize(clean[win], self.crop)
        if mask is None:
            m = rain_mask(r, c, threshold=self.mask_threshold)
        else:
            m = _resize(mask[win].astype(np.uint8), self.crop, nearest=True).astype(bool)
        if self.flip and rng.random() < 0.5:
            r, c, m = r[:, ::-1], c[:, ::-1], m[:, ::-1]
        return np.ascontiguousarray(r), np.ascontiguousarray(c), np.ascontiguousarray(m)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)


class PatchStream(torch.utils.data.IterableDataset):
    """An endless stream of batches ``(rainy, clean, mask)`` for one process.

    Parameters
    ----------
    source : the patch source.
    batch : patches per batch (per process).
    seed : base seed; each (seed, rank, start step, loader worker) draws its own stream, so a
        resumed run does not replay the patches it already saw.
    rank, start_step : see ``seed``.

    Yields
    ------
    rainy, clean : (batch, 3, crop, crop) float32 tensors in [0, 1]
    mask : (batch, 1, crop, crop) float32 tensor of 0 / 1
    """

    def __init__(
        self, source: PatchSource, *, batch: int, seed: int, rank: int = 0, start_step: int = 0
    ) -> None:
        super().__init__()
        self.source = source
        self.batch = int(batch)
        self.seed = int(seed)
        self.rank = int(rank)
        self.start_step = int(start_step)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.rank, self.start_step, worker])
        while True:
            patches = [self.source.patch(rng) for _ in range(self.batch)]
            rainy = to_tensor(np.stack([p[0] for p in patches]))
            clean = to_tensor(np.stack([p[1] for p in patches]))
            mask = torch.from_numpy(np.stack([p[2] for p in patches])[:, None]).float()
            yield rainy, clean, mask
