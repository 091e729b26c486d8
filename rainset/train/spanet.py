"""SPANet, the spatial attentive deraining network (SPANet seed, Sec. 4), in pure PyTorch.

Layout, as measured from the released code and checkpoint (width 32, every convolution
bias-free):

- ``conv_in``: 3x3 conv 3 -> 32, ReLU;
- 17 bottleneck residual blocks (1x1 -> ReLU -> 3x3 dilation 2 -> ReLU -> 1x1):
  blocks 1-3 and 16-17 give ``relu(block(x) + x)``; blocks 4-15 (four spatial attentive blocks
  of three) give ``relu(block(x) * A_k + x)``, where ``A_k`` is a fresh attention map that the
  one shared spatial attentive module (SAM) computes from the input of SAB ``k``;
- ``conv_out``: 3x3 conv 32 -> 3, the derained image (no skip from the input).

SAM: 3x3 conv -> IRNN (four directions) -> 3x3 conv 128 -> 32 -> IRNN -> 3x3 conv 128 -> 32 ->
ReLU -> 1x1 conv 32 -> 1 -> sigmoid.

The released code also builds a "direction attention" branch in the SAM (7,012 parameters)
whose outputs are computed and then discarded; it is left out here, so this model has 276,704
parameters where the released checkpoint has 283,716.
"""

from __future__ import annotations

import torch
from torch import nn

from rainset.train.irnn import IRNN, Method

__all__ = ["SPANet", "SpatialAttentiveModule", "Bottleneck", "count_parameters"]

WIDTH = 32
N_BLOCKS = 17
# 1-based block numbers scaled by attention: four SABs of three SARBs (Fig. 5).
ATTENTIVE_BLOCKS = range(4, 16)


def _conv(cin: int, cout: int, k: int, *, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, bias=False)


_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.aten, "mkldnn_convolution")


def _pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution; for CPU inference on a channels-last map, oneDNN's convolution
    called directly: with one thread and a batch under 16, PyTorch hands 1x1 convolutions to
    its im2col path instead, which took a fifth of the whole forward pass (13.5 ms per call
    at 240x360 against ~3 ms; benchmarks/bench_irnn.py)."""
    if (not _MKLDNN or torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32
            or not x.is_contiguous(memory_format=torch.channels_last)):  # fmt: skip
        return conv(x)
    w = conv.weight.contiguous(memory_format=torch.channels_last)
    return torch.ops.aten.mkldnn_convolution(x, w, conv.bias, [0, 0], [1, 1], [1, 1], 1)


class Bottleneck(nn.Module):
    """1x1 -> ReLU -> 3x3 (dilation 2) -> ReLU -> 1x1; the residual branch of a block."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.conv1 = _conv(width, width, 1)
        self.conv2 = _conv(width, width, 3, dilation=2)
        self.conv3 = _conv(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place: a convolution's output is not needed by its backward (ReLU saves its own).
        x = torch.relu_(_pointwise(self.conv1, x))
        x = torch.relu_(self.conv2(x))
        return _pointwise(self.conv3, x)


class SpatialAttentiveModule(nn.Module):
    """Two rounds of four-direction IRNN to one attention map in (0, 1).

    Parameters
    ----------
    width : int
        Feature channels C.
    irnn_method : {"auto", "loop", "sweep", "scan"}
        IRNN implementation (:func:`rainset.train.irnn.irnn`).
    """

    def __init__(self, width: int = WIDTH, *, irnn_method: Method = "auto") -> None:
        super().__init__()
        self.conv_in = _conv(width, width, 3)
        self.irnn1 = IRNN(width, method=irnn_method)
        self.conv1 = _conv(4 * width, width, 3)
        self.irnn2 = IRNN(width, method=irnn_method)
        self.conv2 = _conv(4 * width, width, 3)
        self.conv_out = _conv(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) features -> (B, 1, H, W) attention map."""
        x = self.irnn1(self.conv_in(x))
        x = self.irnn2(self.conv1(x))
        x = torch.relu_(self.conv2(x))
        return torch.sigmoid(_pointwise(self.conv_out, x))


class SPANet(nn.Module):
    """The spatial attentive deraining network.

    Parameters
    ----------
    irnn_method : {"auto", "loop", "sweep", "scan"}
        IRNN implementation; every choice computes the same function.

    Notes
    -----
    ``forward(x)`` takes ``(B, 3, H, W)`` float images in [0, 1] (any H, W: the network is fully
    convolutional with stride 1) and returns ``(derained, attention)``: the ``(B, 3, H, W)``
    output (not clipped) and the four attention maps, each ``(B, 1, H, W)``; the first one is
    supervised by the rain mask.
    """

    def __init__(self, *, irnn_method: Method = "auto") -> None:
        super().__init__()
        self.conv_in = _conv(3, WIDTH, 3)
        self.blocks = nn.ModuleList(Bottleneck(WIDTH) for _ in range(N_BLOCKS))
        # One SAM whose weights all four SABs share (the paper's best variant, Table 4, B_f).
        self.sam = SpatialAttentiveModule(WIDTH, irnn_method=irnn_method)
        self.conv_out = _conv(WIDTH, 3, 3)

    #: Fused residual sums (False: the original three-op form, for benchmarks' baseline).
    fused_sums = True

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = torch.relu_(self.conv_in(x))
        # The residual sums as one fused op and an in-place ReLU (a third less memory traffic
        # than the three-op form; the blocks' outputs stay untouched for hooks).
        fused = self.fused_sums
        maps: list[torch.Tensor] = []
        attention = None
        for number, block in enumerate(self.blocks, start=1):
            if number in ATTENTIVE_BLOCKS:
                if (number - ATTENTIVE_BLOCKS.start) % 3 == 0:
                    attention = self.sam(out)
                    maps.append(attention)
                y = block(out)
                out = torch.addcmul(out, y, attention).relu_() if fused else torch.relu(y * attention + out)
            else:
                y = block(out)
                out = torch.add(out, y).relu_() if fused else torch.relu(y + out)
        return self.conv_out(out), maps


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (276,704 for :class:`SPANet`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
