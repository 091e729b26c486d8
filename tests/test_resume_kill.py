"""Kill a run partway (SIGKILL, SIGTERM), rerun it, and get the same dataset (issue 15, #3).

Every test runs the real ``rainset`` command in a subprocess and compares the resumed dataset
with an uninterrupted one (:func:`dscompare.assert_same_dataset`): every image and manifest /
pairs line identical, every source recorded. Also: worker processes die with their parent,
SIGTERM is Ctrl-C, a deleted file is written again, leftover temp files are removed, an empty
result is an error, and build-gt leaves no thread running when it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import rain_frames, textured_background
from dscompare import assert_same_dataset

from rainset.image import write_image
from rainset.video import write_video

_EXE = Path(sys.executable).with_name("rainset")
CMD = [str(_EXE)] if _EXE.exists() else [sys.executable, "-m", "rainset_cli"]
KILLS = [
    pytest.param(signal.SIGKILL, -signal.SIGKILL, id="sigkill"),
    pytest.param(signal.SIGTERM, 130, id="sigterm"),  # SIGTERM behaves like Ctrl-C
]


# ----------------------------------------------------------------------------- helpers


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run(args, tmp_path, *, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([*CMD, "-q", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def _interrupt(args, out: Path, sig, tmp_path, *, at_least=1, hold=None):
    """Start the command, send ``sig`` once ``out/manifest.jsonl`` has ``at_least`` lines.

    Returns (exit code, manifest lines when the signal was sent, stderr). Output goes to files,
    not pipes, so a worker process left behind cannot block the test.
    """
    log = tmp_path / f"log-{time.monotonic_ns()}"
    with open(log, "w") as err:
        proc = subprocess.Popen([*CMD, "-q", *map(str, args)], stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and _lines(out / "manifest.jsonl") < at_least:
                assert time.monotonic() < deadline, "the run never wrote a record"
                time.sleep(0.002)
            seen = _lines(out / "manifest.jsonl")
            kids = _children(proc.pid)
            if proc.poll() is None:
                proc.send_signal(sig)
            rc = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _reap(kids if "kids" in locals() else [], str(tmp_path))
    return rc, seen, log.read_text()


def _reap(kids: list[int], marker: str) -> None:
    """Kill what is left of this test's worker processes (after a grace of 5 s); ``marker``
    (the test's folder, on their command line) makes sure a reused pid is not someone else's."""
    end = time.monotonic() + 5
    while any(map(_alive, kids)) and time.monotonic() < end:
        time.sleep(0.05)
    for k in kids:
        try:
            mine = marker.encode() in Path(f"/proc/{k}/cmdline").read_bytes()
        except OSError:
            continue
        if mine and _alive(k):
            os.kill(k, signal.SIGKILL)


def _sources_cover_manifest(out: Path) -> None:
    """Every scene with records in the manifest has its source in rainset.json."""
    meta = json.loads((out / "rainset.json").read_text())
    recorded = {Path(s["path"]).stem for s in meta["sources"]}
    recorded |= {Path(s["path"]).name for s in meta["sources"]}
    scenes = {json.loads(line)["scene"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    assert scenes, "the interrupted run wrote no record"
    assert all(any(sc == r or sc.startswith(r) or r.startswith(sc) for r in recorded) for sc in scenes), (
        scenes,
        meta["sources"],
    )


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped


def _photos(folder: Path, n=1, size=(360, 480)) -> Path:
    folder.mkdir()
    for i in range(n):
        write_image(folder / f"p{i}.png", textured_background(*size, seed=i))
    return folder


def _clips(folder: Path, n=2, frames=40, size=(96, 128)) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(n):
        p = folder / f"clip{i}.mp4"
        write_video(p, rain_frames(textured_background(*size, seed=i), frames, seed=i), fps=10, crf=10)
        paths.append(p)
    return paths


# ----------------------------------------------------------------------------- synth


@pytest.mark.parametrize(
    "sig, code, workers",
    [*(pytest.param(*k.values, "1", id=k.id) for k in KILLS),
     pytest.param(signal.SIGKILL, -signal.SIGKILL, "2", id="sigkill-workers")],
)  # fmt: skip
def test_synth_killed_partway_resumes_after_the_last_sample(tmp_path, sig, code, workers):
    photos = _photos(tmp_path / "photos")
    opts = ["--per-image", "12", "--test-fraction", "0"]
    _run(["synth", photos, "-o", tmp_path / "ref", *opts], tmp_path)
    out = tmp_path / "out"
    opts += ["--workers", workers]  # the output does not depend on it
    rc, seen, err = _interrupt(["synth", photos, "-o", out, *opts], out, sig, tmp_path, at_least=3)
    assert rc == code, err
    assert "Traceback" not in err
    # Samples are recorded one by one, not only once the photo's 12 variants are done.
    assert 2 <= seen - 1 <= _lines(out / "manifest.jsonl") < 12
    assert json.loads((out / "rainset.json").read_text())["complete"] is False
    _sources_cover_manifest(out)
    _run(["synth", photos, "-o", out, *opts], tmp_path)
    assert_same_dataset(out, tmp_path / "ref")


# ----------------------------------------------------------------------------- build-gt


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", KILLS)
def test_build_gt_workers_killed_partway_keep_finished_windows(tmp_path, sig, code):
    clips = _clips(tmp_path / "clips")
    opts = ["--review", "accept", "--frames", "10", "--max-frames", "10", "--windows", "4", "--test-fraction", "0"]
    _run(["build-gt", *clips, "-o", tmp_path / "ref", *opts], tmp_path)
    out = tmp_path / "out"
    args = ["build-gt", *clips, "-o", out, *opts, "--workers", "2"]
    rc, seen, err = _interrupt(args, out, sig, tmp_path, at_least=2)
    assert rc == code, err
    assert "Traceback" not in err
    # Windows are recorded as they finish, not when a whole input (40 records) is done; an
    # interrupted append takes back at most the line it was writing.
    assert 1 <= seen - 1 <= _lines(out / "manifest.jsonl") < 40
    _sources_cover_manifest(out)
    _run(args, tmp_path)
    assert_same_dataset(out, tmp_path / "ref")  # the same bytes as one worker, uninterrupted


def test_build_gt_rewrites_a_deleted_file(tmp_path):
    (clip,) = _clips(tmp_path / "clips", n=1, frames=20, size=(48, 64))
    args = ["build-gt", clip, "-o", tmp_path / "out", "--review", "accept", "--frames", "10", "--max-frames", "10",
            "--windows", "2", "--test-fraction", "0"]  # fmt: skip
    _run(args, tmp_path)
    shutil.copytree(tmp_path / "out", tmp_path / "ref")
    victim = sorted((tmp_path / "out" / "rain").rglob("*.png"))[3]
    victim.unlink()
    assert _run(["check", tmp_path / "out"], tmp_path, check=False).returncode == 1
    _run(args, tmp_path)
    assert victim.is_file()
    assert _run(["check", tmp_path / "out"], tmp_path, check=False).returncode == 0
    assert_same_dataset(tmp_path / "out", tmp_path / "ref")


def test_synth_rewrites_a_deleted_file_and_removes_stale_temp_files(tmp_path):
    photos = _photos(tmp_path / "photos", n=2, size=(48, 64))
    out = tmp_path / "out"
    args = ["synth", photos, "-o", out, "--per-image", "2", "--test-fraction", "0"]
    _run(args, tmp_path)
    shutil.copytree(out, tmp_path / "ref")
    (out / "mask" / "p1_v1.png").unlink()
    # What a SIGKILL during an atomic write leaves behind:
    (out / ".rainset.json.tmp-k1llq9").write_text("{")
    (out / "rainy" / ".p0_v0.png.tmp-3xq8rz.png").write_bytes(b"\x89PNG")
    res = _run(["check", out], tmp_path, check=False)
    assert res.returncode == 1 and ".rainset.json.tmp-k1llq9" in res.stdout + res.stderr
    _run(args, tmp_path)
    assert not list(out.rglob(".*.tmp-*"))
    assert (out / "mask" / "p1_v1.png").is_file()
    assert _run(["check", out], tmp_path, check=False).returncode == 0
    assert_same_dataset(out, tmp_path / "ref")


# ----------------------------------------------------------------------------- pairs, import


@pytest.mark.parametrize("sig, code", KILLS)
def test_pairs_killed_partway_records_every_source(tmp_path, sig, code):
    folder = tmp_path / "footage"
    folder.mkdir()
    for i in range(4):
        bg = textured_background(96, 128, seed=i)
        write_video(folder / f"cam{i}.mp4", rain_frames(bg, 40, seed=i), fps=10, crf=12)
    opts = ["--frames", "12", "--test-fraction", "0", "--note", "test clips"]
    _run(["pairs", folder, "-o", tmp_path / "ref", *opts], tmp_path)
    out = tmp_path / "out"
    # 13 lines: the first 12-frame segment is complete (an interrupt rolls back a partial one).
    rc, seen, err = _interrupt(["pairs", folder, "-o", out, *opts], out, sig, tmp_path, at_least=13)
    assert rc == code, err
    assert "Traceback" not in err
    assert _lines(out / "manifest.jsonl") < 48
    _sources_cover_manifest(out)  # licence and hash records of scenes already in the dataset
    _run(["pairs", folder, "-o", out, *opts], tmp_path)
    assert_same_dataset(out, tmp_path / "ref")


@pytest.mark.parametrize("sig, code", KILLS)
def test_import_killed_partway_records_its_sources(tmp_path, sig, code):
    rng = np.random.default_rng(0)
    for side in ("rain", "clean"):
        (tmp_path / side).mkdir()
    for i in range(160):
        img = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
        write_image(tmp_path / "clean" / f"{i:05d}.png", img)
        write_image(tmp_path / "rain" / f"{i:05d}.png", np.clip(img.astype(int) + 40, 0, 255).astype(np.uint8))
    opts = ["--scene-every", "40", "--test-fraction", "0"]
    base = ["import", "paired", tmp_path / "rain", tmp_path / "clean"]
    _run([*base, "-o", tmp_path / "ref", *opts], tmp_path)
    out = tmp_path / "out"
    rc, seen, err = _interrupt([*base, "-o", out, *opts], out, sig, tmp_path, at_least=5)
    assert rc == code, err
    assert "Traceback" not in err
    assert _lines(out / "manifest.jsonl") < 160
    meta = json.loads((out / "rainset.json").read_text())
    assert len(meta["sources"]) == 2, meta["sources"]
    _run([*base, "-o", out, *opts], tmp_path)
    assert_same_dataset(out, tmp_path / "ref")


# ----------------------------------------------------------------------------- workers


@pytest.mark.parametrize("command", ["synth", "build-gt"])
def test_kill_9_of_the_main_process_leaves_no_worker(tmp_path, command):
    if command == "synth":
        photos = _photos(tmp_path / "photos", n=6)
        args = ["synth", photos, "-o", tmp_path / "out", "--per-image", "8", "--workers", "2"]
    else:
        clips = _clips(tmp_path / "clips", n=3, frames=60)
        args = ["build-gt", *clips, "-o", tmp_path / "out", "--review", "accept", "--frames", "10",
                "--max-frames", "10", "--windows", "6", "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen([*CMD, "-q", *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and len(kids) < 2 and time.monotonic() < deadline:
            kids = _children(proc.pid)
            time.sleep(0.01)
        assert proc.poll() is None and kids, "the run ended before its workers started"
        proc.kill()
        proc.wait()
        end = time.monotonic() + 5
        while any(map(_alive, kids)) and time.monotonic() < end:
            time.sleep(0.05)
        assert not [k for k in kids if _alive(k)], "worker processes outlived their parent"
    finally:
        _reap(kids, str(tmp_path))  # the test's own processes, if the assertion above failed


# ----------------------------------------------------------------------------- empty results, threads


def test_review_auto_rejecting_every_window_is_an_error(tmp_path):
    (clip,) = _clips(tmp_path / "clips", n=1, frames=12, size=(48, 64))
    out = tmp_path / "out"
    res = _run(["build-gt", clip, "-o", out, "--review", "auto", "--auto-threshold", "0", "--frames", "10",
                "--max-frames", "10"], tmp_path, check=False)  # fmt: skip
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rejected" in errors[0] and "--auto-threshold" in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert _run(["check", out], tmp_path, check=False).returncode == 1  # an empty dataset is not ok


def test_pairs_with_no_static_stretch_is_an_error(tmp_path):
    canvas = textured_background(64, 200, seed=2)
    write_video(tmp_path / "pan.mp4", (canvas[:, 3 * t : 3 * t + 96] for t in range(30)), fps=10, crf=12)
    res = _run(["pairs", tmp_path / "pan.mp4", "-o", tmp_path / "out", "--frames", "12"], tmp_path, check=False)
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "moving camera" in errors[0] and "--frames" in errors[0], res.stderr
    assert _run(["check", tmp_path / "out"], tmp_path, check=False).returncode == 1


def test_synth_review_rejecting_every_photo_is_an_error(tmp_path):
    photos = _photos(tmp_path / "photos", n=2, size=(48, 64))
    res = subprocess.run(
        [*CMD, "synth", str(photos), "-o", str(tmp_path / "out"), "--tier-choice", "review",
         "--review", "prompt", "--test-fraction", "0"],
        input="r\n\nr\n\n", capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rejected every photo" in errors[0], res.stderr


def _rainset_threads() -> set[threading.Thread]:
    # The dataset writer's lock lease thread lives while the writer is open (it stops on close).
    return {
        t for t in threading.enumerate()
        if t is not threading.main_thread() and t.name != "rainset-lock-lease"
    }


def test_build_gt_leaves_no_thread_running(tmp_path):
    from rainset.buildgt import BuildOptions, build_scene
    from rainset.dataset import DatasetWriter
    from rainset.errors import InputError
    from rainset.review import ReviewLog, accept_reviewer

    (clip,) = _clips(tmp_path / "clips", n=1, frames=20, size=(48, 64))
    before = _rainset_threads()
    opts = BuildOptions(frames=10, max_frames=10, crop=(0, 0, 100, 100))
    log = ReviewLog(tmp_path / "out" / "review.json", params=opts.params())
    with DatasetWriter(tmp_path / "out", kind="paired", params=opts.params()) as w:
        with pytest.raises(InputError, match="crop"):
            list(build_scene(clip, w, log, accept_reviewer, opts))
        assert _rainset_threads() == before  # no decoder or warm-up thread left (exit 134)
    opts = BuildOptions(frames=10, max_frames=10)
    for _ in range(2):  # the second run has nothing to do
        log = ReviewLog(tmp_path / "o2" / "review.json", params=opts.params())
        with DatasetWriter(tmp_path / "o2", kind="paired", params=opts.params()) as w:
            list(build_scene(clip, w, log, accept_reviewer, opts))
            assert _rainset_threads() == before


def test_validate_ctrl_c_says_what_a_resume_would_do(tmp_path):
    from types import SimpleNamespace

    from rainset.train.validation import interrupted
    from rainset_cli.main import with_flags
    from rainset_cli.train_cmd import validate

    trainer = SimpleNamespace(step=37, ckpt_dir=tmp_path / "run" / "checkpoint")
    config = SimpleNamespace(checkpoint_every=500, iters=2000)
    msg = interrupted(trainer, config)
    assert "before the first checkpoint" in msg and "step 500" in msg and "resume`" not in msg
    # with a checkpoint the note says how to resume, and the command names the flag
    trainer.ckpt_dir.mkdir(parents=True)
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(trainer.ckpt_dir / "model.safetensors"),
              metadata={"rainset": json.dumps({"step": 30})})
    msg = interrupted(trainer, config)
    assert "checkpoint at step 30" in msg and "`resume`" in msg
    assert "--resume" in with_flags(msg, validate)


def test_writer_rewrites_a_record_whose_files_were_deleted_in_place(tmp_path):
    from rainset.dataset import DatasetWriter, check

    img = np.full((8, 8, 3), 7, np.uint8)
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        for i in range(3):
            r = w.write_image(f"rainy/{i}", img)
            w.add({"id": f"s{i}", "scene": "a", "rainy": r, "clean": r})
    (tmp_path / "ds" / "rainy" / "1.png").unlink()
    before = (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        assert w.has("s0") and not w.has("s1") and w.ids() == {"s0", "s2"}
        r = w.write_image("rainy/1", img)
        w.add({"id": "s1", "scene": "a", "rainy": r, "clean": r, "note": "again"})
        assert w.has("s1")
    after = (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()
    assert len(after) == 3 and after[0] == before[0] and after[2] == before[2]
    assert json.loads(after[1])["note"] == "again"  # replaced where it was, not appended
    assert check(tmp_path / "ds") == []
