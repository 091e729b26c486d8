"""Frames in: decode video files, frame folders and image lists into RGB uint8 frames.

Every pipeline reads its input through this module. A *source* is one of

- a video file (anything the FFmpeg inside PyAV decodes: mp4, mov, avi, mkv, webm, ...),
- a folder of frames (image files in natural order, ``frame2`` before ``frame10``; files that
  are not images, such as ``Thumbs.db``, are skipped with a log line),
- an explicit list or tuple of image paths (read in the order given); a single image path
  counts as a one-image list.

Frames come out as ``(H, W, 3) uint8`` RGB with the video's rotation metadata applied exactly
once (PyAV reports it as ``frame.rotation`` but does not rotate the pixels itself); stacks are
``(T, H, W, 3)``. Videos are decoded sequentially with FFmpeg's threading: ranges by index or by
time skip the colour conversion of unwanted frames but never seek, so they stay exact on
variable-frame-rate footage. Missing, empty, truncated or undecodable inputs raise
:class:`~rainset.errors.InputError` with one sentence naming the file (the container
diagnosis behind those sentences is :mod:`rainset._video_diagnosis`); :func:`write_video` lives
in :mod:`rainset._video_write`.

Length (~530 lines, about 310 of them code): probing, decoding and the frame-range rules
share one stream handling (timestamps, rotation, the index checks), and splitting them would
put one decoder's rules in two places.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from rainset._checks import require_finite
from rainset._video_diagnosis import _no_decoder_error, _open_error, _truncated
from rainset._video_write import write_video  # noqa: F401 - public here, written there
from rainset.errors import InputError
from rainset.image import IMAGE_SUFFIXES, is_image_path, read_image, to_uint8
from rainset.inputs import natural_key
from rainset.pathnames import check_name

logger = logging.getLogger(__name__)

#: File suffixes rainset treats as video files (lower case); any file FFmpeg opens is tried.
VIDEO_SUFFIXES = frozenset(
    {
        ".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
        ".m2ts", ".wmv", ".flv", ".3gp", ".ogv", ".mxf", ".y4m",
    }
)  # fmt: skip

#: A video path, a folder of frames, or an explicit list of image paths.
Source = str | os.PathLike | Sequence[str | os.PathLike]

# Timestamps are compared with this slack (seconds) so that a float such as 0.1 selects the
# frame stamped exactly 1/10 s although float(0.1) is a hair above it.
_TIME_EPS = 1e-6


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a source.

    Attributes
    ----------
    path : the video file, the folder, or (for a list) its first image.
    kind : ``"video"``, ``"folder"`` or ``"list"``.
    frame_count : exact when ``counted``; otherwise the container's declared count (or
        duration x fps when it declares none; 0 when unknown). For folders and lists it is the
        number of image files.
    fps : average frame rate; ``None`` for folders and lists.
    width, height : display size in pixels, i.e. after applying ``rotation``.
    rotation : 0, 90, 180 or 270, degrees counter-clockwise that frames are turned for display
        (FFmpeg's display-matrix convention, as ``VideoFrame.rotation``); always applied by
        :func:`iter_frames`.
    codec : FFmpeg codec name (``"h264"``, ``"hevc"``, ...); ``None`` for images.
    duration : seconds, from the container; ``None`` for images or when unknown.
    counted : True when ``frame_count`` came from decoding (or reading) every frame.
    """

    path: Path
    kind: Literal["video", "folder", "list"]
    frame_count: int
    fps: float | None
    width: int
    height: int
    rotation: int
    codec: str | None
    duration: float | None
    counted: bool


@dataclass(frozen=True)
class _Resolved:
    kind: Literal["video", "folder", "list"]
    path: Path
    files: tuple[Path, ...] = ()


