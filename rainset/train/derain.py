"""Apply a trained SPANet: load a checkpoint, derain whole images with tiled inference.

Checkpoints are the ``model.safetensors`` files :mod:`rainset.train.loop` writes (weights plus
a ``rainset`` metadata entry); a run folder or its ``checkpoint/`` folder may be given instead.
Large images are processed in overlapping tiles blended with linear ramps, which bounds memory;
the IRNN's context then stops at tile borders, so set ``tile`` to at least the training crop.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from rainset.errors import InputError
from rainset.train.spanet import SPANet

__all__ = ["resolve_checkpoint", "load_model", "derain_image", "pick_device"]

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
    return model.to(dev).eval(), meta


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
) -> np.ndarray:
    """Derain one image.

    Parameters
    ----------
    model : SPANet, in eval mode, on its device.
    image : (H, W, 3) uint8 ndarray, RGB.
    tile : images larger than ``tile`` on a side run in ``tile x tile`` pieces.
    overlap : pixels shared by neighbouring tiles, blended linearly.
    amp : bfloat16 autocast on CUDA (ignored on the CPU).

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
    for y, th in _spans(h, tile, overlap):
        for x, tw in _spans(w, tile, overlap):
            piece = image[y : y + th, x : x + tw]
            t = torch.from_numpy(np.ascontiguousarray(piece)).permute(2, 0, 1)[None]
            t = t.to(device, non_blocking=True).float().div_(255.0)
            if device.type == "cuda":
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
    return np.clip(np.rint(acc / wsum * 255.0), 0, 255).astype(np.uint8)
