"""Reading a dataset: :func:`open_dataset` and :class:`Dataset`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rainset.dataset.jsonl import iter_jsonl
from rainset.dataset.layout import manifest_path, meta_path, pairs_path, relpath_error
from rainset.dataset.rules import SPLITS, SplitRule, _meta_errors
from rainset.errors import FormatError
from rainset.image import read_image

logger = logging.getLogger("rainset.dataset")


def load_meta(root: str | os.PathLike) -> dict:
    """The parsed ``rainset.json`` of ``root``, checked.

    Raises
    ------
    FormatError
        Missing, not JSON, or not a valid description (of a supported version).
    """
    root = Path(root)
    path = meta_path(root)
    if not path.is_file():
        raise FormatError(f"{path} not found: {root} is not a rainset dataset.")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc}); run `rainset check`.") from None
    errs, _ = _meta_errors(meta)
    if errs:
        raise FormatError(f"{path}: {errs[0]}.")
    return meta


class Dataset:
    """A rainset dataset opened for reading (see :func:`open_dataset`).

    Attributes
    ----------
    root : Path of the dataset folder.
    meta : dict, the parsed ``rainset.json``.
    kind : ``"paired"`` or ``"timelapse"``.
    """

    def __init__(self, root: Path, meta: dict) -> None:
        self.root = root
        self.meta = meta
        self.kind: str = meta["kind"]
        self._index: dict[str, dict] | None = None

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, kind={self.kind!r})"

    @property
    def split_rule(self) -> SplitRule:
        return SplitRule.from_json(self.meta["split_rule"])

    @staticmethod
    def _check_filter(split: str | None) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")

    def _records(self, path: Path, split: str | None, scene: str | None) -> Iterator[dict]:
        self._check_filter(split)
        for _, rec in iter_jsonl(path):
            if (split is None or rec.get("split") == split) and (
                scene is None or rec.get("scene") == scene
            ):
                yield rec

    def samples(self, *, split: str | None = None, scene: str | None = None) -> Iterator[dict]:
        """Manifest records (samples, or frames of a timelapse dataset), in file order."""
        yield from self._records(manifest_path(self.root), split, scene)

    def pairs(self, *, split: str | None = None, scene: str | None = None) -> Iterator[dict]:
        """Records of ``pairs.jsonl``; none for a paired dataset."""
        yield from self._records(pairs_path(self.root), split, scene)

    def scenes(self) -> list[str]:
        """Sorted scene ids present in the manifest."""
        return sorted({rec["scene"] for rec in self.samples()})

    def sample(self, sample_id: str) -> dict:
        """The record with this id (a frame, for resolving a pair's ``a`` and ``b``)."""
        if self._index is None:
            self._index = {rec["id"]: rec for rec in self.samples()}
        try:
            return self._index[sample_id]
        except KeyError:
            raise KeyError(f"{manifest_path(self.root)} has no record {sample_id!r}") from None

    def path(self, relpath: str) -> Path:
        """Absolute path of a record's relative path."""
        msg = relpath_error(relpath)
        if msg:
            raise ValueError(f"relpath {msg}")
        return self.root / relpath

    def _ref(self, sample: dict, key: str) -> str:
        value: Any = sample
        for part in key.split("."):  # "tiers.5x5"
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"record {sample.get('id')!r} has no {key!r}")
            value = value[part]
        if not isinstance(value, str):
            raise ValueError(f"record {sample.get('id')!r}: {key!r} is not an image path")
        return value

    def load(self, sample: dict, key: str) -> np.ndarray:
        """Read the image ``sample[key]`` (``"tiers.<name>"`` for a tier).

        Returns
        -------
        image : (H, W, 3) uint8 (or uint16) RGB ndarray; single-channel files come back with
            the value repeated on three channels.
        """
        return read_image(self.path(self._ref(sample, key)))

    def load_mask(self, sample: dict, key: str = "mask") -> np.ndarray:
        """Read a mask as an (H, W) bool ndarray (stored 0 / 255; true above 127)."""
        return self.load(sample, key)[..., 0] > 127


def open_dataset(root: str | os.PathLike) -> Dataset:
    """Open a dataset for reading.

    Raises
    ------
    FormatError
        ``rainset.json`` is missing, invalid, or from a newer format version.
    """
    root = Path(root)
    meta = load_meta(root)
    if not meta.get("complete", False):
        logger.warning("%s: the dataset is unfinished (its writer did not close)", root)
    return Dataset(root, meta)
