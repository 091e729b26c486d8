"""File names rainset can carry into a dataset, and how to show any file name in a message.

A dataset stores names as UTF-8 JSON and ``/``-separated relative paths, so an input whose
name is not valid UTF-8 (bytes that Python keeps as surrogate escapes) or that holds a
backslash cannot become a record; it is refused before anything is written, naming the file.
"""

from __future__ import annotations

import os

from rainset.errors import InputError


def shown(path: str | os.PathLike) -> str:
    """``path`` as printable text: undecodable bytes appear as ``\\xff`` escapes."""
    text = os.fsdecode(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(path: str | os.PathLike) -> bool:
    """True when the name decodes as UTF-8 (it can be written to a manifest)."""
    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_name(path: str | os.PathLike, rel: str | None = None) -> None:
    """Refuse a file name a dataset cannot record.

    Parameters
    ----------
    path : the input file or folder (its whole path is recorded, so all of it must be UTF-8).
    rel : the part of the name that becomes part of a dataset path (an id), where one does;
        it may not hold a backslash.

    Raises
    ------
    InputError
        The name is not valid UTF-8, or holds a backslash; the message names the file.
    """
    if not is_utf8(path):
        raise InputError(
            f"{shown(path)}: the file name is not valid UTF-8, so a dataset cannot record it; "
            "rename the file."
        )
    if rel is not None and "\\" in rel:
        raise InputError(
            f"{shown(path)}: the file name holds a backslash, which dataset paths cannot hold; "
            "rename the file."
        )


def check_id(value: str, param: str, what: str) -> None:
    """Refuse an id (scene or key) that cannot become a relative path inside a dataset.

    Raises
    ------
    ParameterError
        ``value`` is empty, or one of its ``/``-separated parts is empty, ``.`` or ``..``,
        or it holds a backslash; ``param`` is the parameter whose value produced it.
    """
    from rainset.errors import ParameterError

    if "\\" in value or any(part in ("", ".", "..") for part in value.split("/")):
        raise ParameterError(
            param, f"it gives the {what} {value!r}, which cannot name a folder inside a dataset"
        )
