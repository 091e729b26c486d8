"""Four-direction IRNN of SPANet's spatial attentive module, in pure PyTorch.

For each channel ``c`` and direction, along the scan:

    h_0 = relu(x_0),    h_i = relu(a_c * h_{i-1} + b_c + x_i)

(SPANet seed, Sec. 4.1, Eq. 5; ``a`` and ``b`` are a per-channel 1x1 depthwise weight and bias,
``a`` initialised to 0.2 as in the released model.) The released model ran this as a CUDA kernel
through cupy, which no longer runs on current PyTorch; here three interchangeable
implementations compute the same function and the same gradients:

``"loop"``
    A Python loop over the scan positions with whole-tensor ops, differentiated by autograd.
    Simple and slow; the baseline of ``benchmarks/bench_irnn.py``.
``"sweep"``
    A custom autograd function. The feature map and its transpose (stacked when the map is
    square) are one source that the forward-running scans (down, right) and the
    backward-running ones (up, left) both read, so a scan position costs two in-place ops per
    scan order on a whole ``(2, B, C, W)`` slice, with no flips; the backward is a
    hand-written reverse sweep, one op per position. Saves only the outputs. The fastest for
    training on a CPU (``benchmarks/bench_irnn.py``: 2.8x the loop's IRNN speed, 1.6x its
    training steps at 64x64 patches).
``"scan"``
    The same custom function computed in ``log2(L)`` whole-tensor steps (a Hillis-Steele
    prefix scan). ``h -> relu(a h + c)`` is the clamp of an affine map, and compositions of
    "affine map, then clamp to ``[lo, hi]``" stay in that family whatever the sign of ``a``,
    so the recurrence is an associative scan; its backward is a linear recurrence, scanned the
    same way. Meant for GPUs, where the sweep's many small kernel launches dominate. Falls
    back to the sweep when some ``|a| > 1`` (products of ``a`` over long spans would
    overflow).
``"numba"``
    Inference on the CPU: one compiled pass per direction over the channels-last map, the
    four directions written straight into one channels-last output (no flips, transposes or
    concatenation; :mod:`rainset.train._irnn_numba`), on ``torch.get_num_threads()`` threads.
    Forward only: where a gradient is needed (autograd on and an input requiring grad) or
    off the CPU it falls back to ``"auto"``'s choice of the others.

Directions, and the order of their blocks in the output channels: ``up`` (the scan runs from
the bottom row to the top: ``h`` at row ``i`` depends on row ``i + 1``), ``right`` (left
column to right), ``down`` (top to bottom), ``left`` (right to left).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["DIRECTIONS", "METHODS", "IRNN", "irnn"]

#: Output channel blocks, in order.
DIRECTIONS = ("up", "right", "down", "left")

Method = Literal["auto", "loop", "sweep", "scan", "numba"]
METHODS = ("auto", "loop", "sweep", "scan", "numba")

# A finite stand-in for +inf as the clamp's upper bound: 0 * inf would give NaN where products
# of ``a`` underflow to 0 over long spans; activations never come near 1e30.
_BIG = 1e30


def _to_scan_layout(x: torch.Tensor, direction: str) -> torch.Tensor:
    """(B, C, H, W) -> (L, B, C, L') with the scan running forward along dim 0 (a view)."""
    z = x.permute(2, 0, 1, 3) if direction in ("up", "down") else x.permute(3, 0, 1, 2)
    return z.flip(0) if direction in ("up", "left") else z


def _from_scan_layout(z: torch.Tensor, direction: str) -> torch.Tensor:
    """Inverse of :func:`_to_scan_layout`."""
    if direction in ("up", "left"):
        z = z.flip(0)
    return z.permute(1, 2, 0, 3) if direction in ("up", "down") else z.permute(1, 2, 3, 0)


def _irnn_loop(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    outs = []
    for d, direction in enumerate(DIRECTIONS):
        z = _to_scan_layout(x, direction)
        a = weight[d].view(1, -1, 1)
        b = bias[d].view(1, -1, 1)
        hs = [torch.relu(z[0])]
        for i in range(1, z.shape[0]):
            hs.append(torch.relu(a * hs[-1] + b + z[i]))
        outs.append(_from_scan_layout(torch.stack(hs), direction))
    return torch.cat(outs, dim=1)


# The fast methods work on a stack of sources ``src`` of shape (n, B, C, L, L') and scan along
# dim 3 (length L); ``a`` and ``b`` are (n, 1, C, 1), one row per stacked source. A
# "forward" scan runs i = 0 .. L-1, a "reverse" one i = L-1 .. 0; both read the same source.


def _sweep_forward(src, a, b, reverse: bool) -> torch.Tensor:
    L = src.shape[3]
    c = src + b.unsqueeze(-1)
    h = torch.empty_like(src)
    order = range(L - 1, -1, -1) if reverse else range(L)
    torch.clamp(src[:, :, :, order[0]], min=0, out=h[:, :, :, order[0]])
    prev = order[0]
    for i in order[1:]:
        hi = h[:, :, :, i]
        torch.addcmul(c[:, :, :, i], a, h[:, :, :, prev], out=hi)
        hi.clamp_(min=0)
        prev = i
    return h


def _sweep_backward(g, h, a, reverse: bool) -> torch.Tensor:
    """dL/dz for pre-activations z (= dL/dsrc): G_i = m_i g_i + m_i a G_next(i)."""
    L = g.shape[3]
    m = (h > 0).to(g.dtype)
    gz = g * m
    ma = m * a.unsqueeze(-1)
    order = range(1, L) if reverse else range(L - 2, -1, -1)
    step = -1 if reverse else 1
    for i in order:
        gz[:, :, :, i].addcmul_(ma[:, :, :, i], gz[:, :, :, i + step])
    return gz


def _clamp(v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return torch.minimum(torch.maximum(v, lo), hi)


def _clamp_compose(newer, older):
    """``newer o older`` for maps ``h -> clamp(alpha h + beta, lo, hi)``."""
    a2, b2, lo2, hi2 = newer
    a1, b1, lo1, hi1 = older
    p = a2 * lo1 + b2
    q = a2 * hi1 + b2
    # alpha2 * clamp(v, lo1, hi1) + beta2 = clamp(alpha2 v + beta2, min(p, q), max(p, q)), and
    # a clamp of a clamp is the clamp whose bounds are the outer clamp of the inner bounds.
    lo = _clamp(torch.minimum(p, q), lo2, hi2)
    hi = _clamp(torch.maximum(p, q), lo2, hi2)
    return a2 * a1, a2 * b1 + b2, lo, hi


def _scan_forward(src, a, b, reverse: bool) -> torch.Tensor:
    z = src.movedim(3, 0)  # (L, n, B, C, L')
    if reverse:
        z = z.flip(0)
    L = z.shape[0]
    alpha = torch.cat([torch.zeros_like(z[:1]), a.expand_as(z[1:])])  # h_0 ignores h_{-1}
    beta = torch.cat([z[:1], z[1:] + b])
    lo = torch.zeros_like(z)
    hi = torch.full_like(z, _BIG)
    d = 1
    while d < L:  # Hillis-Steele: after the pass with offset d, prefixes of length 2d are done
        new = _clamp_compose(
            (alpha[d:], beta[d:], lo[d:], hi[d:]), (alpha[:-d], beta[:-d], lo[:-d], hi[:-d])
        )
        alpha, beta, lo, hi = (
            torch.cat([old[:d], n]) for old, n in zip((alpha, beta, lo, hi), new)
        )
        d *= 2
    # Every prefix starts with the constant map of h_0, so alpha is 0 and h is clamp(beta).
    h = _clamp(beta, lo, hi)
    return (h.flip(0) if reverse else h).movedim(0, 3).contiguous()


def _scan_backward(g, h, a, reverse: bool) -> torch.Tensor:
    # G_i = m_i g_i + m_i a G_next(i) is linear: an affine scan from the far end.
    m = (h > 0).to(g.dtype)
    alpha = (m * a.unsqueeze(-1)).movedim(3, 0)
    beta = (m * g).movedim(3, 0)
    if not reverse:
        alpha, beta = alpha.flip(0), beta.flip(0)
    L = alpha.shape[0]
    d = 1
    while d < L:
        beta = torch.cat([beta[:d], alpha[d:] * beta[:-d] + beta[d:]])
        alpha = torch.cat([alpha[:d], alpha[d:] * alpha[:-d]])
        d *= 2
    if not reverse:
        beta = beta.flip(0)
    return beta.movedim(0, 3)


def _param_grads(gz, h, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(da, db), each (n, 1, C, 1), from dL/dz and the outputs."""
    if reverse:
        gz_in, h_prev = gz[:, :, :, :-1], h[:, :, :, 1:]
    else:
        gz_in, h_prev = gz[:, :, :, 1:], h[:, :, :, :-1]
    dims = (1, 3, 4)
    da = (gz_in * h_prev).sum(dim=dims, keepdim=True).squeeze(-1)
    db = gz_in.sum(dim=dims, keepdim=True).squeeze(-1)
    return da, db


class _IRNNScan(torch.autograd.Function):
    """Forward and reverse scans of one stacked source; returns (h_forward, h_reverse)."""

    @staticmethod
    def forward(ctx, src, a_f, b_f, a_r, b_r, method):
        run = _scan_forward if method == "scan" else _sweep_forward
        with torch.no_grad():
            h_f = run(src, a_f, b_f, reverse=False)
            h_r = run(src, a_r, b_r, reverse=True)
        ctx.save_for_backward(h_f, h_r, a_f, a_r)
        ctx.method = method
        return h_f, h_r

    @staticmethod
    def backward(ctx, g_f, g_r):
        h_f, h_r, a_f, a_r = ctx.saved_tensors
        run = _scan_backward if ctx.method == "scan" else _sweep_backward
        gz_f = run(g_f.contiguous(), h_f, a_f, reverse=False)
        gz_r = run(g_r.contiguous(), h_r, a_r, reverse=True)
        da_f, db_f = _param_grads(gz_f, h_f, reverse=False)
        da_r, db_r = _param_grads(gz_r, h_r, reverse=True)
        return gz_f + gz_r, da_f, db_f, da_r, db_r, None


# Direction indices in DIRECTIONS order: forward scans are down (2) and right (1), reverse
# scans up (0) and left (3); vertical sources come first in a stack.
_UP, _RIGHT, _DOWN, _LEFT = range(4)


def irnn(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *, method: Method = "auto"
) -> torch.Tensor:
    """Run the four-direction IRNN.

    Parameters
    ----------
    x : (B, C, H, W) float tensor
    weight, bias : (4, C) float tensors
        ``a`` and ``b`` of each direction, in :data:`DIRECTIONS` order.
    method : {"auto", "loop", "sweep", "scan", "numba"}
        See the module docstring. ``"auto"``: ``"scan"`` on CUDA; on the CPU ``"numba"`` when
        no gradient is needed (inference), else ``"sweep"``.

    Returns
    -------
    h : (B, 4C, H, W) tensor, dtype of ``x``
        The four directions' outputs concatenated along channels in :data:`DIRECTIONS` order.
        Computed in float32 when ``x`` is half or bfloat16 (autocast).
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got {tuple(x.shape)}")
    C = x.shape[1]
    if weight.shape != (4, C) or bias.shape != (4, C):
        raise ValueError(
            f"weight and bias must be (4, {C}), got {tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    if method not in METHODS:
        raise ValueError(
            f"method must be 'auto', 'loop', 'sweep', 'scan' or 'numba', got {method!r}"
        )
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    weight = weight.to(x.dtype)
    bias = bias.to(x.dtype)
    if method == "loop":
        return _irnn_loop(x, weight, bias).to(dtype)
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or bias.requires_grad
    )
    if method == "numba" and (needs_grad or x.device.type != "cpu"):
        method = "auto"
    if method == "auto":
        method = "scan" if x.is_cuda else ("sweep" if needs_grad else "numba")
    if method == "numba":
        return _irnn_numba(x, weight, bias).to(dtype)
    if method == "scan" and bool((weight.detach().abs() > 1).any()):
        method = "sweep"
    H, W = x.shape[2:]
    xt = x.transpose(2, 3)  # scanning its dim 2 runs along the image's width

    def params(fwd: list[int], rev: list[int]):
        def v(t, idx):
            return t[idx].view(len(idx), 1, C, 1)

        return v(weight, fwd), v(bias, fwd), v(weight, rev), v(bias, rev)

    if H == W:
        h_f, h_r = _IRNNScan.apply(
            torch.stack([x, xt]), *params([_DOWN, _RIGHT], [_UP, _LEFT]), method
        )
        up, left, down, right = h_r[0], h_r[1].transpose(2, 3), h_f[0], h_f[1].transpose(2, 3)
    else:
        v_f, v_r = _IRNNScan.apply(x.unsqueeze(0), *params([_DOWN], [_UP]), method)
        s_f, s_r = _IRNNScan.apply(xt.contiguous().unsqueeze(0), *params([_RIGHT], [_LEFT]), method)
        up, down = v_r[0], v_f[0]
        right, left = s_f[0].transpose(2, 3), s_r[0].transpose(2, 3)
    return torch.cat([up, right, down, left], dim=1).to(dtype)


def _irnn_numba(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    from rainset.train._irnn_numba import irnn_nhwc

    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    nhwc = x.detach().permute(0, 2, 3, 1).contiguous().numpy()
    w = weight.detach().to(x.dtype).cpu().numpy()
    b = bias.detach().to(x.dtype).cpu().numpy()
    out = irnn_nhwc(nhwc, w, b, threads=torch.get_num_threads())
    return torch.from_numpy(out).permute(0, 3, 1, 2)  # (B, 4C, H, W), channels-last


class IRNN(nn.Module):
    """Four-direction IRNN layer with per-channel recurrent weight and bias.

    Parameters
    ----------
    channels : int
        C; the layer maps (B, C, H, W) to (B, 4C, H, W).
    method : {"auto", "loop", "sweep", "scan", "numba"}
        Implementation (:func:`irnn`); all give the same values (and, but for the forward-only
        ``"numba"``, the same gradients).

    Notes
    -----
    ``weight`` starts at 0.2 (the released model) and ``bias`` at 0; 8C parameters.
    """

    def __init__(self, channels: int, *, method: Method = "auto") -> None:
        super().__init__()
        self.method = method
        self.weight = nn.Parameter(torch.full((4, channels), 0.2))
        self.bias = nn.Parameter(torch.zeros(4, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return irnn(x, self.weight, self.bias, method=self.method)
