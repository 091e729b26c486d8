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


class RecordingGroup(click.Group):
    """A click group that remembers the innermost command it resolved.

    The top-level error handler uses it to name the flag behind a library ``ParameterError``.
    Nested groups (``rainset import``) use this class too.
    """

    def resolve_command(self, ctx: click.Context, args):
        name, command, rest = super().resolve_command(ctx, args)
        root = ctx.find_root()
        if isinstance(root.obj, dict):
            root.obj["leaf_command"] = command
        return name, command, rest


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


def review_mode(review: str | None, decisions) -> str:
    """The review mode to use: ``prompt`` by default on a terminal; usage errors otherwise."""
    if review is None:
        if not sys.stdin.isatty():
            raise click.BadParameter(
                "no terminal to ask in: choose --review accept, auto or file", param_hint="--review"
            )
        review = "prompt"
    if review == "file" and decisions is None:
        raise click.BadParameter("--review file needs --decisions FILE", param_hint="--decisions")
    return review


def make_reviewer(review: str, *, prompt, decisions=None, auto_threshold: float | None = None):
    """The reviewer callable for a review mode (``prompt`` is the terminal front end)."""
    from rainset.review import accept_reviewer, auto_reviewer, file_reviewer

    if review == "prompt":
        return prompt
    if review == "accept":
        return accept_reviewer
    if review == "auto":
        return auto_reviewer(auto_threshold)
    return file_reviewer(decisions)


def prompt_reviewer(describe, *, open_viewer: bool, more: str, reject: str, at_limit: str):
    """Terminal front end shared by the review loops: accept, more, reject (with a reason), open.

    Parameters
    ----------
    describe : function from a candidate to the rich-markup lines shown before the question.
    open_viewer : open each sheet with the system viewer as it is shown.
    more, reject : labels of the "more" and "reject" answers (e.g. "[m]ore frames").
    at_limit : message when "more" cannot be granted; ``{limit}`` is the candidate's limit.
    """
    from rainset.review import Decision

    def review(c) -> Decision:
        err_console.print(describe(c))
        if open_viewer and c.preview:
            click.launch(str(c.preview))
        grow = f"{more}, " if c.can_grow else ""
        while True:
            answer = click.prompt(
                f"[a]ccept, {grow}{reject}, [o]pen preview", default="a", err=True
            ).strip().lower()
            if answer in ("a", "accept"):
                return Decision("accept")
            if answer in ("m", "more"):
                if c.can_grow:
                    return Decision("more")
                err_console.print(at_limit.format(limit=c.grow_limit))
            elif answer in ("r", "reject"):
                return Decision("reject", click.prompt("reason", default="", err=True, show_default=False))
            elif answer in ("o", "open"):
                click.launch(str(c.preview))
            else:
                err_console.print(f"Unknown answer {answer!r}.")

    return review


def format_options(help_text: str, *, jpeg_quality: bool = True):
    """``--format png|jpg`` (and ``--jpeg-quality``) for commands that write a dataset."""

    def decorate(f):
        if jpeg_quality:
            f = click.option("--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True)(f)
        return click.option(
            "--format", "image_format", type=click.Choice(["png", "jpg"]), default="png",
            show_default=True, help=help_text,
        )(f)

    return decorate


def split_options(noun: str):
    """``--test-scenes`` and ``--test-fraction``: the scene split of a written dataset."""

    def decorate(f):
        f = click.option(
            "--test-fraction", type=click.FloatRange(0, 1), default=0.2, show_default=True,
            help=f"Without --test-scenes: share of {noun}s (by a stable hash of the id) in the test split.",
        )(f)
        return click.option(
            "--test-scenes", default="", help=f"Comma-separated {noun}s for the test split."
        )(f)

    return decorate
