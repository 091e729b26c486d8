"""Shared pieces of the command line: console, progress, option parsing helpers."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import click
from rich.console import Console

T = TypeVar("T")

#: stdout for results, stderr for messages and progress.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def quiet() -> bool:
    """True when the user passed ``-q/--quiet`` to the top-level command."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    return bool(root and root.obj and root.obj.get("quiet"))


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """Wrap an iterator in a tqdm bar on stderr (hidden with ``--quiet`` or off a terminal)."""
    from tqdm import tqdm

    disable = quiet() or not sys.stderr.isatty()
    yield from tqdm(items, total=total, desc=desc, disable=disable, leave=False, unit="it")


def say(message: str) -> None:
    """A status line on stderr, unless ``--quiet``."""
    if not quiet():
        err_console.print(message)
