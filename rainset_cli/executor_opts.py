"""``--executor local|ray``, ``--address`` and ``--staging``: the options every pipeline shares,
and the loop that shows a sharded run's progress (:func:`rainset.executor.run_sharded`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rainset_cli.common import err_console, quiet


def executor_options(f=None, *, workers: bool = False):
    """Add ``--executor``, ``--address`` and ``--staging`` to a pipeline command (and
    ``--workers`` to one that has none: inputs in parallel, and the CPUs of a local Ray)."""
    if f is None:
        return lambda g: executor_options(g, workers=workers)
    if workers:
        f = click.option(
            "--workers", type=click.IntRange(1), default=1, show_default=True,
            help="Inputs processed in parallel (local worker processes, or the CPUs of a local Ray).",
        )(f)  # fmt: skip
    f = click.option(
        "--staging", type=click.Path(file_okay=False, path_type=Path),
        help="With --executor ray: a folder every Ray worker can reach for the shards.  [default: inside -o]",
    )(f)  # fmt: skip
    f = click.option(
        "--address", help="With --executor ray: the cluster, 'auto' or HOST:PORT.  [default: start a "
        "local Ray with --workers CPUs]",
    )(f)  # fmt: skip
    return click.option(
        "--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
        help="local: this machine (--workers processes); ray: one task per input on a Ray cluster, "
        "each writing a shard merged into -o as it finishes.",
    )(f)  # fmt: skip


def check_executor(executor: str, address, staging, review: str | None = None) -> None:
    """Usage errors of the executor options, before anything is written."""
    if executor != "ray":
        for name, value in (("--address", address), ("--staging", staging)):
            if value is not None:
                raise click.BadParameter("only used with --executor ray", param_hint=name)
        return
    if review in ("prompt", "web"):
        raise click.BadParameter(
            f"--review {review} needs a person at this terminal, not a cluster: review on one "
            "machine, then replay the decisions with --review file --decisions FILE --executor ray",
            param_hint="--review",
        )
    from rainset.executor import RAY_INSTALL, ray_available

    if not ray_available():
        raise click.BadParameter(RAY_INSTALL, param_hint="--executor")


def run_tasks(tasks, merger, *, executor: str, workers: int, address, staging, desc: str) -> list:
    """Run ``tasks`` sharded on the chosen executor with a progress bar over tasks; returns
    the outcomes in task order. Failed tasks are printed, one line each, as they end."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rainset.executor import make_executor, run_sharded

    engine = make_executor(executor, workers=workers, address=address)
    outcomes = []
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err_console, transient=True,
                      disable=quiet() or not sys.stderr.isatty()) as bar:  # fmt: skip
            task = bar.add_task(desc, total=len(tasks))
            for oc in run_sharded(tasks, merger, engine, staging=staging):
                outcomes.append(oc)
                if oc.error is not None:
                    err_console.print(f"failed {oc.task.label}: {oc.error}", markup=False)
                bar.advance(task)
    finally:
        engine.close()
    return outcomes


def report_failures(outcomes, out) -> None:
    """The list of failed inputs and exit 1, when any failed."""
    failed = [oc for oc in outcomes if oc.error is not None]
    if not failed:
        return
    err_console.print(f"{len(failed)} input(s) failed; the others were merged into {out}:")
    for oc in failed:
        err_console.print(f"  {oc.task.label}: {oc.error}", markup=False, highlight=False)
    sys.exit(1)
