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
    A custom autograd function: one loop of ``L`` steps (``L`` = the image height or width)
    over all directions at once, each step two in-place ops on a whole ``(D, B, C, L')`` slice,
    and a hand-written backward sweep. Saves only the output. The fastest on a CPU.
``"scan"``
    The same custom function computed in ``log2(L)`` whole-tensor steps (a Hillis-Steele
    prefix scan). ``h -> relu(a h + c)`` is the clamp of an affine map, and compositions of
    "affine map, then clamp to ``[lo, hi]``" stay in that family whatever the sign of ``a``,
    so the recurrence is an associative scan; its backward is a linear recurrence, scanned the
    same way. Meant for GPUs, where the sweep's many small kernel launches dominate. Falls
    back to the sweep when some ``|a| > 1`` (products of ``a`` over long spans would
    overflow).

Directions, and the order of their blocks in the output channels: ``up`` (the scan runs from
the bottom row to the top: ``h`` at row ``i`` depends on row ``i + 1``), ``right`` (left
column to right), ``down`` (top to bottom), ``left`` (right to left).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["DIRECTIONS", "IRNN", "irnn"]

#: Output channel blocks, in order.
DIRECTIONS = ("up", "right", "down", "left")

Method = Literal["auto", "loop", "sweep", "scan"]

# A finite stand-in for +inf as the clamp's upper bound: 0 * inf would give NaN where products
# of ``a`` underflow to 0 over long spans; activations never come near 1e30.
_BIG = 1e30


def _to_scan_layout(x: torch.Tensor, direction: str) -> torch.Tensor:
    """(B, C, H, W) -> (L, B, C, L') with the scan running forward along dim 0."""
    if direction in ("up", "down"):
        z = x.permute(2, 0, 1, 3)
    else:
        z = x.permute(3, 0, 1, 2)
    if direction in ("up", "left"):
        z = z.flip(0)
    return z


def _from_scan_layout(z: torch.Tensor, direction: str) -> torch.Tensor:
    """Inverse of :func:`_to_scan_layout`."""
    if direction in ("up", "left"):
        z = z.flip(0)
    if direction in ("up", "down"):
        return z.permute(1, 2, 0, 3)
    return z.permute(1, 2, 3, 0)


def _sweep_forward(z: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    c = z + b
    h = torch.empty_like(z)
    torch.clamp(z[0], min=0, out=h[0])
    for i in range(1, z.shape[0]):
        hi = h[i]
        torch.addcmul(c[i], a, h[i - 1], out=hi)
        hi.clamp_(min=0)
    return h


def _sweep_backward(g: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Gradient with respect to the pre-activations ``z_i`` (equal to the gradient of x_i)."""
    m = h > 0
    gz = g * m
    for i in range(g.shape[0] - 2, -1, -1):
        # dL/dh_i also gets a * dL/dz_{i+1}; the ReLU passes it where h_i > 0.
        gz[i].addcmul_(a, gz[i + 1]).mul_(m[i])
    return gz


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


def _clamp(v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return torch.minimum(torch.maximum(v, lo), hi)


def _scan_forward(z: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    L = z.shape[0]
    alpha = a.expand_as(z[1:]).clone()
    alpha = torch.cat([torch.zeros_like(z[:1]), alpha])  # h_0 = relu(x_0) ignores any h_{-1}
    beta = torch.cat([z[:1], z[1:] + b])
    lo = torch.zeros_like(z)
    hi = torch.full_like(z, _BIG)
    d = 1
    while d < L:
        new = _clamp_compose(
            (alpha[d:], beta[d:], lo[d:], hi[d:]), (alpha[:-d], beta[:-d], lo[:-d], hi[:-d])
        )
        alpha = torch.cat([alpha[:d], new[0]])
        beta = torch.cat([beta[:d], new[1]])
        lo = torch.cat([lo[:d], new[2]])
        hi = torch.cat([hi[:d], new[3]])
        d *= 2
    # Every prefix composition starts with the constant map of h_0, so alpha is 0 and the
    # value is the clamp of beta.
    return _clamp(beta, lo, hi)


def _scan_backward(g: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    # G_i = m_i (g_i + a G_{i+1}), m_i = [h_i > 0]: linear, so an affine scan from the end.
    m = (h > 0).to(g.dtype)
    alpha = (m * a).flip(0)
    beta = (m * g).flip(0)
    L = g.shape[0]
    d = 1
    while d < L:
        beta = torch.cat([beta[:d], alpha[d:] * beta[:-d] + beta[d:]])
        alpha = torch.cat([alpha[:d], alpha[d:] * alpha[:-d]])
        d *= 2
    return beta.flip(0)


class _IRNNScan(torch.autograd.Function):
    """Scan over dim 0 of ``z`` (L, D, B, C, L') with ``a``, ``b`` of shape (D, 1, C, 1)."""

    @staticmethod
    def forward(ctx, z, a, b, method):
        with torch.no_grad():
            h = _scan_forward(z, a, b) if method == "scan" else _sweep_forward(z, a, b)
        ctx.save_for_backward(h, a)
        ctx.method = method
        return h

    @staticmethod
    def backward(ctx, g):
        h, a = ctx.saved_tensors
        g = g.contiguous()
        if ctx.method == "scan":
            gz = _scan_backward(g, h, a)
        else:
            gz = _sweep_backward(g, h, a)
        dims = (0, 2, 4)
        gb = gz[1:].sum(dim=dims, keepdim=True)[0]
        ga = (gz[1:] * h[:-1]).sum(dim=dims, keepdim=True)[0]
        return gz, ga, gb, None


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


def irnn(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *, method: Method = "auto"
) -> torch.Tensor:
    """Run the four-direction IRNN.

    Parameters
    ----------
    x : (B, C, H, W) float tensor
    weight, bias : (4, C) float tensors
        ``a`` and ``b`` of each direction, in :data:`DIRECTIONS` order.
    method : {"auto", "loop", "sweep", "scan"}
        See the module docstring. ``"auto"``: ``"scan"`` on CUDA, ``"sweep"`` elsewhere.

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
    if method not in ("auto", "loop", "sweep", "scan"):
        raise ValueError(f"method must be 'auto', 'loop', 'sweep' or 'scan', got {method!r}")
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    weight = weight.to(x.dtype)
    bias = bias.to(x.dtype)
    if method == "loop":
        return _irnn_loop(x, weight, bias).to(dtype)
    if method == "auto":
        method = "scan" if x.is_cuda else "sweep"
    if method == "scan" and bool((weight.detach().abs() > 1).any()):
        method = "sweep"
    H, W = x.shape[2:]
    # Directions whose scans have the same length run in one stacked pass.
    groups = [[0, 1, 2, 3]] if H == W else [[0, 2], [1, 3]]
    outs: list[torch.Tensor | None] = [None] * 4
    for group in groups:
        z = torch.stack([_to_scan_layout(x, DIRECTIONS[d]) for d in group], dim=1).contiguous()
        a = weight[group].view(len(group), 1, C, 1)
        b = bias[group].view(len(group), 1, C, 1)
        h = _IRNNScan.apply(z, a, b, method)
        for k, d in enumerate(group):
            outs[d] = _from_scan_layout(h[:, k], DIRECTIONS[d])
    return torch.cat(outs, dim=1).to(dtype)


class IRNN(nn.Module):
    """Four-direction IRNN layer with per-channel recurrent weight and bias.

    Parameters
    ----------
    channels : int
        C; the layer maps (B, C, H, W) to (B, 4C, H, W).
    method : {"auto", "loop", "sweep", "scan"}
        Implementation (:func:`irnn`); all give the same values and gradients.

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
