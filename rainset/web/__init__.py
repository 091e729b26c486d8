"""The review page: a local web front end of :mod:`rainset.review` (build-gt, ``rainset review``).

Needs the ``web`` extra (Starlette and Uvicorn). See ``docs/review.md``.

- :class:`Board`: candidates, images and decisions shared by the build and the page;
- :class:`ReviewServer`: the page on ``127.0.0.1`` (by default) under a per-run token;
- :class:`WebReviewer` and :func:`build_lookahead`: build-gt judged on the page, with inputs
  estimated ahead of the reviewer;
- :func:`dataset_board`: the page on a finished dataset.
"""

from rainset.web.board import Board, FileImages, MemoryImages, ReviewClosed, encode_png, safe_file
from rainset.web.dataset_review import dataset_board
from rainset.web.live import LOOKAHEAD, TierWebReviewer, WebReviewer, build_lookahead

WEB_INSTALL = 'the review page needs the web extra: pip install "rainset[web]"'


def web_available() -> bool:
    """Whether Starlette and Uvicorn can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("starlette", "uvicorn"))


def __getattr__(name):
    if name == "ReviewServer":  # imports nothing of Starlette until asked
        from rainset.web.server import ReviewServer

        return ReviewServer
    raise AttributeError(name)


__all__ = [
    "LOOKAHEAD", "WEB_INSTALL", "Board", "FileImages", "MemoryImages", "ReviewClosed", "ReviewServer",
    "TierWebReviewer", "WebReviewer", "build_lookahead", "dataset_board", "encode_png", "safe_file", "web_available",
]
