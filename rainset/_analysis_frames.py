"""Frames for analysis: the luma plane at once, the RGB frame only when asked for.

``rainset pairs`` scores every frame of a source but writes only a few, and its scores need
only luma. :func:`iter_decoded` yields :class:`DecodedFrame` objects: for a video whose frames
are 8-bit planar YUV (H.264, HEVC and VP9 footage almost always is) the analysis image is made
from the decoder's Y plane, skipping the colour conversion to RGB (a tenth of the decode time of
a 720 x 480 clip) and the conversion back to grey; :meth:`DecodedFrame.rgb` gives the frame
exactly as :func:`rainset.video.iter_frames` does, for the frames that are shown or written.
Other sources (frame folders, image lists, 10-bit or RGB video) go through RGB as before.

The Y plane's luma is the decoder's (BT.601 or BT.709 weights, as the stream was encoded),
expanded from the limited 16-235 range to 0-255 (full-range ``yuvj`` formats and frames tagged
full range are used as they are, as the RGB conversion takes them). On BT.601 footage it
differs from the BT.601 luma of the RGB frame by about a level on average (realrain13: mean
1.1-1.5, saturated colours up to 9); BT.709 footage differs more where colours are saturated
(the weights differ). Camera motion, cuts and the foreground test barely notice: the kept
segments of realrain13 (with and without stabilisation) and of the generated clips in
tests/test_timelapse_luma.py are the same on both paths, except that with stabilisation a
break at a pan's 10 px limit may move by a few frames; frames within a tenth of a pixel of a
motion limit may fall on the other side of it (the stats CSV of a hand-held clip shows other
breaks), brightness readings move by about a level, and ``--select consistent`` may
swap a frame for one whose deviation was within a tenth of a level of it (realrain13: one of
30 frames in two of the three kept segments).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from rainset._encode import encode_threads
from rainset.registration import analysis_luma, halve
from rainset.video import Source, _decoded, _image_frames, _resolve, _rotate, read_ahead

#: 8-bit pixel formats whose first plane is the luma, limited range (16-235).
_LIMITED = frozenset(
    {
        "yuv420p",
        "yuv422p",
        "yuv444p",
        "yuv411p",
        "yuv410p",
        "yuv440p",
        "nv12",
        "nv21",
        "nv16",
        "nv24",
        "nv42",
    }
)
#: The same, full range (0-255): FFmpeg's JPEG-range formats.
_FULL = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p"})

#: FFmpeg's AVCOL_RANGE_JPEG: a frame tagged full range.
_JPEG_RANGE = 2

#: Limited-range luma (16-235) to 0-255, rounded.
_EXPAND = np.clip(np.round((np.arange(256) - 16) * (255 / 219)), 0, 255).astype(np.uint8)


class DecodedFrame:
    """One frame of a source: :attr:`shape` as the RGB frame's, :meth:`rgb`, and the
    analysis image :meth:`analysis_luma` (see the module docstring)."""

    __slots__ = ("shape", "_av", "_rot", "_to_rgb", "_rgb")

    def __init__(
        self, rgb: np.ndarray | None = None, *, av_frame=None, rotation: int = 0, to_rgb=None
    ):
        self._rgb, self._av, self._rot, self._to_rgb = rgb, av_frame, rotation, to_rgb
        if rgb is not None:
            self.shape = rgb.shape
        else:
            w, h = av_frame.width, av_frame.height
            self.shape = (w, h, 3) if rotation in (90, 270) else (h, w, 3)

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, rotation applied: the frame :func:`rainset.video.iter_frames`
        yields (converted once, on the first call)."""
        if self._rgb is None:
            # One swscale thread: the few frames converted here would each wait ~7 ms for a
            # new context's thread pool (the same pixels: slices are converted alike).
            rgb = self._to_rgb.reformat(self._av, format="rgb24", threads=1).to_ndarray()
            self._rgb = _rotate(rgb, self._rot)
        return self._rgb

    def analysis_luma(self, factor: int) -> np.ndarray:
        """``(h // factor, w // factor)`` uint8 luma, ``factor`` a power of two: repeated 2 x 2
        area averages of the Y plane, then expanded to full range; for frames without one,
        :func:`rainset.registration.analysis_luma` of the RGB frame."""
        fmt = None if self._av is None else self._av.format.name
        if fmt not in _LIMITED and fmt not in _FULL:
            return analysis_luma(self.rgb(), factor)
        plane = self._av.planes[0]
        y = np.frombuffer(plane, np.uint8, count=plane.line_size * plane.height)
        y = y.reshape(plane.height, plane.line_size)[:, : plane.width]
        if self._rot:
            y = _rotate(y, self._rot)
        y = halve(y, factor)
        # Full range as the RGB conversion takes it: a JPEG-range format or tag (PyAV's
        # reformatter honours the frame's colour range).
        full = fmt in _FULL or self._av.color_range == _JPEG_RANGE
        return np.ascontiguousarray(y) if full else cv2.LUT(y, _EXPAND)


