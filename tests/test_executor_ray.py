"""``--executor ray`` and the sharded driver (issue 13).

The Ray tests share one local Ray (2 CPUs, no dashboard, 127.0.0.1 only) started once for the
module; the driver tests use the local executor and need no Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background
from dscompare import assert_same_dataset

from rainset.dataset import DatasetWriter, check
from rainset.errors import InputError
from rainset.executor import LocalExecutor, Task, run_sharded, shard_name, staging_folder
from rainset.lock import LOCK_NAME
from rainset.merge import Merger
from rainset_cli.main import cli

GT = ["--density", "sparse", "--frames", "6", "--max-frames", "6", "--review", "accept"]


def run(args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from rainset.video import write_video

    root = tmp_path_factory.mktemp("clips")
    paths = []
    for i, name in enumerate("abcd"):
        n = 60 if name == "b" else 8  # b is long enough to be killed mid-way
        p = root / f"{name}.mp4"
        write_video(p, rain_frames(textured_background(32, 48, seed=i), n, seed=i), fps=10, crf=10)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=80 * 2**20, log_to_driver=False, logging_level="WARNING")  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    r = run(["build-gt", *clips, *GT, "--frames", "6", "-o", out])
    assert r.exit_code == 0, r.output
    return out


# ----------------------------------------------------------------------------- Ray


def test_ray_gives_the_same_dataset_as_the_local_executor(ray_cluster, clips, reference, tmp_path):
    out = tmp_path / "out"
    r = run(["build-gt", *clips, *GT, "--executor", "ray", "-o", out])
    assert r.exit_code == 0, r.output
    assert check(out) == []
    assert_same_dataset(out, reference)  # manifest order included
    assert not any((out / ".rainset-staging").glob("*/"))  # merged shards are gone


def test_a_killed_worker_is_retried_without_duplicate_or_loss(ray_cluster, clips, reference, tmp_path):
    out = tmp_path / "out"
    result = {}

    def driver():
        result["r"] = run(["build-gt", *clips, *GT, "--frames", "60", "--max-frames", "60", "-o", out,
                           "--executor", "ray"])  # fmt: skip

    # b's window has 60 frames: its shard is killed while it writes them.
    shard = staging_folder(out) / shard_name("b")
    thread = threading.Thread(target=driver)
    thread.start()
    killed = None
    deadline = time.monotonic() + 90
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        try:
            n = len((shard / "manifest.jsonl").read_text().splitlines())
            pid = json.loads((shard / LOCK_NAME).read_text())["pid"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.002)
            continue
        if n >= 1:
            os.kill(pid, signal.SIGKILL)  # the Ray worker running b's task
            killed = pid
    thread.join(timeout=120)
    assert killed is not None, "the task finished before it could be killed"
    r = result["r"]
    assert r.exit_code == 0, r.output
    ref = tmp_path / "ref"
    assert run(["build-gt", *clips, *GT, "--frames", "60", "--max-frames", "60", "-o", ref]).exit_code == 0
    assert check(out) == []
    assert_same_dataset(out, ref)  # no duplicate line, no lost frame


def test_a_driver_joins_a_running_cluster_by_address(ray_cluster, clips, reference, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    out, stage = tmp_path / "out", tmp_path / "stage"
    res = subprocess.run(
        [sys.executable, "-m", "rainset_cli", "-q", "build-gt", *map(str, clips), *GT, "--executor", "ray",
         "--address", address, "--staging", str(stage), "-o", str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert_same_dataset(out, reference)
    assert not any(stage.rglob("*.png"))  # every shard merged and removed from the staging folder


def test_a_second_ray_driver_on_a_running_output_is_refused(ray_cluster, clips, reference, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-m", "rainset_cli", "-q", "build-gt", *map(str, clips), *GT, "--executor", "ray",
         "--address", ray_cluster.get_runtime_context().gcs_address, "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (out / LOCK_NAME).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert first.poll() is None, "the first driver ended before it could be joined"
        r = run(["build-gt", *clips, *GT, "--executor", "ray", "-o", out])
        assert r.exit_code == 1 and f"being written by process {first.pid}" in r.output
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert_same_dataset(out, reference)  # the first driver's run is whole


HOLDER = textwrap.dedent(
    """
    import sys
    from rainset.lock import FolderLock
    with FolderLock(sys.argv[1]):
        print("ready", flush=True)
        sys.stdin.readline()
    """
)


def test_two_drivers_on_one_output_are_refused(clips, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        r = run(["build-gt", *clips[:2], *GT, "--executor", "ray", "-o", out])
        assert r.exit_code == 1 and f"being written by process {holder.pid}" in r.output
        assert not (out / ".rainset-staging").exists()  # refused before any task ran
    finally:
        holder.communicate("\n", timeout=30)


def test_review_by_a_person_is_refused_on_a_cluster(clips, tmp_path):
    r = run(["build-gt", clips[0], "--review", "prompt", "--executor", "ray", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "--review file" in r.output
    r = run(["synth", "--tier-choice", "review", "--review", "prompt", "--executor", "ray", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "--review file" in r.output
    r = run(["build-gt", clips[0], *GT, "--address", "auto", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "only used with --executor ray" in r.output
    assert not (tmp_path / "o").exists()


def test_without_ray_the_option_says_how_to_install_it(clips, tmp_path, monkeypatch):
    import rainset.executor

    monkeypatch.setattr(rainset.executor, "ray_available", lambda: False)
    r = run(["build-gt", clips[0], *GT, "--executor", "ray", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and 'pip install "rainset[ray]"' in r.output


def test_failed_input_is_listed_and_the_rest_merged(ray_cluster, clips, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    out = tmp_path / "out"
    r = run(["build-gt", clips[0], bad, clips[2], *GT, "--executor", "ray", "-o", out])
    assert r.exit_code == 1, r.output
    assert "1 input(s) failed" in r.output and "broken.mp4" in r.output
    scenes = json.loads((out / "rainset.json").read_text())["counts"]["per_scene"]
    assert set(scenes) == {"a", "c"}


# ----------------------------------------------------------------------------- the driver


def make_shard(shard, key, calls, fail):
    """A task for the driver tests: a one-record shard; counts its runs in ``calls``."""
    import numpy as np

    Path(calls, f"{key}-{os.getpid()}-{time.monotonic_ns()}").touch()
    if key in fail:
        raise InputError(f"{key}: refused")
    with DatasetWriter(shard, kind="clean", params={"p": 1}, tool="t") as w:
        rel = w.write_image(f"clean/{key}", np.full((8, 8, 3), ord(key[0]), np.uint8))
        w.add({"id": key, "scene": key, "clean": rel})
        w.add_source(f"src/{key}", note="n", sha256=key * 8, scene=key)
    return key


def _drive(out, calls, fail=()):
    from rainset.dataset import SplitRule

    tasks = [Task(k, f"in/{k}", make_shard, (k, str(calls), tuple(fail)), fingerprint=k) for k in "pqrs"]
    ident = {"kind": "clean", "tool": "t", "params": {"p": 1}, "image_format": "png", "jpeg_quality": None}
    with Merger(out, ident, SplitRule()) as m:
        return list(run_sharded(tasks, m, LocalExecutor(2)))


def _runs(calls):
    return sorted(p.name.split("-")[0] for p in Path(calls).iterdir())


def test_driver_merges_in_task_order_and_a_rerun_skips_finished_shards(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    out = tmp_path / "out"
    first = _drive(out, calls, fail=("r",))
    assert [(o.task.key, o.error) for o in first] == [("p", None), ("q", None), ("r", "r: refused"), ("s", None)]
    assert [json.loads(x)["id"] for x in (out / "manifest.jsonl").read_text().splitlines()] == ["p", "q", "s"]
    # s's shard finished by an interrupted run but not merged: merged without running again
    for p in calls.iterdir():
        p.unlink()
    second = _drive(out, calls)
    assert _runs(calls) == ["r"]  # only the failed task ran again
    assert [o.skipped for o in second] == [True, True, False, True]
    lines = [json.loads(x)["id"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(lines) == ["p", "q", "r", "s"] and len(lines) == 4
    assert check(out) == []


def test_driver_merges_a_finished_shard_without_running_it(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    out = tmp_path / "out"
    make_shard(staging_folder(out) / shard_name("q"), "q", calls, ())  # finished, not merged
    for p in calls.iterdir():
        p.unlink()
    _drive(out, calls)
    assert _runs(calls) == ["p", "r", "s"]
    assert [json.loads(x)["id"] for x in (out / "manifest.jsonl").read_text().splitlines()] == list("pqrs")


# ----------------------------------------------------------------------------- pairs, synth, import


def test_pairs_synth_and_import_on_ray_and_local_workers_equal_one_process(ray_cluster, tmp_path):
    from rainset.image import write_image
    from rainset.video import write_video

    footage = tmp_path / "footage"
    footage.mkdir()
    for i in range(2):
        write_video(footage / f"cam{i}.mp4", rain_frames(textured_background(48, 64, seed=i), 12, seed=i),
                    fps=10, crf=12)  # fmt: skip
    photos, rain, clean = tmp_path / "photos", tmp_path / "rain", tmp_path / "clean"
    for i in range(3):
        write_image(photos / f"p{i}.png", textured_background(24, 32, seed=i))
        for k, s in enumerate(("s1", "s2")):
            write_image(rain / s / f"{i:03d}.png", textured_background(16, 16, seed=10 + i + 100 * k))
            write_image(clean / s / f"{i:03d}.png", textured_background(16, 16, seed=20 + i + 100 * k))
    jobs = {
        "pairs": ["pairs", footage, "--frames", "6", "--test-fraction", "0.5"],
        "synth": ["synth", photos, "--per-image", "2"],
        "import": ["import", "paired", rain, clean],
    }
    for name, args in jobs.items():
        ref = tmp_path / f"{name}-one"
        r = run([*args, "-o", ref])
        assert r.exit_code == 0, (name, r.output)
        variants = [["--executor", "ray"]] + ([["--workers", "2"]] if name != "synth" else [])
        for extra in variants:
            out = tmp_path / f"{name}-{extra[1]}"
            r = run([*args, *extra, "-o", out])
            assert r.exit_code == 0, (name, extra, r.output)
            assert check(out) == [], (name, extra)
            assert_same_dataset(out, ref)
    assert (tmp_path / "pairs-ray" / "report.md").read_text() == (tmp_path / "pairs-one" / "report.md").read_text()


def test_staging_folders_are_never_read_as_inputs(tmp_path):
    from rainset.image import write_image
    from rainset.inputs import hash_tree, iter_files

    frames = tmp_path / "frames"
    for i in range(3):
        write_image(frames / f"{i:03d}.png", textured_background(8, 8, seed=i))
    before = hash_tree(frames)
    write_image(frames / ".rainset-staging" / "shard-1" / "rain" / "000.png", textured_background(8, 8))
    assert hash_tree(frames) == before
    assert all(".rainset-staging" not in p.parts for p in iter_files(frames))
