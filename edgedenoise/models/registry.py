"""Model registry: variants registered by name, the only public constructors.

``create_model(name, **overrides)`` builds an ``nn.Module`` that carries its contract as ``model.cfg``
(:class:`edgedenoise.runtime.contract.ModelCfg`); ``list_models()`` returns the registered names. Family
aliases (``rednet`` -> ``rednet30``, ``memnet`` -> ``memnet_m6r6``) are what the CLI takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..runtime.artifact import MODEL_ALIASES
from ..runtime.contract import ModelCfg
from ..runtime.errors import UnknownModelError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = dict(MODEL_ALIASES)  # one table, shared with the torch-free runtime


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a factory under its function name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def resolve_name(name: str) -> str:
    """Map an alias to its registered name.

    Raises:
        UnknownModelError: ``name`` is neither registered nor an alias.
    """
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of: {', '.join(list_models())} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
        )
    return key


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def aliases() -> dict[str, str]:
    """Family aliases accepted wherever a model name is: ``{alias: name}``."""
    return dict(_ALIASES)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model with random weights.

    Args:
        name: a name from :func:`list_models` or an alias (``rednet``, ``memnet``).
        **overrides: constructor arguments of the variant, e.g. ``in_channels=3`` or ``features=8``.

    Returns:
        ``nn.Module`` mapping ``(N, C, H, W) float32`` in the model's value range to the same shape; it has
        a ``cfg`` attribute (:class:`ModelCfg`). H and W must be multiples of ``cfg.size_multiple``.

    Raises:
        UnknownModelError: unknown name. TypeError: an override the variant does not take.
    """
    model = _REGISTRY[resolve_name(name)](**overrides)
    # What it takes to rebuild this module (saved beside weights); the trained-noise label lives in cfg.
    model.build_overrides = {k: v for k, v in overrides.items() if k != "noise"}  # type: ignore[assignment]
    return model


def model_cfg(model: nn.Module) -> ModelCfg:
    """The :class:`ModelCfg` a registered model carries (unwrapping DDP).

    Raises:
        TypeError: ``model`` was not built by :func:`create_model`.
    """
    core = getattr(model, "module", model)
    cfg = getattr(core, "cfg", None)
    if not isinstance(cfg, ModelCfg):
        raise TypeError(f"{type(core).__name__} has no ModelCfg; build models with create_model()")
    return cfg


@dataclass(frozen=True)
class ModelStats:
    """Size of a model: trainable parameters and multiply-accumulates per input pixel."""

    params: int
    macs_per_pixel: float


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (shared weights counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


ConvHook = Callable[[nn.Module, torch.Tensor, torch.Tensor], int]


def _sum_over_convs(model: nn.Module, size: int, per_conv: ConvHook) -> int:
    """Run ``model`` once on a zero ``(1, C, size, size)`` input (and a zero σ map for a conditioned model), in
    eval mode and without gradients, and sum ``per_conv(module, input, output)`` over every Conv2d and
    ConvTranspose2d call (a weight-shared layer counts every time it runs)."""
    total = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += per_conv(mod, inp[0], out)

    handles = [
        m.register_forward_hook(hook)  # type: ignore[arg-type]
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    cfg = model_cfg(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, cfg.in_channels, size, size)
            model(x, torch.zeros(1, 1, size, size)) if cfg.noise_level_input else model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def _conv_macs(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    kh, kw = mod.kernel_size  # type: ignore[misc]
    if isinstance(mod, nn.ConvTranspose2d):
        return inp.numel() * (mod.out_channels // mod.groups) * kh * kw
    assert isinstance(mod, nn.Conv2d)
    return out.numel() * (mod.in_channels // mod.groups) * kh * kw


def count_macs_per_pixel(model: nn.Module, size: int = 64) -> float:
    """Multiply-accumulates per input pixel of the Conv/ConvTranspose layers, measured with hooks.

    Runs one forward pass on a ``(1, C, size, size)`` input (``size`` must respect ``cfg.size_multiple``).
    A Conv2d costs ``out_elements * (C_in / groups) * kh * kw``; a ConvTranspose2d costs
    ``in_elements * (C_out / groups) * kh * kw``. A weight-shared layer counts every time it runs.
    Normalisation, activations, additions and biases are not counted.
    """
    return _sum_over_convs(model, size, _conv_macs) / float(size * size)


def activation_bytes_per_pixel(model: nn.Module, size: int = 64) -> float:
    """Bytes of float32 Conv/ConvTranspose outputs per input pixel in one forward pass, plus the input and
    output image: an upper bound of the activation memory a runtime needs (it reuses buffers; skip connections
    keep some alive), used to decide when to tile. Measured with hooks on a ``(1, C, size, size)`` input."""
    outputs = _sum_over_convs(model, size, lambda mod, inp, out: out.numel())
    return 4.0 * (outputs + 2 * model_cfg(model).in_channels * size * size) / float(size * size)


def model_stats(name: str, **overrides: Any) -> ModelStats:
    """Parameters and MACs per pixel of a registered model (built with random weights)."""
    model = create_model(name, **overrides)
    return ModelStats(count_params(model), count_macs_per_pixel(model))
