"""Written files follow the umask like any other tool's (0644 under 022), never 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.fsutil import atomic_write_text, file_mode
from rainset.image import write_image
from rainset.video import write_video
from rainset_cli.main import cli


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(root):
    """{relative path: permission bits} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.stat(p).st_mode)
    return out


def _assert_all_0644(root):
    modes = _modes(root)
    assert modes, f"nothing written under {root}"
    wrong = {k: oct(v) for k, v in modes.items() if v != 0o644}
    assert not wrong, wrong


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        assert file_mode() == mode
        atomic_write_text(tmp_path / "a.txt", "x")
        write_image(tmp_path / "b.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == mode
    assert stat.S_IMODE(os.stat(tmp_path / "b.png").st_mode) == mode


def test_synth_dataset_is_readable_by_others(tmp_path, umask022):
    out = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["-q", "synth", "-o", str(out), "--per-image", "1",
                                 "--angles", "0", "--max-size", "96", "--limit", "2"])
    assert r.exit_code == 0, r.output
    _assert_all_0644(out)


def test_buildgt_dataset_and_review_file_are_readable_by_others(tmp_path, umask022):
    clip = tmp_path / "clip.mp4"
    write_video(clip, rain_frames(textured_background(32, 48), 24), fps=10, crf=10)
    out = tmp_path / "gt"
    r = CliRunner().invoke(cli, ["-q", "build-gt", str(clip), "-o", str(out), "--density",
                                 "sparse", "--review", "accept"])
    assert r.exit_code == 0, r.output
    assert (out / "review.json").exists()
    _assert_all_0644(out)


def test_pairs_dataset_and_report_are_readable_by_others(tmp_path, umask022):
    clip = tmp_path / "cam.mp4"
    write_video(clip, rain_frames(textured_background(48, 64, seed=3), 20, seed=3), fps=10, crf=10)
    out = tmp_path / "tl"
    r = CliRunner().invoke(cli, ["-q", "pairs", str(clip), "-o", str(out), "--frames", "8"])
    assert r.exit_code == 0, r.output
    _assert_all_0644(out)
