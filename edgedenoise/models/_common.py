"""What every registered denoiser shares: the contract it carries as ``cfg``, and the σ-map check.

Every model here predicts the noise and returns ``input - noise`` (the image-level residual of DnCNN and of
RED-Net's outermost skip, Mao et al., NIPS 2016, Sec. 2.2), so the :class:`ModelCfg` each one records differs
only in its name, channels, size multiple, receptive field, trained noise and whether it takes a σ map.
"""

from __future__ import annotations

import torch
from torch import nn

from ..runtime.contract import ModelCfg


class ResidualDenoiser(nn.Module):
    """Base class of the registered models: an ``nn.Module`` whose ``cfg`` is a residual :class:`ModelCfg`.

    It adds no parameters, buffers or submodules, so a subclass's state dict is exactly its own layers.
    Subclasses check their own arguments, then call ``super().__init__(...)`` before creating any layer.

    Args:
        arch: the registered name, recorded in ``cfg``.
        in_channels: 1 (gray) or 3 (RGB).
        noise: what the weights are trained for (``"untrained"``, ``"awgn:0-55"``...).
        size_multiple: H and W of the input must be multiples of this.
        receptive_field: side of the receptive field in input pixels.
        noise_level_input: the model takes a second input, the per-pixel σ map (FFDNet, Zhang et al., IEEE TIP
            2018, Sec. III-B).

    Raises:
        ValueError: ``in_channels`` is not 1 or 3, or ``size_multiple`` < 1 (from :class:`ModelCfg`).
    """

    def __init__(
        self,
        arch: str,
        in_channels: int,
        noise: str,
        *,
        size_multiple: int,
        receptive_field: int,
        noise_level_input: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = ModelCfg(
            arch=arch,
            in_channels=in_channels,
            size_multiple=size_multiple,
            residual=True,
            receptive_field=receptive_field,
            noise=noise,
            noise_level_input=noise_level_input,
        )

    def _require_sigma(self, sigma: torch.Tensor | None) -> torch.Tensor:
        """``sigma`` itself (``(N, 1, H, W)`` float32, σ/255 per pixel) for a model that needs the σ map.

        Raises:
            ValueError: ``sigma`` is None.
        """
        if sigma is None:
            raise ValueError(f"{self.cfg.arch} takes a noise-level map: call model(x, sigma)")
        return sigma
