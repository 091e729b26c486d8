"""Tests for rainset.video: sources, probe, frame ranges, rotation, errors, writing."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rainset.errors import InputError
from rainset.image import write_image
from rainset.video import (
    VIDEO_SUFFIXES,
    VideoInfo,
    iter_frames,
    list_frame_files,
    probe,
    read_frames,
    write_video,
)

H, W, N, FPS = 48, 64, 12, 10


def _frames(n: int = N, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Blocky frames (16-pixel cells) that survive H.264 closely and differ per frame."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (n, h // 16, w // 16, 3), dtype=np.uint8)
    return cells.repeat(16, axis=1).repeat(16, axis=2)


def _marked(h: int = H, w: int = W) -> np.ndarray:
    """A frame whose orientation is unambiguous: bright block at the top-left, grey elsewhere."""
    img = np.full((h, w, 3), 60, np.uint8)
    img[: h // 3, : w // 4] = (250, 40, 40)
    return img


@pytest.fixture
def clip(tmp_path) -> tuple[Path, np.ndarray]:
    src = _frames()
    path = tmp_path / "clip.mp4"
    write_video(path, src, fps=FPS, crf=12)
    return path, src


def _write_raw(path: Path, frames: np.ndarray, *, pix_fmt="yuv420p", options=None) -> None:
    """Encode with PyAV directly (no faststart), for files write_video would not make."""
    with av.open(str(path), "w", options=options or {}) as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode(None))


# ----------------------------------------------------------------------------- round trip


def test_write_probe_round_trip(clip):
    path, src = clip
    info = probe(path)
    assert isinstance(info, VideoInfo)
    assert (info.kind, info.frame_count, info.width, info.height) == ("video", N, W, H)
    assert info.fps == pytest.approx(FPS)
    assert info.rotation == 0 and info.codec == "h264" and not info.counted
    assert info.duration == pytest.approx(N / FPS, abs=0.01)
    exact = probe(path, decode=True)
    assert exact.counted and exact.frame_count == N
    frames = read_frames(path)
    assert frames.shape == (N, H, W, 3) and frames.dtype == np.uint8
    # RGB order and content survive the yuv420p round trip (blocky content, crf 12).
    assert np.abs(frames.astype(int) - src).mean() < 2.5
    assert list(iter_frames(path))[5].flags["C_CONTIGUOUS"]


def test_write_is_atomic_and_validates(tmp_path):
    path = tmp_path / "out.mp4"

    def bad_stream():
        yield from _frames(3)
        yield np.zeros((H + 2, W, 3), np.uint8)

    with pytest.raises(ValueError, match="all frames must be"):
        write_video(path, bad_stream())
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file
    with pytest.raises(ValueError, match="even width and height"):
        write_video(path, [np.zeros((47, 64, 3), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        write_video(path, [np.zeros((48, 64, 3), np.float32)])
    with pytest.raises(ValueError, match="empty"):
        write_video(path, [])
    with pytest.raises(ValueError, match="rotation"):
        write_video(path, _frames(2), rotation=45)
    with pytest.raises(ValueError, match="codec"):
        write_video(path, _frames(2), codec="no-such-encoder")
    write_video(path, _frames(2))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_mkv_counts_from_duration_then_decoding(tmp_path):
    path = tmp_path / "clip.mkv"
    write_video(path, _frames(), fps=FPS)
    assert probe(path).frame_count == N  # Matroska declares no count: duration x fps
    assert probe(path, decode=True).frame_count == N


def test_ten_bit_video_decodes_to_uint8(tmp_path):
    src = np.repeat(_marked()[None], 4, axis=0)
    path = tmp_path / "ten.mkv"
    _write_raw(path, src, pix_fmt="yuv420p10le")
    frames = read_frames(path)
    assert frames.dtype == np.uint8 and frames.shape == (4, H, W, 3)
    assert np.abs(frames.astype(int) - src).mean() < 3


# ----------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_applied_exactly_once(tmp_path, rotation):
    src = np.stack([_marked(), 255 - _marked()])
    plain, turned = tmp_path / "plain.mp4", tmp_path / f"rot{rotation}.mp4"
    write_video(plain, src, crf=0)
    write_video(turned, src, crf=0, rotation=rotation)
    info = probe(turned)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((H, W) if rotation in (90, 270) else (W, H))
    stored = read_frames(plain)
    shown = read_frames(turned)
    # Same pixels, turned counter-clockwise once (FFmpeg's display-matrix convention).
    np.testing.assert_array_equal(shown, np.rot90(stored, rotation // 90, axes=(1, 2)))
    assert np.abs(shown[0].astype(int) - np.rot90(src[0], rotation // 90)).mean() < 3


def test_rotation_90_shows_top_left_at_bottom_left(tmp_path):
    path = tmp_path / "phone.mp4"
    write_video(path, [_marked()] * 2, rotation=90, crf=0)
    frame = read_frames(path)[0]
    assert frame.shape == (W, H, 3)
    red = frame[..., 0] > 200
    rows, cols = np.nonzero(red)
    assert rows.min() >= W - W // 4 - 1 and cols.max() < H // 3 + 1  # bottom-left corner


def test_rotation_agrees_with_opencv_reader(tmp_path):
    """OpenCV's FFmpeg back end auto-rotates too: an independent check of the direction."""
    path = tmp_path / "phone.mp4"
    write_video(path, [_marked()] * 2, rotation=90, crf=0)
    cap = cv2.VideoCapture(str(path))
    ok, bgr = cap.read()
    auto = cap.get(cv2.CAP_PROP_ORIENTATION_AUTO)
    cap.release()
    if not ok or auto != 1:
        pytest.skip("this OpenCV build cannot read mp4 or does not auto-rotate")
    ours = read_frames(path)[0]
    assert bgr.shape == ours.shape
    assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int) - ours).mean() < 3


