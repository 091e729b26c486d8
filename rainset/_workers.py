"""Worker processes that never outlive the process that started them.

A :class:`concurrent.futures.ProcessPoolExecutor` worker whose parent is killed (``kill -9``)
keeps running its task, writing files, then waits forever: nothing tells it the parent is
gone. :func:`worker_pool` starts each worker with a watchdog thread that polls the parent's
pid and ends the worker as soon as it changes, and, when the parent leaves the pool on an
exception (Ctrl-C, SIGTERM), terminates the workers instead of waiting for their queued tasks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

#: How often a worker checks that its parent is alive (seconds).
POLL_S = 0.25

_active: set[ProcessPoolExecutor] = set()  # pools of this process not yet shut down


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: stop writing now, without cleanup


def _init_worker(initializer, initargs) -> None:
    # The parent decides when to stop (it terminates its workers on Ctrl-C or SIGTERM); a
    # handler inherited from it (SIGTERM -> KeyboardInterrupt) would print tracebacks here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    threading.Thread(target=_watch, args=(parent,), name="rainset-watchdog", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(workers: int, *, initializer=None, initargs=()) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers exit when this process dies.

    On a normal exit the pool is shut down and waited for; on an exception (including
    KeyboardInterrupt) queued tasks are cancelled and running workers terminated at once.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(initializer, initargs)
    )
    _active.add(pool)
    try:
        yield pool
    except BaseException:
        terminate(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        _active.discard(pool)


def terminate_all() -> None:
    """Terminate the workers of every pool still open (for an interrupt that reached the
    caller while a generator holding a pool was suspended)."""
    for pool in list(_active):
        terminate(pool)
        _active.discard(pool)


def terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel queued tasks and end the pool's worker processes without waiting for them."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)
