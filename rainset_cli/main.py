"""The ``rainset`` click group: global options, error handling, command registration.

Errors a user can fix (a :class:`rainset.RainsetError`) become one line on stderr and exit
code 1; usage errors exit with 2 naming the option; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys

import click

import rainset
from rainset.errors import ParameterError, RainsetError
from rainset_cli.common import RecordingGroup


def flag_for(command: click.Command | None, param: str) -> str:
    """The command-line spelling of a library parameter: the option whose name is ``param``.

    A command may map library names to its own in a ``library_params`` dict attribute (e.g.
    ``{"threshold": "auto_threshold"}``); otherwise ``max_shift`` becomes ``--max-shift``.
    """
    if command is not None:
        param = getattr(command, "library_params", {}).get(param, param)
        for p in command.params:
            if p.name == param:
                if isinstance(p, click.Option):
                    longs = [o for o in p.opts if o.startswith("--")]
                    return (longs or p.opts)[0]
                return p.human_readable_name
    return "--" + param.replace("_", "-")


class _Group(RecordingGroup):
    """A click group that turns library errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RainsetError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except ParameterError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            command = (ctx.obj or {}).get("leaf_command")
            click.echo(f"Error: Invalid value for '{flag_for(command, exc.param)}': {exc.message}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted; rerun the same command to resume.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(rainset.__version__, prog_name="rainset")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """rainset: build deraining datasets people can trust."""
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, quiet=quiet)
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def _register() -> None:
    # Each command lives in its own module; importing one imports no heavy dependency.
    from rainset_cli import inspect_cmds

    for command in inspect_cmds.commands:
        cli.add_command(command)
    for name in ("buildgt_cmd", "pairs_cmd", "synth_cmd", "train_cmd"):
        try:
            mod = __import__(f"rainset_cli.{name}", fromlist=["commands"])
        except ModuleNotFoundError as exc:
            if exc.name != f"rainset_cli.{name}":
                raise
            continue
        for command in mod.commands:
            cli.add_command(command)


_register()
