"""Training losses: SPANet's own, the time-lapse paper's, the rain-direction regulariser.

- :func:`spanet_loss`: L1 + (1 - SSIM) + MSE(first attention map, rain mask) (SPANet seed,
  Sec. 4.2, Eqs. 6-7). SSIM here is the one of :mod:`rainset.metrics` (11x11 Gaussian window,
  sigma 1.5, K1 = 0.01, K2 = 0.03, population statistics, valid region, mean over the map and the
  channels) on float images with data range 1, written in torch so it can be differentiated.
- :func:`background_consistency` (L_b), :func:`structure_similarity` (L_s) with its schedule
  :func:`structure_gamma`, and :class:`DirectionalGradient` (L_v): the time-lapse seed's losses
  (Sec. III-B, Eqs. 2-6) for frame pairs without clean images.
- :func:`rain_direction_loss`: the rain-direction seed's regulariser (UDRDR Sec. 3.1, Eq. 5)
  with the 18 kernels of :func:`rainset.streaks.direction_kernels`.

The paper's losses are sums over scenes, pairs and pixels; here every term is a mean (over the
batch, the pixels and the channels it covers), so the weights apply to means.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "ssim",
    "spanet_loss",
    "background_consistency",
    "structure_similarity",
    "structure_gamma",
    "DirectionalGradient",
    "rain_direction_loss",
    "direction_kernel_pair",
]

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


# ----------------------------------------------------------------------------- time-lapse losses


def _f(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (bfloat16 outputs of autocast are promoted; float64 stays)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _keep(mask_a: torch.Tensor | None, mask_b: torch.Tensor | None, like: torch.Tensor):
    """(B, 1, H, W) weight 1 where neither frame's moving-object mask is set (None: all 1)."""
    keep = torch.ones_like(_f(like[:, :1]))
    for m in (mask_a, mask_b):
        if m is not None:
            keep = keep * (1.0 - (m > 0.5).to(keep.dtype))
    return keep


