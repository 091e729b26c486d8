"""Large array allocation backed by transparent huge pages.

Filling a fresh multi-gigabyte frame stack costs one page fault per 4 KiB page, and on virtual
machines whose memory is handed back to the host when idle each fault is expensive. An
anonymous mapping advised for transparent huge pages takes one fault per 2 MiB instead
(measured on the development VM: first fill of a 1080p x 200 stack 1.83 s with ``np.empty``,
0.33 s with this).

Even so, the first touch of fresh memory costs the thread that makes it: 2.5-3 s of CPU to fill
that stack on the development VM under load (0.15 s to overwrite it once touched), whether
the pages are huge or not. :func:`populate_async` moves that cost to a helper thread (Linux's
``MADV_POPULATE_WRITE``, which commits pages without writing to them), so it runs while
frames decode instead of in the loop that copies them in.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import sys
import threading

import numpy as np

#: Below this size plain ``np.empty`` is as fast.
_MIN_BYTES = 64 << 20


def empty_large(shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """Like ``np.empty``; large arrays come from a huge-page-advised anonymous mapping."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if nbytes < _MIN_BYTES or advice is None or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.empty(shape, dtype)
    try:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        buf.madvise(advice)
    except (OSError, ValueError):
        return np.empty(shape, dtype)
    return np.frombuffer(buf, dtype).reshape(shape)


#: Linux 5.14+: fault pages in writable without touching their contents.
_MADV_POPULATE_WRITE = 23
_CHUNK = 32 << 20


def _libc_madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_madvise = _libc_madvise()


def populate_async(array: np.ndarray) -> threading.Event | None:
    """Commit the memory behind ``array`` (C-contiguous) in a daemon thread; returns an event
    that stops it (between 32 MiB chunks), or None where the kernel cannot do it.

    The contents are never written (``MADV_POPULATE_WRITE`` only maps the pages), so the caller
    may fill the array meanwhile. The thread holds a reference to ``array`` until it ends.
    """
    if _madvise is None or not array.flags.c_contiguous or array.nbytes < _CHUNK:
        return None
    page = mmap.PAGESIZE
    start = -(-array.ctypes.data // page) * page
    end = (array.ctypes.data + array.nbytes) // page * page
    stop = threading.Event()

    def run(keep: np.ndarray) -> None:
        for at in range(start, end, _CHUNK):
            if stop.is_set() or _madvise(at, min(_CHUNK, end - at), _MADV_POPULATE_WRITE) != 0:
                return  # stopped, or an older kernel (EINVAL): the writes fault the pages in

    threading.Thread(target=run, args=(array,), name="rainset-populate", daemon=True).start()
    return stop