# ----------------------------------------------------------------------------- ranges


def test_index_ranges_equal_slices(clip):
    path, _ = clip
    full = read_frames(path)
    np.testing.assert_array_equal(read_frames(path, start=2, stop=9, step=3), full[2:9:3])
    np.testing.assert_array_equal(read_frames(path, start=7), full[7:])
    np.testing.assert_array_equal(read_frames(path, stop=100), full)
    assert read_frames(path, start=50).shape == (0, H, W, 3)


def test_time_ranges_equal_slices(clip):
    path, _ = clip
    full = read_frames(path)  # frame k is stamped k / 10 s
    np.testing.assert_array_equal(read_frames(path, start_time=0.3, end_time=0.8), full[3:8])
    np.testing.assert_array_equal(read_frames(path, start_time=0.1), full[1:])
    np.testing.assert_array_equal(read_frames(path, end_time=0.45), full[:5])
    np.testing.assert_array_equal(
        read_frames(path, start_time=0.2, end_time=1.0, step=3), full[2:10:3]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": -1},
        {"step": 0},
        {"stop": -2},
        {"start": 1, "start_time": 0.5},
        {"start_time": 1.0, "end_time": 0.5},
        {"start_time": -0.1},
    ],
)
def test_bad_ranges_raise_value_error(clip, kwargs):
    with pytest.raises(ValueError):
        read_frames(clip[0], **kwargs)


# ----------------------------------------------------------------------------- folders, lists


def test_natural_sort_and_stray_files_skipped(tmp_path, caplog):
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png", "frame002b.png"]
    for i, name in enumerate(names):
        write_image(tmp_path / name, np.full((8, 8, 3), i, np.uint8))
    (tmp_path / "Thumbs.db").write_bytes(b"\x00junk")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "._frame1.png").write_bytes(b"apple double")
    (tmp_path / "sub").mkdir()
    with caplog.at_level(logging.INFO, logger="rainset.video"):
        files = list_frame_files(tmp_path)
    assert [f.name for f in files] == [
        "frame1.png", "frame2.png", "frame002b.png", "Frame3.png", "frame10.png"
    ]  # fmt: skip
    assert "Thumbs.db" in caplog.text and "._frame1.png" in caplog.text
    frames = read_frames(tmp_path)
    assert [int(f[0, 0, 0]) for f in frames] == [names.index(f.name) for f in files]


def test_folder_probe_and_ranges(tmp_path):
    src = _frames(6, 16, 32)
    for i, img in enumerate(src):
        write_image(tmp_path / f"{i}.png", img)
    info = probe(tmp_path)
    assert (info.kind, info.frame_count, info.width, info.height, info.fps) == (
        "folder", 6, 32, 16, None
    )  # fmt: skip
    assert probe(tmp_path, decode=True).counted
    np.testing.assert_array_equal(read_frames(tmp_path), src)  # PNG is lossless
    np.testing.assert_array_equal(read_frames(tmp_path, start=1, stop=5, step=2), src[1:5:2])
    with pytest.raises(ValueError, match="no timestamps"):
        read_frames(tmp_path, start_time=0.5)


