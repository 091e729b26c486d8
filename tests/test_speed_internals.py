"""Speed internals of issue 14 that must not change results: the prefaulted frame stack.
(The compiled synth rendering is in tests/test_synth_render_fast.py.)"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from rainset.groundtruth import FrameStack


def _resident_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def _wait_for_populate(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(t.name == "rainset-populate" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the populate thread did not finish"
        time.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_POPULATE_WRITE is Linux's")
def test_frame_stack_prefault_commits_only_the_frames_asked_for():
    h, w = 480, 640  # 120 frames: 105 MiB, the mmap-backed allocation
    frame_mib = h * w * 3 / 2**20
    _wait_for_populate()
    stack = FrameStack(120, h, w)
    before = _resident_kib()
    stack.prefault(60)
    _wait_for_populate()
    grown = (_resident_kib() - before) / 1024
    assert 0.9 * 60 * frame_mib <= grown <= 60 * frame_mib + 8  # pages at the ends
    assert len(stack) == 0


def test_frame_stack_prefault_leaves_frames_being_appended_intact():
    h, w, n = 480, 640, 100
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
    stack = FrameStack(n, h, w)
    stack.append(frames[0])
    stack.prefault(n)
    for i in range(1, n):  # the helper thread commits pages meanwhile
        stack.append(frames[i % 4])
    _wait_for_populate()
    for i in range(n):
        np.testing.assert_array_equal(stack.frames[i], frames[i % 4])
    stack.prefault(n)  # full: nothing to do, no error
    FrameStack(3, 8, 8).prefault(3)  # small stacks: nothing to do


def _vm_flags(address: int) -> list[str]:
    """The VmFlags of the mapping of this process that holds ``address`` (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                lo, hi = (int(v, 16) for v in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="smaps and madvise are Linux's")
def test_frame_stack_is_advised_against_huge_pages():
    # See rainset._alloc: huge pages are cut from the free blocks a VM hands back to its host,
    # so the stack's first fill cost 3-4x more there. "nh" is MADV_NOHUGEPAGE, "hg" the opposite.
    stack = FrameStack(120, 480, 640)
    flags = _vm_flags(stack.frames.__array_interface__["data"][0])
    assert "nh" in flags and "hg" not in flags
