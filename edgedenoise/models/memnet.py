"""MemNet: a persistent memory network of memory blocks with recursive and gate units.

Source: Y. Tai, J. Yang, X. Liu, C. Xu, "MemNet: A Persistent Memory Network for Image Restoration",
ICCV 2017 (arXiv:1708.02209), Sec. 3 and Fig. 2-3.

Structure (paper Sec. 3.1-3.3):

* **FENet**: one 3x3 conv from the image to ``features`` maps (``B_0``).
* **M memory blocks.** Block ``m`` has a *recursive unit*: R recursions of a pre-activation residual block
  ``H_r = H_{r-1} + W2 * relu(BN(W1 * relu(BN(H_{r-1}))))``, whose two 3x3 convs ``W1, W2`` are *shared across
  the R recursions* (Sec. 3.2), giving the short-term memory ``H_1..H_R``. Its *gate unit* is a BN-ReLU-1x1
  conv over the concatenation of the long-term memory (the outputs ``B_0..B_{m-1}`` of FENet and of all
  earlier blocks) and the short-term memory: ``B_m = W_gate * relu(BN([B_0..B_{m-1}, H_1..H_R]))``.
* **ReconNet**: BN-ReLU-3x3 conv from ``features`` maps to the image, shared by all blocks; with the global
  residual, each block gives a prediction ``y_m = x + ReconNet(B_m)``.
* **Multi-supervision** (Sec. 3.3): the output is ``sum_m w_m * y_m`` with learnable scalar weights ``w_m``
  (initialised to ``1/M``); training may also supervise each ``y_m`` (see :meth:`MemNet.forward_all`).

What the paper leaves open, and our choices: each recursion has its own BatchNorm layers (only the conv
weights are shared; per-recursion statistics are what the issue asks for and what the released Caffe model
does); FENet is a plain conv with no activation in front (a ReLU on the noisy image would clip the negative
half of the noise); every conv has a bias. ``memnet_m6r6`` is the paper's M6R6 (80 layers);
``memnet_m4r4`` is a lighter variant of ours.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ResidualDenoiser
from .registry import register_model


class _BNReLUConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, padding=k // 2))


class MemoryBlock(nn.Module):
    """One memory block: a recursive unit of ``recursions`` weight-shared residual blocks plus a gate unit.

    Input: current features ``(N, F, H, W)`` and the list of long-term memories (each ``(N, F, H, W)``).
    Output: ``(N, F, H, W)``.
    """

    def __init__(self, features: int, recursions: int, n_long: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.bn1 = nn.ModuleList(nn.BatchNorm2d(features) for _ in range(recursions))
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(features) for _ in range(recursions))
        self.relu = nn.ReLU()
        self.gate = _BNReLUConv((n_long + recursions) * features, features, 1)

    def forward(self, x: torch.Tensor, long_term: list[torch.Tensor]) -> torch.Tensor:
        short_term = []
        h = x
        for bn1, bn2 in zip(self.bn1, self.bn2, strict=True):
            r = self.conv1(self.relu(bn1(h)))
            r = self.conv2(self.relu(bn2(r)))
            h = h + r
            short_term.append(h)
        return self.gate(torch.cat(long_term + short_term, dim=1))


class MemNet(ResidualDenoiser):
    """MemNet with ``blocks`` memory blocks of ``recursions`` recursions.

    Input/output: ``(N, in_channels, H, W)`` float32 in [0, 1] (noisy input may exceed it); any H, W.
    """

    def __init__(
        self,
        blocks: int = 6,
        recursions: int = 6,
        features: int = 64,
        in_channels: int = 1,
        arch: str = "memnet",
        noise: str = "untrained",
    ) -> None:
        # 3x3 layers on the longest path: FENet, 2 per recursion, ReconNet.
        rf = 1 + 2 * (2 + 2 * blocks * recursions)
        super().__init__(arch, in_channels, noise, size_multiple=1, receptive_field=rf)
        self.fenet = nn.Conv2d(in_channels, features, 3, padding=1)
        self.blocks = nn.ModuleList(MemoryBlock(features, recursions, m + 1) for m in range(blocks))
        self.reconnet = _BNReLUConv(features, in_channels, 3)
        self.weights = nn.Parameter(torch.full((blocks,), 1.0 / blocks))

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the weighted output and the M per-block predictions ``y_m`` (for multi-supervision)."""
        b = self.fenet(x)
        memory = [b]
        preds = []
        for block in self.blocks:
            b = block(b, memory)
            memory.append(b)
            preds.append(x + self.reconnet(b))
        out = sum(w * y for w, y in zip(self.weights, preds, strict=True))
        assert isinstance(out, torch.Tensor)
        return out, preds

    def forward(self, x: torch.Tensor, return_all: bool = False) -> torch.Tensor | tuple:
        """``(N, C, H, W)`` -> the weighted output; with ``return_all`` also the per-block predictions."""
        out, preds = self.forward_all(x)
        return (out, preds) if return_all else out


@register_model
def memnet_m6r6(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> MemNet:
    """MemNet M6R6: 6 memory blocks x 6 recursions, 64 features (Tai et al. 2017, the 80-layer model)."""
    return MemNet(6, 6, features, in_channels, arch="memnet_m6r6", noise=noise)


@register_model
def memnet_m4r4(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> MemNet:
    """MemNet M4R4: 4 memory blocks x 4 recursions, 64 features (a lighter variant)."""
    return MemNet(4, 4, features, in_channels, arch="memnet_m4r4", noise=noise)
