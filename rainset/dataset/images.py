"""Writing a dataset's images: the extension rule applied, atomically, through an encoder.

An *encoder* is anything with ``submit(fn, *args, **kwargs) -> concurrent.futures.Future``
(the :class:`concurrent.futures.Executor` call): :class:`SyncEncoder` (the default) runs the
write at once in the caller's thread; a thread pool (``rainset._encode``) runs it later, and
:class:`PendingWrites` lets the writer wait for exactly the images a manifest line names
before the line is written, so a record never names an image that is not on disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

from rainset.dataset.layout import image_relpath, relpath_error
from rainset.image import IMAGE_SUFFIXES, write_image

__all__ = ["Encoder", "PendingWrites", "SyncEncoder", "prepare_image", "store_image"]


class Encoder(Protocol):
    """Runs image writes: ``submit`` returns a Future of the write (``Executor.submit``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future: ...


class SyncEncoder:
    """The default encoder: the write happens inside ``submit`` (errors raise from it)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


SYNC = SyncEncoder()


def prepare_image(
    relpath: str,
    image: np.ndarray,
    *,
    image_format: str,
    lossless: bool = False,
    check_suffix: bool = True,
) -> tuple[str, np.ndarray]:
    """Check a stem, apply the extension rule; returns (relative path, array to encode).

    Masks (bool) become 0 / 255 uint8. ``check_suffix=False`` takes a stem that ends in an
    image suffix as it is (one made from a file name: photo ``a.jpg.png`` has stem ``a.jpg``).

    Raises
    ------
    ValueError
        ``relpath`` is not a relative stem inside the dataset, or already has an image suffix.
    """
    msg = relpath_error(relpath)
    if msg:
        raise ValueError(f"relpath {msg}")
    if check_suffix and PurePosixPath(relpath).suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(
            f"relpath must have no image extension (the writer appends one), got {relpath!r}"
        )
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * np.uint8(255)
    return image_relpath(relpath, image_format, arr, lossless=lossless), arr


def store_image(
    root: str | os.PathLike,
    relpath: str,
    image: np.ndarray,
    *,
    image_format: str = "png",
    jpeg_quality: int = 95,
    lossless: bool = False,
    check_suffix: bool = True,
) -> str:
    """Write one image of a dataset under ``root`` as :meth:`DatasetWriter.write_image` does.

    For code that writes a dataset's images outside the writer's process (worker processes:
    prefer :meth:`DatasetWriter.handle`); thread-safe. Returns the relative path with the
    extension used.
    """
    rel, arr = prepare_image(
        relpath, image, image_format=image_format, lossless=lossless, check_suffix=check_suffix
    )
    write_image(Path(root) / rel, arr, quality=jpeg_quality)
    return rel


class PendingWrites:
    """Futures of image writes not yet known to be done, by relative path; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, list[Future]] = {}  # a path written twice: both waited for

    def add(self, rel: str, fut: Future) -> None:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            return
        with self._lock:
            self._futures.setdefault(rel, []).append(fut)

    def wait(self, rels: Iterable[str] | None = None) -> None:
        """Wait for the writes of ``rels`` (all when None); the first failed write raises."""
        with self._lock:
            if rels is None:
                futs = [f for fs in self._futures.values() for f in fs]
                self._futures.clear()
            else:
                futs = [f for r in rels for f in self._futures.pop(r, ())]
        error = None
        for f in futs:  # every one waited for, even after a failure
            try:
                exc = f.exception()
            except CancelledError as cancelled:  # the pool stopped before this write
                exc = cancelled
            if exc is not None and error is None:
                error = exc
        if error is not None:
            raise error

    def __len__(self) -> int:
        with self._lock:
            return sum(map(len, self._futures.values()))
