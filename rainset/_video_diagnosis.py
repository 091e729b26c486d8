"""Why a video file does not open: container sniffing and the one-sentence errors.

PyAV reports a file FFmpeg cannot read with FFmpeg's own terse message, and a stream without a
decoder with no codec name at all. These helpers read the container's first bytes (and an
MP4's box list, a Matroska CodecID, an AVI stream header) to say which it is -- a truncated
recording, a codec this FFmpeg build lacks, a file that is no video -- for
:mod:`rainset.video`, which raises what they build.
"""

from __future__ import annotations

import re
from pathlib import Path

import av

from rainset.errors import InputError

# Common sample-entry / fourcc tags, for naming a codec that has no decoder here.
_FOURCC_CODECS = {
    "avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "dvh1": "hevc",
    "av01": "av1", "vp09": "vp9", "vp08": "vp8", "evc1": "evc", "vvc1": "vvc", "vvi1": "vvc",
    "apch": "prores", "apcn": "prores", "apcs": "prores", "apco": "prores", "ap4h": "prores",
    "mp4v": "mpeg4", "jpeg": "mjpeg", "mjpg": "mjpeg",
}  # fmt: skip


def _sniff_container(path: Path) -> str | None:
    """Name the container family from magic bytes, or None."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "MP4/MOV"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    return None


def _mp4_top_boxes(path: Path) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the top-level boxes of an ISO-BMFF file (stops at damage)."""
    boxes = []
    size_total = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size_total and len(boxes) < 10_000:
            f.seek(pos)
            hdr = f.read(16)
            size, kind = int.from_bytes(hdr[:4], "big"), hdr[4:8]
            if size == 1 and len(hdr) == 16:
                size = int.from_bytes(hdr[8:16], "big")
            elif size == 0:
                size = size_total - pos
            if size < 8:
                break
            boxes.append((kind, pos, size))
            pos += size
    return boxes


def _sniff_codec_tag(path: Path) -> str | None:
    """The video codec's tag as the container stores it (fourcc / Matroska CodecID), or None.

    PyAV offers no codec name for a stream without a decoder, so this reads the container.
    """
    try:
        family = _sniff_container(path)
        if family == "MP4/MOV":
            moov = next((b for b in _mp4_top_boxes(path) if b[0] == b"moov"), None)
            if moov is None or moov[2] > 256 << 20:
                return None
            with open(path, "rb") as f:
                f.seek(moov[1])
                data = f.read(moov[2])
            for trak in data.split(b"trak")[1:]:
                h = trak.find(b"hdlr")
                s = trak.find(b"stsd")
                if h >= 0 and s >= 0 and trak[h + 12 : h + 16] == b"vide":
                    return trak[s + 16 : s + 20].decode("latin-1")
        elif family == "Matroska/WebM":
            with open(path, "rb") as f:
                data = f.read(1 << 20)
            m = re.search(rb"V_[A-Z0-9][A-Za-z0-9/_.\-]{1,40}", data)
            return m.group().decode("ascii") if m else None
        elif family == "AVI":
            with open(path, "rb") as f:
                data = f.read(1 << 16)
            i = data.find(b"strh")
            if i >= 0 and data[i + 8 : i + 12] == b"vids":
                return data[i + 12 : i + 16].decode("latin-1")
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _no_decoder_error(path: Path) -> InputError:
    tag = _sniff_codec_tag(path)
    if tag is None:
        what = "its video codec"
    elif tag.lower() in _FOURCC_CODECS:
        what = f"its video codec {_FOURCC_CODECS[tag.lower()]} (tag {tag!r})"
    else:
        what = f"its video codec {tag!r}"
    return InputError(
        f"{path}: the FFmpeg inside PyAV {av.__version__} has no decoder for {what}; "
        "convert it first (e.g. ffmpeg -i IN -c:v libx264 -crf 18 OUT.mp4)."
    )


def _open_error(path: Path, exc: Exception) -> InputError:
    reason = getattr(exc, "strerror", None) or str(exc)
    family = _sniff_container(path)
    if family == "MP4/MOV":
        kinds = {b[0] for b in _mp4_top_boxes(path)}
        if b"moov" not in kinds:
            return InputError(
                f"{path}: truncated or corrupt MP4/MOV: its moov header (the frame index) is "
                "missing, as when a recording is cut off before it is finalised."
            )
    if family is not None:
        return InputError(
            f"{path}: truncated or corrupt {family} file: FFmpeg cannot read its header ({reason})."
        )
    return InputError(f"{path}: not a video file FFmpeg can read ({reason}).")


def _truncated(path: Path, after: int, detail: str = "") -> InputError:
    return InputError(
        f"{path}: truncated or corrupt video: decoding stops after frame {after}{detail}."
    )
