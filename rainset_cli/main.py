"""The ``rainset`` click group: global options, error handling, command registration.

Errors a user can fix (a :class:`rainset.RainsetError`) become one line on stderr and exit
code 1; usage errors exit with 2 naming the option; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import atexit
import errno
import gc
import logging
import re
import sys

import click

import rainset
from rainset.errors import ParameterError, RainsetError
from rainset.pathnames import shown
from rainset_cli.common import RecordingGroup

# At exit the interpreter's last garbage collections walk every live object (numba's loaded
# kernels make that ~0.3 s, a tenth of a short build-gt); the command is done by then, so the
# objects are moved out of those passes (issue 14). Handlers registered after this one
# (numba's own) still run first.
atexit.register(gc.freeze)


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


def _option(command: click.Command | None, param: str) -> click.Parameter | None:
    if command is None:
        return None
    param = getattr(command, "library_params", {}).get(param, param)
    return next((p for p in command.params if p.name == param), None)


def _commands(group: click.Command) -> list[click.Command]:
    if isinstance(group, click.Group):
        return [c for sub in group.commands.values() for c in _commands(sub)]
    return [group]


def with_flags(message: str, command: click.Command | None) -> str:
    """A library message with its parameter names (written ```name```) as flags: the command's
    own, else the option of that name of another command (``test_scenes`` of a dataset that
    validate reads is build-gt's ``--test-scenes``), else the bare name."""

    def flag(m: re.Match) -> str:
        name = m.group(1)
        if _option(command, name) is not None:
            return flag_for(command, name)
        for other in _commands(cli):
            if _option(other, name) is not None:
                return flag_for(other, name)
        return name

    return re.sub(r"`([a-z][a-z0-9_]*)`", flag, message)


def one_line(message: str) -> str:
    """A message as one line: its line breaks become spaces."""
    return " ".join(message.split())


def os_error_line(exc: OSError, out: object = None) -> str:
    """One line for a failed read or write: what went wrong and with which file.

    The error and the ones it was raised while handling are searched for a file name (the
    innermost first); without one, ``out`` (the command's output) is named. A full disk,
    which surfaces as several chained errors, is said once as such.
    """
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    errors = [e for e in chain if isinstance(e, OSError)]
    named = next((e for e in reversed(errors) if e.filename), None)
    where = shown(named.filename) if named is not None else (shown(out) if out else None)
    # numpy's tofile reports a short write as "N requested and M written", without an errno
    if any(e.errno == errno.ENOSPC or " requested and " in str(e) for e in errors):
        return f"no space left on device while writing {where or 'the output'}."
    if any(e.errno == errno.EDQUOT for e in errors):
        return f"disk quota exceeded while writing {where or 'the output'}."
    first = named or errors[-1]
    reason = first.strerror or str(first)
    reason = reason[:1].lower() + reason[1:]
    return f"{where}: {reason}." if where else f"{reason}."


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.obj and ctx.obj.get("debug"))


class _Group(RecordingGroup):
    """A click group that turns library errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RainsetError as exc:
            if _debug(ctx):
                raise
            command = (ctx.obj or {}).get("leaf_command")
            click.echo(f"Error: {one_line(with_flags(str(exc), command))}", err=True)
            sys.exit(1)
        except ParameterError as exc:
            if _debug(ctx):
                raise
            command = (ctx.obj or {}).get("leaf_command")
            message = one_line(with_flags(exc.message, command))
            click.echo(f"Error: Invalid value for '{flag_for(command, exc.param)}': {message}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, getattr(click.exceptions, "NoArgsIsHelpError", click.exceptions.Exit)):
            raise  # --help, or a group named without a command: click shows the help
        except click.UsageError as exc:
            # One line, as for every other bad input (click's own would add the usage text).
            if _debug(ctx):
                raise
            click.echo(f"Error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException:
            raise
        except OSError as exc:
            if _debug(ctx) or isinstance(exc, BrokenPipeError):
                raise
            click.echo(f"Error: {os_error_line(exc, (ctx.obj or {}).get('out'))}", err=True)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            from rainset._workers import terminate_all

            terminate_all()  # worker processes stop now, not when they run out of work
            # A command may say what the interruption leaves (KeyboardInterrupt("...")).
            click.echo(str(exc) or "Interrupted; rerun the same command to resume.", err=True)
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
    _terminate_like_ctrl_c()
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill PID``, a job scheduler's stop) ends a command as Ctrl-C does: writers
    close their files, the dataset is left resumable, worker processes are stopped."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _late_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # ``rainset build-gt ... -q`` means what ``rainset -q build-gt ...`` does.
    root = ctx.find_root()
    if value and isinstance(root.obj, dict):
        root.obj["quiet"] = True
        if not root.obj.get("debug"):
            logging.getLogger().setLevel(logging.WARNING)


def _accept_quiet(command: click.Command) -> None:
    """Let ``-q/--quiet`` also follow the command name (on every command, nested ones too)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_quiet(sub)
    if any("-q" in p.opts or "--quiet" in p.opts for p in command.params if isinstance(p, click.Option)):
        return
    command.params.append(
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_late_quiet,
                     help="Only print results and errors (as `rainset -q`).")
    )


def _register() -> None:
    # Each command lives in its own module; importing one imports no heavy dependency.
    from rainset_cli import inspect_cmds

    for command in inspect_cmds.commands:
        cli.add_command(command)
    for name in ("buildgt_cmd", "pairs_cmd", "synth_cmd", "train_cmd", "export_cmd", "merge_cmd", "review_cmd",
                 "evaluate_cmd"):
        try:
            mod = __import__(f"rainset_cli.{name}", fromlist=["commands"])
        except ModuleNotFoundError as exc:
            if exc.name != f"rainset_cli.{name}":
                raise
            continue
        for command in mod.commands:
            cli.add_command(command)
    for command in cli.commands.values():
        _accept_quiet(command)


_register()
