"""The command line's view of a pipeline call: its progress events as a bar and status lines.

A :class:`Show` is the ``progress`` callback of :mod:`rainset.pipelines` calls; ``lines`` maps
an event kind to a function printing that event's line (per command).
"""

from __future__ import annotations

import sys

from rainset_cli.common import err_console, quiet, say


class Show:
    """A transient rich bar on stderr (hidden with ``--quiet``, off a terminal, or ``bar=False``)
    fed by pipeline events; ``lines`` prints per-kind status lines."""

    def __init__(self, desc: str, *, lines: dict | None = None, bar: bool = True) -> None:
        self.desc = desc
        self.lines = lines or {}
        self.enabled = bar and not quiet() and sys.stderr.isatty()
        self._bar = None
        self._task = None

    def __enter__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=err_console, transient=True,
                             disable=not self.enabled)  # fmt: skip
        self._bar.__enter__()
        self._task = self._bar.add_task(self.desc, total=None)
        return self

    def __exit__(self, *exc):
        self._bar.__exit__(*exc)
        return False

    def __call__(self, ev) -> None:
        if ev.kind == "start":
            self._bar.update(self._task, total=ev.total, completed=0)
        elif ev.kind in ("written", "skipped", "task"):
            self._bar.update(self._task, completed=ev.done)
        if ev.kind == "task" and ev.message:
            err_console.print(f"failed {ev.scene}: {ev.message}", markup=False)
        line = self.lines.get(ev.kind)
        if line is not None:
            line(ev, self)
        elif ev.kind == "note":
            say(f"[yellow]note[/] {ev.scene + ': ' if ev.scene else ''}{ev.message}")

    def describe(self, text: str) -> None:
        """Change the bar's description."""
        self._bar.update(self._task, description=text)


def report_failed(result, out, *, merged: bool) -> None:
    """The failed inputs of a result, and exit 1, when any failed."""
    if not result.failed:
        return
    if merged:
        err_console.print(f"{len(result.failed)} input(s) failed; the others were merged into {out}:")
        for f in result.failed:
            err_console.print(f"  {f.what}: {f.reason}", markup=False, highlight=False)
    else:
        err_console.print(f"{len(result.failed)} input(s) failed; the others were written to {out}.")
    sys.exit(1)
