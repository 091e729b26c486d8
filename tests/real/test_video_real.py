"""rainset.video on the real footage in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rainset.video import iter_frames, probe, read_frames

# tests/real/this_file -> parents[2] is the repository root; the data sits beside it.
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real footage folder {DATA} is absent (see shared/data/README.md)"
)


def test_realrain13_clip_probe():
    info = probe(DATA / "realrain13" / "152.mp4", decode=True)
    assert info.counted and info.frame_count == 49
    assert (info.width, info.height, info.fps) == (720, 480, 8.0)
    assert (info.kind, info.codec, info.rotation) == ("video", "h264", 0)
    assert probe(DATA / "realrain13" / "152.mp4").frame_count == 49  # header agrees


def test_realrain13_all_clips_decode_fully():
    clips = sorted((DATA / "realrain13").glob("*.mp4"))
    assert len(clips) == 13
    for clip in clips:
        info = probe(clip, decode=True)
        assert (info.frame_count, info.width, info.height) == (49, 720, 480), clip.name


def test_realrain13_time_range_matches_index_range():
    clip = DATA / "realrain13" / "152.mp4"
    full = read_frames(clip)
    assert full.shape == (49, 480, 720, 3) and full.dtype == np.uint8
    # 8 fps: [1.0 s, 2.5 s) holds frames 8..19.
    np.testing.assert_array_equal(read_frames(clip, start_time=1.0, end_time=2.5), full[8:20])
    np.testing.assert_array_equal(read_frames(clip, start=10, stop=40, step=7), full[10:40:7])


def test_nturain_ra1_folder():
    folder = DATA / "nturain-ra1"
    info = probe(folder, decode=True)
    assert (info.kind, info.frame_count, info.width, info.height) == ("folder", 60, 640, 480)
    first = next(iter_frames(folder))
    bgr = cv2.imread(str(folder / "00001.jpg"))
    np.testing.assert_array_equal(first, bgr[:, :, ::-1])  # RGB out, first file first
