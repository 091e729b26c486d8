"""One writer per output folder: the lease lock of rainset.lock (issue 13)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from rainset.dataset import DatasetWriter, check
from rainset.lock import LOCK_NAME, FolderLock, LockedError, read_lock
from rainset_cli.main import cli

# A second process that writes records into OUT, one per line it reads on stdin ("" ends it).
HOLDER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from rainset.dataset import DatasetWriter
    out = sys.argv[1]
    with DatasetWriter(out, kind="clean", params={"p": 1}, tool="t") as w:
        print("ready", flush=True)
        for line in sys.stdin:
            name = line.strip()
            if not name:
                break
            rel = w.write_image(f"clean/{name}", np.full((8, 8, 3), 9, np.uint8))
            w.add({"id": name, "scene": name, "clean": rel})
            print("wrote", name, flush=True)
    print("closed", flush=True)
    """
)


def _holder(out):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _send(proc, name):
    proc.stdin.write(name + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def _write_one(out, name):
    import numpy as np

    with DatasetWriter(out, kind="clean", params={"p": 1}, tool="t") as w:
        rel = w.write_image(f"clean/{name}", np.full((8, 8, 3), 9, np.uint8))
        w.add({"id": name, "scene": name, "clean": rel})


def _ids(out):
    return [json.loads(x)["id"] for x in (out / "manifest.jsonl").read_text().splitlines()]


def test_second_writer_is_refused_naming_the_holder(tmp_path, static_clip):
    out = tmp_path / "out"
    proc = _holder(out)
    try:
        assert _send(proc, "a") == "wrote a"
        with pytest.raises(LockedError) as exc:
            _write_one(out, "b")
        msg = str(exc.value)
        assert f"process {proc.pid} on {socket.gethostname()}" in msg and "started 20" in msg
        # the command line: one line, exit 1, the folder untouched
        clip, _ = static_clip(n=8, h=32, w=48)
        r = CliRunner().invoke(cli, ["build-gt", str(clip), "--review", "accept", "--density", "sparse",
                                     "-o", str(out)])
        assert r.exit_code == 1 and f"being written by process {proc.pid}" in r.output
        assert "Traceback" not in r.output
        assert _send(proc, "c") == "wrote c"  # the holder goes on writing
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "closed"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _ids(out) == ["a", "c"]  # nothing of the first writer lost, nothing of the second
    assert check(out) == []
    assert not (out / LOCK_NAME).exists()  # released on close


def test_lock_of_a_killed_writer_is_taken_over_and_nothing_is_lost(tmp_path):
    out = tmp_path / "out"
    proc = _holder(out)
    assert _send(proc, "a") == "wrote a"
    assert _send(proc, "b") == "wrote b"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_lock(out)["pid"] == proc.pid  # left behind by the dead holder
    _write_one(out, "c")  # same host, dead pid: stale, taken over, resumed
    assert _ids(out) == ["a", "b", "c"]
    assert check(out) == []


def _fake_lock(out, *, host, age_s, pid=1):
    out.mkdir(parents=True, exist_ok=True)
    body = {"pid": pid, "host": host, "started": "2026-01-01T00:00:00+00:00", "lease_s": 30.0, "token": "x"}
    (out / LOCK_NAME).write_text(json.dumps(body))
    t = time.time() - age_s
    os.utime(out / LOCK_NAME, (t, t))


def test_lock_from_another_host_holds_until_its_lease_expires(tmp_path):
    out = tmp_path / "out"
    _fake_lock(out, host="node-7.cluster", age_s=2)  # live lease: its pid cannot be checked here
    with pytest.raises(LockedError, match="process 1 on node-7.cluster .started 2026-01-01"):
        _write_one(out, "a")
    _fake_lock(out, host="node-7.cluster", age_s=120)  # not refreshed for 2 minutes: expired
    _write_one(out, "a")
    assert _ids(out) == ["a"] and not (out / LOCK_NAME).exists()


def test_the_holder_refreshes_its_lease(tmp_path):
    lock = FolderLock(tmp_path, lease_s=0.6, refresh_s=0.1)
    with lock:
        time.sleep(1.5)  # more than two leases: only refreshing keeps it
        with pytest.raises(LockedError):
            FolderLock(tmp_path).acquire()
    FolderLock(tmp_path).acquire()  # released: free again


def test_refused_run_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "new"
    w = DatasetWriter(out, kind="clean", params={"p": 1}, tool="t")
    with pytest.raises(RuntimeError), w:
        assert (out / LOCK_NAME).exists()
        raise RuntimeError("failed before writing")
    assert not out.exists()
