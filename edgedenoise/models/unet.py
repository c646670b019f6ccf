"""Multi-scale encoder-decoder denoisers told the noise level: the real-time class.

Sources: the encoder-decoder with skips at every scale is U-Net's (Ronneberger et al., MICCAI 2015, Sec. 2);
starting it behind a pixel-unshuffle and spending more channels at coarser scales, so that a few thousand MACs
per pixel still give every output pixel a wide receptive field and many features, follows PMRID (Wang et al.,
"Practical Deep Raw Image Denoising on Mobile Devices", ECCV 2020, Sec. 3.1: downsample early, widen with
depth, additive skips, ≈ 3.7k MACs per raw pixel). The σ map entering the first layer at the downsampled
resolution is FFDNet's (Zhang et al., IEEE TIP 2018, Sec. III-B; DRUNet, Zhang et al., TPAMI 2021, also
conditions a U-Net on one σ channel); here it enters at the coarsest level, pooled to 1/16 and added through a
1x1 conv as a per-pixel, per-channel bias: a σ map is smooth, and at the finest level a one-channel conv cost
13 ms of about 200 per 1920x1080 frame in ONNX Runtime INT8 on the 2-core CPU, at 1/16 next to nothing. Every
decoder level, and so the predicted noise, depends on it. Up-sampling by pixel shuffle (Shi et al., CVPR 2016)
is used only at the exit: inside, a 1x1 conv to the finer level's width, then nearest-neighbour x2 and the skip
added (at 1920x1080 on a 2-core CPU ONNX Runtime's DepthToSpace of a 32-channel map cost as much as a 3x3 conv:
148 ms against 183 ms per frame, FP32). Down-sampling is a 2x2 conv with stride 2. Every weighted layer is
a plain Conv, so every one quantizes to INT8 and no ConvTranspose needs re-parameterising at export.

Why not more depth at 1/4 resolution: a flat stack of 32 features behind a x4 unshuffle has two features per
output pixel, and it showed (docs/models.md): 26.1 dB at σ 25, and a fixed 4x4 pattern on clean input. Here
every 3x3 conv costs about the same MACs per pixel, but the coarse ones see far more context.

Structure of ``UNetNL(features=f, unshuffle=4)``, scales relative to the input::

    noisy -> PixelUnshuffle(4) -> conv3x3(16C -> f) ReLU = e1                                          1/4
          -> conv2x2/2(f -> 2f) ReLU -> conv3x3(2f) ReLU = e2                                         1/8
          -> conv2x2/2(2f -> 3f) + conv1x1(AvgPool16(sigma) -> 3f) -> ReLU
          -> conv3x3(3f) ReLU -> conv3x3(3f) ReLU                                                     1/16
          -> conv1x1(3f -> 2f) nearest x2 + e2 -> ReLU -> conv3x3(2f) ReLU                            1/8
          -> conv1x1(2f -> f) nearest x2 + e1 -> ReLU -> conv3x3(f) ReLU                              1/4
          -> conv3x3(f -> 16C) -> PixelShuffle(4) -> noisy - that (the predicted noise)
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ResidualDenoiser
from .registry import register_model


class UNetNL(ResidualDenoiser):
    """A three-scale residual U-Net behind a pixel-unshuffle, conditioned on a per-pixel noise map.

    Args:
        features: channels f at the finest level (1/``unshuffle``), 2f and 3f below it; or the three widths
            ``(f1, f2, f3)`` from the finest level down.
        unshuffle: space-to-depth factor s of the entrance (2 or 4).
        in_channels: 1 (gray) or 3 (RGB).
        arch: the registered name, recorded in ``cfg``.

    Input: ``noisy`` ``(N, C, H, W)`` float32 in [0, 1] (may exceed it) and ``sigma`` ``(N, 1, H, W)`` float32,
    the noise standard deviation per pixel in the same units (σ/255 for 8-bit data); H and W multiples of 4s.
    Output: the denoised image, ``(N, C, H, W)``, not clipped.
    """

    #: (PixelUnshuffle attribute, the Conv2d attribute that alone reads its output), for the export rewrite.
    fold_unshuffle = ("unshuffle", "head")

    def __init__(
        self,
        features: int | tuple[int, int, int] = 32,
        unshuffle: int = 4,
        in_channels: int = 1,
        arch: str = "unet",
        noise: str = "untrained",
    ) -> None:
        if unshuffle not in (2, 4):
            raise ValueError(f"unshuffle must be 2 or 4, got {unshuffle}")
        s = unshuffle
        super().__init__(
            arch,
            in_channels,
            noise,
            size_multiple=4 * s,
            # in input pixels: unshuffle s; at 1/s head, down1, dec1, tail (2s each but down1 s); at 1/2s enc2,
            # down2, dec2, nearest up; at 1/4s mid1, mid2, nearest up (the σ pool's 4s blocks are smooth input)
            receptive_field=s + s * (2 + 1 + 2 + 2) + 2 * s * (2 + 1 + 2 + 1) + 4 * s * (2 + 2 + 1),
            noise_level_input=True,
        )
        f1, f2, f3 = (features, 2 * features, 3 * features) if isinstance(features, int) else features
        cs = in_channels * s * s
        self.unshuffle = nn.PixelUnshuffle(s)
        self.shuffle = nn.PixelShuffle(s)
        self.sigma_pool = nn.AvgPool2d(4 * s)
        self.head = nn.Conv2d(cs, f1, 3, padding=1)
        self.down1 = nn.Conv2d(f1, f2, 2, stride=2)
        self.enc2 = nn.Conv2d(f2, f2, 3, padding=1)
        self.down2 = nn.Conv2d(f2, f3, 2, stride=2)
        self.sigma_head = nn.Conv2d(1, f3, 1, bias=False)
        self.mid1 = nn.Conv2d(f3, f3, 3, padding=1)
        self.mid2 = nn.Conv2d(f3, f3, 3, padding=1)
        self.up2 = nn.Conv2d(f3, f2, 1)
        self.dec2 = nn.Conv2d(f2, f2, 3, padding=1)
        self.up1 = nn.Conv2d(f2, f1, 1)
        self.dec1 = nn.Conv2d(f1, f1, 3, padding=1)
        self.tail = nn.Conv2d(f1, cs, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(N, C, H, W)``, ``sigma``: ``(N, 1, H, W)`` (σ/255 per pixel). Returns ``(N, C, H, W)``."""
        sigma = self._require_sigma(sigma)
        r = self.relu
        e1 = r(self.head(self.unshuffle(x)))
        e2 = r(self.enc2(r(self.down1(e1))))
        m = r(self.mid2(r(self.mid1(r(self.down2(e2) + self.sigma_head(self.sigma_pool(sigma)))))))
        d2 = r(self.dec2(r(self.up(self.up2(m)) + e2)))
        d1 = r(self.dec1(r(self.up(self.up1(d2)) + e1)))
        return x - self.shuffle(self.tail(d1))


