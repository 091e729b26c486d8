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

About 610 lines: the patch sources of the three objectives (paired, time-lapse pairs, rain
direction) and the map-style :class:`PairedDataset` share the dataset's items and the crop and
flip rules, which must stay one definition.
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

__all__ = [
    "Item", "items", "check_splits", "PatchSource", "PatchStream", "to_tensor", "PairedDataset",
    "PairItem", "pair_items", "pair_test_items", "PairPatchSource", "DirectionPatchSource",
]

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
        A time-lapse dataset without pseudo ground truth, or a dataset of clean images only
        (nothing rainy to train or test on).
    """
    if dataset.kind == "clean":
        raise InputError(
            f"{dataset.root}: this dataset holds clean images only (build-gt `write` clean), "
            "no rainy images to train or test on; rebuild it with `write` all."
        )
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
            "'clean' image) to train on as paired samples; train on its frame pairs with the "
            "time-lapse objective, or rebuild it with pseudo ground truth."
        )
    return out


def check_splits(dataset: Dataset) -> tuple[list[Item], list[Item]]:
    """Train and test items, refusing an empty split.

    Raises
    ------
    InputError
        The train or the test split is empty; the message names ``test_scenes`` and lists
        the scenes.
    """
    train, test = items(dataset, split="train"), items(dataset, split="test")
    scenes = dataset.scenes()
    shown = ", ".join(scenes[:10]) + (f" and {len(scenes) - 10} more" if len(scenes) > 10 else "")
    if not test:
        raise InputError(
            f"{dataset.root}: the test split is empty; rebuild the dataset with `test_scenes` "
            f"naming the scenes to hold out (scenes: {shown or 'none'})."
        )
    if not train:
        raise InputError(
            f"{dataset.root}: the train split is empty (every scene is a test scene); rebuild "
            f"the dataset with fewer `test_scenes` (scenes: {shown})."
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


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A (H, W) bool mask resized to ``size x size``, nearest neighbour."""
    return _resize(mask.astype(np.uint8), size, nearest=True).astype(bool)


def _window(rng: np.random.Generator, h: int, w: int, crop: int,
            scale: tuple[float, float]) -> tuple[slice, slice]:
    """The random square of the paper's scaling and cropping: side ``crop / s`` for
    ``s`` drawn from ``scale``, at most the image's shorter side, anywhere in the image."""
    s = rng.uniform(*scale)
    side = int(min(round(crop / s), h, w))
    y = int(rng.integers(h - side + 1))
    x = int(rng.integers(w - side + 1))
    return slice(y, y + side), slice(x, x + side)


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
        win = _window(rng, h, w, self.crop, self.scale)
        r, c, m = self._cut(rainy, clean, mask, win)
        if self.flip and rng.random() < 0.5:
            r, c, m = r[:, ::-1], c[:, ::-1], m[:, ::-1]
        return np.ascontiguousarray(r), np.ascontiguousarray(c), np.ascontiguousarray(m)

    def _cut(self, rainy, clean, mask, win) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rainy, clean, mask) of window ``win`` resized to ``crop``; the rain mask of the
        resized pair when the item stores none."""
        r = _resize(rainy[win], self.crop)
        c = _resize(clean[win], self.crop)
        if mask is None:
            return r, c, rain_mask(r, c, threshold=self.mask_threshold)
        return r, c, _resize_mask(mask[win], self.crop)


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
            yield _collate([self.source.patch(rng) for _ in range(self.batch)])


def _collate(patches: list[tuple]) -> tuple[torch.Tensor, ...]:
    """Stack patch tuples: uint8 images -> (B, 3, H, W) in [0, 1]; bool masks and float maps
    (H, W) -> (B, 1, H, W) float32; anything else (kernels) stacked as float32."""
    out = []
    for j in range(len(patches[0])):
        arr = np.stack([p[j] for p in patches])
        if arr.dtype == np.uint8 and arr.ndim == 4:
            out.append(to_tensor(arr))
        elif arr.ndim == 3:
            out.append(torch.from_numpy(arr.astype(np.float32))[:, None])
        else:
            out.append(torch.from_numpy(arr.astype(np.float32)))
    return tuple(out)


# ----------------------------------------------------------------------------- PairedDataset


def _chw(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 / uint16 -> (3, H, W) float32 in [0, 1]; (H, W) bool -> (1, H, W) 0 / 1."""
    arr = np.ascontiguousarray(image)
    if arr.dtype == bool:
        return torch.from_numpy(arr.astype(np.float32))[None]
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return torch.from_numpy(arr.astype(np.float32) / scale).permute(2, 0, 1).contiguous()