def iter_decoded(source: Source, *, ahead: int = 0) -> Iterator[DecodedFrame]:
    """Every frame of ``source`` (a video, a folder of frames, a list of images) in order, as
    :class:`DecodedFrame`; errors as :func:`rainset.video.iter_frames`.

    ``ahead`` > 0 decodes on a thread that keeps up to that many frames ready, so decoding
    (FFmpeg, image reads) runs while the caller analyses the frame before (both release the
    GIL for their heavy parts): on realrain13 the pairs pass waited 13-20 % less for the same
    CPU time. Small (standard-definition) video frames are then decoded on fewer FFmpeg
    threads (:func:`_decoder_threads`). Errors reach the caller at the frame where they happen
    (what the decoder says of the damage may differ with its threads); closing the iterator
    early stops the thread.
    """
    res = _resolve(source)
    frames = (
        (DecodedFrame(f) for f in _image_frames(res.files))
        if res.kind != "video"
        else _video(res.path, ahead)
    )
    return read_ahead(frames, ahead) if ahead > 0 else frames


#: Largest frame (pixels) that :func:`iter_decoded` decodes on fewer threads when it decodes
#: ahead: the standard-definition sizes, 720 x 576 and below.
_SMALL_FRAME = 720 * 576


def _decoder_threads(ahead: int, width: int, height: int) -> int:
    """FFmpeg decoding threads for :func:`iter_decoded`: 0 (FFmpeg's choice: a thread per
    core and one more) unless frames are decoded ahead and are small; then one fewer than
    the cores this process may use (at least one), the scoring thread having the last.

    FFmpeg's frame threads cost CPU to hand frames between them, and a small frame's scoring
    costs about as much as decoding it, so that one decoding thread and the scoring thread
    fill two cores: on a 2-core machine a 720 x 480 H.264 frame took 1.4 ms of CPU on one
    thread against 1.6-1.7 ms on FFmpeg's three, and the pairs pass (with eight frames ahead
    instead of three) went from 1.20 to 1.14 times decode-only in wall time and from 1.44 to
    1.35 in CPU (same pixels; issue 14). A
    1080p frame costs several times its scoring to decode, and one thread could not keep up
    (pass 1.49 times decode-only against 0.9-1.2).
    """
    if ahead <= 0 or width * height > _SMALL_FRAME:
        return 0
    return max(1, encode_threads() - 1)  # encode_threads: the cores this process may use


def _video(path: Path, ahead: int = 0) -> Iterator[DecodedFrame]:
    to_rgb = VideoReformatter()  # one swscale context for the frames converted
    frames = _decoded(path, functools.partial(_decoder_threads, ahead))
    try:
        for _, _, frame, rot in frames:
            yield DecodedFrame(av_frame=frame, rotation=rot, to_rgb=to_rgb)
    finally:
        frames.close()
