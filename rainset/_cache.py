"""Where rainset keeps compiled-kernel caches: the user's cache folder, never the package.

numba's ``cache=True`` writes next to the source file by default, i.e. inside the installed
package. A later ``pip install -e`` then leaves that ``__pycache__`` folder behind, Python imports
it as an empty namespace package, and ``import rainset`` breaks everywhere but the source tree.
So every cached kernel is defined inside :func:`numba_cache_location`, which points numba at
``$RAINSET_CACHE_DIR`` (or ``$XDG_CACHE_HOME/rainset``, ``~/.cache/rainset``; the platform's
cache folder on macOS and Windows) and, when that cannot be written, at a fresh temporary folder.
``NUMBA_CACHE_DIR``, when the user set it, is respected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_fallback: Path | None = None


def user_cache_dir() -> Path:
    """The per-user cache folder for rainset (not created)."""
    if os.environ.get("RAINSET_CACHE_DIR"):
        return Path(os.environ["RAINSET_CACHE_DIR"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rainset"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def _own_private(folder: Path) -> bool:
    """``folder`` exists or was made by us, is ours and is writable by nobody else.

    numba's cache holds pickled code, so a folder in the shared temp dir that someone else could
    have prepared is never used.
    """
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        return False
    return _writable(folder)


def numba_cache_dir() -> Path:
    """A writable folder for numba's kernel cache, outside the installed package."""
    global _fallback
    preferred = user_cache_dir() / "numba"
    if _writable(preferred):
        return preferred
    if _fallback is None or not _writable(_fallback):
        # One folder per user in the temp dir, reused by later runs (no pile of temp folders);
        # a fresh one only when that name is taken by someone else.
        uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
        shared = Path(tempfile.gettempdir()) / f"rainset-numba-{uid}"
        _fallback = shared if _own_private(shared) else Path(tempfile.mkdtemp(prefix="rainset-numba-"))
    return _fallback


@contextlib.contextmanager
def numba_cache_location() -> Iterator[None]:
    """Define ``cache=True`` kernels inside this block to cache them in :func:`numba_cache_dir`.

    numba picks a kernel's cache folder when the decorator runs; the global setting is restored
    afterwards so a caller's own numba code is not redirected.
    """
    from numba.core import config

    if os.environ.get("NUMBA_CACHE_DIR"):
        yield
        return
    saved = config.CACHE_DIR
    config.CACHE_DIR = str(numba_cache_dir())
    try:
        yield
    finally:
        config.CACHE_DIR = saved


def njit_cached(fn):
    """``@njit(nogil=True, cache=True)`` with the cache in the user's folder, not the package."""
    from numba import njit

    with numba_cache_location():
        return njit(nogil=True, cache=True)(fn)