class PairedDataset(torch.utils.data.Dataset):
    """A map-style PyTorch dataset over a rainset dataset: one dict per sample (or frame pair).

    Parameters
    ----------
    root : the dataset folder, or an opened :class:`rainset.dataset.Dataset`.
    split : ``"train"``, ``"val"``, ``"test"`` or None (every split). The dataset's split, by
        scene.
    crop : side of a random crop taken at the same place from every image of a sample; None:
        whole images (a batch then needs images of one size). With a crop, images of mixed
        sizes batch with the default ``collate_fn``.
    flip : random horizontal flips of the whole sample (default: when ``crop`` is set).
    transform : called on each finished dict (tensors), returns the dict to yield.
    return_mask : add ``mask``: the stored rain mask, or for samples without one the shared
        rain mask of (rainy, clean) (:func:`rainset.image.rain_mask`). In pair mode: add the
        frames' stored foreground masks ``mask_a`` and ``mask_b``.
    pairs : time-lapse pair mode: one item per pair of ``pairs.jsonl``, frames ``m`` and ``n``
        of one segment.
    mask_threshold : threshold (8-bit levels) of the computed rain mask.

    Notes
    -----
    An item holds ``rainy``, ``clean`` ((3, H, W) float32 in [0, 1]), ``mask`` ((1, H, W)
    float32 of 0 / 1, with ``return_mask``), ``id``, ``scene`` and ``labels`` (the record's
    scalar labels; left out when there are none); in pair mode ``frame_a``, ``frame_b``,
    ``mask_a``, ``mask_b`` (with ``return_mask``), ``clean`` (when the segment has pseudo ground
    truth), ``id``, ``a``, ``b``, ``scene``. Absent fields are left out, never None. A
    time-lapse dataset outside pair mode gives its frames with pseudo ground truth as rainy and
    clean. Random crops and flips draw from torch's generator, which the ``DataLoader`` seeds
    per worker.

    Raises
    ------
    ValueError
        ``pairs`` for a paired dataset, or a bad ``crop``.
    InputError
        Nothing to yield (an empty split, a time-lapse dataset without pseudo ground truth
        outside pair mode, frames without masks for ``return_mask`` in pair mode), or at
        loading time an image smaller than ``crop``.
    """

    def __init__(
        self,
        root,
        *,
        split: str | None = "train",
        crop: int | None = None,
        flip: bool | None = None,
        transform=None,
        return_mask: bool = False,
        pairs: bool = False,
        mask_threshold: int = MASK_THRESHOLD,
    ) -> None:
        from rainset.dataset import open_dataset

        super().__init__()
        self.dataset = root if isinstance(root, Dataset) else open_dataset(root)
        if crop is not None and (isinstance(crop, bool) or int(crop) < 1):
            raise ValueError(f"crop must be a positive number of pixels or None, got {crop!r}")
        self.crop = None if crop is None else int(crop)
        self.flip = self.crop is not None if flip is None else bool(flip)
        self.transform = transform
        self.return_mask = bool(return_mask)
        self.pairs = bool(pairs)
        self.mask_threshold = int(mask_threshold)
        ds = self.dataset
        if self.pairs:
            if ds.kind != "timelapse":
                raise ValueError(f"pairs=True needs a time-lapse dataset; {ds.root} is {ds.kind}")
            self._frames = {r["id"]: r for r in ds.samples(split=split)}
            self._records = list(ds.pairs(split=split))
            if self.return_mask:
                bare = [f for f in self._frames.values() if "mask" not in f]
                if bare:
                    raise InputError(
                        f"{ds.root}: {len(bare)} frames have no foreground mask (first: "
                        f"{bare[0]['id']!r}), so return_mask cannot give mask_a and mask_b."
                    )
        elif ds.kind == "timelapse":
            self._records = [
                {**r, "rainy": r["frame"], "mask": None} for r in ds.samples(split=split)
                if isinstance(r.get("clean"), str)
            ]
            if not self._records and any(True for _ in ds.samples(split=split)):
                raise InputError(
                    f"{ds.root}: no frame has pseudo ground truth ('clean'); use pairs=True for "
                    "frame pairs."
                )
        else:
            self._records = list(ds.samples(split=split))
        if not self._records:
            raise InputError(f"{ds.root}: no {'pairs' if self.pairs else 'samples'} in split "
                             f"{split!r}.")

    def __len__(self) -> int:
        return len(self._records)

    def _window(self, h: int, w: int, where: str) -> tuple[slice, slice]:
        if self.crop is None:
            return slice(None), slice(None)
        if h < self.crop or w < self.crop:
            raise InputError(f"{where}: {h}x{w} (HxW) is smaller than the crop {self.crop}.")
        y = int(torch.randint(h - self.crop + 1, ()).item())
        x = int(torch.randint(w - self.crop + 1, ()).item())
        return slice(y, y + self.crop), slice(x, x + self.crop)

    def __getitem__(self, index: int) -> dict:
        ds, rec = self.dataset, self._records[index]
        images: dict[str, np.ndarray] = {}
        if self.pairs:
            a, b = self._frames[rec["a"]], self._frames[rec["b"]]
            images["frame_a"], images["frame_b"] = ds.load(a, "frame"), ds.load(b, "frame")
            if "clean" in a:
                images["clean"] = ds.load(a, "clean")
            if self.return_mask:
                images["mask_a"], images["mask_b"] = ds.load_mask(a), ds.load_mask(b)
            first = ds.path(a["frame"])
        else:
            images["rainy"], images["clean"] = ds.load(rec, "rainy"), ds.load(rec, "clean")
            if self.return_mask:
                if rec.get("mask"):
                    images["mask"] = ds.load_mask(rec)
                else:
                    images["mask"] = rain_mask(images["rainy"], images["clean"],
                                               threshold=self.mask_threshold)
            first = ds.path(rec["rainy"])
        h, w = next(iter(images.values())).shape[:2]
        win = self._window(h, w, str(first))
        do_flip = self.flip and bool(torch.rand(()) < 0.5)
        item: dict = {}
        for key, img in images.items():
            img = img[win]
            if do_flip:
                img = img[:, ::-1]
            item[key] = _chw(img)
        item["id"], item["scene"] = rec["id"], rec["scene"]
        if self.pairs:
            item["a"], item["b"] = rec["a"], rec["b"]
        labels = rec.get("labels")
        if isinstance(labels, dict):
            plain = {k: v for k, v in labels.items()
                     if isinstance(v, (bool, int, float, str)) and v is not None}
            if plain:
                item["labels"] = plain
        return self.transform(item) if self.transform is not None else item


