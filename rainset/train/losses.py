"""SPANet's training loss: L1 + (1 - SSIM) + MSE(first attention map, rain mask).

SPANet seed, Sec. 4.2, Eqs. 6-7. SSIM here is the one of :mod:`rainset.metrics` (11x11 Gaussian
window, sigma 1.5, K1 = 0.01, K2 = 0.03, population statistics, valid region, mean over the map
and the channels) on float images with data range 1, written in torch so it can be
differentiated.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["ssim", "spanet_loss"]

_SIGMA = 1.5
_RADIUS = 5
_K1, _K2 = 0.01, 0.03


def _window(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(-_RADIUS, _RADIUS + 1, device=device, dtype=torch.float64)
    g = torch.exp(-(x * x) / (2 * _SIGMA * _SIGMA))
    return (g / g.sum()).to(dtype)


def ssim(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of two image batches, differentiable.

    Parameters
    ----------
    a, b : (B, C, H, W) float tensors
        Same shape, H and W at least 11.
    data_range : float
        L in ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``; 1 for images in [0, 1].

    Returns
    -------
    ssim : scalar tensor
        Mean over the valid region, channels and batch; equals
        ``rainset.metrics.ssim(..., data_range=data_range)`` averaged over the batch.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"a and b must be one (B, C, H, W) shape, got {a.shape} and {b.shape}")
    size = 2 * _RADIUS + 1
    if a.shape[2] < size or a.shape[3] < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size}, got {tuple(a.shape[2:])}")
    C = a.shape[1]
    # SSIM's statistics cancel badly in bfloat16; compute them in float32 at least.
    dtype = torch.promote_types(a.dtype, torch.float32)
    a, b = a.to(dtype), b.to(dtype)
    g = _window(a.device, dtype)
    wy = g.view(1, 1, -1, 1).expand(C, 1, -1, 1)
    wx = g.view(1, 1, 1, -1).expand(C, 1, 1, -1)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, wy, groups=C), wx, groups=C)

    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    mu_a, mu_b = mean(a), mean(b)
    var_a = mean(a * a) - mu_a * mu_a
    var_b = mean(b * b) - mu_b * mu_b
    cov = mean(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return (num / den).mean()


def spanet_loss(
    output: torch.Tensor,
    clean: torch.Tensor,
    attention: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SPANet's loss ``L1 + (1 - SSIM) + MSE(attention, mask)``.

    Parameters
    ----------
    output, clean : (B, 3, H, W) float tensors
        The network's output and the clean target, in [0, 1].
    attention : (B, 1, H, W) float tensor
        The first SAM's attention map.
    mask : (B, 1, H, W) float tensor
        The binary rain mask (1 = rain).

    Returns
    -------
    loss : scalar tensor
        The sum, to back-propagate.
    parts : dict
        ``{"l1", "ssim", "att", "loss"}`` as Python floats (``"ssim"`` is the 1 - SSIM term).
    """
    l1 = F.l1_loss(output.float(), clean.float())
    l_ssim = 1.0 - ssim(output, clean)
    l_att = F.mse_loss(attention.float(), mask.float())
    loss = l1 + l_ssim + l_att
    parts = {
        "l1": float(l1.detach()),
        "ssim": float(l_ssim.detach()),
        "att": float(l_att.detach()),
        "loss": float(loss.detach()),
    }
    if not math.isfinite(parts["loss"]):
        raise FloatingPointError(f"the loss is not finite: {parts}")
    return loss, parts
