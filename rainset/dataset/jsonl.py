"""The one JSONL reader (and line writer) of rainset: one JSON object a line, ``\\n``-ended.

Three ways to read, for three callers:

- :func:`iter_jsonl` streams ``(line number, object)``; a torn last line (no newline: a write
  a crash cut short) is skipped with a warning, any other bad line is a :class:`FormatError`.
  Readers of a dataset, and of any append-only log (a ledger), use it.
- :func:`read_jsonl` is :func:`iter_jsonl` as a list of objects.
- :func:`scan_jsonl` reads a file whole and reports every bad line instead of raising, with
  the byte offset where the last line starts; ``check`` and the writer's resume use it.

:func:`dumps` is the one way a record becomes a line (UTF-8, no NaN, compact).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rainset.errors import FormatError

logger = logging.getLogger(__name__)

__all__ = ["JsonlScan", "dumps", "iter_jsonl", "read_jsonl", "scan_jsonl"]


@dataclass
class JsonlScan:
    """A JSONL file read whole: good objects, bad lines, and where its last line starts."""

    records: list[tuple[int, Any]]
    errors: list[tuple[int, str]]
    n_lines: int
    last_start: int  # byte offset of the last line
    newline_end: bool  # the file ends with "\n" (or is empty)


def scan_jsonl(path: str | os.PathLike) -> JsonlScan:
    """Every line of ``path``: ``(line number, parsed value)`` and ``(line number, why)``."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    newline_end = lines[-1] == b""
    if newline_end:
        lines.pop()
    records, errors, offset, last_start = [], [], 0, 0
    for i, raw in enumerate(lines, start=1):
        last_start = offset
        offset += len(raw) + 1
        try:
            records.append((i, json.loads(raw)))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            reason = "empty line" if not raw.strip() else f"not valid JSON ({exc})"
            errors.append((i, reason))
    return JsonlScan(records, errors, len(lines), last_start, newline_end)


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSONL file; a torn last line (no newline) is skipped; a
    missing file yields nothing.

    Raises
    ------
    FormatError
        A line other than a torn last one is not valid JSON, or not an object.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                if not raw.endswith(b"\n"):
                    logger.warning("%s: skipping unfinished last line %d", path, lineno)
                    return
                raise FormatError(
                    f"{path}: line {lineno} is not valid JSON ({exc}); run `rainset check`."
                ) from None
            if not isinstance(obj, dict):
                raise FormatError(f"{path}: line {lineno} is not a JSON object.")
            yield lineno, obj


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The objects of a JSONL file, as :func:`iter_jsonl` reads them."""
    return [obj for _, obj in iter_jsonl(path)]


def dumps(rec: dict) -> str:
    """One record as a JSONL line (without the newline).

    Raises
    ------
    ValueError
        The record holds something JSON cannot represent (NaN, a set, an array).
    """
    try:
        return json.dumps(rec, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record is not JSON-serialisable: {exc}") from None
