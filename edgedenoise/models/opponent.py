"""Colour denoisers built from a σ-conditioned gray network in a luminance-chrominance space.

Method: CBM3D's (Dabov, Foi, Katkovnik, Egiazarian, "Color Image Denoising via Sparse 3D Collaborative Filtering
with Grouping Constraint in Luminance-Chrominance Space", ICIP 2007, Sec. 2): the RGB image is taken to the
opponent colour space of BM3D's reference code,

    O1 = (R + G + B) / 3,   O2 = (R - B) / 2,   O3 = (R - 2G + B) / 4,

whose rows are orthogonal, so AWGN of σ on each of R, G, B stays independent and Gaussian with σ times each
row's length (0.577σ, 0.707σ, 0.612σ). Natural images put almost all their structure into O1; O2 and O3 are
smooth, so a denoiser told their (lower) σ removes far more noise from them than from R, G or B. Each plane
goes through one shared gray network that takes a σ map (FFDNet, Zhang et al., IEEE TIP 2018, Sec. III-B), and
the predicted noise goes back through the inverse transform. The chrominance planes are shifted by +0.5 into
the [0, 1] range the gray network saw in training.

Why this and not a joint 3-in network: trained from scratch on a 2-core CPU, the joint models stayed below the
gray model run on R, G, B separately (docs/noise-level.md, "Colour models"), and starting a joint model from
tiled gray weights is a saddle point. This composite starts exactly at the gray model's quality in opponent
space (+1.5 dB over per-channel on CBSD68 at σ 25) and is then fine-tuned on colour images (CBSD432), where
the chrominance planes are the kind of input the gray training set never showed.

The composite's state dict is exactly the gray network's (the transform is fixed and not saved), so gray
weights load into it and it trains with the same tools. Export sees one graph: inputs ``noisy`` (N, 3, H, W)
and ``sigma`` (N, 1, H, W), the three planes batched through the gray network as (3N, 1, H, W). The transforms
are Mul, ReduceSum and Sub nodes, which INT8 export leaves in float (they are not among the quantized operator types),
so the image is not rounded to 8 bits on the way in or out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from ..runtime.frames import CHROMA_OFFSET, OPPONENT
from ._common import ResidualDenoiser
from .registry import register_model
from .slim import SlimRED
from .unet import UNetNL


class OpponentColour(ResidualDenoiser):
    """Mixin that turns a gray, σ-conditioned residual denoiser class into an RGB one (see the module docstring).

    Use it first in the bases, before the gray class: ``class OpponentSlimRED(OpponentColour, SlimRED)``. The
    gray class is built with one input channel; ``cfg.in_channels`` becomes 3 and ``cfg.arch`` the given name.

    Args:
        chroma_scale: 1 runs the three planes at full resolution, batched as ``(3N, 1, H, W)``; 2 runs the
            luminance plane at full resolution and the two chrominance planes at half resolution (2x2 means, told
            σ/2, as averaging four independent values halves it; the σ map enters as the root mean square of
            each 2x2 block), batched as ``(2N, 1, H/2, W/2)``, and brings the denoised chrominance back up by
            bilinear interpolation. Chrominance is smooth in natural images and its detail at half resolution is
            what a 4:2:0 camera frame keeps: on the validation images this cost nothing (29.62 against 29.63 dB at
            σ 25) and halved the MACs per RGB pixel. A clean image comes back with its chrominance at half
            resolution (about 48 dB on the validation images), so the composite is an identity only up to that.

    Input: ``x`` ``(N, 3, H, W)`` float32 RGB in [0, 1] (may exceed it) and ``sigma`` ``(N, 1, H, W)`` float32,
    the noise standard deviation per pixel and per channel in value units (σ/255), as for the gray network.
    H and W multiples of ``chroma_scale`` times the gray network's size multiple.
    Output: the denoised RGB image ``(N, 3, H, W)``, not clipped.
    """

    to_opp: torch.Tensor
    from_opp: torch.Tensor
    neg_offset: torch.Tensor
    sigma_gain: torch.Tensor

    def __init__(self, *args: Any, arch: str, chroma_scale: int = 1, **kwargs: Any) -> None:
        kwargs["in_channels"] = 1
        super().__init__(*args, arch=arch, **kwargs)  # type: ignore[misc]  # the gray class, next in the MRO
        if not self.cfg.noise_level_input:
            raise ValueError(f"{arch}: the opponent-space composite needs a gray model with a noise-level input")
        if chroma_scale not in (1, 2):
            raise ValueError(f"{arch}: chroma_scale must be 1 or 2, got {chroma_scale}")
        self.chroma_scale = chroma_scale
        s = chroma_scale
        self.cfg = dataclasses.replace(
            self.cfg,
            in_channels=3,
            size_multiple=s * self.cfg.size_multiple,
            # at 1/s the network's field is s times wider; the 2x2 mean and the bilinear step add a pixel each
            receptive_field=s * self.cfg.receptive_field + 2 * (s - 1),
        )
        t = torch.tensor(OPPONENT, dtype=torch.float64)
        # Not persistent: the state dict stays the gray network's.
        f32 = torch.float32
        inv = torch.linalg.inv(t)
        # (3 out, 3 in, 1, 1), unsqueezed to 5-D in forward: out_k = sum_c w[k, c] * in_c as Mul + ReduceSum, which
        # keeps NCHW (no Transpose). Buffers stay 4-D: Module.to(memory_format=channels_last) refuses 5-D ones.
        self.register_buffer("to_opp", t.to(f32).view(3, 3, 1, 1), persistent=False)
        self.register_buffer("from_opp", inv.to(f32).view(3, 3, 1, 1), persistent=False)
        self.register_buffer("neg_offset", -torch.tensor(CHROMA_OFFSET, dtype=f32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("sigma_gain", t.norm(dim=1).to(f32).view(1, 3, 1, 1), persistent=False)
        # for chroma_scale 2: RGB = luma column x O1 - (minus the chroma columns) . (O2, O3 - offset)
        self.register_buffer("from_luma", inv[:, 0].to(f32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("neg_from_chroma", -inv[:, 1:].to(f32).view(3, 2, 1, 1), persistent=False)
        offset = torch.tensor(CHROMA_OFFSET[1:], dtype=f32).view(1, 2, 1, 1)
        self.register_buffer("chroma_offset", offset, persistent=False)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(N, 3, H, W)``; ``sigma``: ``(N, 1, H, W)`` (σ/255 per pixel). Returns ``(N, 3, H, W)``."""
        sigma = self._require_sigma(sigma)
        n, c, h, w = x.shape
        if c != 3:
            raise ValueError(f"{self.cfg.arch} takes RGB input (N, 3, H, W), got {c} channel(s)")
        gray = super().forward
        # Sub of the negated offset, not Add: INT8 export quantizes Add nodes, and this one must stay float.
        opp = (x.unsqueeze(1) * self.to_opp.unsqueeze(0)).sum(dim=2) - self.neg_offset
        s = self.chroma_scale
        if s == 1:
            planes = opp.reshape(n * 3, 1, h, w)
            sig = (sigma * self.sigma_gain).reshape(n * 3, 1, h, w)
            noise = (planes - gray(planes, sig)).reshape(n, 3, h, w)
            return x - (noise.unsqueeze(1) * self.from_opp.unsqueeze(0)).sum(dim=2)
        # Kept free of Add and Concat nodes (INT8 export quantizes those): the output is never rounded to 8 bits.
        luma = gray(opp[:, :1], sigma * self.sigma_gain[:, :1])
        hs, ws = h // s, w // s
        chroma = F.avg_pool2d(opp[:, 1:], s).reshape(n * 2, 1, hs, ws)
        sig_lo = torch.sqrt(F.avg_pool2d(sigma * sigma, s)) * (self.sigma_gain[:, 1:] / s)
        chroma = gray(chroma, sig_lo.reshape(n * 2, 1, hs, ws)).reshape(n, 2, hs, ws)
        chroma = F.interpolate(chroma, scale_factor=s, mode="bilinear", align_corners=False) - self.chroma_offset
        return luma * self.from_luma - (chroma.unsqueeze(1) * self.neg_from_chroma.unsqueeze(0)).sum(dim=2)


