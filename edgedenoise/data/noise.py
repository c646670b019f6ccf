"""Noise models applied on the fly to clean batches, with a seeded generator.

All images are float32 in [0, 1]; σ is given on the 0-255 scale (the field's convention) and divided by 255.
The noisy result is *not* clipped unless ``clip=True`` (the standard AWGN benchmark protocol does not clip).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AWGN:
    """Additive white Gaussian noise with a fixed σ (0-255 scale)."""

    sigma: float
    clip: bool = False

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]; returns the noisy batch, same shape."""
        noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype, device=clean.device)
        out = clean + noise * (self.sigma / 255.0)
        return out.clamp(0, 1) if self.clip else out


@dataclass(frozen=True)
class BlindAWGN:
    """AWGN whose σ is drawn uniformly from ``[sigma_min, sigma_max]`` per image (blind training, DnCNN-B)."""

    sigma_min: float = 0.0
    sigma_max: float = 55.0
    clip: bool = False

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]; returns the noisy batch, same shape."""
        n = clean.shape[0]
        sig = (
            torch.rand(n, generator=gen, dtype=clean.dtype) * (self.sigma_max - self.sigma_min)
            + self.sigma_min
        )
        noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype, device=clean.device)
        out = clean + noise * (sig.view(n, 1, 1, 1).to(clean.device) / 255.0)
        return out.clamp(0, 1) if self.clip else out


@dataclass(frozen=True)
class PoissonGaussian:
    """Camera (heteroscedastic) noise: ``y = x + sqrt(a·x + b)·n``, n ~ N(0, 1).

    ``a`` is the Poisson (shot) gain and ``b`` the Gaussian (read) variance, both on the [0, 1] scale
    (Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data",
    IEEE TIP 2008, Eq. 1-3; the Gaussian approximation of the Poisson term).
    """

    a: float = 0.01
    b: float = 0.0004
    clip: bool = False

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]; returns the noisy batch, same shape."""
        std = torch.sqrt((self.a * clean.clamp(min=0) + self.b).clamp(min=0))
        noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype, device=clean.device)
        out = clean + std * noise
        return out.clamp(0, 1) if self.clip else out


NoiseModel = AWGN | BlindAWGN | PoissonGaussian


def make_noise(
    kind: str,
    sigma: float | list[float] | None = None,
    a: float = 0.01,
    b: float = 0.0004,
    clip: bool = False,
) -> NoiseModel:
    """Build a noise model from config values.

    Args:
        kind: ``"awgn"`` (needs one ``sigma``), ``"awgn_blind"`` (``sigma`` = ``[min, max]``, default 0-55),
            or ``"poisson_gaussian"`` (``a``, ``b``).

    Raises:
        ValueError: unknown kind or malformed sigma.
    """
    if kind == "awgn":
        if not isinstance(sigma, (int, float)):
            raise ValueError(f"noise kind 'awgn' needs one sigma (0-255 scale), got {sigma!r}")
        return AWGN(float(sigma), clip)
    if kind == "awgn_blind":
        lo, hi = (0.0, 55.0) if sigma is None else sigma  # type: ignore[misc]
        if not 0 <= lo <= hi:
            raise ValueError(
                f"noise kind 'awgn_blind' needs sigma [min, max] with 0 <= min <= max, got {sigma!r}"
            )
        return BlindAWGN(float(lo), float(hi), clip)
    if kind == "poisson_gaussian":
        return PoissonGaussian(a, b, clip)
    raise ValueError(f"unknown noise kind {kind!r}; use awgn, awgn_blind or poisson_gaussian")


def noise_label(model: NoiseModel) -> str:
    """Short label recorded in ModelCfg.noise, e.g. ``awgn:25``, ``awgn:0-55``, ``pg:a=0.01,b=0.0004``."""
    if isinstance(model, AWGN):
        return f"awgn:{model.sigma:g}"
    if isinstance(model, BlindAWGN):
        return f"awgn:{model.sigma_min:g}-{model.sigma_max:g}"
    return f"pg:a={model.a:g},b={model.b:g}"
