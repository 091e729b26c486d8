"""Shared pieces of the command line: console, progress, option parsing helpers."""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import click
from rich.console import Console

from rainset.options import OutputOptions

T = TypeVar("T")


class FiniteFloat(click.FloatRange):
    """A float option that refuses ``nan`` and ``inf`` (click's own ranges let them pass).

    Every float option of every command uses it; ``FiniteFloat()`` is any finite number,
    ``FiniteFloat(min=0, min_open=True)`` a positive one, and so on (as :class:`click.FloatRange`).
    """

    name = "float"

    def convert(self, value, param, ctx):
        rv = click.types.FLOAT.convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(rv, param, ctx)


def finite_floats(value: str, option: str) -> tuple[float, ...]:
    """Comma-separated finite numbers of a list option (``--radii 0.2,0.4``); at least one."""
    try:
        out = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(
            f"expected numbers separated by commas, got {value!r}", param_hint=option
        ) from None
    if not out:
        raise click.BadParameter("give at least one value", param_hint=option)
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a finite number", param_hint=option)
    return out


def check_test_scenes(named: Iterable[str], scenes: Iterable[str], where: object) -> None:
    """Refuse ``--test-scenes`` entries that name no scene of the run (a usage error).

    ``scenes`` are the run's scene ids; ``where`` names the input in the message. The check is
    the library's (:func:`rainset.pipelines._common.check_test_scenes`), said as click says it.
    """
    from rainset.errors import ParameterError
    from rainset.pipelines._common import check_test_scenes as check

    try:
        check(named, scenes, where)
    except ParameterError as exc:
        raise click.BadParameter(exc.message, param_hint="--test-scenes") from None


#: stdout for results, stderr for messages and progress.
#: soft_wrap: a long line stays one line (rich would break it at 80 columns off a terminal).
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class RecordingGroup(click.Group):
    """A click group that remembers the innermost command it resolved.

    The top-level error handler uses it to name the flag behind a library ``ParameterError``.
    Nested groups (``rainset import``) use this class too.
    """

    def resolve_command(self, ctx: click.Context, args):
        name, command, rest = super().resolve_command(ctx, args)
        root = ctx.find_root()
        if root.obj is None:  # resolved before the group's callback makes it
            root.obj = {}
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


def require_dataset(dataset) -> None:
    """Refuse a DATASET argument that is no rainset dataset (a usage error naming DATASET)."""
    from rainset.dataset import META_NAME, is_dataset

    if not is_dataset(dataset):
        raise click.BadParameter(f"{dataset} is not a rainset dataset (no {META_NAME})", param_hint="DATASET")


def out_path(ctx: click.Context, param: click.Parameter, value):
    """Callback of every ``-o/--out``: refuse a path below a file; remember it for messages.

    (A path that is itself a file is refused by ``click.Path(file_okay=False)``.)
    """
    if value is None:
        return value
    from pathlib import Path

    for parent in Path(value).parents:
        if parent.is_dir():
            break
        if parent.exists() or parent.is_symlink():
            raise click.BadParameter(f"{value} lies below {parent}, which is not a folder", ctx, param)
    root = ctx.find_root()
    if isinstance(root.obj, dict):
        root.obj["out"] = value
    return value


def show_file(path) -> bool:
    """Open ``path`` with the system viewer; say so on stderr when none could (False)."""
    if not path:
        err_console.print("No preview to open for this one.", markup=False)
        return False
    problem = viewer_problem()
    if problem is None:
        try:
            if click.launch(str(path)) != 0:
                problem = "the system viewer did not start"
        except OSError as exc:
            problem = f"the system viewer did not start ({exc.strerror or exc})"
    if problem is not None:
        err_console.print(f"Cannot open {path}: {problem}; open it yourself.", markup=False)
        return False
    return True


def viewer_problem() -> str | None:
    """Why no file can be shown in a viewer here (None when one can)."""
    if sys.platform.startswith("win"):
        return None
    tool = "open" if sys.platform == "darwin" else "xdg-open"
    if shutil.which(tool) is None:
        return f"no viewer ({tool} is not installed)"
    if tool == "xdg-open" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display to show it on (DISPLAY is not set)"
    return None


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

    viewer_failed = False

    def review(c) -> Decision:
        nonlocal viewer_failed
        err_console.print(describe(c))
        if open_viewer and c.preview and not viewer_failed:
            viewer_failed = not show_file(c.preview)
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
                show_file(c.preview)
            else:
                err_console.print(f"Unknown answer {answer!r}.")

    return review


def format_options(help_text: str, *, jpeg_quality: bool = True):
    """``--format png|jpg`` (and ``--jpeg-quality``) for commands that write a dataset."""

    def decorate(f):
        if jpeg_quality:
            f = click.option("--jpeg-quality", type=click.IntRange(1, 100), default=OutputOptions.jpeg_quality,
                             show_default=True)(f)  # fmt: skip
        return click.option(
            "--format", "image_format", type=click.Choice(["png", "jpg"]), default=OutputOptions.image_format,
            show_default=True, help=help_text,
        )(f)

    return decorate


def split_options(noun: str):
    """``--test-scenes`` and ``--test-fraction``: the scene split of a written dataset."""

    def decorate(f):
        f = click.option(
            "--test-fraction", type=FiniteFloat(0, 1), default=OutputOptions.test_fraction, show_default=True,
            help=f"Without --test-scenes: share of {noun}s (by a stable hash of the id) in the test split.",
        )(f)
        return click.option(
            "--test-scenes", default=",".join(OutputOptions.test_scenes),
            help=f"Comma-separated {noun}s for the test split."
        )(f)

    return decorate
