"""Apply a trained SPANet: load a checkpoint, derain whole images with tiled inference.

Checkpoints are the ``model.safetensors`` files :mod:`rainset.train.loop` writes (weights plus
a ``rainset`` metadata entry); a run folder or its ``checkpoint/`` folder may be given instead.
Large images are processed in overlapping tiles blended with linear ramps, which bounds memory;
the IRNN's context then stops at tile borders, so set ``tile`` to at least the training crop.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rainset.errors import InputError, ParameterError
from rainset.train.spanet import SPANet

__all__ = [
    "resolve_checkpoint", "load_model", "derain_image", "pick_device", "derain_files",
    "DerainResult",
]

WEIGHTS_NAME = "model.safetensors"


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for, but this machine has no CUDA GPU.")
    return dev


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The weights file for a run folder, a ``checkpoint/`` folder or the file itself.

    Raises
    ------
    InputError
        No weights file there.
    """
    p = Path(path)
    for cand in (p, p / WEIGHTS_NAME, p / "checkpoint" / WEIGHTS_NAME):
        if cand.is_file():
            return cand
    raise InputError(
        f"{p}: no SPANet weights here (looked for the file itself, {WEIGHTS_NAME} and "
        f"checkpoint/{WEIGHTS_NAME})."
    )


def load_model(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[SPANet, dict]:
    """Load SPANet weights for inference.

    Returns
    -------
    model : SPANet in eval mode on ``device``.
    meta : the ``rainset`` metadata stored with the weights (step, config, ...); empty when the
        file has none.

    Raises
    ------
    InputError
        The file is missing, not a safetensors file, or not SPANet weights.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    file = resolve_checkpoint(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            raw = (f.metadata() or {}).get("rainset")
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{file}: not a readable safetensors file ({exc}).") from None
    meta = json.loads(raw) if raw else {}
    model = SPANet()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"{file}: these are not SPANet weights ({first}).") from None
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return model.to(dev).to(memory_format=torch.channels_last).eval(), meta


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    w = np.ones(n, np.float32)
    k = min(overlap, n // 2)
    if k > 0:
        r = (np.arange(k, dtype=np.float32) + 1.0) / (k + 1.0)
        if not at_start:
            w[:k] = r
        if not at_end:
            w[n - k :] = r[::-1]
    return w


def _spans(size: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, length) of the fewest equal tiles no longer than ``tile`` that cover ``size``
    with at least ``overlap`` pixels shared by neighbours."""
    if size <= tile:
        return [(0, size)]
    n = -(-(size - overlap) // (tile - overlap))
    length = -(-(size + (n - 1) * overlap) // n)
    starts = [round(k * (size - length) / (n - 1)) for k in range(n)]
    return [(s, length) for s in starts]


@torch.inference_mode()
def derain_image(
    model: SPANet,
    image: np.ndarray,
    *,
    tile: int = 1024,
    overlap: int = 32,
    amp: bool = True,
    progress=None,
) -> np.ndarray:
    """Derain one image.

    Parameters
    ----------
    model : SPANet, in eval mode, on its device.
    image : (H, W, 3) uint8 ndarray, RGB.
    tile : images larger than ``tile`` on a side run in ``tile x tile`` pieces.
    overlap : pixels shared by neighbouring tiles, blended linearly.
    amp : bfloat16 autocast on CUDA (ignored on the CPU).
    progress : called as ``progress(done, total)`` before the first tile (``done`` 0) and after
        each tile (``total`` > 1 only when the image is tiled).

    Returns
    -------
    derained : (H, W, 3) uint8 ndarray, rounded and clipped.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if tile < 16 or not 0 <= overlap <= tile // 2:
        raise ValueError(f"need tile >= 16 and 0 <= overlap <= tile / 2, got {tile}, {overlap}")
    param = next(model.parameters())
    device = param.device
    h, w = image.shape[:2]
    acc = np.zeros((h, w, 3), np.float32)
    wsum = np.zeros((h, w, 1), np.float32)
    boxes = [
        (y, th, x, tw)
        for y, th in _spans(h, tile, overlap)
        for x, tw in _spans(w, tile, overlap)
    ]
    if progress is not None:
        progress(0, len(boxes))
    for done, (y, th, x, tw) in enumerate(boxes, start=1):
        piece = image[y : y + th, x : x + tw]
        t = torch.from_numpy(np.ascontiguousarray(piece)).permute(2, 0, 1)[None]
        t = t.to(device, non_blocking=True).float().div_(255.0)
        # Channels-last on every device: oneDNN's convolutions on the CPU are 2-3x faster
        # in it, and the IRNN's CPU kernel reads and writes it (benchmarks/bench_irnn.py).
        t = t.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
        ):
            out, _ = model(t)
        out = out.float()[0].permute(1, 2, 0).cpu().numpy()
        wy = _ramp(th, overlap, y == 0, y + th >= h)
        wx = _ramp(tw, overlap, x == 0, x + tw >= w)
        wt = (wy[:, None] * wx[None, :])[:, :, None]
        acc[y : y + th, x : x + tw] += out * wt
        wsum[y : y + th, x : x + tw] += wt
        if progress is not None:
            progress(done, len(boxes))
    return np.clip(np.rint(acc / wsum * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- derain_files


@dataclass
class DerainResult:
    """What :func:`derain_files` wrote.

    Attributes
    ----------
    out : the output folder.
    written : the files written, in input order.
    step : the training step of the model (None when its checkpoint does not say).
    notes : what the user should know (the output lies inside a folder input, ...).
    """

    out: Path
    written: list[Path] = field(default_factory=list)
    step: int | None = None
    notes: list[str] = field(default_factory=list)


def derain_files(
    checkpoint: str | os.PathLike,
    inputs,
    out: str | os.PathLike,
    *,
    options=None,
    progress=None,
    **kwargs,
) -> DerainResult:
    """Apply a trained SPANet to images, folders of images and videos.

    Images become ``out/<name>.png``, folders ``out/<folder>/...`` (their images, as PNG),
    videos ``out/<name>.mp4`` (H.264 at ``crf``). Every input is looked at before anything is
    written, so an unreadable one fails the call before ``out`` changes.

    Parameters
    ----------
    checkpoint : a run folder, its ``checkpoint/`` folder or the ``model.safetensors`` file.
    inputs : a path or a list of paths.
    out : the output folder.
    options : :class:`rainset.options.DerainOptions` (``device``, ``tile``, ``overlap``,
        ``crf``); its fields may be given as keywords instead.
    progress : called with a :class:`rainset.evaluate.Event` (pipeline ``"derain"``): kind
        ``"tile"`` after each tile of a tiled image, ``"frame"`` after each video frame,
        ``"written"`` after each output file, ``"note"``.

    Raises
    ------
    InputError
        A missing or unreadable input or checkpoint; a video of odd width or height.
    ParameterError
        A bad option; ``out`` is or holds an input; two inputs would write one file.
    """
    from dataclasses import fields as dc_fields

    from rainset.evaluate import _emitter
    from rainset.image import is_image_path, read_image, to_uint8, write_image
    from rainset.inputs import check_destinations, check_outputs, iter_files, natural_sorted
    from rainset.options import DerainOptions, merged
    from rainset.video import probe

    known = {f.name for f in dc_fields(DerainOptions)}
    for key in kwargs:
        if key not in known:
            raise ParameterError(key, f"is not an option of derain ({', '.join(sorted(known))})")
    opts = merged(options or DerainOptions, kwargs)
    tile, overlap = opts.tile, opts.overlap
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 64:
        raise ParameterError("tile", f"must be a whole number >= 64, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= tile // 2:
        raise ParameterError("overlap", f"must be in [0, tile / 2] = [0, {tile // 2}], got {overlap!r}")
    if not 0 <= int(opts.crf) <= 51:
        raise ParameterError("crf", f"must be in 0..51, got {opts.crf}")
    inputs = [Path(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    if not inputs:
        raise ParameterError("inputs", "give at least one image, folder or video")
    out = Path(out)
    result = DerainResult(out)

    emit = _emitter("derain", progress)

    # OUT may not be or hold an input; inside a folder input it is skipped; two inputs may
    # not be written to one output file.
    for line in check_outputs({"out": out}, inputs):
        result.notes.append(line)
        emit("note", message=line)
    for src in inputs:
        if not src.exists():
            raise InputError(f"{src}: no such file or folder.")
    jobs = []  # (input, its files: (file, output file))
    for src in inputs:
        if src.is_dir():
            files = natural_sorted(
                (p for p in iter_files(src, exclude=[out]) if is_image_path(p)),
                key=lambda p: p.relative_to(src).as_posix(),
            )
            jobs.append((src, [(p, out / src.name / p.relative_to(src).with_suffix(".png")) for p in files]))
        else:
            suffix = ".png" if is_image_path(src) else ".mp4"
            jobs.append((src, [(src, out / (src.stem + suffix))]))
    check_destinations(pair for _, files in jobs for pair in files)

    from rainset.dataset import image_size

    videos = {}  # input -> its probe, reused to write it
    for src in inputs:
        if src.is_dir():
            continue
        if is_image_path(src):
            image_size(src, decode=False)
        else:
            vi = videos[src] = probe(src, decode=False)
            if vi.width % 2 or vi.height % 2:
                raise InputError(
                    f"{src}: the video is {vi.width}x{vi.height}; the derained H.264 video needs "
                    "an even width and height (crop or pad it by a pixel first)."
                )
    try:
        model, meta = load_model(checkpoint, device=opts.device)
    except ValueError as exc:
        raise ParameterError("device", str(exc)) from None
    result.step = meta.get("step")
    total = sum(len(files) for _, files in jobs)
    emit("start", total=total)

    def run(img, name: str):
        def tiles(done: int, n: int) -> None:
            if n > 1:
                emit("tile", name, done=done, total=n)

        return derain_image(model, to_uint8(img), tile=tile, overlap=overlap, progress=tiles)

    for src, files in jobs:
        if src.is_dir() or is_image_path(src):
            for p, dst in files:
                write_image(dst, run(read_image(p), str(p)))
                result.written.append(dst)
                emit("written", str(p), done=len(result.written), total=total)
        else:
            from rainset.video import iter_frames, write_video

            info = videos[src]
            n_frames = info.frame_count or None

            def frames(src=src, n_frames=n_frames):
                for k, f in enumerate(iter_frames(src), start=1):
                    yield run(f, f"{src} frame {k}")
                    emit("frame", str(src), done=k, total=n_frames)

            dst = files[0][1]
            write_video(dst, frames(), fps=info.fps or 25, crf=int(opts.crf))
            result.written.append(dst)
            emit("written", str(src), done=len(result.written), total=total)
    emit("done", done=len(result.written), total=total)
    return result
