"""Training objectives beyond SPANet's paired loss: time-lapse pairs and the rain direction.

- ``"paired"`` (the default for paired datasets): :func:`rainset.train.losses.spanet_loss`
  against the clean image, optionally plus the rain-direction regulariser
  (:class:`DirectionTerm`, UDRDR seed Sec. 3.1 Eq. 5, weight 1.2 from Sec. 3.4) on ``rainset
  synth`` datasets.
- ``"timelapse"`` (the default for time-lapse datasets): :class:`TimelapseObjective`, the
  time-lapse seed's total loss (Sec. III-B Eq. 8, weights of Sec. III-E) on frame pairs m != n
  of one static segment, no clean image needed::

      L = lambda_b L_b + lambda_s L_s(gamma) + lambda_v L_v,  lambda_b = 1, lambda_s = 0.1,
      lambda_v = 0.01, k = 4, gamma 0.1 -> 0.0001 over the first 30 % of the steps.

  The paper's fourth term, the reconstruction loss ``L_r = |I - (B + S)|`` (lambda_r = 0.001),
  is left out: SPANet predicts the background B only, so the rain is ``S = I - B`` by
  definition and L_r is identically zero. SPANet's attention-map term is left out too (there is
  no clean image, so no rain mask to supervise it).

SPANet has no skip connection from its input, so unlike the paper's network (which predicts S
and outputs ``B = I - S``, Sec. III-C) it does not start near the identity, and the time-lapse
losses alone (L_b is smallest for a constant output; L_s weighs 0.01 at most) would leave it far
from any image. :func:`identity_init` therefore starts a time-lapse run from weights that
compute the identity exactly, the analogue of the paper's ``B = I - S`` with ``S = 0``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rainset.train.losses import (
    DirectionalGradient,
    _f,
    background_consistency,
    rain_direction_loss,
    structure_gamma,
    structure_similarity,
)

__all__ = [
    "OBJECTIVES",
    "TIMELAPSE_WEIGHTS",
    "DIRECTION_WEIGHT",
    "TimelapseObjective",
    "DirectionTerm",
    "identity_init",
    "default_objective",
]

OBJECTIVES = ("paired", "timelapse")

#: Time-lapse seed, Sec. III-E (lambda_r = 0.001 has nothing to weigh: see the module docstring).
TIMELAPSE_WEIGHTS = {"lambda_b": 1.0, "lambda_s": 0.1, "lambda_v": 0.01}
#: Orientation centres of L_v (Sec. III-E).
TIMELAPSE_K = 4
#: L_s's gamma: from 0.1 to 0.0001, linearly over the first 30 % of training (Sec. III-B-2).
GAMMA_START, GAMMA_END, GAMMA_FRACTION = 0.1, 1e-4, 0.3
#: lambda of L_direction (UDRDR seed, Sec. 3.4: L_content + 1.2 L_direction + ...).
DIRECTION_WEIGHT = 1.2


#: Weight of :func:`rain_model` (ours: stands for the paper's network structure).
RAIN_MODEL_WEIGHT = 1.0


def rain_model(rain: torch.Tensor) -> torch.Tensor:
    """Our stand-in for the paper's network structure: ``mean |S - grey(S)| + mean relu(-S)``.

    The paper's network predicts a one-channel rain layer S (Table II, ``inv-conv1_1`` 64 -> 1)
    through ReLU layers and outputs ``B = I - S`` (Sec. III-C-1): its rain is grey and only
    brightens, which rules out the constant or blurred backgrounds that minimise L_b. SPANet
    outputs a colour B directly, so that structure becomes this penalty on ``S = I - B``: its
    departure from its channel mean, and its negative part.
    """
    s = _f(rain)
    grey = s.mean(dim=1, keepdim=True)
    return (s - grey).abs().mean() + torch.relu(-s).mean()


def default_objective(kind: str) -> str:
    """``"timelapse"`` for a time-lapse dataset, ``"paired"`` otherwise."""
    return "timelapse" if kind == "timelapse" else "paired"


@torch.no_grad()
def identity_init(model: nn.Module) -> nn.Module:
    """Set a :class:`~rainset.train.spanet.SPANet`'s weights so that it computes the identity.

    ``conv_in`` copies the three input channels into features 0-2 (centre tap 1; inputs are
    >= 0, so its ReLU passes them) and keeps its random filters for the other features; the last
    1x1 convolution of every residual block is zeroed, so each block passes its input on
    (``relu(0 + x) = x``, also in the attentive blocks, ``relu(0 * A + x)``); ``conv_out``
    reads features 0-2 back (centre tap 1, every other weight 0). The zeroed convolutions get
    gradients from the first step (their inputs are not zero), so the network trains as usual
    from there (the "zero-init residual" start of deep residual networks).
    """
    w_in = model.conv_in.weight  # (32, 3, 3, 3)
    c = w_in.shape[1]
    mid = w_in.shape[-1] // 2
    w_in[:c].zero_()
    for i in range(c):
        w_in[i, i, mid, mid] = 1.0
    for block in model.blocks:
        block.conv3.weight.zero_()
    w_out = model.conv_out.weight  # (3, 32, 3, 3)
    w_out.zero_()
    for i in range(w_out.shape[0]):
        w_out[i, i, mid, mid] = 1.0
    return model


class TimelapseObjective(nn.Module):
    """The time-lapse total loss on a batch of frame pairs (see the module docstring).

    Holds the directional gradient network of L_v (:class:`~rainset.train.losses.
    DirectionalGradient`), whose parameters (the k orientation centres and the membership
    filters) train with the derainer: pass :meth:`parameters` to the optimizer too.

    Parameters
    ----------
    iters : the run's length (sets the gamma schedule).
    k, lambda_b, lambda_s, lambda_v : the paper's values by default.
    """

    def __init__(
        self,
        iters: int,
        *,
        k: int = TIMELAPSE_K,
        lambda_b: float = TIMELAPSE_WEIGHTS["lambda_b"],
        lambda_s: float = TIMELAPSE_WEIGHTS["lambda_s"],
        lambda_v: float = TIMELAPSE_WEIGHTS["lambda_v"],
        lambda_m: float = RAIN_MODEL_WEIGHT,
    ) -> None:
        super().__init__()
        self.iters = int(iters)
        self.lambda_b, self.lambda_s, self.lambda_v = float(lambda_b), float(lambda_s), float(
            lambda_v
        )
        self.lambda_m = float(lambda_m)
        self.directional = DirectionalGradient(k)

    def gamma(self, step: int) -> float:
        """L_s's gamma at (0-based) ``step``."""
        return structure_gamma(
            step, self.iters, start=GAMMA_START, end=GAMMA_END, fraction=GAMMA_FRACTION
        )

    def forward(
        self,
        frame_a: torch.Tensor,
        frame_b: torch.Tensor,
        back_a: torch.Tensor,
        back_b: torch.Tensor,
        mask_a: torch.Tensor | None,
        mask_b: torch.Tensor | None,
        *,
        step: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one batch and its parts.

        Parameters
        ----------
        frame_a, frame_b : (B, 3, H, W) the input frames m and n.
        back_a, back_b : (B, 3, H, W) the network's backgrounds for them.
        mask_a, mask_b : (B, 1, H, W) the frames' moving-object masks (or None).
        step : the 0-based step (for gamma).

        Returns
        -------
        loss : scalar tensor.
        parts : ``{"lb", "ls", "lv", "gamma", "loss"}`` as floats (``ls`` includes gamma; the
            weights are not applied to the parts).
        """
        gamma = self.gamma(step)
        l_b = background_consistency(back_a, back_b, mask_a, mask_b)
        l_s = structure_similarity(frame_a, frame_b, back_a, back_b, gamma, mask_a, mask_b)
        rain = torch.cat([frame_a - back_a, frame_b - back_b])
        l_v = self.directional(rain)
        l_m = rain_model(rain)
        loss = self.lambda_b * l_b + self.lambda_s * l_s + self.lambda_v * l_v + self.lambda_m * l_m
        parts = {
            "lb": float(l_b.detach()),
            "ls": float(l_s.detach()),
            "lv": float(l_v.detach()),
            "lm": float(l_m.detach()),
            "gamma": gamma,
            "loss": float(loss.detach()),
        }
        if not math.isfinite(parts["loss"]):
            raise FloatingPointError(f"the loss is not finite: {parts}")
        return loss, parts


class DirectionTerm:
    """``weight * L_direction`` (:func:`~rainset.train.losses.rain_direction_loss`) for a
    batch of ``rainset synth`` patches (:class:`~rainset.train.data.DirectionPatchSource`)."""

    def __init__(self, weight: float = DIRECTION_WEIGHT) -> None:
        self.weight = float(weight)

    def __call__(
        self,
        rainy: torch.Tensor,
        output: torch.Tensor,
        rain_map: torch.Tensor,
        kernels: torch.Tensor,
    ) -> tuple[torch.Tensor, float]:
        term = rain_direction_loss(rainy, output, rain_map, kernels)
        return self.weight * term, float(term.detach())