def _masked_l1(x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean |x - y| over the kept pixels and all channels (0 when nothing is kept)."""
    diff = (_f(x) - _f(y)).abs() * keep
    n = keep.sum() * x.shape[1]
    return diff.sum() / n.clamp_min(1.0)


def background_consistency(
    back_a: torch.Tensor,
    back_b: torch.Tensor,
    mask_a: torch.Tensor | None = None,
    mask_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_b, the background consistency loss (time-lapse seed, Sec. III-B-1, Eq. 2).

    ``mean |B^m - B^n|`` between the backgrounds estimated from two different frames m != n of
    one static segment, over the pixels where neither frame's moving-object mask (the per-frame
    masks ``rainset pairs`` writes) is set, and over the channels.

    Parameters
    ----------
    back_a, back_b : (B, C, H, W) float tensors
        The network's outputs for frames m and n.
    mask_a, mask_b : (B, 1, H, W) float tensors of 0 / 1, or None
        The frames' moving-object masks (1 = moving object: excluded).

    Returns
    -------
    scalar tensor (0 when every pixel is masked).
    """
    return _masked_l1(back_a, back_b, _keep(mask_a, mask_b, back_a))


def structure_gamma(step: int, iters: int, *, start: float = 0.1, end: float = 1e-4,
                    fraction: float = 0.3) -> float:
    """L_s's gamma at (0-based) ``step`` of ``iters``: linear from ``start`` to ``end`` over the
    first ``fraction`` of training, then fixed at ``end`` (time-lapse seed, Sec. III-B-2)."""
    span = fraction * iters
    if span <= 0:
        return float(end)
    t = min(max(step / span, 0.0), 1.0)
    return float(start + (end - start) * t)


def structure_similarity(
    input_a: torch.Tensor,
    input_b: torch.Tensor,
    back_a: torch.Tensor,
    back_b: torch.Tensor,
    gamma: float,
    mask_a: torch.Tensor | None = None,
    mask_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_s, the structure similarity loss (time-lapse seed, Sec. III-B-2, Eq. 3).

    ``gamma * (mean |I^m - B^n| + mean |I^n - B^m|) / 2``: each frame's input against the
    *other* frame's output (m != n; with m = n the paper found the network keeps the rain), in
    both orders since both frames go through the network. Pixels under either frame's
    moving-object mask are left out as in :func:`background_consistency` (the object is in one
    input and not in the other frame's background, so it is no structure to copy). ``gamma``
    multiplies inside the loss, on top of the loss weight lambda_s (:func:`structure_gamma`).
    """
    keep = _keep(mask_a, mask_b, back_a)
    pair = _masked_l1(input_a, back_b, keep) + _masked_l1(input_b, back_a, keep)
    return float(gamma) * 0.5 * pair


def _orientation(rain: torch.Tensor, min_gradient: float) -> tuple[torch.Tensor, torch.Tensor]:
    """theta = atan(dy S / dx S) in [-pi/2, pi/2) of the grey rain, and where it is defined."""
    s = _f(rain).mean(dim=1, keepdim=True)
    gx = s[:, :, :-1, 1:] - s[:, :, :-1, :-1]
    gy = s[:, :, 1:, :-1] - s[:, :, :-1, :-1]
    valid = (gx * gx + gy * gy) >= min_gradient * min_gradient
    # atan(gy / gx) folded into [-pi/2, pi/2); written with atan2 so gx = 0 is no division.
    # Where the gradient is (near) zero the orientation is undefined: such pixels are left out,
    # and gx is nudged there so that atan2's gradient stays finite.
    safe_gx = torch.where(valid, gx, torch.ones_like(gx))
    safe_gy = torch.where(valid, gy, torch.zeros_like(gy))
    theta = torch.atan2(safe_gy, safe_gx)
    theta = torch.where(theta >= math.pi / 2, theta - math.pi, theta)
    theta = torch.where(theta < -math.pi / 2, theta + math.pi, theta)
    return theta, valid.to(theta.dtype)


class DirectionalGradient(torch.nn.Module):
    """L_v, the directional gradient loss, and the directional gradient network that carries
    its k orientation centres (time-lapse seed, Sec. III-B-3, Eqs. 4-6; Sec. III-C-2, Fig. 5).

    On the estimated rain ``S = I - B`` (grey: the mean over the channels, as the paper's S has
    one channel) the gradient orientation is ``theta = atan(dy S / dx S)`` per pixel (forward
    differences, in radians, in [-pi/2, pi/2)). A 3x3 convolution of the theta map with k
    filters ``W_k`` and biases ``b_k``, then a softmax over k, gives the soft memberships
    ``alpha_k(theta_i)`` (Eq. 5); ``V(k) = mean_i alpha_k(theta_i) |theta_i - c_k|`` (Eq. 4) and
    ``L_v = sum_k |V(k)|`` (Eq. 6).

    **How the centres are estimated**: as in the paper, ``c_k`` (and ``W_k``, ``b_k``) are
    trainable parameters of this module, learned by minimising L_v itself with the same
    optimizer as the deraining network, jointly with it (a soft k-medians of the orientations
    by gradient descent: the memberships move each pixel to its nearest centre, the centres to
    the median of their pixels, and the deraining network's rain towards few orientations).
    They start evenly spread, ``c_k = -pi/2 + pi (k + 1/2) / K``; ``W_k`` and ``b_k`` start at
    zero (equal memberships). The module only regularises training; it is not part of the
    derainer and is not used at inference.

    Pixels whose rain gradient is below ``min_gradient`` (1/255 by default) have no orientation
    (atan(0/0)) and are left out; the paper does not say how it treats them.

    Parameters
    ----------
    k : number of orientation centres (4 in the paper, Sec. III-E).
    min_gradient : gradient magnitude (in units of the image range) below which a pixel is
        left out.
    """

    def __init__(self, k: int = 4, *, min_gradient: float = 1.0 / 255.0) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)
        self.min_gradient = float(min_gradient)
        self.assign = torch.nn.Conv2d(1, self.k, 3, padding=1, bias=True)
        torch.nn.init.zeros_(self.assign.weight)
        torch.nn.init.zeros_(self.assign.bias)
        centres = [-math.pi / 2 + math.pi * (i + 0.5) / self.k for i in range(self.k)]
        self.centres = torch.nn.Parameter(torch.tensor(centres, dtype=torch.float32))

    def memberships(self, theta: torch.Tensor) -> torch.Tensor:
        """alpha: (B, k, H, W) softmax over k of the 3x3 convolution of theta (Eq. 5)."""
        return torch.softmax(self.assign(theta), dim=1)

    def forward(self, rain: torch.Tensor) -> torch.Tensor:
        """L_v of the estimated rain ``rain`` = I - B, (B, C, H, W); a scalar tensor."""
        theta, valid = _orientation(rain, self.min_gradient)
        alpha = self.memberships(theta)
        dist = (theta - self.centres.view(1, -1, 1, 1)).abs()
        n = (valid.sum() * 1.0).clamp_min(1.0)
        v = (alpha * dist * valid).sum(dim=(0, 2, 3)) / n  # V(k), one per centre
        return v.abs().sum()


# ----------------------------------------------------------------------------- rain direction


def direction_kernel_pair(
    soft: list[tuple[int, float]], *, flipped: bool = False, kernels=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The parallel and perpendicular kernels for one sample's direction label.

    ``soft`` is the sample's soft label (``labels.direction_soft`` of a ``rainset synth``
    record, from :func:`rainset.streaks.direction_class`): one ``(bin, 1.0)`` when the class
    angle is a bin centre, else the two nearest 10-degree bins with linear weights. **Angles
    between two bins** (the paper's +-15 deg from vertical land on class angles 75 / 105 deg,
    half-way between bins 7 and 8, or 10 and 11) use the weighted sum of the two bins'
    kernels: ``k_par = w_lo K[lo] + w_hi K[hi]`` and ``k_perp = w_lo K[lo + 9] + w_hi K[hi + 9]``
    (mod 18), 0.5 / 0.5 for +-15 deg. The kernels are directional derivatives, linear in the
    direction vector, so the blend of 70 and 80 deg differentiates along 75 deg exactly,
    scaled by cos 5 deg = 0.996. ``flipped``: the patch was mirrored left-right, so bin ``i``
    becomes ``(18 - i) % 18`` (angle ``180 - phi``).

    Returns
    -------
    k_par, k_perp : (5, 5) float32 tensors, for cross-correlation.
    """
    if kernels is None:
        from rainset.streaks import direction_kernels

        kernels = direction_kernels()
    bank = torch.as_tensor(kernels, dtype=torch.float32)
    n = bank.shape[0]
    k_par = torch.zeros_like(bank[0])
    k_perp = torch.zeros_like(bank[0])
    for b, w in soft:
        b = int(b) % n
        if flipped:
            b = (n - b) % n
        k_par = k_par + float(w) * bank[b]
        k_perp = k_perp + float(w) * bank[(b + n // 2) % n]
    return k_par, k_perp


def rain_direction_loss(
    rainy: torch.Tensor, output: torch.Tensor, rain_map: torch.Tensor, kernels: torch.Tensor
) -> torch.Tensor:
    """The rain direction regulariser (UDRDR seed, Sec. 3.1, Eq. 5).

    ``sum over k_d in {k_par, k_perp} of mean |k_d * (rainy - output) - k_d * rain_map|``:
    SPANet's estimated rain map is ``z = rainy - output``, the ground truth ``z_gt`` the rain
    map synth stored (the rain layer before clipping, one channel, compared with each channel
    of ``z``). ``*`` is cross-correlation over the valid region (no padding), f the L1 mean.

    Parameters
    ----------
    rainy, output : (B, C, H, W) float tensors.
    rain_map : (B, 1, H, W) or (B, C, H, W) float tensor.
    kernels : (B, 2, k, k) float tensor: each sample's (parallel, perpendicular) kernels
        (:func:`direction_kernel_pair`).
    """
    z = _f(rainy) - _f(output)
    gt = _f(rain_map).to(z.dtype).expand_as(z)
    b, c, h, w = z.shape
    size = kernels.shape[-1]
    weight = kernels.to(device=z.device, dtype=z.dtype).repeat_interleave(c, dim=0)  # (B*C, 2, k, k)
    weight = weight.reshape(b * c * 2, 1, size, size)

    def apply(x: torch.Tensor) -> torch.Tensor:
        # grouped conv: each (sample, channel) plane with its sample's two kernels.
        return F.conv2d(x.reshape(1, b * c, h, w), weight, groups=b * c)

    return (apply(z) - apply(gt)).abs().mean() * 2.0
