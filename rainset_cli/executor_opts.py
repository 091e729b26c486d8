"""``--executor local|ray``, ``--address`` and ``--staging``: the options every pipeline shares
(the sharded runs themselves are the library's: :mod:`rainset.pipelines`)."""

from __future__ import annotations

from pathlib import Path

import click

from rainset.options import RunOptions


def executor_options(f=None, *, workers: bool = False):
    """Add ``--executor``, ``--address`` and ``--staging`` to a pipeline command (and
    ``--workers`` to one that has none: inputs in parallel, and the CPUs of a local Ray)."""
    if f is None:
        return lambda g: executor_options(g, workers=workers)
    if workers:
        f = click.option(
            "--workers", type=click.IntRange(1), default=RunOptions.workers, show_default=True,
            help="Inputs processed in parallel (local worker processes, or the CPUs of a local Ray).",
        )(f)  # fmt: skip
    f = click.option(
        "--staging", type=click.Path(file_okay=False, path_type=Path), default=RunOptions.staging,
        help="With --executor ray: a folder every Ray worker can reach for the shards.  [default: inside -o]",
    )(f)  # fmt: skip
    f = click.option(
        "--address", default=RunOptions.address, help="With --executor ray: the cluster, 'auto' or HOST:PORT.  [default: start a "
        "local Ray with --workers CPUs]",
    )(f)  # fmt: skip
    return click.option(
        "--executor", type=click.Choice(["local", "ray"]), default=RunOptions.executor, show_default=True,
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