@register_model
def unet3_f32_u4_nl(in_channels: int = 1, features: int = 32, noise: str = "untrained") -> UNetNL:
    """Three scales (1/4, 1/8, 1/16 with 32, 64, 96 features) behind a x4 unshuffle, told the noise level.

    About 3.3k MACs/pixel (0.3 % of RED30): the real-time model for 1920x1080 on a CPU. H and W multiples of 16.
    """
    return UNetNL(features, 4, in_channels, arch="unet3_f32_u4_nl", noise=noise)


@register_model
def unet3_f48_u4_nl_rgb(in_channels: int = 3, features: int = 48, noise: str = "untrained") -> UNetNL:
    """The colour real-time model: the U-Net of :func:`unet3_f32_u4_nl` on RGB (3 channels in and out, one σ map),
    widths 48, 64, 96 from the 1/4 level down; about 6.0k MACs/pixel. H and W multiples of 16.

    The 48 sub-images of a x4-unshuffled RGB frame enter one stack (joint colour, as FFDNet's colour network,
    Zhang et al., IEEE TIP 2018, Sec. III-A). The finest level is wider than the gray model's 32: the network
    predicts the noise, and 48 independent noise values per 4x4 block do not pass through 32 channels (a 32-wide
    colour twin trained from the gray weights or from scratch stayed near 21.3 dB on the validation images at
    σ 25, 1 dB above the noisy input).

    No weights ship yet: after 90 minutes from scratch on one CPU core it reached 26.0 dB on CBSD68 at σ 25,
    below the gray model run on each channel (27.3 dB); docs/noise-level.md, "Colour models".
    """
    return UNetNL((features, 64, 96), 4, in_channels, arch="unet3_f48_u4_nl_rgb", noise=noise)
