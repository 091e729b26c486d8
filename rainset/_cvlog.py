"""Keep OpenCV's own log lines (``[ WARN:0@0.1] global grfmt_png.cpp ...``) off stderr while
rainset decodes images: a failure becomes rainset's one-line error naming the file instead.

OpenCV's log level is process-wide; nested and concurrent uses share one count, and the
level the caller had is restored when the last one ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved: int | None = None


@contextlib.contextmanager
def opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's logging for the duration of the block."""
    global _depth, _saved
    try:
        from cv2.utils import logging as cvlog
    except ImportError:  # an OpenCV build without the logging module: nothing to silence
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = cvlog.getLogLevel()
            cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                cvlog.setLogLevel(_saved)
