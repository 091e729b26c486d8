"""Writing video files: :func:`write_video` (re-exported by :mod:`rainset.video`).

Frames go in as ``(H, W, 3) uint8`` RGB and are encoded with PyAV (libx264 in MP4 by default,
yuv420p), atomically: the file appears under its name only when it is complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rainset._checks import require_finite
from rainset.fsutil import atomic_path


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    *,
    fps: float = 25,
    crf: int = 18,
    codec: str = "libx264",
    rotation: int = 0,
) -> None:
    """Encode RGB frames as a video file (H.264 in MP4 by default), atomically.

    Parameters
    ----------
    path : destination; the container follows the suffix (``.mp4``, ``.mkv``, ...).
    frames : iterable of (H, W, 3) uint8 ndarray
        RGB, one size throughout; width and height must be even (yuv420p).
    fps : frame rate (a float such as 29.97 becomes the fraction 2997/100).
    crf : x264/x265 constant rate factor, 0 (lossless in YUV) .. 51; 18 is visually lossless.
    codec : FFmpeg encoder name.
    rotation : 0, 90, 180 or 270
        Display-matrix metadata: players (and :func:`iter_frames`) turn the frames this many
        degrees counter-clockwise, as a phone does for portrait footage. Pixels are stored as
        given.

    Raises
    ------
    ValueError
        Bad arguments, no frames, or frames of the wrong shape/dtype/size.
    """
    path = Path(path)
    require_finite("fps", fps)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    if rotation not in (0, 90, 180, 270):
        raise ValueError(f"rotation must be 0, 90, 180 or 270, got {rotation}")
    try:
        av.codec.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        raise ValueError(f"codec {codec!r} is not an encoder this FFmpeg build has") from None
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("frames is empty; a video needs at least one frame")
    shape = _check_write_frame(first, None)
    rate = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with atomic_path(path) as tmp:
        try:
            out = av.open(str(tmp), "w", options=options)
        except (av.FFmpegError, ValueError) as exc:
            raise ValueError(f"cannot write a video named {path.name} ({exc})") from None
        with out:
            stream = out.add_stream(codec, rate=rate)
            stream.width, stream.height = shape[1], shape[0]
            stream.pix_fmt = "yuv420p"
            if codec in ("libx264", "libx265"):
                stream.options = {"crf": str(int(crf))}
            if rotation:
                if not hasattr(stream, "set_display_rotation"):  # added in PyAV 18
                    raise ValueError(f"rotation needs PyAV >= 18, this is PyAV {av.__version__}")
                stream.set_display_rotation(rotation)
            frame = first
            while frame is not None:
                _check_write_frame(frame, shape)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                out.mux(stream.encode(vf))
                frame = next(it, None)
            out.mux(stream.encode(None))


def _check_write_frame(frame: np.ndarray, shape) -> tuple[int, ...]:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        got = getattr(frame, "shape", type(frame).__name__)
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {got}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frame.dtype}")
    if shape is None:
        if frame.shape[0] % 2 or frame.shape[1] % 2:
            raise ValueError(
                f"yuv420p video needs even width and height, got {frame.shape[1]}x{frame.shape[0]}"
            )
    elif frame.shape != shape:
        raise ValueError(f"all frames must be {shape}, got {frame.shape}")
    return frame.shape