# ----------------------------------------------------------------------------- training objectives


@dataclass(frozen=True)
class PairItem:
    """One frame pair (m != n of one segment) of a time-lapse dataset; paths relative."""

    id: str
    scene: str
    frame_a: str
    frame_b: str
    mask_a: str | None  # the frames' moving-object masks (None: the frame has none)
    mask_b: str | None


def pair_items(dataset: Dataset, *, split: str | None) -> list[PairItem]:
    """The frame pairs of ``pairs.jsonl`` in one split (None: all), for the time-lapse objective.

    Raises
    ------
    InputError
        Not a time-lapse dataset, or a pair names a frame the manifest lacks.
    """
    if dataset.kind != "timelapse":
        raise InputError(
            f"{dataset.root}: the time-lapse objective needs a time-lapse dataset (`rainset "
            f"pairs`); this one is {dataset.kind}."
        )
    frames = {r["id"]: r for r in dataset.samples(split=split)}
    out = []
    for rec in dataset.pairs(split=split):
        try:
            a, b = frames[rec["a"]], frames[rec["b"]]
        except KeyError as exc:
            raise InputError(
                f"{dataset.root}: pair {rec.get('id')!r} names frame {exc.args[0]!r}, which is "
                "not in the manifest's split; run `rainset check`."
            ) from None
        out.append(PairItem(rec["id"], rec["scene"], a["frame"], b["frame"], a.get("mask"),
                            b.get("mask")))
    return out


def pair_test_items(dataset: Dataset) -> list[Item]:
    """The clean test split of a time-lapse dataset trained on its pairs: its test frames with
    pseudo ground truth (:func:`items`), or [] when it has none."""
    try:
        return items(dataset, split="test")
    except InputError:
        return []


