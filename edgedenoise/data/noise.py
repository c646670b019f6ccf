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

    def sample(self, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(noisy, sigma)``: the noisy batch and the uniform σ map ``(N, 1, H, W)`` in value units."""
        noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype, device=clean.device)
        out = clean + noise * (self.sigma / 255.0)
        out = out.clamp(0, 1) if self.clip else out
        n, _, h, w = clean.shape
        return out, torch.full((n, 1, h, w), self.sigma / 255.0, dtype=clean.dtype, device=clean.device)

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]; returns the noisy batch, same shape."""
        return self.sample(clean, gen)[0]


def clip_round8(noisy: torch.Tensor) -> torch.Tensor:
    """What an 8-bit file holds: ``noisy`` clipped to [0, 1] and rounded to multiples of 1/255 (same shape)."""
    return torch.round(noisy.clamp(0, 1) * 255.0) / 255.0


@dataclass(frozen=True)
class BlindAWGN:
    """AWGN whose σ is drawn uniformly from ``[sigma_min, sigma_max]`` per image (blind training, DnCNN-B).

    ``zero_share`` of the images get σ = 0 (the clean image itself: teaches a model to leave clean input alone);
    ``clip8_share`` of the images are clipped to [0, 1] and rounded to 8 bits after the noise is added, as a
    noisy 8-bit file is (the σ reported for them stays the nominal one, as a user would state it).

    ``pg_share`` of the (non-clean) images get camera noise instead of AWGN: Poisson-Gaussian (see
    :class:`PoissonGaussian`) with ``a`` uniform in [0, ``a_max``] and ``b`` uniform in [0, ``b_max``] per image;
    their σ map is the true per-pixel ``sqrt(a·x + b)`` of the clean channel mean ``x``, so one σ-conditioned
    model serves both white and signal-dependent noise (the per-pixel map of FFDNet, Zhang et al., IEEE TIP
    2018, Sec. III-B, which covers spatially variant noise).
    """

    sigma_min: float = 0.0
    sigma_max: float = 55.0
    clip: bool = False
    zero_share: float = 0.0
    clip8_share: float = 0.0
    pg_share: float = 0.0
    a_max: float = 0.02
    b_max: float = 0.0025

    def sample(self, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]. Returns ``(noisy, sigma)``: the noisy batch (same shape)
        and the per-pixel noise standard deviation ``(N, 1, H, W)`` float32 in value units (σ/255)."""
        n = clean.shape[0]
        sig = (
            torch.rand(n, generator=gen, dtype=clean.dtype) * (self.sigma_max - self.sigma_min)
            + self.sigma_min
        )
        if self.zero_share > 0:
            sig = torch.where(torch.rand(n, generator=gen) < self.zero_share, torch.zeros_like(sig), sig)
        sig = sig.view(n, 1, 1, 1).to(clean.device) / 255.0
        noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype, device=clean.device)
        sig_map = sig.expand(n, 1, *clean.shape[2:])
        std = sig
        if self.pg_share > 0:
            pg = (torch.rand(n, generator=gen) < self.pg_share) & (sig.view(n).cpu() > 0)
            a = (torch.rand(n, generator=gen, dtype=clean.dtype) * self.a_max).view(n, 1, 1, 1).to(clean.device)
            b = (torch.rand(n, generator=gen, dtype=clean.dtype) * self.b_max).view(n, 1, 1, 1).to(clean.device)
            x = clean.clamp(min=0)
            pick = pg.view(n, 1, 1, 1).to(clean.device)
            std = torch.where(pick, torch.sqrt(a * x + b), sig)
            sig_map = torch.where(pick, torch.sqrt(a * x.mean(1, keepdim=True) + b), sig_map)
        out = clean + noise * std
        if self.clip:
            out = out.clamp(0, 1)
        if self.clip8_share > 0:
            pick = (torch.rand(n, generator=gen) < self.clip8_share).view(n, 1, 1, 1).to(clean.device)
            out = torch.where(pick, clip_round8(out), out)
        return out, sig_map.contiguous()

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]; returns the noisy batch, same shape."""
        return self.sample(clean, gen)[0]


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

    def sample(self, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(noisy, sigma)``: the noisy batch and the true per-pixel standard deviation
        ``sqrt(a·x + b)`` of its gray level ``(N, 1, H, W)`` (channel mean of x), value units."""
        std = torch.sqrt((self.a * clean.clamp(min=0) + self.b).clamp(min=0))
        noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype, device=clean.device)
        out = clean + std * noise
        out = out.clamp(0, 1) if self.clip else out
        return out, torch.sqrt((self.a * clean.clamp(min=0).mean(1, keepdim=True) + self.b).clamp(min=0))

    def __call__(self, clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean``: ``(N, C, H, W)`` float32 in [0, 1]; returns the noisy batch, same shape."""
        return self.sample(clean, gen)[0]


NoiseModel = AWGN | BlindAWGN | PoissonGaussian


def make_noise(
    kind: str,
    sigma: float | list[float] | None = None,
    a: float = 0.01,
    b: float = 0.0004,
    clip: bool = False,
    zero_share: float = 0.0,
    clip8_share: float = 0.0,
    pg_share: float = 0.0,
) -> NoiseModel:
    """Build a noise model from config values.

    Args:
        kind: ``"awgn"`` (needs one ``sigma``), ``"awgn_blind"`` (``sigma`` = ``[min, max]``, default 0-55),
            or ``"poisson_gaussian"`` (``a``, ``b``). ``zero_share`` and ``clip8_share`` (shares of the batch in
            [0, 1]) apply to ``awgn_blind``; so does ``pg_share``, the share of images given Poisson-Gaussian
            noise with ``a`` and ``b`` drawn up to the given ``a`` and ``b``: see :class:`BlindAWGN`.

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
        for key, share in (("zero_share", zero_share), ("clip8_share", clip8_share), ("pg_share", pg_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"noise.{key}={share} must be a share in [0, 1]")
        if pg_share and not (a >= 0 and b >= 0):
            raise ValueError(f"noise.a={a} and noise.b={b} (the largest Poisson-Gaussian a, b) must be >= 0")
        return BlindAWGN(
            float(lo), float(hi), clip, float(zero_share), float(clip8_share), float(pg_share), float(a), float(b)
        )
    if kind == "poisson_gaussian":
        return PoissonGaussian(a, b, clip)
    raise ValueError(f"unknown noise kind {kind!r}; use awgn, awgn_blind or poisson_gaussian")


def noise_label(model: NoiseModel) -> str:
    """Short label recorded in ModelCfg.noise, e.g. ``awgn:25``, ``awgn:0-55``, ``pg:a=0.01,b=0.0004``."""
    if isinstance(model, AWGN):
        return f"awgn:{model.sigma:g}"
    if isinstance(model, BlindAWGN):
        extra = f",clip8={model.clip8_share:g}" if model.clip8_share else ""
        if model.pg_share:
            extra += f",pg={model.pg_share:g}:a<={model.a_max:g},b<={model.b_max:g}"
        return f"awgn:{model.sigma_min:g}-{model.sigma_max:g}{extra}"
    return f"pg:a={model.a:g},b={model.b:g}"
