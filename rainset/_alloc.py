"""Large array allocation for frame stacks: small pages, committed ahead by a helper thread.

Filling a fresh 1.2 GB frame stack (1080p x 200) costs the thread that first writes it, and on
virtual machines that hand free memory back to their host (free page reporting, a balloon)
that first write is where the host backs the memory again. Guest Linux reports only free
blocks of 2 MiB and more, and a transparent huge page is cut from exactly such a block, so a
huge-page stack is always backed afresh; 4 KiB pages come first from the smaller free fragments
that were never reported. On the development VM (Firecracker, 8 h up, in the same minutes,
alternating, 5 s apart) the first fill of 1.2 GB took 3.2-4.0 s of CPU advised for huge pages
(``np.empty``, which numpy advises so, 2.3-4.2 s) and 0.5-1.7 s advised against them, and
``build-gt --write clean`` on the 1080p x 200 clip 6.3-8.7 s against 3.6-5.9 s (system time
3.5-4.0 s against 1.0-1.4 s); the estimator reads either stack equally fast. Where no memory
goes back to a host the difference is the page faults alone (a few tenths of a second for
1.2 GB). So :func:`empty_large` maps the stack with ``MADV_NOHUGEPAGE``. (An earlier release
advised huge pages, measured then as faster on the same VM: 0.33 s against 1.83 s. The
measurement above, interleaved, reverses it; ``benchmarks/bench_buildgt.py`` shows it.)

Even so, the first touch of fresh memory costs the thread that makes it, and
:func:`populate_async` moves that cost to a helper thread (Linux's ``MADV_POPULATE_WRITE``,
which commits pages without writing to them), so it runs while frames decode instead of in
the loop that copies them in.
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
    """Like ``np.empty``; large arrays come from an anonymous mapping advised against huge
    pages (see the module notes)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
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
