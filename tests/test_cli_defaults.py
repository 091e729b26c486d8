"""Every option default of every command is the library's (rainset.options), or one of the
command-line-only defaults listed in rainset_cli/cli_defaults.py; none is a literal of its own."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import click
import pytest

import rainset.options as O
from rainset_cli import cli_defaults as C
from rainset_cli.main import cli

CLI_DIR = Path(__file__).resolve().parents[1] / "rainset_cli"

# command -> where its defaults come from (classes or instances of rainset.options, or the
# CLI-only module), searched in order by field name.
SOURCES: dict[str, list] = {
    "build-gt": [O.BuildOptions, O.ReviewOptions, O.OutputOptions, O.RunOptions, O.SceneOptions],
    "demo": [],
    "pairs": [O.PairsOptions, O.StaticConfig, O.OutputOptions, O.RunOptions, O.SceneOptions],
    "synth": [O.SynthOptions, O.SynthConfig, O.OutputOptions, O.RunOptions, O.ReviewOptions],
    "validate": [O.ValidateOptions],
    "derain": [O.DerainOptions],
    "evaluate": [O.EvaluateOptions],
    "import paired": [O.PAIRED_IMPORT, O.RunOptions, O.SceneOptions],
    "import spa": [O.ImportOptions()],
    "import gtrain": [O.ImportOptions()],
    "import basicsr": [O.ImportOptions()],
    "import rain100": [O.ImportOptions()],
    "export": [O.ExportOptions],
}

# (command, click parameter) -> the CLI-only default it must be.
CLI_ONLY = {
    ("demo", "out"): C.DEMO_OUT,
    ("demo", "n_frames"): C.DEMO_FRAMES,
    ("demo", "photo"): C.DEMO_PHOTO,
    ("*", "host"): C.WEB_HOST,  # the review page's, on every command that serves it
    ("*", "port"): C.WEB_PORT,
    ("synth", "host"): C.WEB_HOST,
    ("synth", "port"): C.WEB_PORT,
    ("validate", "dataset"): C.DATASET_HERE,
}

# click parameter name -> library field name, where they differ.
RENAMED = {
    "n_frames": "frames", "scene_name": "scene", "analysis_size": "size", "whole_split": "split",
    "model_name": "model", "no_masks": "masks", "no_amp": "amp",
}  # fmt: skip


def _walk(cmd, path=()):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, (*path, name))
    else:
        yield " ".join(path), cmd


def _unset(value) -> bool:
    return value is None or type(value).__name__ == "Sentinel" or repr(value).endswith("UNSET")


def _library(sources, name: str):
    for src in sources:
        if name in {f for f in getattr(src, "__dataclass_fields__", {})}:
            value = getattr(src, name, inspect.Parameter.empty)
            if value is not inspect.Parameter.empty and not isinstance(value, property):
                return True, value
    return False, None


def _parsed(command: str, name: str, text: str):
    """A text default as the library value it stands for."""
    if command == "build-gt" and name == "start":
        from rainset_cli.buildgt_cmd import _parse_start

        return _parse_start(text)[0]
    if command == "build-gt" and name == "mask_threshold":
        from rainset_cli.buildgt_cmd import _parse_mask

        return _parse_mask(text)[0]
    if name == "angles":
        from rainset.synth import parse_angles

        return parse_angles(text)
    if name in ("radii", "length", "brightness"):
        return tuple(float(v) for v in text.split(","))
    if name in ("densities", "test_scenes"):
        return tuple(v for v in text.split(",") if v)
    return text


def _rows():
    for command, cmd in _walk(cli):
        for p in cmd.params:
            if p.expose_value and p.name != "quiet":
                yield command, p


@pytest.mark.parametrize("command,param", [(c, p.name) for c, p in _rows()])
def test_every_click_default_is_the_librarys(command, param):
    cmd = dict(_walk(cli))[command]
    p = next(q for q in cmd.params if q.name == param)
    default = p.default
    if isinstance(p, click.Option) and p.is_flag and _unset(default):
        default = False  # a flag with no default is off
    for key in ((command, param), ("*", param)):
        if key in CLI_ONLY:
            assert default == CLI_ONLY[key]
            return
    if param == "review":  # unset: cli_defaults.REVIEW_ON_A_TERMINAL on a terminal, else refused
        assert _unset(default) and "terminal" in (p.help or "")
        return
    found, value = _library(SOURCES.get(command, []), param)
    if not found and param in RENAMED:
        found, value = _library(SOURCES.get(command, []), RENAMED[param])
    if param in ("no_masks", "no_amp"):  # an off switch of a library field that is on
        assert found and default is False and value is True
        return
    if not found:
        # No library field: the option is unset by default (the library, or a flag, decides).
        assert _unset(default) or (isinstance(p, click.Option) and p.is_flag and default is False), (
            f"{command} {param}: default {default!r} is neither the library's nor in cli_defaults"
        )
        return
    if _unset(default):
        # Unset on the command line: the library's default applies (None, or shown in the help).
        if value not in (None, ()):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert isinstance(p, click.Option) and f"[default: {shown}]" in (p.help or ""), (command, param)
        return
    if isinstance(value, (tuple, int, float)) and isinstance(default, str):
        default = _parsed(command, param, default)
    if isinstance(default, tuple) and isinstance(value, tuple):
        assert tuple(default) == tuple(value), (command, param)
        return
    assert default == value, f"{command} {param}: click says {default!r}, the library {value!r}"


def test_the_0_5_drift_is_gone():
    """run_build used 0.5 for --review auto where the library says 1.0: one value now."""
    import rainset

    sig = inspect.signature(rainset.build_gt)
    assert sig.parameters["auto_threshold"].default == O.AUTO_THRESHOLD == 1.0
    from rainset_cli import buildgt_cmd

    assert "auto_threshold" not in inspect.signature(buildgt_cmd.run_build).parameters


def _literal_defaults(path: Path):
    """click.option / click.argument calls in ``path`` whose default is a literal other than
    None, False or "" (line, option)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("option", "argument", "Option", "Argument")):  # fmt: skip
            continue
        for kw in node.keywords:
            if kw.arg == "default" and isinstance(kw.value, ast.Constant):
                if kw.value.value not in (None, False, ""):
                    names = [a.value for a in node.args if isinstance(a, ast.Constant)]
                    yield node.lineno, names[0] if names else "?"
            if (kw.arg == "default" and isinstance(kw.value, ast.Call)
                    and all(isinstance(a, ast.Constant) for a in kw.value.args)):  # Path("...")
                yield node.lineno, ast.unparse(kw.value)


def test_no_default_literal_in_the_command_line():
    bad = []
    for path in sorted(CLI_DIR.glob("*.py")):
        if path.name == "cli_defaults.py":
            continue
        bad += [f"{path.name}:{line} {opt}" for line, opt in _literal_defaults(path)]
    assert not bad, "defaults written in rainset_cli/ (take them from rainset.options or cli_defaults): " + ", ".join(bad)


def test_options_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, rainset.options, rainset, rainset_cli.main; "
            "print(sorted(m for m in ('cv2', 'av', 'torch', 'numpy') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
