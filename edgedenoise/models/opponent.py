"""Colour denoisers built from a σ-conditioned gray network in a luminance-chrominance space.

Method: CBM3D's (Dabov, Foi, Katkovnik, Egiazarian, "Color Image Denoising via Sparse 3D Collaborative Filtering
with Grouping Constraint in Luminance-Chrominance Space", ICIP 2007, Sec. 2): the RGB image is taken to the
opponent colour space of BM3D's reference code,

    O1 = (R + G + B) / 3,   O2 = (R - B) / 2,   O3 = (R - 2G + B) / 4,

whose rows are orthogonal, so AWGN of σ on each of R, G, B stays independent and Gaussian with σ times each
row's length (0.577σ, 0.707σ, 0.612σ). Natural images put almost all their structure into O1; O2 and O3 are
smooth, so a denoiser told their (lower) σ removes far more noise from them than from R, G or B. Each plane
goes through one shared gray network that takes a σ map (FFDNet, Zhang et al., IEEE TIP 2018, Sec. III-B), the
smooth chrominance planes at half resolution, and the denoised planes go back through the inverse transform.
The chrominance planes are shifted by +0.5 into the [0, 1] range the gray network saw in training.

Why this and not a joint 3-in network: trained from scratch on a 2-core CPU, the joint models stayed below the
gray model run on R, G, B separately (docs/noise-level.md, "Colour models"), and starting a joint model from
tiled gray weights is a saddle point. This composite starts at the gray model's quality in opponent space
(+1.5 dB over per-channel on CBSD68 at σ 25) and is then fine-tuned on colour images (CBSD432), where
the chrominance planes are the kind of input the gray training set never showed.

The composite's state dict is exactly the gray network's (the transform is fixed and not saved), so gray
weights load into it and it trains with the same tools. Export sees one graph: inputs ``noisy`` (N, 3, H, W)
and ``sigma`` (N, 1, H, W); the luminance plane goes through the gray network at full resolution, the two
chrominance planes at half resolution (:class:`OpponentColour`). The transforms (:class:`ToOpponent`,
:class:`FromOpponent`) are declared float, and INT8 export keeps them so: the image is not rounded to 8 bits on
the way in or out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.frames import CHROMA_OFFSET, OPPONENT
from ._common import ResidualDenoiser
from .registry import register_model
from .slim import SlimRED
from .unet import UNetNL


class OpponentColour(ResidualDenoiser):
    """Mixin that turns a gray, σ-conditioned residual denoiser class into an RGB one (see the module docstring).

    Use it first in the bases, before the gray class: ``class OpponentSlimRED(OpponentColour, SlimRED)``. The
    gray class is built with one input channel; ``cfg.in_channels`` becomes 3 and ``cfg.arch`` the given name.

    The luminance plane O1 goes through the gray network at full resolution; the chrominance planes O2, O3 at
    half resolution (2x2 means, told σ/2, as averaging four independent values halves it; the σ map enters as
    the root mean square of each 2x2 block), batched as ``(2N, 1, H/2, W/2)``, and the denoised chrominance comes
    back up by bilinear interpolation. Chrominance is smooth in natural images and its detail at half resolution
    is what a 4:2:0 camera frame keeps: on the validation images (the last 8 CBSD432 photos, σ 25, shipped
    weights) this cost nothing against full-resolution chrominance (29.62 against 29.63 dB), for half the MACs
    per RGB pixel. A clean image comes back with its chrominance at half resolution (about 48 dB on those
    images), so the composite is an identity only up to that.

    Input: ``x`` ``(N, 3, H, W)`` float32 RGB in [0, 1] (may exceed it) and ``sigma`` ``(N, 1, H, W)`` float32,
    the noise standard deviation per pixel and per channel in value units (σ/255), as for the gray network.
    H and W multiples of twice the gray network's size multiple.
    Output: the denoised RGB image ``(N, 3, H, W)``, not clipped.
    """

    sigma_gain: torch.Tensor

    #: Submodules whose ONNX nodes INT8 export keeps in float (``edgedenoise.export``): the fixed colour
    #: transforms, so the image is never rounded to 8 bits on the way in or out.
    float_modules = ("to_opponent", "from_opponent")

    def __init__(self, *args: Any, arch: str, **kwargs: Any) -> None:
        kwargs["in_channels"] = 1
        super().__init__(*args, arch=arch, **kwargs)  # type: ignore[misc]  # the gray class, next in the MRO
        if not self.cfg.noise_level_input:
            raise ValueError(f"{arch}: the opponent-space composite needs a gray model with a noise-level input")
        self.cfg = dataclasses.replace(
            self.cfg,
            in_channels=3,
            size_multiple=2 * self.cfg.size_multiple,
            # at 1/2 the network's field is twice as wide; the 2x2 mean and the bilinear step add a pixel each
            receptive_field=2 * self.cfg.receptive_field + 2,
        )
        t = torch.tensor(OPPONENT, dtype=torch.float64)
        self.to_opponent = ToOpponent(t)
        self.from_opponent = FromOpponent(torch.linalg.inv(t))
        self.register_buffer("sigma_gain", t.norm(dim=1).to(torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(N, 3, H, W)``; ``sigma``: ``(N, 1, H, W)`` (σ/255 per pixel). Returns ``(N, 3, H, W)``."""
        sigma = self._require_sigma(sigma)
        n, c, h, w = x.shape
        if c != 3:
            raise ValueError(f"{self.cfg.arch} takes RGB input (N, 3, H, W), got {c} channel(s)")
        gray = super().forward
        luma, chroma = self.to_opponent(x)
        luma = gray(luma, sigma * self.sigma_gain[:, :1])
        sig_lo = torch.sqrt(F.avg_pool2d(sigma * sigma, 2)) * (self.sigma_gain[:, 1:] / 2)
        chroma = gray(chroma.reshape(n * 2, 1, h // 2, w // 2), sig_lo.reshape(n * 2, 1, h // 2, w // 2))
        return self.from_opponent(luma, chroma.reshape(n, 2, h // 2, w // 2))


class ToOpponent(nn.Module):
    """RGB to the opponent planes: O1 at full resolution, (O2, O3) + 0.5 at half resolution (2x2 means).

    Args:
        matrix: the ``(3, 3)`` transform (rows O1, O2, O3), stored as non-persistent float32 buffers.

    ``forward(x)``: ``x`` ``(N, 3, H, W)`` float32, H and W even. Returns ``luma`` ``(N, 1, H, W)`` and
    ``chroma`` ``(N, 2, H/2, W/2)``. The chrominance rows are applied to the 2x2 means of R, G, B (the mean and the
    linear map commute), so only O1 is computed on full-size planes: in ONNX Runtime on a 1280x720 frame the
    map as one 1x1 Conv took about 10 ms (three channels pack badly into its blocked layout), this about 2 ms.
    """

    luma_row: torch.Tensor
    chroma_rows: torch.Tensor
    offset: torch.Tensor

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        _fixed_buffers(self, luma_row=matrix[0].view(1, 3, 1, 1), chroma_rows=matrix[1:].reshape(2, 3, 1, 1))
        # BM3D's O1 is the channel mean: one ReduceMean instead of a broadcast Mul and a ReduceSum on full planes
        self.luma_is_mean = bool(torch.allclose(matrix[0], torch.full((3,), 1 / 3, dtype=matrix.dtype)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``(N, 3, H, W)``. Returns ``(N, 1, H, W)``, ``(N, 2, H/2, W/2)``."""
        luma = x.mean(dim=1, keepdim=True) if self.luma_is_mean else (x * self.luma_row).sum(dim=1, keepdim=True)
        lo = F.avg_pool2d(x, 2)
        return luma, (lo.unsqueeze(1) * self.chroma_rows.unsqueeze(0)).sum(dim=2) + self.offset


def _fixed_buffers(module: nn.Module, **tensors: torch.Tensor) -> None:
    """Register ``tensors`` and the chrominance offset ``(1, 2, 1, 1)`` as float32 buffers outside the state dict
    (the transform is fixed, so a composite's state dict stays its gray network's). Buffers stay 4-D:
    ``Module.to(memory_format=channels_last)`` refuses 5-D ones."""
    tensors["offset"] = torch.tensor(CHROMA_OFFSET[1:]).view(1, 2, 1, 1)
    for name, t in tensors.items():
        module.register_buffer(name, t.to(torch.float32), persistent=False)


class FromOpponent(nn.Module):
    """The inverse of :class:`ToOpponent`: denoised O1 at full resolution and (O2, O3) + 0.5 at half resolution
    back to RGB, the chrominance brought up by bilinear interpolation.

    Args:
        inverse: the ``(3, 3)`` inverse transform (columns O1, O2, O3), stored as non-persistent float32 buffers.

    ``forward(luma, chroma)``: ``(N, 1, H, W)`` and ``(N, 2, H/2, W/2)`` float32. Returns ``(N, 3, H, W)``. The
    chrominance columns are applied at half resolution and their R, G, B parts interpolated (interpolation is
    linear and keeps constants, so this equals interpolating O2 and O3 first).
    """

    luma_col: torch.Tensor
    chroma_cols: torch.Tensor
    offset: torch.Tensor

    def __init__(self, inverse: torch.Tensor) -> None:
        super().__init__()
        _fixed_buffers(self, luma_col=inverse[:, 0].reshape(1, 3, 1, 1), chroma_cols=inverse[:, 1:].reshape(3, 2, 1, 1))
        self.luma_col_is_one = bool(torch.allclose(inverse[:, 0], torch.ones(3, dtype=inverse.dtype)))  # BM3D's

    def forward(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """``luma``: ``(N, 1, H, W)``, ``chroma``: ``(N, 2, H/2, W/2)``. Returns ``(N, 3, H, W)``."""
        part = ((chroma - self.offset).unsqueeze(1) * self.chroma_cols.unsqueeze(0)).sum(dim=2)
        up = F.interpolate(part, scale_factor=2, mode="bilinear", align_corners=False)
        return luma + up if self.luma_col_is_one else luma * self.luma_col + up


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
    return OpponentSlimRED(18, features, 2, arch="rednet18_slim64_u2_nl_rgb", noise=noise, noise_level_input=True)


@register_model
def unet3_f32_u4_nl_rgb(in_channels: int = 3, features: int = 32, noise: str = "untrained") -> OpponentUNet:
    """The colour real-time model: ``unet3_f32_u4_nl`` on the opponent planes of an RGB image, the chrominance
    planes at half resolution.

    Inputs ``noisy`` ``(N, 3, H, W)`` RGB and ``sigma`` ``(N, 1, H, W)`` (σ/255 per pixel, per channel), H and W
    multiples of 32. About 4.8k MACs per RGB pixel (3.2k for the luminance plane, 0.8k for each chrominance
    plane). Warm start: the gray model's weights; fine-tuned on CBSD432.
    """
    _rgb_only(in_channels)
    return OpponentUNet(features, 4, arch="unet3_f32_u4_nl_rgb", noise=noise)


#: The registered models that take RGB only (``in_channels=1`` is refused).
RGB_ONLY = ("rednet18_slim64_u2_nl_rgb", "unet3_f32_u4_nl_rgb")


def _rgb_only(in_channels: int) -> None:
    if in_channels != 3:
        raise ValueError(f"the opponent-space colour models take 3 channels (RGB), got in_channels={in_channels}")
