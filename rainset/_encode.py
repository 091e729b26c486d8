"""Encode and write images on a pool of threads, bounded in memory.

``cv2.imencode`` releases the GIL, so image writes handed to threads run on every core while
the caller decodes, estimates or renders the next item. :class:`EncodePool` is the encoder a
:class:`~rainset.dataset.DatasetWriter` takes (``encoder=``): ``submit(fn, *args)`` returns a
:class:`~concurrent.futures.Future` like :meth:`concurrent.futures.Executor.submit`, and the
writer waits for the images a manifest line names before it writes the line, so a record
never names an image that is not yet on disk (resume safety).

Bounded: at most ``max_pending`` writes are queued or running; ``submit`` blocks until one
finishes (back-pressure), so when the disk is slower than the decoder the pipeline slows
down instead of holding ever more frames in memory. Each pending write holds its array.

Errors: a failed write's exception is in its future (the writer raises it when it waits),
and every later ``submit`` raises it too, so a pipeline stops at the first failure instead of
encoding on. Leaving the context on an exception (``KeyboardInterrupt`` included) cancels the
writes not yet started and waits for the running ones (each is atomic: a file is either
complete or absent, see :mod:`rainset.fsutil`).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = ["EncodePool", "InOrder", "encode_threads"]

T = TypeVar("T")


def encode_threads() -> int:
    """Threads for encoding: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class EncodePool:
    """A bounded thread pool for image writes (an *encoder* of the dataset writer).

    Parameters
    ----------
    threads : encoding threads (default :func:`encode_threads`, one per core).
    max_pending : writes queued or running at once (default ``2 * threads``); ``submit``
        blocks while that many are outstanding. Memory held: about ``max_pending`` images.

    Examples
    --------
    >>> with EncodePool() as enc, DatasetWriter(out, kind="paired", params={}, encoder=enc) as w:
    ...     ...  # doctest: +SKIP
    """

    def __init__(self, threads: int | None = None, *, max_pending: int | None = None) -> None:
        threads = encode_threads() if threads is None else int(threads)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        max_pending = 2 * threads if max_pending is None else int(max_pending)
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.threads = threads
        self.max_pending = max_pending
        self._slots = threading.BoundedSemaphore(max_pending)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rainset-encode")
        # Outstanding writes as a set of tokens: set.add/discard are atomic under the GIL, so
        # the done callback (run on a pool thread) takes no lock that a Ctrl-C or SIGTERM in the
        # main thread could leave held (Python 3.11's `with lock:` is not signal-safe), which
        # would hang the threads' shutdown.
        self._live: set[object] = set()
        self._error: BaseException | None = None
        self._peak = 0
        self._closed = False

    @property
    def error(self) -> BaseException | None:
        """The first exception a write raised, or None."""
        return self._error

    @property
    def outstanding(self) -> int:
        """Writes queued or running now."""
        return len(self._live)

    @property
    def peak(self) -> int:
        """The most writes that were outstanding at once (never more than ``max_pending``)."""
        return self._peak

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` on a pool thread; blocks while ``max_pending`` writes
        are outstanding.

        Raises
        ------
        Exception
            The first failure of an earlier write (the pipeline should stop).
        RuntimeError
            The pool is closed.
        """
        if self._closed:
            raise RuntimeError("the encode pool is closed")
        self._raise_if_failed()
        # Wait for a free slot in short steps, so a failure seen meanwhile stops the caller.
        while not self._slots.acquire(timeout=0.1):
            self._raise_if_failed()
        token = object()
        self._live.add(token)
        self._peak = max(self._peak, len(self._live))
        try:
            fut = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._release(None, token)
            raise
        fut.add_done_callback(lambda f: self._release(f, token))
        return fut

    def _release(self, fut: Future | None, token: object) -> None:
        self._live.discard(token)
        if fut is not None and not fut.cancelled():
            exc = fut.exception()
            if exc is not None and self._error is None:
                self._error = exc
        self._slots.release()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the outstanding writes and stop the threads; ``cancel``: drop the writes
        not yet started. Does not raise a write's failure (its future holds it)."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> EncodePool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)


class InOrder(Generic[T]):
    """Items released in the order they were put, each once the writes it names are done.

    For a pipeline that writes images through a pool and records them afterwards: put each
    record with the futures of its images, add to the manifest what :meth:`ready` releases.
    A failed write raises from :meth:`ready`, and neither its record nor any later one is
    released (no manifest line for an image that is not on disk).
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[T, list[Future]]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: T, futures: Iterable[Future] = ()) -> None:
        self._queue.append((item, list(futures)))

    def ready(self, *, wait: bool = False) -> Iterator[T]:
        """The items at the front whose writes are done (``wait``: every item, waiting)."""
        while self._queue:
            item, futures = self._queue[0]
            if not wait and not all(f.done() for f in futures):
                return
            for f in futures:
                f.result()  # a failed write raises here; the item stays unreleased
            self._queue.popleft()
            yield item