def test_grayscale_and_16bit_images_come_out_rgb_uint8(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    write_image(tmp_path / "a.png", grey)
    write_image(tmp_path / "b.png", grey.astype(np.uint16) * 257)
    frames = read_frames(tmp_path)
    assert frames.shape == (2, 8, 8, 3) and frames.dtype == np.uint8
    for f in frames:
        np.testing.assert_array_equal(f, np.repeat(grey[:, :, None], 3, axis=2))


def test_list_source_keeps_given_order(tmp_path):
    src = _frames(3, 16, 16)
    paths = []
    for i, img in enumerate(src):
        paths.append(tmp_path / f"x{i}.png")
        write_image(paths[-1], img)
    order = [paths[2], paths[0], paths[1]]
    np.testing.assert_array_equal(read_frames(order), src[[2, 0, 1]])
    info = probe(tuple(order))
    assert (info.kind, info.frame_count, info.path) == ("list", 3, paths[2])
    single = probe(paths[1])  # one image path is a one-image list
    assert (single.kind, single.frame_count, single.width) == ("list", 1, 16)


# ----------------------------------------------------------------------------- errors


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match=r"nope\.mp4: no such file"):
        iter_frames(tmp_path / "nope.mp4")  # at the call, before any iteration
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(InputError, match="no image files"):
        read_frames(tmp_path / "empty")
    with pytest.raises(InputError, match="nope.png"):
        read_frames([tmp_path / "nope.png"])
    (tmp_path / "zero.mp4").touch()
    with pytest.raises(InputError, match="empty file"):
        probe(tmp_path / "zero.mp4")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match=r"notes\.mp4: not a video file"):
        probe(path)
    with pytest.raises(InputError, match="not a video file"):
        next(iter_frames(path))


def test_mixed_frame_sizes_name_the_file(tmp_path):
    write_image(tmp_path / "f1.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "f2.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "f3.png", np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(InputError, match=r"f3\.png: frame size 12x10 differs from 8x8 of f1\.png"):
        read_frames(tmp_path)
    with pytest.raises(InputError, match="f3.png"):
        probe(tmp_path, decode=True)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_video_is_detected(tmp_path, suffix):
    whole = tmp_path / f"whole{suffix}"
    write_video(whole, _frames(30), fps=FPS)  # mp4: faststart, so the index survives the cut
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    with pytest.raises(InputError, match=r"cut\.\w+: truncated or corrupt video.*after frame \d+"):
        probe(cut, decode=True)
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_frames(cut)
    # A range that ends before the damage reads fine and matches the whole file.
    np.testing.assert_array_equal(read_frames(cut, stop=5), read_frames(whole, stop=5))


def test_truncated_mp4_index_caught_without_decoding(tmp_path):
    whole = tmp_path / "whole.mp4"
    write_video(whole, _frames(30), fps=FPS)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    with pytest.raises(InputError, match="index lists 30 frames but the file ends after about"):
        probe(cut)


def test_mp4_without_header_says_truncated(tmp_path):
    whole = tmp_path / "rec.mp4"
    _write_raw(whole, _frames(20))  # moov written last, as a camera does
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut\.mp4: truncated or corrupt MP4/MOV: its moov"):
        probe(cut)
    tiny = tmp_path / "tiny.mp4"
    tiny.write_bytes(whole.read_bytes()[:40])
    with pytest.raises(InputError, match=r"tiny\.mp4: truncated or corrupt"):
        read_frames(tiny)


def _retag_mp4(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    i = data.find(old, data.find(b"stsd"))
    path.write_bytes(data[:i] + new + data[i + len(old) :])


def test_codec_without_decoder_is_named(tmp_path):
    try:
        av.codec.Codec("evc", "r")
        pytest.skip("this FFmpeg build decodes EVC")
    except ValueError:  # UnknownCodecError: no EVC decoder, as expected
        pass
    path = tmp_path / "evc.mp4"
    write_video(path, _frames(3))
    _retag_mp4(path, b"avc1", b"evc1")  # an MPEG-5 EVC sample entry: known codec, no decoder
    with pytest.raises(InputError, match=r"evc\.mp4: .*no decoder for its video codec evc"):
        probe(path)
    with pytest.raises(InputError, match="no decoder"):
        read_frames(path)


def test_decode_error_mid_stream_becomes_input_error(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    write_video(path, _frames(5))
    real_decode = av.container.InputContainer.decode

    def failing_decode(self, *args, **kwargs):
        for i, frame in enumerate(real_decode(self, *args, **kwargs)):
            if i == 3:
                raise av.error.InvalidDataError(1094995529, "Invalid data found")
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", failing_decode)
    with pytest.raises(InputError, match=r"clip\.mp4: truncated or corrupt video.*after frame 3"):
        read_frames(path)


def test_video_suffixes():
    assert {".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm"} <= VIDEO_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in VIDEO_SUFFIXES)
