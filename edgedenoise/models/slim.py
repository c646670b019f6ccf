"""Slim RED-Net students for edge deployment: pixel-unshuffle, thin symmetric conv stack, pixel-shuffle.

Sources: the encoder-decoder with symmetric skips every two layers and the image-level residual follow RED-Net
(Mao et al., NIPS 2016, Sec. 2.2, see ``rednet.py``). Running the stack on a pixel-unshuffled
(space-to-depth) image follows FFDNet (Zhang, Zuo, Zhang, "FFDNet: Toward a Fast and Flexible Solution for
CNN-Based Image Denoising", IEEE TIP 2018, Sec. III-A: a reversible x2 downsampling in front of the conv
stack), with pixel shuffle (Shi et al., "Real-Time Single Image and Video Super-Resolution Using an
Efficient Sub-Pixel CNN", CVPR 2016) to go back.

Why: on a 2-core x86 CPU, thin layers at full resolution waste the CPU while the same MACs spent on 32-64
channels at 1/2 or 1/4 resolution run 2-3x faster (measured on a 2-core AVX-512-VNNI CPU with ONNX Runtime 1.32;
``docs/compression.md``). All layers are plain 3x3 Conv (no ConvTranspose), so every layer quantizes.

Structure of ``SlimRED(depth, features, unshuffle)``: PixelUnshuffle(s) -> conv(C*s^2 -> f) + ReLU ->
``depth - 2`` conv(f -> f) layers, the first half an encoder and the second a decoder with the output of every
even encoder layer added to its mirrored decoder layer before the ReLU -> conv(f -> C*s^2) -> PixelShuffle(s)
-> ``input - noise``. Variant names say depth, width and the unshuffle factor: ``rednet12_slim64_u2``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ResidualDenoiser
from .registry import register_model


class SlimRED(ResidualDenoiser):
    """A RED-style residual denoiser running at 1/``unshuffle`` resolution.

    Args:
        depth: number of 3x3 conv layers including the first and last, >= 3.
        features: channels of the hidden layers.
        unshuffle: space-to-depth factor s (1 = full resolution, 2, 4); H and W must be multiples of s.
        in_channels: 1 (gray) or 3 (RGB).
        arch: the registered name, recorded in ``cfg``.

    Input/output: ``(N, in_channels, H, W)`` float32 in [0, 1] (the noisy input may exceed it), H and W
    multiples of ``unshuffle``; returns the denoised image, same shape, not clipped.
    MACs per input pixel: ``9 * (2 * C * f + (depth - 2) * f * f) / s**2``.

    Export folds the pixel-unshuffle into ``head`` (one Conv with kernel ``3s``, stride ``s``; exact, see
    ``edgedenoise.export.reparam``), declared by ``fold_unshuffle``.
    """

    #: (PixelUnshuffle attribute, the Conv2d attribute that alone reads its output), for the export rewrite.
    fold_unshuffle = ("unshuffle", "head")

    def __init__(
        self,
        depth: int = 12,
        features: int = 64,
        unshuffle: int = 2,
        in_channels: int = 1,
        arch: str = "slim",
        noise: str = "untrained",
        noise_level_input: bool = False,
    ) -> None:
        if depth < 3:
            raise ValueError(f"depth must be >= 3, got {depth}")
        if unshuffle not in (1, 2, 4):
            raise ValueError(f"unshuffle must be 1, 2 or 4, got {unshuffle}")
        super().__init__(
            arch,
            in_channels,
            noise,
            size_multiple=unshuffle,
            receptive_field=unshuffle * (2 * depth + 1),
            noise_level_input=noise_level_input,
        )
        s2 = in_channels * unshuffle * unshuffle
        self.unshuffle = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.shuffle = nn.PixelShuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.head = nn.Conv2d(s2, features, 3, padding=1)
        # Noise-level input (FFDNet, Zhang et al., IEEE TIP 2018, Sec. III-B: the σ map enters the first conv at
        # the downsampled resolution, concatenated with the sub-images). A conv on a concatenation equals the
        # sum of a conv per part, so the σ map has its own bias-free conv added to ``head``: export can still
        # fold the unshuffle into ``head`` alone, and a zero-initialised ``sigma_head`` turns a blind model into
        # an equal conditioned one (the warm start of the ``_nl`` variants).
        self.sigma_pool = nn.AvgPool2d(unshuffle) if noise_level_input and unshuffle > 1 else nn.Identity()
        self.sigma_head = nn.Conv2d(1, features, 3, padding=1, bias=False) if noise_level_input else None
        self.body = nn.ModuleList(nn.Conv2d(features, features, 3, padding=1) for _ in range(depth - 2))
        self.tail = nn.Conv2d(features, s2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        n = depth - 2
        half = n // 2
        # body layer i (0-based) in the decoder half takes the output of encoder layer n - 1 - i (its mirror),
        # for every second encoder layer, as in RED-Net's skips every two layers.
        self._skip_from = {n - 1 - j: j for j in range(1, half, 2) if n - 1 - j >= half}

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` float32; ``sigma`` (conditioned variants only): ``(N, 1, H, W)`` float32, the
        noise standard deviation per pixel in value units (σ/255). Returns ``(N, C, H, W)``."""
        h = self.head(self.unshuffle(x))
        if self.sigma_head is not None:
            h = h + self.sigma_head(self.sigma_pool(self._require_sigma(sigma)))
        h = self.relu(h)
        keep = set(self._skip_from.values())
        saved: dict[int, torch.Tensor] = {}
        for i, conv in enumerate(self.body):
            h = conv(h)
            src = self._skip_from.get(i)
            if src is not None:
                h = h + saved.pop(src)
            h = self.relu(h)
            if i in keep:
                saved[i] = h
        return x - self.shuffle(self.tail(h))


