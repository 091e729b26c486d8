"""The writer's picklable handle, for worker processes.

One process owns a dataset's :class:`~rainset.dataset.DatasetWriter` (the manifest, the
lock, the counts). Worker processes get :meth:`DatasetWriter.handle`: a small frozen object
that writes images exactly as the writer would (same paths, same extension rule, same
encoder settings) and, connected to a channel with :meth:`WriterHandle.connect`, sends
records and sources back for the owner to add (:meth:`DatasetWriter.receive`).

Messages are ``(kind, payload)`` with kind ``"record"`` (the record dict) or ``"source"``
(the keyword arguments of :meth:`DatasetWriter.add_source`, with ``path``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rainset.dataset.images import store_image
from rainset.dataset.layout import image_relpath

__all__ = ["WorkerWriter", "WriterHandle"]

#: The message kinds a :class:`WorkerWriter` sends.
MESSAGES = ("record", "source")


@dataclass(frozen=True)
class WriterHandle:
    """What a worker process needs to write a dataset's images (picklable).

    Attributes
    ----------
    root : the dataset folder, as a string.
    kind : the dataset kind.
    image_format, jpeg_quality : as the writer's.
    known : ids the dataset already holds (those the worker may skip); see
        :meth:`DatasetWriter.handle`.
    """

    root: str
    kind: str
    image_format: str
    jpeg_quality: int
    known: frozenset[str] = field(default_factory=frozenset)

    def image_relpath(self, stem: str, image: Any = None, *, lossless: bool = False) -> str:
        """The relative path :meth:`write_image` returns for ``stem`` (``image=None``: RGB)."""
        return image_relpath(stem, self.image_format, image, lossless=lossless)

    def write_image(
        self, relpath: str, image: np.ndarray, *, lossless: bool = False, check_suffix: bool = True
    ) -> str:
        """Write an image as :meth:`DatasetWriter.write_image` does, at once; thread-safe.
        ``check_suffix``: see :func:`~rainset.dataset.images.prepare_image`."""
        return store_image(
            self.root, relpath, image, image_format=self.image_format,
            jpeg_quality=self.jpeg_quality, lossless=lossless, check_suffix=check_suffix,
        )  # fmt: skip

    def connect(self, send: Callable[[str, Any], None]) -> WorkerWriter:
        """A writer for this worker: images written here, records and sources sent with
        ``send(kind, payload)`` to the process that owns the dataset."""
        return WorkerWriter(self, send)


class WorkerWriter:
    """The writer's interface inside a worker process (see :class:`WriterHandle`).

    ``has`` answers from the ids known when the handle was made plus those added here;
    ``add`` and ``add_source`` send; the owner's :meth:`DatasetWriter.receive` applies.
    """

    def __init__(self, handle: WriterHandle, send: Callable[[str, Any], None]) -> None:
        self.handle = handle
        self.root = Path(handle.root)
        self.kind = handle.kind
        self.image_format = handle.image_format
        self.jpeg_quality = handle.jpeg_quality
        self._known = set(handle.known)
        self._send = send

    def ids(self) -> frozenset[str]:
        return frozenset(self._known)

    def has(self, sample_id: str) -> bool:
        return sample_id in self._known

    def image_relpath(self, stem: str, image: Any = None, *, lossless: bool = False) -> str:
        return self.handle.image_relpath(stem, image, lossless=lossless)

    def write_image(self, relpath: str, image: np.ndarray, *, lossless: bool = False) -> str:
        return self.handle.write_image(relpath, image, lossless=lossless)

    def add(self, record: dict, *, sync: bool = True) -> None:
        """Send a record to the owner (its images are written: the owner checks they exist)."""
        if not isinstance(record, dict):
            raise ValueError(f"record must be a dict, got {type(record).__name__}")
        self._known.add(record["id"])
        self._send("record", dict(record))

    def add_source(
        self, path, *, note: str, sha256: str | None = None, scene: str | None = None
    ) -> None:
        self._send("source", {"path": str(path), "note": note, "sha256": sha256, "scene": scene})