# ----------------------------------------------------------------------------- sources


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder in natural order (``frame2`` before ``frame10``).

    Parameters
    ----------
    folder : a folder holding one image per frame (not searched recursively).

    Returns
    -------
    files : list of Path
        Image files (by suffix, see :data:`rainset.image.IMAGE_SUFFIXES`). Entries that are not
        images -- ``Thumbs.db``, ``.DS_Store``, macOS ``._*`` companions, sub-folders -- are
        skipped and named in one log line. May be empty.

    Raises
    ------
    InputError
        ``folder`` does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder.")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of frames.")
    files, skipped = [], []
    for entry in folder.iterdir():
        if entry.name.startswith(".") or not entry.is_file() or not is_image_path(entry):
            skipped.append(entry.name)
        else:
            check_name(entry)  # its name is recorded with the frames
            files.append(entry)
    if skipped:
        skipped.sort(key=natural_key)
        shown = ", ".join(skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        logger.info(
            "%s: skipped %d entries that are not image files: %s", folder, len(skipped), shown
        )
    files.sort(key=lambda p: natural_key(p.name))
    return files


def _resolve(source: Source) -> _Resolved:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder.")
        if path.is_dir():
            files = list_frame_files(path)
            if not files:
                raise InputError(f"{path}: the folder holds no image files ({_suffix_hint()}).")
            return _Resolved("folder", path, tuple(files))
        if is_image_path(path):
            return _Resolved("list", path, (path,))
        return _Resolved("video", path)
    if isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        files = tuple(Path(p) for p in source)
        if not files:
            raise ValueError("source must name at least one image, got an empty list")
        for f in files:
            if not f.is_file():
                raise InputError(f"{f}: no such image file.")
        return _Resolved("list", files[0], files)
    raise ValueError(f"source must be a path or a list of image paths, got {type(source).__name__}")


def _suffix_hint() -> str:
    return "looked for " + ", ".join(sorted(IMAGE_SUFFIXES))


# ----------------------------------------------------------------------------- images


def _image_frames(files: Sequence[Path]) -> Iterator[np.ndarray]:
    """Read images as (H, W, 3) uint8 RGB, requiring one size throughout."""
    first: Path | None = None
    shape = None
    for f in files:
        img = to_uint8(read_image(f))
        if shape is None:
            first, shape = f, img.shape
        elif img.shape != shape:
            raise InputError(
                f"{f}: frame size {img.shape[1]}x{img.shape[0]} differs from "
                f"{shape[1]}x{shape[0]} of {first.name}; all frames must have one size."
            )
        yield img


# ----------------------------------------------------------------------------- video files


def _open_video(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not a video.")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise _open_error(path, exc) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: holds no video stream.")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise _no_decoder_error(path)
    stream.thread_type = "AUTO"  # frame and slice threads (PyAV's default is slice only)
    return container, stream


def _stream_fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return None


def _stream_duration(stream, container) -> float | None:
    """Seconds of the video stream: its own duration, Matroska's DURATION tag, or (only when
    the container holds nothing else, since audio may run longer) the container's."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d*)?)", (tag or "").strip())
    if m:
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / 1_000_000
    return None


def _rotation_of(frame, path: Path) -> int:
    raw = frame.rotation
    rot = int(round(raw / 90.0)) * 90 % 360
    if abs(raw - round(raw / 90.0) * 90) > 1:
        logger.warning("%s: rotation %d degrees is not a multiple of 90; using %d", path, raw, rot)
    return rot


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a frame ``rotation`` degrees counter-clockwise (as ``np.rot90(rgb, rotation // 90)``)."""
    if rotation == 90:
        return cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if rotation == 180:
        return cv2.rotate(rgb, cv2.ROTATE_180)
    if rotation == 270:
        return cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    return rgb


def _index_data_end(stream) -> int:
    """End offset of the last sample the demuxer's index lists (0 without an index)."""
    return max((e.pos + e.size for e in stream.index_entries if e.pos >= 0), default=0)


def _index_present(stream, size: int) -> tuple[int, int]:
    """(indexed samples that lie wholly inside a file of ``size`` bytes, indexed samples)."""
    entries = [e for e in stream.index_entries if e.pos >= 0]
    return sum(e.pos + e.size <= size for e in entries), len(entries)


def _decoded(path: Path, threads=None) -> Iterator[tuple[int, float | None, object, int]]:
    """Open and decode a video sequentially; see :func:`_decode_stream`. ``threads``, when
    given, maps the frame ``(width, height)`` to FFmpeg's decoding thread count (0: its own
    choice)."""
    container, stream = _open_video(path)
    if threads is not None:
        count = threads(stream.codec_context.width, stream.codec_context.height)
        if count:
            stream.codec_context.thread_count = count
    with container:
        yield from _decode_stream(path, container, stream)


def _decode_stream(path, container, stream) -> Iterator[tuple[int, float | None, object, int]]:
    """Yield (index, seconds, av.VideoFrame, rotation) for every frame, in order.

    After the last frame, checks that the file was complete and raises InputError otherwise.
    Closing the generator early (a range that ends before the video does) skips that check.
    """
    tb = float(stream.time_base) if stream.time_base else None
    t0 = stream.start_time or 0
    fps = _stream_fps(stream)
    k, end_t, rot = 0, None, None
    try:
        for frame in container.decode(stream):
            if frame.pts is not None and tb is not None:
                t = (frame.pts - t0) * tb
                dur = frame.duration * tb if frame.duration else (1 / fps if fps else 0.0)
            else:
                t = k / fps if fps else None
                dur = 1 / fps if fps else 0.0
            if rot is None:
                rot = _rotation_of(frame, path)
            yield k, t, frame, rot
            k += 1
            end_t = None if t is None else t + dur
    except av.error.DecoderNotFoundError:
        raise _no_decoder_error(path) from None
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _truncated(path, k, f" ({reason})") from None
    _check_complete(path, stream, _stream_duration(stream, container), k, end_t, fps)


def _check_complete(path, stream, duration, decoded, end_t, fps) -> None:
    """Raise InputError when decoding ended before the data the container declares."""
    declared = stream.frames
    if decoded == 0:
        raise InputError(f"{path}: no frame could be decoded; the file is truncated or corrupt.")
    if declared and decoded >= declared:
        return
    if _index_data_end(stream) > path.stat().st_size:
        of = f" of the {declared} it declares" if declared else ""
        raise _truncated(path, decoded, of)
    if duration is not None and end_t is not None and fps and end_t < duration - 1.5 / fps:
        raise _truncated(path, decoded, f" ({end_t:.2f} s of the {duration:.2f} s it declares)")
    if declared and decoded < declared:
        logger.warning("%s: decoded %d of the %d frames it declares", path, decoded, declared)


def _probe_video(path: Path, decode: bool) -> VideoInfo:
    container, stream = _open_video(path)
    with container:
        fps = _stream_fps(stream)
        duration = _stream_duration(stream, container)
        codec = stream.codec_context.codec.canonical_name
        declared = stream.frames
        size = path.stat().st_size
        if not decode and _index_data_end(stream) > size:
            present, listed = _index_present(stream, size)
            raise InputError(
                f"{path}: truncated or corrupt video: its index lists {listed} frames but the "
                f"file ends after about frame {present}."
            )
        frames = _decode_stream(path, container, stream)
        try:
            _, _, frame, rot = next(frames)  # _decode_stream raises when there is no frame
            width, height = frame.width, frame.height
            if decode:
                count, counted = 1 + sum(1 for _ in frames), True
            elif declared:
                count, counted = declared, False
            else:
                count = int(round(duration * fps)) if duration and fps else 0
                counted = False
        finally:
            frames.close()
    if rot in (90, 270):
        width, height = height, width
    return VideoInfo(
        path=path, kind="video", frame_count=count, fps=fps, width=width, height=height,
        rotation=rot, codec=codec, duration=duration, counted=counted,
    )  # fmt: skip


def probe(source: Source, *, decode: bool = False) -> VideoInfo:
    """Frame count, frame rate, display size, rotation and codec of a source.

    Parameters
    ----------
    source : video file, folder of frames, or list of image paths.
    decode : bool
        Decode every frame (read every image) to count frames exactly and to find truncation
        or mixed frame sizes; otherwise trust the container header (the first frame is still
        decoded, for its size and rotation).

    Returns
    -------
    info : VideoInfo

    Raises
    ------
    InputError
        The source is missing, empty, not a video, truncated, has no decoder here, or (with
        ``decode``) its images differ in size.
    """
    res = _resolve(source)
    if res.kind == "video":
        return _probe_video(res.path, decode)
    if decode:
        count = 0
        for img in _image_frames(res.files):
            if count == 0:
                height, width = img.shape[:2]
            count += 1
    else:
        count = len(res.files)
        height, width = next(_image_frames(res.files[:1])).shape[:2]
    return VideoInfo(
        path=res.path, kind=res.kind, frame_count=count, fps=None, width=width, height=height,
        rotation=0, codec=None, duration=None, counted=decode,
    )  # fmt: skip


# ----------------------------------------------------------------------------- frames


def _check_range(start, stop, step, start_time, end_time) -> bool:
    """Validate range arguments; True when a time range is asked for."""
    for name, v in (("start", start), ("step", step)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if start < 0:
        raise ValueError(f"start must be >= 0 (frames are decoded in order), got {start}")
    if stop is not None and (not isinstance(stop, (int, np.integer)) or stop < 0):
        raise ValueError(f"stop must be None or an int >= 0, got {stop!r}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    require_finite("start_time", start_time)
    require_finite("end_time", end_time)
    timed = start_time is not None or end_time is not None
    if timed and (start != 0 or stop is not None):
        raise ValueError("give a frame range by index (start/stop) or by time, not both")
    if start_time is not None and start_time < 0:
        raise ValueError(f"start_time must be >= 0 seconds, got {start_time}")
    if start_time is not None and end_time is not None and end_time <= start_time:
        raise ValueError(f"end_time must be after start_time, got {start_time}..{end_time}")
    return timed


def iter_frames(
    source: Source,
    *,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    start_time: float | None = None,
    end_time: float | None = None,
) -> Iterator[np.ndarray]:
    """Iterate over the frames of a source in order.

    Parameters
    ----------
    source : video file, folder of frames, or list of image paths.
    start, stop, step : int
        Index range, as ``range(start, stop, step)`` over decoded frames (``stop`` past the end
        simply ends the iteration).
    start_time, end_time : float, optional
        Time range in seconds, ``start_time <= t < end_time``, where ``t`` is a frame's
        timestamp (``pts * time_base``) measured from the stream's start time. ``step`` then
        keeps every ``step``-th frame of the range. Videos only; not combined with start/stop.

    Returns
    -------
    frames : iterator of (H, W, 3) uint8 ndarray
        RGB, rotation metadata applied. Videos are decoded sequentially (no seeking); closing
        the iterator early closes the file.

    Raises
    ------
    InputError
        A missing path or an empty folder (at the call); a video that is not one, has no decoder
        or is truncated (on the first frame, or when decoding reaches the damage: a range that
        ends before it never sees it); mixed frame sizes in a folder or list (at that frame).
    ValueError
        Bad range arguments (at the call).
    """
    timed = _check_range(start, stop, step, start_time, end_time)
    res = _resolve(source)  # missing paths and empty folders fail here, before iteration
    if res.kind != "video" and timed:
        raise ValueError(f"{res.path}: a {res.kind} of images has no timestamps; use start/stop")
    if res.kind != "video":
        return _image_frames(res.files[start:stop:step])
    return _video_frames(res.path, start, stop, step, start_time, end_time)


def _video_frames(path, start, stop, step, start_time, end_time) -> Iterator[np.ndarray]:
    timed = start_time is not None or end_time is not None
    lo = -np.inf if start_time is None else start_time - _TIME_EPS
    hi = np.inf if end_time is None else end_time - _TIME_EPS
    frames = _decoded(path)
    # One reformatter for the whole video keeps a single swscale context (and its threads);
    # VideoFrame.to_ndarray(format=...) would build a new one for every frame.
    to_rgb = VideoReformatter()
    try:
        j = 0  # position within the time range
        for k, t, frame, rot in frames:
            if timed:
                if t is None:
                    raise ValueError(f"{path}: frames carry no timestamps; use start/stop")
                if t >= hi:
                    break
                if t < lo:
                    continue
                keep, j = j % step == 0, j + 1
            else:
                if stop is not None and k >= stop:
                    break
                keep = k >= start and (k - start) % step == 0
            if keep:
                yield _rotate(to_rgb.reformat(frame, format="rgb24").to_ndarray(), rot)
    finally:
        frames.close()


def read_frames(
    source: Source,
    *,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    start_time: float | None = None,
    end_time: float | None = None,
) -> np.ndarray:
    """Read the frames of a source into one stack; arguments as :func:`iter_frames`.

    Returns
    -------
    frames : (T, H, W, 3) uint8 ndarray
        ``T`` may be 0 when the range selects nothing.
    """
    frames = list(
        iter_frames(
            source, start=start, stop=stop, step=step, start_time=start_time, end_time=end_time
        )
    )
    if not frames:
        info = probe(source)
        return np.empty((0, info.height, info.width, 3), np.uint8)
    # np.empty commits pages only as they are written, and each frame is dropped once copied,
    # so the peak is about one stack rather than two.
    out = np.empty((len(frames), *frames[0].shape), np.uint8)
    for i in range(len(frames)):
        out[i] = frames[i]
        frames[i] = None  # type: ignore[call-overload]
    return out


def read_ahead(frames: Iterator, depth: int) -> Iterator:
    """``frames`` produced on a daemon thread, at most ``depth`` waiting (a bounded queue).

    Decoding (FFmpeg, image reads) releases the GIL, so it runs while the caller works on the
    frame before. An error reaches the caller at the frame where it happened; closing the
    returned iterator early stops the thread, and ``frames`` is closed in the thread that ran it.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for f in frames:
                if not put(f):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                try:
                    close()  # release the decoder in this thread
                except Exception as exc:  # noqa: BLE001 - the frames are no longer wanted
                    logger.debug("closing the decoder: %s", exc)

    thread = threading.Thread(target=run, name="rainset-decode", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # Stop the decoder and wait for it (it stops within a frame): a thread left inside the
        # native decoder when the interpreter exits aborts the process ("terminate called
        # without an active exception").
        stop.set()
        thread.join()