class PairPatchSource:
    """Random augmented patches of frame pairs: one window, scale and flip for both frames and
    both moving-object masks (as :class:`PatchSource` cuts a sample), with a frame cache.

    ``patch(rng)`` returns ``(frame_a, frame_b, mask_a, mask_b)``: (crop, crop, 3) uint8 and
    (crop, crop) bool (all False for a frame without a mask).
    """

    def __init__(
        self,
        dataset: Dataset,
        item_list: list[PairItem],
        *,
        crop: int,
        scale: tuple[float, float] = (0.5, 1.0),
        flip: bool = True,
        cache_bytes: int = 2 << 30,
    ) -> None:
        if not item_list:
            raise ValueError("item_list is empty")
        self.dataset = dataset
        self.items = list(item_list)
        self.crop = int(crop)
        self.scale = (float(scale[0]), float(scale[1]))
        self.flip = flip
        self.cache_bytes = int(cache_bytes)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self._cached = 0

    def _frame(self, frame: str, mask: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        hit = self._cache.get(frame)
        if hit is not None:
            return hit
        img = self.dataset.load({"id": frame, "frame": frame}, "frame")
        if img.dtype != np.uint8:
            raise InputError(f"{self.dataset.path(frame)}: training needs 8-bit images.")
        m = None if mask is None else self.dataset.load_mask({"id": frame, "mask": mask})
        entry = (img, m)
        size = img.nbytes + (m.nbytes if m is not None else 0)
        if self._cached + size <= self.cache_bytes:
            self._cache[frame] = entry
            self._cached += size
        return entry

    def patch(self, rng: np.random.Generator):
        it = self.items[int(rng.integers(len(self.items)))]
        fa, ma = self._frame(it.frame_a, it.mask_a)
        fb, mb = self._frame(it.frame_b, it.mask_b)
        if fa.shape != fb.shape:
            raise InputError(
                f"{self.dataset.path(it.frame_a)}: size {fa.shape[:2]} differs from the other "
                f"frame of pair {it.id!r} ({fb.shape[:2]}); run `rainset check`."
            )
        h, w = fa.shape[:2]
        win = _window(rng, h, w, self.crop, self.scale)
        out = [_resize(fa[win], self.crop), _resize(fb[win], self.crop)]
        for m in (ma, mb):
            if m is None:
                out.append(np.zeros((self.crop, self.crop), bool))
            else:
                out.append(_resize_mask(m[win], self.crop))
        if self.flip and rng.random() < 0.5:
            out = [a[:, ::-1] for a in out]
        return tuple(np.ascontiguousarray(a) for a in out)


class DirectionPatchSource(PatchSource):
    """:class:`PatchSource` for the rain-direction loss: each patch also carries the sample's
    stored rain map and its (parallel, perpendicular) direction kernels.

    ``patch(rng)`` returns ``(rainy, clean, mask, rain_map, kernels)``: the three of
    :class:`PatchSource`, the rain map cut the same way ((crop, crop) float32, in units of the
    image range: the 16-bit value times the record's ``rain_map_scale``) and (2, 5, 5) float32
    kernels from the record's ``labels.direction_soft``
    (:func:`rainset.train.losses.direction_kernel_pair`; mirrored with the patch).

    Raises
    ------
    InputError
        An item without a rain map or a direction label (not a ``rainset synth`` sample).
    """

    def __init__(self, dataset: Dataset, item_list: list[Item], **kwargs) -> None:
        super().__init__(dataset, item_list, **kwargs)
        from rainset.streaks import direction_kernels

        self._bank = direction_kernels()
        recs = {r["id"]: r for r in dataset.samples()}
        self._extra: list[tuple[str, float, list]] = []
        for it in self.items:
            rec = recs.get(it.id, {})
            soft = (rec.get("labels") or {}).get("direction_soft")
            if not isinstance(rec.get("rain_map"), str) or not soft:
                raise InputError(
                    f"{dataset.root}: sample {it.id!r} has no "
                    f"{'rain map' if not isinstance(rec.get('rain_map'), str) else 'direction label'}"
                    "; the rain-direction loss needs the rain maps and direction labels of a "
                    "`rainset synth` dataset."
                )
            self._extra.append((rec["rain_map"], float(rec.get("rain_map_scale", 1e-4)), soft))
        self._maps: dict[int, np.ndarray] = {}

    def _rain_map(self, index: int) -> np.ndarray:
        hit = self._maps.get(index)
        if hit is None:
            rel, scale, _ = self._extra[index]
            raw = self.dataset.load({"id": self.items[index].id, "rain_map": rel}, "rain_map")
            hit = (raw[..., 0].astype(np.float32) * scale).astype(np.float32)
            if self._cached + hit.nbytes <= self.cache_bytes:
                self._maps[index] = hit
                self._cached += hit.nbytes
        return hit

    def patch(self, rng: np.random.Generator):
        from rainset.train.losses import direction_kernel_pair

        index = int(rng.integers(len(self.items)))
        rainy, clean, mask = self.load(index)
        rmap = self._rain_map(index)
        h, w = rainy.shape[:2]
        win = _window(rng, h, w, self.crop, self.scale)
        r, c, m = self._cut(rainy, clean, mask, win)
        z = _resize(rmap[win], self.crop)
        flipped = bool(self.flip and rng.random() < 0.5)
        if flipped:
            r, c, m, z = r[:, ::-1], c[:, ::-1], m[:, ::-1], z[:, ::-1]
        kp, kq = direction_kernel_pair(self._extra[index][2], flipped=flipped, kernels=self._bank)
        kernels = np.stack([kp.numpy(), kq.numpy()])
        return tuple(np.ascontiguousarray(a) for a in (r, c, m, z, kernels))
