"""One table of bad inputs and options, run against every command (issue 15).

Each row runs ``python -m rainset_cli`` in a fresh folder holding copies of small generated
inputs (built once per session) and asserts what a user is owed for a bad input:

* exit code 1 or 2;
* exactly one line on stderr, naming the file or option at fault, and no traceback;
* the output byte-identical to before the run (for the writing commands it is pre-filled with
  a small complete dataset made by the same command with good options, so a refused run
  must neither poison a new folder nor flip a finished dataset to ``complete: false``), or
  absent when it was absent.

Rows are grouped by defect class.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import rain_frames, textured_background

REPO = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None
NON_UTF8 = os.fsdecode(b"caf\xe9")  # a name whose bytes are not UTF-8 (surrogate-escaped)
BACKSLASH = "a\\b"


# ----------------------------------------------------------------------------- inputs


def _has_cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


def _run(args, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "rainset_cli", *[os.fsencode(a) for a in args]],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
    )  # fmt: skip


def _make_inputs(base: Path) -> None:
    """Small inputs under ``base/in`` (every row gets its own copy)."""
    from rainset.image import write_image
    from rainset.video import write_video

    d = base / "in"
    d.mkdir(parents=True)
    bg = textured_background(48, 64)
    write_video(d / "clip.mp4", rain_frames(bg, 12), fps=10, crf=10)
    (d / "bad.mp4").write_bytes(b"this is not a video\n" * 50)
    (d / "afile.txt").write_text("a file, not a folder\n")
    (d / "nothing").mkdir()  # a folder that is no dataset
    for name in ("photos", "photos_bad", "imgs"):
        (d / name).mkdir()
    for i in range(2):
        img = textured_background(40, 48, seed=i + 1)
        write_image(d / "photos" / f"p{i}.png", img)
        write_image(d / "photos_bad" / f"p{i}.png", img)
    (d / "photos_bad" / "z.png").write_bytes(b"not a png")
    write_image(d / "img.png", textured_background(64, 64, seed=7))
    write_image(d / "imgs" / "img.png", textured_background(64, 64, seed=7))
    (d / "junk.png").write_bytes(b"not a png")
    for name in ("rain", "clean", "rain_bad"):
        (d / name).mkdir()
    for i in range(3):
        c = textured_background(32, 32, seed=10 + i)
        write_image(d / "clean" / f"{i:03d}.png", c)
        write_image(d / "rain" / f"{i:03d}.png", next(rain_frames(c, 1, seed=i)))
        write_image(d / "rain_bad" / f"{i:03d}.png", next(rain_frames(c, 1, seed=i)))
    (d / "rain_bad" / "001.png").write_bytes(b"not a png")
    # A frame folder (build-gt and pairs read folders of frames too).
    (d / "frames").mkdir()
    for i, f in enumerate(rain_frames(bg, 12, seed=3)):
        write_image(d / "frames" / f"{i:04d}.png", f)
    (d / "videos").mkdir()
    shutil.copy(d / "clip.mp4", d / "videos" / "clip.mp4")
    # Awkward file names: bytes that are not UTF-8, a backslash.
    (d / "odd_utf8").mkdir()
    shutil.copy(d / "clip.mp4", d / "odd_utf8" / f"{NON_UTF8}.mp4")
    for name, stem in (("photos_utf8", NON_UTF8), ("photos_bs", BACKSLASH)):
        (d / name).mkdir()
        write_image(d / name / f"{stem}.png", textured_background(40, 48, seed=5))
    for tag, stem in (("utf8", NON_UTF8), ("bs", BACKSLASH)):
        (d / f"rain_{tag}").mkdir()
        (d / f"clean_{tag}").mkdir()
        c = textured_background(32, 32, seed=20)
        write_image(d / f"clean_{tag}" / f"{stem}.png", c)
        write_image(d / f"rain_{tag}" / f"{stem}.png", next(rain_frames(c, 1)))
    if HAS_TORCH:
        from safetensors.torch import save_file

        from rainset.train.spanet import SPANet

        state = {k: v.contiguous() for k, v in SPANet().state_dict().items()}
        save_file(state, str(d / "model.safetensors"))
    (d / "bad.safetensors").write_bytes(b"not weights")


#: Good runs of each writing command; ``out`` is the output. Bad rows change one thing.
GOOD = {
    "build-gt": ["build-gt", "in/clip.mp4", "-o", "out", "--review", "accept", "--frames", "4",
                 "--max-frames", "4"],
    "pairs": ["pairs", "in/clip.mp4", "-o", "out", "-n", "4"],
    "synth": ["synth", "in/photos", "-o", "out", "--tiers", "lazy", "--max-size", "32"],
    "import": ["import", "paired", "in/rain", "in/clean", "-o", "out"],
    "demo": ["demo", "-o", "out", "--frames", "10"],
    "validate": ["validate", "in/ds", "-o", "out", "--iters", "1", "--batch", "1", "--crop", "16",
                 "--device", "cpu", "--preset", "quick"],
    "derain": ["derain", "in/model.safetensors", "in/img.png", "-o", "out", "--device", "cpu"],
    "merge": ["merge", "in/gtds", "-o", "out"],
    "export": ["export", "in/gtds", "--to", "basicsr", "-o", "out"],
    "info": ["info", "in/clip.mp4"],
    "check": ["check", "in/ds"],
}  # fmt: skip
#: Commands whose output is pre-filled with the dataset their good run makes.
WRITERS = ("build-gt", "pairs", "synth", "import", "demo", "merge", "export")


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Path:
    """Inputs under ``in/`` and, under ``ds/<command>``, each writer's dataset of its good run."""
    root = tmp_path_factory.mktemp("bad_inputs")
    _make_inputs(root)
    (root / "ds").mkdir()
    for cmd in WRITERS:
        work = root / "work" / cmd
        work.mkdir(parents=True)
        os.symlink(root / "in", work / "in")
        r = _run(GOOD[cmd], work)
        assert r.returncode == 0, (cmd, r.stderr.decode(errors="replace"))
        shutil.move(work / "out", root / "ds" / cmd)
        if cmd == "build-gt":  # a shard for merge
            shutil.copytree(root / "ds" / cmd, root / "in" / "gtds")
    # A dataset as an input, for validate and check: the good validate run would train on it.
    r = _run(
        [*GOOD["synth"][:2], "-o", "in/ds", *GOOD["synth"][4:], "--test-scenes", "p1.png"], root
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return root


# ----------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    cmd: str  # key of GOOD
    args: tuple[str, ...]
    expect: str | tuple[str, ...]  # the file or option the one stderr line names (or one of them)
    target: str = "out"  # what must be unchanged (or stay absent)
    prefill: bool = False  # fill ``out`` with the command's good dataset first
    needs_torch: bool = False


def _with(cmd: str, *extra: str) -> tuple[str, ...]:
    """The good run of ``cmd`` with options appended (a repeated option overrides)."""
    return (*GOOD[cmd], *extra)


def _swap(cmd: str, old: str, new: str) -> tuple[str, ...]:
    args = list(GOOD[cmd])
    args[args.index(old)] = new
    return tuple(args)


def _float_options() -> list[tuple[str, str]]:
    """(GOOD key, option) for every float option of every command."""
    import click

    from rainset_cli.main import cli

    found = []
    for name, cmd in cli.commands.items():
        subs = cmd.commands.values() if isinstance(cmd, click.Group) else [cmd]
        for sub in subs:
            for p in sub.params:
                if isinstance(p, click.Option) and isinstance(p.type, click.types.FloatParamType):
                    found.append((name, max(p.opts, key=len)))
    assert found, "no float options found"
    return [f for f in found if f[0] in GOOD]  # a command new to the table needs a GOOD run


def _rows() -> list:
    rows: list[tuple[str, Row]] = []

    def add(name: str, row: Row, *, both: bool = True) -> None:
        """A row; for the writers once into a fresh folder and once into a finished dataset."""
        torch = row.cmd in ("validate", "derain") or row.needs_torch
        row = Row(**{**row.__dict__, "needs_torch": torch})
        if row.cmd in WRITERS and row.target == "out":
            if both:
                rows.append((f"{row.cmd}:{name}:new", row))
            rows.append((f"{row.cmd}:{name}:finished", Row(**{**row.__dict__, "prefill": True})))
        else:
            rows.append((f"{row.cmd}:{name}", row))

    # fmt: off
    # -- shared: inputs that are missing, unreadable, oddly named --------------------------
    add("missing input", Row("info", ("info", "in/nope.mp4"), "nope.mp4", target="in"))
    add("missing input", Row("check", ("check", "in/nope"), "nope", target="in"))
    add("missing input", Row("build-gt", _swap("build-gt", "in/clip.mp4", "in/nope.mp4"), "nope.mp4"))
    add("missing input", Row("pairs", _swap("pairs", "in/clip.mp4", "in/nope.mp4"), "nope.mp4"))
    add("missing input", Row("synth", _swap("synth", "in/photos", "in/nope"), "nope"))
    add("missing input", Row("import", _swap("import", "in/rain", "in/nope"), "nope"))
    add("missing input", Row("validate", _swap("validate", "in/ds", "in/nope"), "nope"))
    add("missing shard", Row("merge", _swap("merge", "in/gtds", "in/nope"), "nope"))
    add("missing dataset", Row("export", _swap("export", "in/gtds", "in/nope"), "nope"))
    add("not a dataset", Row("export", _swap("export", "in/gtds", "in/nothing"), "nothing"))
    add("unknown format", Row("export", _swap("export", "basicsr", "nope"), "--to"))
    add("missing checkpoint", Row("derain", _swap("derain", "in/model.safetensors", "in/nope.safetensors"), "nope.safetensors"))
    add("missing input", Row("derain", _swap("derain", "in/img.png", "in/nope.png"), "nope.png"))

    add("unreadable input", Row("info", ("info", "in/bad.mp4"), "bad.mp4", target="in"))
    add("not a dataset", Row("check", ("check", "in/nothing"), "nothing", target="in"))
    add("unreadable input", Row("build-gt", _swap("build-gt", "in/clip.mp4", "in/bad.mp4"), "bad.mp4"))
    add("unreadable input", Row("pairs", _swap("pairs", "in/clip.mp4", "in/bad.mp4"), "bad.mp4"))
    add("unreadable photo", Row("synth", _swap("synth", "in/photos", "in/photos_bad"), "z.png"))
    add("unreadable photo, tiers reviewed", Row("synth", _swap("synth", "in/photos", "in/photos_bad") + ("--tier-choice", "review", "--review", "accept"), "z.png"))
    add("unreadable image", Row("import", _swap("import", "in/rain", "in/rain_bad"), "001.png"))
    add("not a dataset", Row("validate", _swap("validate", "in/ds", "in/nothing"), "nothing"))
    add("shard not a dataset", Row("merge", _swap("merge", "in/gtds", "in/nothing"), "nothing"))
    add("unreadable checkpoint", Row("derain", _swap("derain", "in/model.safetensors", "in/bad.safetensors"), "bad.safetensors"))
    add("unreadable image", Row("derain", _swap("derain", "in/img.png", "in/junk.png"), "junk.png"))
    add("unreadable video after a good image", Row("derain", _with("derain", "in/bad.mp4"), "bad.mp4"))

    add("non-UTF-8 name", Row("build-gt", _swap("build-gt", "in/clip.mp4", f"in/odd_utf8/{NON_UTF8}.mp4"), "caf"))
    add("non-UTF-8 name", Row("pairs", _swap("pairs", "in/clip.mp4", "in/odd_utf8"), "caf"))
    add("non-UTF-8 name", Row("synth", _swap("synth", "in/photos", "in/photos_utf8"), "caf"))
    add("non-UTF-8 name", Row("import", ("import", "paired", "in/rain_utf8", "in/clean_utf8", "-o", "out"), "caf"))
    # (info reads either name fine, and build-gt and pairs a backslash: scene ids are path-safe.)
    add("backslash name", Row("synth", _swap("synth", "in/photos", "in/photos_bs"), BACKSLASH))
    add("backslash name", Row("import", ("import", "paired", "in/rain_bs", "in/clean_bs", "-o", "out"), BACKSLASH))

    # -- shared: outputs that are files, lie below files, or overlap the inputs ------------
    for cmd in ("build-gt", "pairs", "synth", "import", "validate", "derain", "demo", "merge", "export"):
        add("-o is a file", Row(cmd, _swap(cmd, "out", "in/afile.txt"), "afile.txt", target="in/afile.txt"))
        add("-o below a file", Row(cmd, _swap(cmd, "out", "in/afile.txt/sub"), "afile.txt", target="in/afile.txt"))
    add("-o is the input", Row("synth", _swap("synth", "out", "in/photos"), "in/photos", target="in/photos"))
    add("-o is the input", Row("pairs", ("pairs", "in/videos", "-o", "in/videos", "-n", "4"), "in/videos", target="in/videos"))
    add("-o is the input", Row("build-gt", ("build-gt", "in/frames", "-o", "in/frames", "--review", "accept", "--frames", "4", "--max-frames", "4"), "in/frames", target="in/frames"))
    add("-o is the input", Row("import", _swap("import", "out", "in/rain"), "in/rain", target="in/rain"))
    add("-o is the input", Row("export", _swap("export", "out", "in/gtds"), "in/gtds", target="in/gtds"))
    add("-o inside the input", Row("export", _swap("export", "out", "in/gtds/exp"), "in/gtds/exp", target="in/gtds"))
    add("-o holds the input", Row("derain", ("derain", "in/model.safetensors", "in/imgs/img.png", "-o", "in/imgs", "--device", "cpu"), "img.png", target="in/imgs"))
    add("-o is the input", Row("validate", _swap("validate", "out", "in/ds"), "in/ds", target="in/ds"))

    # -- item 4: early failures (bad --start, --crop, --device) ----------------------------
    add("--start 1:99:99", Row("build-gt", _with("build-gt", "--start", "1:99:99"), "--start"))
    add("--start 0:60", Row("build-gt", _with("build-gt", "--start", "0:60"), "--start"))
    # Into a finished dataset the options differ from the recorded ones: naming rainset.json
    # (and the option) is as right as naming the input.
    add("--start past the end", Row("build-gt", _with("build-gt", "--start", "99"), ("clip.mp4", "--start")))
    add("--crop outside the frame", Row("build-gt", _with("build-gt", "--crop", "0,0,200,200"), "crop"))
    if not _has_cuda():
        add("--device cuda without a GPU", Row("build-gt", _with("build-gt", "--device", "cuda"), "cuda"))
    add("--device nonsense", Row("validate", _with("validate", "--device", "gpu0"), "--device"))
    add("--device nonsense", Row("derain", _with("derain", "--device", "gpu0"), "--device"))
    add("--photo unknown", Row("demo", _with("demo", "--photo", "nope"), "--photo"))
    add("other --frames than the demo there", Row("demo", _with("demo", "--frames", "12"), ("rainset.json", "review.json")), both=False)

    # -- item 5: accepted nonsense ---------------------------------------------------------
    add("1-frame window", Row("build-gt", _with("build-gt", "--start", "11"), ("clip.mp4", "--start")))
    add("--test-scenes unknown", Row("build-gt", _with("build-gt", "--test-scenes", "nope"), "--test-scenes"))
    add("--test-scenes unknown", Row("synth", _with("synth", "--test-scenes", "nope"), "--test-scenes"))
    add("--test-scenes unknown", Row("pairs", _with("pairs", "--test-scenes", "nope"), "--test-scenes"))
    add("--test-scenes unknown", Row("import", _with("import", "--test-scenes", "nope"), "--test-scenes"))
    add("--test-scenes unknown", Row("merge", _with("merge", "--test-scenes", "nope"), "--test-scenes"))
    add("--test-scenes unknown, tiers reviewed", Row("synth", _with("synth", "--tier-choice", "review", "--review", "accept", "--test-scenes", "nope"), "--test-scenes"))
    add("--examples -1", Row("validate", _with("validate", "--examples", "-1"), "--examples"))
    add("--eval-on not a dataset", Row("validate", _with("validate", "--eval-on", "in/nothing"), "nothing"))
    add("--objective timelapse, paired dataset", Row("validate", _with("validate", "--objective", "timelapse"), "--objective"))
    add("--eval-max 0", Row("validate", _with("validate", "--eval-max", "0"), "--eval-max"))
    add("--eval-crop 8", Row("validate", _with("validate", "--eval-crop", "8"), "--eval-crop"))
    # -- rainset evaluate (reads only: nothing under in/ may change) --------------------------
    add("missing dataset", Row("evaluate", ("evaluate", "in/nope", "--outputs", "in/imgs"), "nope", target="in"))
    add("not a dataset", Row("evaluate", ("evaluate", "in/nothing", "--outputs", "in/imgs"), "nothing", target="in"))
    add("missing --outputs", Row("evaluate", ("evaluate", "in/ds", "--outputs", "in/nope"), "nope", target="in"))
    add("no output for any sample", Row("evaluate", ("evaluate", "in/ds", "--outputs", "in/imgs"), "imgs", target="in"))
    add("--outputs not a mapping file", Row("evaluate", ("evaluate", "in/ds", "--outputs", "in/afile.txt"), "afile.txt", target="in"))
    add("--eval-crop 4", Row("evaluate", ("evaluate", "in/ds", "--outputs", "in/imgs", "--eval-crop", "4"), "--eval-crop", target="in"))
    for cmd, opt, value in (
        ("build-gt", "--frames", "1"), ("build-gt", "--max-frames", "0"), ("build-gt", "--windows", "0"),
        ("build-gt", "--workers", "0"), ("build-gt", "--jpeg-quality", "0"), ("build-gt", "--mask-threshold", "0"),
        ("pairs", "-n", "1"), ("pairs", "--pairs-per-scene", "0"), ("pairs", "--foreground-level", "0"),
        ("pairs", "--analysis-size", "8"),
        ("synth", "--per-image", "0"), ("synth", "--limit", "0"), ("synth", "--max-size", "4"),
        ("synth", "--workers", "0"), ("synth", "--layers", "3"),
        ("import", "--scene-every", "0"),
        ("validate", "--iters", "0"), ("validate", "--batch", "0"), ("validate", "--crop", "8"),
        ("validate", "--tile", "10"), ("validate", "--mask-threshold", "0"),
        ("derain", "--tile", "10"), ("derain", "--overlap", "-1"),
        ("demo", "--frames", "5"),
    ):  # fmt: skip
        add(f"{opt} {value}", Row(cmd, _with(cmd, opt, value), opt), both=cmd == "build-gt")
    add("--threads 0", Row("validate", _with("validate", "--threads", "0"), "--threads"))
    add("--workers -1", Row("validate", _with("validate", "--workers", "-1"), "--workers"))
    add("--crf 99", Row("derain", _with("derain", "--crf", "99"), "--crf"))
    add("--seed -5", Row("pairs", _with("pairs", "--seed", "-5"), "--seed"))
    add("--every too small for --max-frames", Row("build-gt", _with("build-gt", "--every", "0.1"), "--every"))
    # -- the review page (docs/review.md) ----------------------------------------------------
    add("--host without --review web", Row("build-gt", _with("build-gt", "--host", "0.0.0.0"), "--host: only used with --review web"))
    add("--port without --review web", Row("build-gt", _with("build-gt", "--port", "8000"), "--port: only used with --review web"))
    add("--port 70000", Row("build-gt", _with("build-gt", "--review", "web", "--port", "70000"), "--port"))
    add("--review web --workers 2", Row("build-gt", _with("build-gt", "--review", "web", "--workers", "2"), "--workers"))
    add("--review web, no such --host", Row("build-gt", _with("build-gt", "--review", "web", "--host", "256.1.1.1"), "256.1.1.1"))
    add("missing dataset", Row("review", ("review", "in/nope"), "nope", target="in"))
    add("not a dataset", Row("review", ("review", "in/nothing"), "nothing", target="in"))
    add("dataset without review.json", Row("review", ("review", "in/ds"), "review.json", target="in"))
    add("--port 70000", Row("review", ("review", "in/gtds", "--port", "70000"), "--port", target="in"))
    add("no such --host", Row("review", ("review", "in/gtds", "--host", "256.1.1.1"), "256.1.1.1", target="in"))

    # -- nan / inf through every float option ----------------------------------------------
    # Every float option of every command, as the CLI declares them (a new one joins by itself).
    for cmd, opt in _float_options():
        extra = ("--review", "auto") if opt == "--auto-threshold" else ()
        for value in ("nan", "inf"):
            add(f"{opt} {value}", Row(cmd, _with(cmd, *extra, opt, value), opt), both=value == "nan")
    for opt, value in (("--radii", "nan"), ("--radii", "0.2,inf"), ("--length", "12,inf"),
                       ("--length", "nan,40"), ("--brightness", "0.4,nan"), ("--angles", "nan"),
                       ("--angles", "inf")):  # fmt: skip
        add(f"{opt} {value}", Row("synth", _with("synth", opt, value), opt), both=False)

    # fmt: on
    out = []
    for name, row in rows:
        marks = []
        if row.needs_torch and not HAS_TORCH:
            marks.append(pytest.mark.skip(reason="needs torch"))
        out.append(pytest.param(row, id=name, marks=marks))
    return out


# ----------------------------------------------------------------------------- the test


def _snapshot(path: Path) -> dict[str, str | None] | None:
    """sha256 of every file below ``path`` (None for a folder); None when it does not exist."""
    if not os.path.lexists(path):
        return None
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        q.relative_to(path).as_posix(): (
            hashlib.sha256(q.read_bytes()).hexdigest() if q.is_file() else None
        )
        for q in sorted(path.rglob("*"))
    }


@pytest.mark.parametrize("row", _rows())
def test_bad_input(base, tmp_path, row: Row):
    shutil.copytree(base / "in", tmp_path / "in", symlinks=True)
    if row.prefill:
        shutil.copytree(base / "ds" / row.cmd, tmp_path / "out")
    target = tmp_path / row.target
    before = _snapshot(target)

    r = _run(row.args, tmp_path)

    err = r.stderr.decode("utf-8", errors="replace")
    lines = [line for line in err.splitlines() if line.strip()]
    assert r.returncode in (1, 2), f"exit {r.returncode}; stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    shown = lines[0].replace("'", "").replace('"', "")
    names = (row.expect,) if isinstance(row.expect, str) else row.expect
    assert any(n in shown or n in lines[0] for n in names), f"{names} not named in: {lines[0]}"
    assert _snapshot(target) == before, f"{row.target} changed by a refused run"
