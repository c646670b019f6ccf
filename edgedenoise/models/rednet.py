"""RED-Net: a symmetric convolutional encoder-decoder with skip connections.

Source: X.-J. Mao, C. Shen, Y.-B. Yang, "Image Restoration Using Very Deep Convolutional Encoder-Decoder
Networks with Symmetric Skip Connections", NIPS 2016 (arXiv:1603.09056), Sec. 2 and Fig. 1.

What the paper fixes: n/2 convolutional layers followed by n/2 deconvolutional (transposed) layers, 3x3
kernels, 64 feature maps, stride 1 for denoising (Sec. 2.1 notes that pooling hurts restoration), ReLU after
every layer, and skip connections from a conv layer to its mirrored deconv layer every two layers, added
element-wise before the ReLU (Sec. 2.2). RED10/20/30 have n = 10/20/30.

What the paper leaves open, and our choices:

* **Image-level skip / residual output.** The network's last deconvolution predicts the *noise*, and the
  model returns ``input - noise`` (``ModelCfg.residual=True``). This is the outermost skip of the symmetric
  scheme (input <-> output) and converges much faster on AWGN, as in DnCNN.
* **Which layers the skips join.** Deconv layer ``k`` (1-based) mirrors conv layer ``n/2 - k``; the output of
  every even conv layer ``j`` is added to the output of deconv layer ``n/2 - j`` before its ReLU.
  RED10 (``skip_every=0``) has only the image-level skip, as the issue asks.
* **Biases** on every layer (the 1,035,201-parameter count of gray RED30 includes them); PyTorch's default
  Kaiming-uniform initialisation (the paper used Xavier with Caffe); no batch normalisation.
* **Stride-2 variants** (``rednet30_s2``): the first conv has stride 2 and the last deconv has stride 2
  (kernel 3, padding 1, output padding 1), so everything between runs at half resolution (about 4x fewer
  MACs). H and W must be even (``size_multiple=2``). This is our deployment variant, not in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ResidualDenoiser
from .registry import register_model


class REDNet(ResidualDenoiser):
    """RED-Net with ``depth`` layers (``depth/2`` conv + ``depth/2`` deconv).

    Args:
        depth: total number of layers, even, >= 4 (10, 20, 30 in the paper).
        features: feature maps per hidden layer (64 in the paper).
        in_channels: 1 (gray) or 3 (RGB).
        skip_every: a conv->deconv skip every this many layers (2 in the paper); 0 keeps only the image skip.
        stride: 1, or 2 for a stride-2 first conv and last deconv.
        arch: the registered name, recorded in ``cfg``.

    Input/output: ``(N, in_channels, H, W)`` float32 in [0, 1] (the noisy input may exceed it);
    H, W multiples of ``stride``. The output is the denoised image, same shape, not clipped.
    """

    def __init__(
        self,
        depth: int = 30,
        features: int = 64,
        in_channels: int = 1,
        skip_every: int = 2,
        stride: int = 1,
        arch: str = "rednet",
        noise: str = "untrained",
    ) -> None:
        if depth < 4 or depth % 2:
            raise ValueError(f"depth must be an even number >= 4, got {depth}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        # Receptive field: 3x3 layers add 2 px each at full resolution, 2*stride px at the inner resolution.
        rf = 3 + (depth - 2) * 2 * stride + 2 * stride
        super().__init__(arch, in_channels, noise, size_multiple=stride, receptive_field=rf)
        half = depth // 2
        self.n_half = half
        self.skip_every = skip_every
        self.stride = stride
        convs: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, stride=stride, padding=1)]
        convs += [nn.Conv2d(features, features, 3, padding=1) for _ in range(half - 1)]
        deconvs: list[nn.Module] = [nn.ConvTranspose2d(features, features, 3, padding=1) for _ in range(half - 1)]
        deconvs.append(
            nn.ConvTranspose2d(features, in_channels, 3, stride=stride, padding=1, output_padding=stride - 1)
        )
        self.convs = nn.ModuleList(convs)
        self.deconvs = nn.ModuleList(deconvs)
        self.relu = nn.ReLU(inplace=True)
        # Deconv k (1-based, k < half) receives conv (half - k) when that conv index is a multiple of skip_every.
        self._skip_from = {k: half - k for k in range(1, half) if skip_every and (half - k) % skip_every == 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        saved: dict[int, torch.Tensor] = {}
        keep = set(self._skip_from.values())
        h = x
        for j, conv in enumerate(self.convs, start=1):
            h = self.relu(conv(h))
            if j in keep:
                saved[j] = h
        for k, deconv in enumerate(self.deconvs, start=1):
            h = deconv(h)
            if k == self.n_half:
                break
            src = self._skip_from.get(k)
            if src is not None:
                h = h + saved.pop(src)
            h = self.relu(h)
        return x - h


@register_model
def rednet10(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> REDNet:
    """RED10: 5 conv + 5 deconv, image-level skip only (Mao et al. 2016, Table 1)."""
    return REDNet(10, features, in_channels, skip_every=0, arch="rednet10", noise=noise)


@register_model
def rednet20(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> REDNet:
    """RED20: 10 conv + 10 deconv, skips every two layers (Mao et al. 2016, Sec. 2.2)."""
    return REDNet(20, features, in_channels, arch="rednet20", noise=noise)


@register_model
def rednet30(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> REDNet:
    """RED30: 15 conv + 15 deconv, skips every two layers (Mao et al. 2016). 1,035,201 params (gray)."""
    return REDNet(30, features, in_channels, arch="rednet30", noise=noise)


@register_model
def rednet10_s2(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> REDNet:
    """RED10 with a stride-2 first conv and last deconv (about 4x fewer MACs; even H, W)."""
    return REDNet(10, features, in_channels, skip_every=0, stride=2, arch="rednet10_s2", noise=noise)


@register_model
def rednet20_s2(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> REDNet:
    """RED20 with a stride-2 first conv and last deconv (about 4x fewer MACs; even H, W)."""
    return REDNet(20, features, in_channels, stride=2, arch="rednet20_s2", noise=noise)


@register_model
def rednet30_s2(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> REDNet:
    """RED30 with a stride-2 first conv and last deconv (about 4x fewer MACs; even H, W)."""
    return REDNet(30, features, in_channels, stride=2, arch="rednet30_s2", noise=noise)


@register_model
def rednet30_p50(in_channels: int = 1, features: int = 32, noise: str = "untrained") -> REDNet:
    """RED30 with every hidden layer pruned to 32 channels (``edgedenoise prune rednet30 --ratio 0.5``); 1/4 MACs."""
    return REDNet(30, features, in_channels, arch="rednet30_p50", noise=noise)


@register_model
def rednet30_p75(in_channels: int = 1, features: int = 16, noise: str = "untrained") -> REDNet:
    """RED30 with every hidden layer pruned to 16 channels (``edgedenoise prune rednet30 --ratio 0.75``); 1/16 MACs."""
    return REDNet(30, features, in_channels, arch="rednet30_p75", noise=noise)
