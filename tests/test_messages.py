"""One line, never a traceback, and the file or option named (issue 15: tracebacks and messages).

Each test runs a command on generated inputs and asserts what a user is owed: the right exit
code (1 for a bad file or environment, 2 for a bad option), exactly one line on stderr naming
what is at fault, no traceback, and nothing written where the command was refused.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset_cli.main import cli

REPO = Path(__file__).resolve().parents[1]
NON_UTF8 = os.fsdecode(b"caf\xe9")  # surrogate-escaped: these bytes are not UTF-8
SHOWN_NON_UTF8 = "caf\\xe9"  # how a message shows that name


# ----------------------------------------------------------------------------- helpers


def run(args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


def one_line(r, code: int, *named: str) -> str:
    """The single stderr line of a refused run, after checking exit code and names."""
    err = r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        f"unhandled {type(r.exception).__name__}: {r.exception}"
    )
    assert "Traceback" not in err, err
    assert r.exit_code == code, f"exit {r.exit_code}, wanted {code}; stderr:\n{err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    for name in named:
        assert name in lines[0], f"{name!r} not in: {lines[0]}"
    return lines[0]


def subprocess_run(args, cwd: Path, env_extra: dict | None = None, prefix=()):
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    cmd = [*prefix, sys.executable, "-m", "rainset_cli", *[os.fsencode(str(a)) for a in args]]
    return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=240)  # fmt: skip


def stderr_lines(p: subprocess.CompletedProcess) -> list[str]:
    return [line for line in p.stderr.decode("utf-8", "replace").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Small inputs, made once for the module."""
    from rainset.image import write_image
    from rainset.video import write_video

    d = tmp_path_factory.mktemp("msg_in")
    bg = textured_background(48, 64)
    write_video(d / "clip.mp4", rain_frames(bg, 12), fps=10, crf=10)
    (d / "frames").mkdir()
    for i, f in enumerate(rain_frames(bg, 12, seed=3)):
        write_image(d / "frames" / f"{i:04d}.png", f)
    (d / "photos").mkdir()
    for i in range(2):
        write_image(d / "photos" / f"p{i}.png", textured_background(40, 48, seed=i + 1))
    for name in ("rain", "clean"):
        (d / name).mkdir()
    for i in range(3):
        c = textured_background(32, 32, seed=10 + i)
        write_image(d / "clean" / f"{i:03d}.png", c)
        write_image(d / "rain" / f"{i:03d}.png", next(rain_frames(c, 1, seed=i)))
    (d / "afile.txt").write_text("a file, not a folder\n")
    # Awkward names: bytes that are not UTF-8; a backslash; a name a regex can cut to "..".
    (d / "utf8_videos").mkdir()
    shutil.copy(d / "clip.mp4", d / "utf8_videos" / f"{NON_UTF8}.mp4")
    (d / "utf8_frames").mkdir()
    for i, f in enumerate(rain_frames(bg, 6, seed=4)):
        write_image(d / "utf8_frames" / f"{i:04d}.png", f)
    os.rename(d / "utf8_frames" / "0003.png", d / "utf8_frames" / f"0003{NON_UTF8}.png")
    for tag, stem in (("utf8", NON_UTF8), ("bs", "a\\b"), ("dots", "x..-001")):
        (d / f"photos_{tag}").mkdir()
        write_image(d / f"photos_{tag}" / f"{stem}.png", textured_background(40, 48, seed=5))
        (d / f"rain_{tag}").mkdir()
        (d / f"clean_{tag}").mkdir()
        c = textured_background(32, 32, seed=20)
        write_image(d / f"clean_{tag}" / f"{stem}.png", c)
        write_image(d / f"rain_{tag}" / f"{stem}.png", next(rain_frames(c, 1)))
    # A frame folder with one truncated PNG (OpenCV logs a warning when it decodes it).
    shutil.copytree(d / "frames", d / "frames_bad")
    data = (d / "frames_bad" / "0000.png").read_bytes()
    (d / "frames_bad" / "0000.png").write_bytes(data[: len(data) // 3])
    shutil.copytree(d / "photos", d / "photos_trunc")
    data = (d / "photos_trunc" / "p0.png").read_bytes()
    (d / "photos_trunc" / "p0.png").write_bytes(data[: len(data) // 3])
    return d


def _cmd(cmd: str, d: Path, out) -> list:
    """A good run of each writing command into ``out``."""
    return {
        "build-gt": ["build-gt", d / "clip.mp4", "-o", out, "--review", "accept", "--frames", "4",
                     "--max-frames", "4"],
        "pairs": ["pairs", d / "clip.mp4", "-o", out, "-n", "4"],
        "synth": ["synth", d / "photos", "-o", out, "--tiers", "lazy", "--max-size", "32"],
        "import": ["import", "paired", d / "rain", d / "clean", "-o", out],
        "validate": ["validate", d, "-o", out],
        "derain": ["derain", d / "afile.txt", d / "photos" / "p0.png", "-o", out],
        "demo": ["demo", "-o", out],
    }[cmd]  # fmt: skip


# ----------------------------------------------------------------------------- tracebacks


@pytest.mark.parametrize(
    "cmd,what",
    [("build-gt", "video"), ("build-gt", "frames"), ("pairs", "video"), ("pairs", "frames"),
     ("synth", "photos"), ("import", "pairs")],
)  # fmt: skip
def test_non_utf8_file_name_is_one_line(d, tmp_path, cmd, what):
    out = tmp_path / "out"
    src = {"video": d / "utf8_videos" / f"{NON_UTF8}.mp4", "frames": d / "utf8_frames"}.get(what)
    args = {
        "build-gt": ["build-gt", src, "-o", out, "--review", "accept", "--frames", "4", "--max-frames", "4"],
        "pairs": ["-q", "pairs", src, "-o", out, "-n", "4"],
        "synth": ["synth", d / "photos_utf8", "-o", out, "--tiers", "lazy"],
        "import": ["import", "paired", d / "rain_utf8", d / "clean_utf8", "-o", out],
    }[cmd]  # fmt: skip
    line = one_line(run(args), 1, SHOWN_NON_UTF8, "UTF-8")
    assert line.startswith("Error: ")
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["synth", "import"])
def test_backslash_in_a_file_name_is_one_line(d, tmp_path, cmd):
    out = tmp_path / "out"
    args = {
        "synth": ["synth", d / "photos_bs", "-o", out, "--tiers", "lazy"],
        "import": ["import", "paired", d / "rain_bs", d / "clean_bs", "-o", out],
    }[cmd]
    one_line(run(args), 1, "a\\b", "backslash")
    assert not out.exists()


@pytest.mark.parametrize("option", ["--key", "--scene"])
def test_import_regex_capturing_dotdot_is_refused(d, tmp_path, option):
    out = tmp_path / "out"
    r = run(["import", "paired", d / "rain_dots", d / "clean_dots", "-o", out, option, "x(..)"])
    one_line(r, 2, option, "'..'")
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["synth", "validate", "build-gt", "pairs", "import", "derain", "demo"])
@pytest.mark.parametrize("below", [False, True], ids=["is-a-file", "below-a-file"])
def test_out_that_is_or_lies_below_a_file(d, cmd, below):
    out = d / "afile.txt" / "sub" if below else d / "afile.txt"
    before = (d / "afile.txt").read_bytes()
    one_line(run(_cmd(cmd, d, out)), 2, "-o", "afile.txt")
    assert (d / "afile.txt").read_bytes() == before


def _disk_full_supported(tmp: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp} && touch {tmp}/x"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.parametrize("cmd", ["synth", "build-gt", "pairs"])
def test_disk_full_is_one_line_naming_the_output(d, tmp_path, cmd):
    """A real full disk: a 64 KiB tmpfs mounted in a private namespace (unshare)."""
    small = tmp_path / "small"
    small.mkdir()
    if not _disk_full_supported(small):
        pytest.skip("cannot mount a small tmpfs here (no user namespaces)")
    args = {
        "synth": ["synth", d / "photos", "-o", small / "out", "--per-image", "6"],
        "build-gt": ["build-gt", d / "clip.mp4", "-o", small / "out", "--review", "accept",
                     "--frames", "12", "--max-frames", "12"],
        "pairs": ["pairs", d / "frames", "-o", small / "out", "-n", "12"],
    }[cmd]  # fmt: skip
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {small} && exec \"$0\" \"$@\""
    )
    p = subprocess_run(["-q", *args], tmp_path, prefix=["unshare", "-rm", "sh", "-c", script])
    lines = stderr_lines(p)
    assert p.returncode == 1, p.stderr.decode()
    assert "Traceback" not in p.stderr.decode()
    errors = [line for line in lines if line.startswith("Error")]
    assert errors == [f"Error: no space left on device while writing {small / 'out'}."], lines


def test_disk_full_in_process_names_the_file(d, tmp_path, monkeypatch):
    """Where no small filesystem can be mounted: the same chained ENOSPC, raised by fsync."""

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "out"
    line = one_line(run(["-q", *_cmd("import", d, out)]), 1)
    assert line == f"Error: no space left on device while writing {out}."


def test_every_too_small_for_max_frames(d, tmp_path):
    r = run(["build-gt", d / "clip.mp4", "-o", tmp_path / "out", "--review", "accept",
             "--max-frames", "8", "--windows", "2", "--every", "0.2"])  # fmt: skip
    one_line(r, 2, "--every", "--max-frames")


@pytest.mark.parametrize("option,value", [("--threads", "0"), ("--workers", "-1"), ("--lr", "inf")])
def test_validate_bad_numbers_before_training(d, tmp_path, option, value):
    out = tmp_path / "run"
    one_line(run(["validate", d, "-o", out, option, value]), 2, option)
    assert not out.exists()


def test_validate_threads_zero_in_the_library():
    pytest.importorskip("torch")
    from rainset.errors import ParameterError
    from rainset.train.loop import TrainConfig

    with pytest.raises(ParameterError) as info:
        TrainConfig(threads=0)
    assert info.value.param == "threads"


@pytest.fixture(scope="module")
def clean_dataset(d, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "ds"
    r = run(["-q", "build-gt", d / "clip.mp4", "-o", out, "--review", "accept", "--frames", "4",
             "--max-frames", "4", "--write", "clean"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def test_validate_on_a_clean_only_dataset(clean_dataset, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    one_line(run(["validate", clean_dataset, "-o", out, "--device", "cpu"]), 1, str(clean_dataset),
             "--write")  # fmt: skip
    assert not out.exists()


def _odd_video(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 33, 25, "bgr0"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((25, 33, 3), 90 + i, np.uint8), format="rgb24")
            for p in s.encode(f.reformat(format="bgr0")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from rainset.train.spanet import SPANet

    torch.manual_seed(0)
    path = tmp_path / "ckpt" / "model.safetensors"
    path.parent.mkdir()
    save_file({k: v.contiguous() for k, v in SPANet().state_dict().items()}, str(path),
              metadata={"rainset": json.dumps({"step": 1})})  # fmt: skip
    return path


def test_derain_odd_sized_video_refused_before_any_work(d, tmp_path, checkpoint):
    _odd_video(tmp_path / "odd.mkv")
    out = tmp_path / "out"
    r = run(["derain", checkpoint, d / "photos" / "p0.png", tmp_path / "odd.mkv", "-o", out,
             "--device", "cpu"])  # fmt: skip
    one_line(r, 1, "odd.mkv", "33x25")
    assert not out.exists()  # the image before it was not derained either


def test_derain_crf_out_of_range(d, tmp_path, checkpoint):
    out = tmp_path / "out"
    r = run(["derain", checkpoint, d / "photos" / "p0.png", d / "clip.mp4", "-o", out,
             "--crf", "99", "--device", "cpu"])  # fmt: skip
    one_line(r, 2, "--crf")
    assert not out.exists()


def test_pairs_negative_seed_refused_before_frames_are_written(d, tmp_path):
    out = tmp_path / "out"
    one_line(run(["pairs", d / "clip.mp4", "-o", out, "-n", "4", "--seed", "-5"]), 2, "--seed")
    assert not out.exists()


# ----------------------------------------------------------------------------- messages


def _no_viewer_env(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no xdg-open, no open
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_open_without_a_viewer_says_so(d, tmp_path, monkeypatch):
    _no_viewer_env(monkeypatch, tmp_path)
    r = run(["build-gt", d / "clip.mp4", "-o", tmp_path / "out", "--review", "prompt", "--open",
             "--frames", "4", "--max-frames", "4"], input="a\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Cannot open" in r.stderr and "w00_n004.png" in r.stderr


def test_prompt_answer_o_without_a_viewer_says_so(d, tmp_path, monkeypatch):
    _no_viewer_env(monkeypatch, tmp_path)
    r = run(["build-gt", d / "clip.mp4", "-o", tmp_path / "out", "--review", "prompt",
             "--frames", "4", "--max-frames", "4"], input="o\na\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Cannot open" in r.stderr and "open it yourself" in r.stderr


@pytest.mark.parametrize("extra", [["--density", "dense"], ["CLIP"], ["--review", "auto"]])
def test_example_refuses_other_options(d, tmp_path, extra):
    out = tmp_path / "demo"
    extra = [d / "clip.mp4" if e == "CLIP" else e for e in extra]
    named = extra[0] if isinstance(extra[0], str) else "INPUTS"
    one_line(run(["build-gt", "--example", "-o", out, *extra]), 2, "--example", named)
    assert not out.exists()


def _leaves(group, prefix=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", list(_leaves(cli)), ids=lambda p: " ".join(p))
def test_quiet_is_accepted_after_every_command(path):
    r = run([*path, "-q", "--help"])
    assert r.exit_code == 0, r.output


def test_quiet_between_a_group_and_its_command(d, tmp_path):
    r = run(["import", "-q", "paired", d / "rain", d / "clean", "-o", tmp_path / "out"])
    assert r.exit_code == 0, r.output
    assert "scenes:" not in r.stderr  # the status line -q silences


@pytest.mark.parametrize(
    "args,named",
    [(["info"], "Missing argument"), (["pairs", "x", "-o", "y"], "does not exist"),
     (["build-gt", "--bogus"], "--bogus"), (["no-such-command"], "no-such-command")],
)  # fmt: skip
def test_usage_errors_are_one_line(args, named):
    one_line(run(args), 2, named)


def test_quiet_after_the_command_silences_status_lines(d, tmp_path):
    loud = run(["synth", d / "photos", "-o", tmp_path / "a", "--tiers", "lazy", "--max-size", "32"])
    quiet = run(["synth", d / "photos", "-o", tmp_path / "b", "--tiers", "lazy", "--max-size", "32", "-q"])
    assert loud.exit_code == quiet.exit_code == 0
    assert "samples written" in loud.stderr and "samples written" not in quiet.stderr


@pytest.mark.parametrize(
    "args,named",
    [(["info", "frames_bad"], "0000.png"),
     (["build-gt", "frames_bad", "-o", "out", "--review", "accept", "--frames", "4"], "0000.png"),
     (["pairs", "frames_bad", "-o", "out", "-n", "4"], "0000.png"),
     (["synth", "photos_trunc", "-o", "out", "--tiers", "lazy"], "p0.png")],
    ids=["info", "build-gt", "pairs", "synth"],
)  # fmt: skip
def test_opencv_log_lines_are_silenced(d, tmp_path, args, named):
    for name in ("frames_bad", "photos_trunc"):
        shutil.copytree(d / name, tmp_path / name)
    p = subprocess_run(["-q", *args], tmp_path)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, err
    assert "[ WARN" not in err and "[ERROR" not in err, err
    lines = stderr_lines(p)
    assert len(lines) == 1 and named in lines[0], err


@pytest.mark.parametrize("cmd", ["build-gt", "pairs", "synth", "import"])
def test_different_dataset_says_which_keys_differ(d, tmp_path, cmd):
    out = tmp_path / "out"
    assert run(["-q", *_cmd(cmd, d, out)]).exit_code == 0
    change = {
        "build-gt": ["--max-frames", "5"],
        "pairs": ["--max-cut", "0.5"],
        "synth": ["--per-image", "2"],
        "import": ["--scene-every", "1"],
    }[cmd]
    line = one_line(run(["-q", *_cmd(cmd, d, out), *change]), 1)
    # rainset.json ("a different dataset") or build-gt's review.json ("other options")
    assert "different dataset" in line or "written for other options" in line, line
    assert "{" not in line and len(line) < 300, line
    assert change[0] in line, line


def test_synth_config_errors_name_their_option(d, tmp_path):
    for option, value in (("--length", "50,10"), ("--brightness", "0.5,2"), ("--density", "foggy")):
        line = one_line(run(["synth", d / "photos", "-o", tmp_path / "out", option, value]), 2)
        assert f"'{option}'" in line, line


def test_synth_test_fraction_nan_is_blamed_on_test_fraction(d, tmp_path):
    line = one_line(run(["synth", d / "photos", "-o", tmp_path / "out", "--test-fraction", "nan"]), 2)
    assert "--test-fraction" in line and "--test-scenes" not in line


def test_problem_lines_do_not_wrap_off_a_terminal(d, tmp_path):
    out = tmp_path / ("a-rather-long-dataset-folder-name-" * 3)
    assert run(["-q", *_cmd("pairs", d, out)]).exit_code == 0
    frame = sorted((out / "frames").rglob("*.png"))[0]
    frame.unlink()
    rel = frame.relative_to(out).as_posix()
    p = subprocess_run(["check", out], tmp_path)
    lines = stderr_lines(p)
    assert p.returncode == 1
    problems = [line for line in lines if line.startswith("problem")]
    assert any(rel in line for line in problems), lines
    assert all(line.startswith(("problem", str(out))) for line in lines), lines


@pytest.mark.parametrize("option", [["--every", "1"], ["--start", "1s"]])
def test_no_frame_rate_names_the_input(d, tmp_path, option):
    r = run(["build-gt", d / "frames", "-o", tmp_path / "out", "--review", "accept", *option])
    one_line(r, 1, str(d / "frames"), "frame rate", option[0])


def test_info_on_a_folder_without_rainset_json(d, tmp_path):
    ds = tmp_path / "ds"
    assert run(["-q", *_cmd("import", d, ds)]).exit_code == 0
    (ds / "rainset.json").unlink()
    line = one_line(run(["info", ds]), 1, str(ds), "rainset.json")
    assert "no image files" not in line


def test_info_on_a_folder_of_videos(d, tmp_path):
    (tmp_path / "videos").mkdir()
    shutil.copy(d / "clip.mp4", tmp_path / "videos" / "clip.mp4")
    one_line(run(["info", tmp_path / "videos"]), 1, "clip.mp4", "rainset info")


# ----------------------------------------------------------------------------- library wording


def _message_strings(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_library_messages_name_parameters_not_flags():
    """Library code speaks of parameters (```allow_motion```); only the CLI spells flags."""
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    found = [
        f"{p.relative_to(REPO)}:{line}: {text[:80]!r}"
        for p in sorted((REPO / "rainset").rglob("*.py"))
        for line, text in _message_strings(p)
        if flag.search(text) and not text.startswith("rainset ")  # a recorded tool name
    ]
    assert not found, "\n".join(found)


def test_library_parameter_errors_carry_the_parameter():
    from rainset.buildgt import BuildOptions, plan_windows
    from rainset.errors import InputError, ParameterError

    with pytest.raises(ParameterError) as info:
        plan_windows(1000, 25.0, BuildOptions(max_frames=300, windows=2, every=4.0))
    assert info.value.param == "every" and "`max_frames`" in info.value.message
    with pytest.raises(InputError, match=r"clip\.mp4: this input has no frame rate, so `every`"):
        plan_windows(100, None, BuildOptions(every=4.0), source="clip.mp4")


def test_cli_maps_backquoted_parameters_to_flags():
    from rainset_cli.main import with_flags

    build_gt = cli.commands["build-gt"]
    validate = cli.commands["validate"]
    assert with_flags("pass `allow_motion` or `max_shift`", build_gt) == "pass --allow-motion or --max-shift"
    assert with_flags("rebuild with `test_scenes`", validate) == "rebuild with --test-scenes"
    assert with_flags("`no_such_param` and `rainset check`", validate) == "no_such_param and `rainset check`"