class OpponentSlimRED(OpponentColour, SlimRED):
    """:class:`SlimRED` (with a σ input) run on the opponent planes of an RGB image; see :class:`OpponentColour`."""


class OpponentUNet(OpponentColour, UNetNL):
    """:class:`UNetNL` run on the opponent planes of an RGB image; see :class:`OpponentColour`."""


@register_model
def rednet18_slim64_u2_nl_rgb(in_channels: int = 3, features: int = 64, noise: str = "untrained") -> OpponentSlimRED:
    """The colour FFDNet-cost model: ``rednet18_slim64_u2_nl`` on the opponent planes of an RGB image, the
    chrominance planes at half resolution.

    Inputs ``noisy`` ``(N, 3, H, W)`` RGB and ``sigma`` ``(N, 1, H, W)`` (σ/255 per pixel, per channel), H and W
    multiples of 4. About 223k MACs per RGB pixel (148.8k for the luminance plane, 37.2k for each chrominance
    plane at a quarter of the pixels), about FFDNet's colour network (Zhang et al., IEEE TIP 2018, Table I: 96
    features, 12 layers on x2 sub-images, about 213k). Warm start: the gray model's weights; fine-tuned on CBSD432.
    """
    _rgb_only(in_channels)
    return OpponentSlimRED(
        18, features, 2, arch="rednet18_slim64_u2_nl_rgb", noise=noise, noise_level_input=True, chroma_scale=2
    )


@register_model
def unet3_f32_u4_nl_rgb(in_channels: int = 3, features: int = 32, noise: str = "untrained") -> OpponentUNet:
    """The colour real-time model: ``unet3_f32_u4_nl`` on the opponent planes of an RGB image, the chrominance
    planes at half resolution.

    Inputs ``noisy`` ``(N, 3, H, W)`` RGB and ``sigma`` ``(N, 1, H, W)`` (σ/255 per pixel, per channel), H and W
    multiples of 32. About 4.8k MACs per RGB pixel (3.2k for the luminance plane, 0.8k for each chrominance
    plane). Warm start: the gray model's weights; fine-tuned on CBSD432.
    """
    _rgb_only(in_channels)
    return OpponentUNet(features, 4, arch="unet3_f32_u4_nl_rgb", noise=noise, chroma_scale=2)


#: The registered models that take RGB only (``in_channels=1`` is refused).
RGB_ONLY = ("rednet18_slim64_u2_nl_rgb", "unet3_f32_u4_nl_rgb")


def _rgb_only(in_channels: int) -> None:
    if in_channels != 3:
        raise ValueError(f"the opponent-space colour models take 3 channels (RGB), got in_channels={in_channels}")
