"""Validation before output (issue 15, items 4 and 5, nan/inf): library-level checks.

The command-line side of the same cases is the table in ``tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math

import click
import numpy as np
import pytest

from rainset.errors import InputError, ParameterError

NAN, INF = math.nan, math.inf


def _tree(path):
    return {
        q.relative_to(path).as_posix(): hashlib.sha256(q.read_bytes()).hexdigest()
        for q in sorted(path.rglob("*"))
        if q.is_file()
    }


# ----------------------------------------------------------------------------- writer


def _write_one(writer, sid="s/0"):
    img = np.full((8, 8, 3), 100, np.uint8)
    r = writer.write_image(f"rainy/{sid}", img)
    c = writer.write_image(f"clean/{sid}", img)
    writer.add({"id": sid, "scene": "s", "rainy": r, "clean": c})


def test_writer_that_fails_before_writing_leaves_no_folder(tmp_path):
    from rainset.dataset import DatasetWriter

    out = tmp_path / "new"
    with pytest.raises(InputError), DatasetWriter(out, kind="paired", params={"a": 1}):
        raise InputError("the input is unreadable")
    assert not out.exists()
    # With nothing to write a clean exit still makes the (empty) dataset, finished.
    with DatasetWriter(out, kind="timelapse", params={}) as w:
        w.add_pairs([])  # nothing written yet: no file handle to sync
    assert json.loads((out / "rainset.json").read_text())["complete"] is True


def test_writer_that_fails_before_writing_leaves_a_finished_dataset_as_it_was(tmp_path):
    from rainset.dataset import DatasetWriter, check

    out = tmp_path / "ds"
    with DatasetWriter(out, kind="paired", params={"a": 1}) as w:
        _write_one(w)
    before = _tree(out)
    with pytest.raises(InputError), DatasetWriter(out, kind="paired", params={"a": 1}) as w:
        assert w.has("s/0")
        raise InputError("a bad second input")
    assert _tree(out) == before
    assert json.loads((out / "rainset.json").read_text())["complete"] is True
    assert check(out) == []
    # A run that has written something and then fails is marked unfinished, as before.
    with pytest.raises(InputError), DatasetWriter(out, kind="paired", params={"a": 1}) as w:
        _write_one(w, "s/1")
        raise InputError("fails after writing")
    assert json.loads((out / "rainset.json").read_text())["complete"] is False


# ----------------------------------------------------------------------------- nan / inf


@pytest.mark.parametrize(
    "target, kwargs, param",
    [
        ("rainset.buildgt:BuildOptions", {"every": NAN}, "every"),
        ("rainset.buildgt:BuildOptions", {"max_shift": INF}, "max_shift"),
        ("rainset.buildgt:BuildOptions", {"start": NAN}, "start"),
        ("rainset.timelapse:StaticConfig", {"max_cut": NAN}, "max_cut"),
        ("rainset.timelapse:StaticConfig", {"max_shift": INF}, "max_shift"),
        ("rainset.timelapse:StaticConfig", {"max_illumination": INF}, "max_illumination"),
        ("rainset.dataset:SplitRule", {"test_fraction": NAN}, "test_fraction"),
        ("rainset.dataset:SplitRule", {"val_fraction": NAN}, "val_fraction"),
        ("rainset.streaks:SynthConfig", {"radii": (0.2, INF)}, "radii"),
        ("rainset.streaks:SynthConfig", {"length": (12, INF)}, "length"),
        ("rainset.streaks:SynthConfig", {"jitter": NAN}, "jitter"),
        ("rainset.review:auto_reviewer", {"threshold": NAN}, "threshold"),
        ("rainset.video:write_video", {"path": "x.mp4", "frames": [], "fps": INF}, "fps"),
    ],
)
def test_library_refuses_non_finite_floats(target, kwargs, param):
    module, name = target.split(":")
    make = getattr(importlib.import_module(module), name)
    with pytest.raises(ParameterError) as info:
        make(**kwargs)
    assert info.value.param == param
    assert "finite" in info.value.message


def test_train_config_refuses_non_finite_lr():
    pytest.importorskip("torch")
    from rainset.train.loop import TrainConfig

    for name, value in (("lr", INF), ("gamma", NAN), ("scale", (0.5, INF))):
        with pytest.raises(ParameterError) as info:
            TrainConfig(**{name: value})
        assert info.value.param == name


def test_finite_float_click_type():
    from rainset_cli.common import FiniteFloat

    t = FiniteFloat(0, 1, min_open=True)
    assert t.convert("0.5", None, None) == 0.5
    for bad in ("nan", "inf", "-inf", "0", "2"):
        with pytest.raises(click.BadParameter):
            t.convert(bad, None, None)


def test_every_float_option_of_every_command_is_finite():
    """No command takes a float through a type that lets nan or inf pass."""
    from rainset_cli.common import FiniteFloat
    from rainset_cli.main import cli

    def commands(group):
        for cmd in group.commands.values():
            if isinstance(cmd, click.Group):
                yield from commands(cmd)
            else:
                yield cmd

    floats = []
    for cmd in commands(cli):
        for p in cmd.params:
            if isinstance(p.type, click.types.FloatParamType):
                floats.append((cmd.name, p.name, type(p.type).__name__))
    assert floats, "no float options found"
    bad = [f for f in floats if f[2] != FiniteFloat.__name__]
    assert not bad, bad


# ----------------------------------------------------------------------------- accepted nonsense


def test_one_frame_window_is_refused():
    from rainset.buildgt import BuildOptions, plan_windows

    with pytest.raises(InputError, match="at least 2 frames"):
        plan_windows(12, 10.0, BuildOptions(frames=4, max_frames=4, start=11))
    windows, _ = plan_windows(12, 10.0, BuildOptions(frames=4, max_frames=4, start=10))
    assert windows[0].capacity == 2


@pytest.mark.parametrize("value", ["1:99:99", "0:60", "1:00:60.5", "2:60:00"])
def test_start_times_with_clock_fields_of_60_or_more_are_refused(value):
    from rainset_cli.buildgt_cmd import _parse_start

    with pytest.raises(click.BadParameter, match="not a time"):
        _parse_start(value)
    # Times that are times still parse; the leading field may be large.
    for good, seconds in (("1:02.5", 62.5), ("90:00", 5400.0), ("1:02:03.5", 3723.5)):
        assert _parse_start(good) == (seconds, True)


def test_evaluate_refuses_negative_examples():
    pytest.importorskip("torch")
    from rainset.train.report import evaluate

    with pytest.raises(ParameterError) as info:
        next(evaluate(lambda x: x, None, examples=-1))
    assert info.value.param == "examples"


def test_import_checks_every_header_before_writing(tmp_path):
    from rainset.image import write_image
    from rainset.importer import import_paired, plan_paired

    for name in ("rain", "clean"):
        (tmp_path / name).mkdir()
    for i in range(3):
        img = np.full((16, 16, 3), 50 + i, np.uint8)
        write_image(tmp_path / "clean" / f"{i}.png", img)
        write_image(tmp_path / "rain" / f"{i}.png", img if i < 2 else img[:8])
    plans = plan_paired(tmp_path / "rain", tmp_path / "clean")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="differs from its clean image"):
        list(import_paired(plans, out))
    assert not out.exists()