@register_model
def rednet10_slim16(in_channels: int = 1, features: int = 16, noise: str = "untrained") -> SlimRED:
    """10 layers x 16 features at full resolution (about 23k MACs/pixel): the thin net that wastes a CPU."""
    return SlimRED(10, features, 1, in_channels, arch="rednet10_slim16", noise=noise)


@register_model
def rednet10_slim32_u2(in_channels: int = 1, features: int = 32, noise: str = "untrained") -> SlimRED:
    """10 layers x 32 features behind a x2 pixel-unshuffle (about 19k MACs/pixel)."""
    return SlimRED(10, features, 2, in_channels, arch="rednet10_slim32_u2", noise=noise)


@register_model
def rednet12_slim64_u2(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> SlimRED:
    """12 layers x 64 features behind a x2 pixel-unshuffle (about 93k MACs/pixel, 9 % of RED30)."""
    return SlimRED(12, features, 2, in_channels, arch="rednet12_slim64_u2", noise=noise)


@register_model
def rednet12_slim64_u4(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> SlimRED:
    """12 layers x 64 features behind a x4 pixel-unshuffle (about 24k MACs/pixel): the real-time 1080p variant."""
    return SlimRED(12, features, 4, in_channels, arch="rednet12_slim64_u4", noise=noise)


@register_model
def rednet18_slim64_u2(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> SlimRED:
    """18 layers x 64 features behind a x2 pixel-unshuffle (about 148k MACs/pixel, 14 % of RED30).

    The largest slim student under the light-model target's 15 % MAC budget; depth and width close to FFDNet's gray
    network (15 layers x 64 at 1/2 resolution, Zhang et al., IEEE TIP 2018, Sec. III-A), without the noise map.
    """
    return SlimRED(18, features, 2, in_channels, arch="rednet18_slim64_u2", noise=noise)


@register_model
def rednet8_slim32_u4(in_channels: int = 1, features: int = 32, noise: str = "untrained") -> SlimRED:
    """8 layers x 32 features behind a x4 pixel-unshuffle (about 4.0k MACs/pixel, 0.4 % of RED30).

    Sized for 1920x1080 at about 10 frames/s in INT8 on 2 AVX2 cores (docs/compression.md).
    """
    return SlimRED(8, features, 4, in_channels, arch="rednet8_slim32_u4", noise=noise)


@register_model
def rednet10_slim24_u4(in_channels: int = 1, features: int = 24, noise: str = "untrained") -> SlimRED:
    """10 layers x 24 features behind a x4 pixel-unshuffle (about 3.0k MACs/pixel, 0.3 % of RED30)."""
    return SlimRED(10, features, 4, in_channels, arch="rednet10_slim24_u4", noise=noise)


@register_model
def rednet6_slim32_u4(in_channels: int = 1, features: int = 32, noise: str = "untrained") -> SlimRED:
    """6 layers x 32 features behind a x4 pixel-unshuffle (about 2.9k MACs/pixel, 0.28 % of RED30).

    ``rednet8_slim32_u4`` without its innermost pair of layers (the skip from the second layer still lands on
    its mirror), for more margin on the 10 frames/s of 1920x1080 INT8 on 2 CPU cores; warm-started from the
    8-layer weights by :func:`drop_middle_layers` and fine-tuned (docs/compression.md).
    """
    return SlimRED(6, features, 4, in_channels, arch="rednet6_slim32_u4", noise=noise)


@register_model
def rednet18_slim64_u2_nl(in_channels: int = 1, features: int = 64, noise: str = "untrained") -> SlimRED:
    """``rednet18_slim64_u2`` told the noise level: the FFDNet-cost model (about 148k MACs/pixel, 14 % of RED30).

    FFDNet's recipe (Zhang et al., IEEE TIP 2018, Sec. III: x2 sub-images plus a σ map at half resolution, a
    stack of 3x3 convs of 64 features) on the RED-style stack of :class:`SlimRED` (symmetric skips, Mao et al.
    2016). Inputs ``noisy`` ``(N, C, H, W)`` and ``sigma`` ``(N, 1, H, W)`` (σ/255 per pixel), even H and W.
    """
    return SlimRED(18, features, 2, in_channels, arch="rednet18_slim64_u2_nl", noise=noise, noise_level_input=True)


def add_noise_level_input(model: SlimRED, arch: str) -> SlimRED:
    """A noise-level-conditioned copy of a blind :class:`SlimRED` that computes exactly what ``model`` computes.

    The new ``sigma_head`` starts at zero, so the copy ignores the σ map until it is trained: a warm start that
    keeps everything the blind model learned (the blind model's σ-agnostic features are a good first layer for
    the conditioned one, as FFDNet's own single network covers all σ).

    Raises:
        ValueError: ``model`` already takes a noise level.
    """
    if model.sigma_head is not None:
        raise ValueError(f"{model.cfg.arch} already takes a noise-level input")
    f = model.head.out_channels
    s = model.unshuffle.downscale_factor if isinstance(model.unshuffle, nn.PixelUnshuffle) else 1
    c = model.head.in_channels // (s * s)
    new = SlimRED(len(model.body) + 2, f, s, c, arch=arch, noise=model.cfg.noise, noise_level_input=True)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or missing != ["sigma_head.weight"]:
        raise ValueError(f"state mismatch: missing {missing}, unexpected {unexpected}")
    assert new.sigma_head is not None
    nn.init.zeros_(new.sigma_head.weight)
    return new


def drop_middle_layers(model: SlimRED, depth: int, arch: str) -> SlimRED:
    """A shallower SlimRED initialised from ``model`` by removing its innermost body layers.

    Keeps ``head``, ``tail``, the first ``(depth - 2) // 2`` and the last ``(depth - 2) - (depth - 2) // 2`` body
    layers, and refuses a cut after which a skip would join two layers the source did not join (8 -> 6 layers
    keeps the one skip, body layer 1 to its mirror). Layer dropping as the start of compression, then
    fine-tuning: Fan et al., "Reducing Transformer Depth on Demand with Structured Dropout", ICLR 2020, Sec. 4.

    Args:
        model: the trained deeper student (not modified).
        depth: the new total number of conv layers (>= 3, < the model's).
        arch: the registered name of the result.

    Returns:
        The new model (train mode) whose kept layers hold copies of ``model``'s weights.

    Raises:
        ValueError: ``depth`` out of range, or a skip of the new model would join layers that were not joined in
            ``model`` (the result would not be a warm start).
    """
    old_n = len(model.body)
    n = depth - 2
    if not 1 <= n < old_n:
        raise ValueError(f"depth must be in [3, {old_n + 1}], got {depth}")
    f = model.head.out_channels
    s = model.unshuffle.downscale_factor if isinstance(model.unshuffle, nn.PixelUnshuffle) else 1
    c = model.head.in_channels // (s * s)
    new = SlimRED(depth, f, s, c, arch=arch, noise=model.cfg.noise, noise_level_input=model.cfg.noise_level_input)
    front = n // 2
    keep = list(range(front)) + list(range(old_n - (n - front), old_n))  # new body index -> old body index
    for dst, src in new._skip_from.items():
        if model._skip_from.get(keep[dst]) != keep[src]:
            raise ValueError(
                f"dropping to {depth} layers would join body layers {keep[src]} -> {keep[dst]}, "
                "which the source model does not join"
            )
    new.head.load_state_dict(model.head.state_dict())
    if model.sigma_head is not None and new.sigma_head is not None:
        new.sigma_head.load_state_dict(model.sigma_head.state_dict())
    new.tail.load_state_dict(model.tail.state_dict())
    for i, j in enumerate(keep):
        new.body[i].load_state_dict(model.body[j].state_dict())
    return new
