"""Structured channel pruning of RED-Net and the slim students with torch-pruning.

Source: G. Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023 (the dependency graph of the
``torch-pruning`` library groups the channels that must go together: RED-Net's skip connections add a conv's
output to its mirrored deconv's output, so those channels are removed as one group). Importance criteria:
the L2 norm of each channel group's weights (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017,
Sec. 3.1) or first-order Taylor (Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR
2019, Sec. 3) from a few batches of noisy patches.

Every hidden layer keeps the same number of channels, rounded to a multiple of ``round_to`` (8 by default:
INT8 kernels and TensorRT's deconvolution have alignment pitfalls with odd counts), so a pruned RED30 is a
RED30 of a smaller ``features`` width and is rebuilt from its safetensors file like any other model. The image
channels (first layer's input, last layer's output) are never pruned. MemNet is refused: its recursive unit
reuses one set of weights, which uniform channel pruning of the shared feature width would have to respect
across every block, and is not supported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..models import count_macs_per_pixel, count_params, model_cfg
from ..runtime.errors import ConfigError

IMPORTANCES = ("magnitude", "taylor")


@dataclass(frozen=True)
class PruneResult:
    """A pruned model and what changed.

    ``model``: the pruned module (same class, ``features`` = ``width_after``), in eval mode;
    ``params_*`` and ``macs_*`` (per input pixel) before and after.
    """

    model: nn.Module
    width_before: int
    width_after: int
    params_before: int
    params_after: int
    macs_before: float
    macs_after: float


def _layers(model: nn.Module) -> tuple[list[nn.Module], nn.Module]:
    """(hidden-width layers, image-output layer) of a RED-Net or SlimRED."""
    from ..models.rednet import REDNet
    from ..models.slim import SlimRED

    if isinstance(model, REDNet):
        return [*model.convs, *list(model.deconvs)[:-1]], model.deconvs[-1]
    if isinstance(model, SlimRED):
        return [model.head, *model.body], model.tail
    raise ConfigError(
        f"pruning supports RED-Net and the slim students, not {type(model).__name__} ({model_cfg(model).arch}); "
        "MemNet's shared recursive weights are not supported"
    )


def _width(layer: nn.Module) -> int:
    return int(layer.out_channels)  # type: ignore[arg-type]


def prune_model(
    model: nn.Module,
    ratio: float,
    *,
    importance: str = "magnitude",
    round_to: int = 8,
    data_dir: str | Path | None = None,
    batches: int = 4,
    seed: int = 0,
) -> PruneResult:
    """Remove the fraction ``ratio`` of every hidden layer's channels (structured pruning).

    Args:
        model: a RED-Net or slim student from ``create_model`` / ``load_weights`` (not modified: a copy is pruned).
        ratio: fraction of channels to remove, in (0, 1); widths are rounded to multiples of ``round_to``.
        importance: ``magnitude`` (L2 norm of each channel group) or ``taylor`` (needs ``data_dir``).
        round_to: keep channel counts multiples of this (>= 1).
        data_dir: clean training images for the Taylor criterion (noisy patches at blind σ in [0, 55]).
        batches: batches of 16 50x50 patches (smaller if an image is) for the Taylor criterion.
        seed: patch and noise seed for the Taylor criterion.

    Returns:
        :class:`PruneResult`; the model maps ``(N, C, H, W) float32`` to the same shape, like the original.

    Raises:
        ConfigError: ratio outside (0, 1), unknown importance, Taylor without data, a model family that
            cannot be pruned, or a ratio that would leave no channels.
    """
    import copy

    import torch_pruning as tp

    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"--ratio {ratio} must be between 0 and 1 (the fraction of channels removed), e.g. 0.5")
    if importance not in IMPORTANCES:
        raise ConfigError(f"unknown importance {importance!r}; use one of {', '.join(IMPORTANCES)}")
    if round_to < 1:
        raise ConfigError(f"round_to={round_to} must be >= 1")
    src = copy.deepcopy(model).float().to(memory_format=torch.contiguous_format).cpu().eval()  # type: ignore[call-overload]
    hidden, out_layer = _layers(src)
    # torch-pruning traces autograd's graph; an in-place ReLU turns the conv outputs into CopySlices nodes it
    # cannot map back to modules (those layers are then silently left unpruned), so trace without in-place ops.
    relus = [r for r in src.modules() if isinstance(r, nn.ReLU) and r.inplace]
    for r in relus:
        r.inplace = False
    before = _width(hidden[0])
    target = int(round(before * (1.0 - ratio) / round_to)) * round_to
    if target < round_to or target >= before:
        raise ConfigError(
            f"--ratio {ratio} leaves {target} of {before} channels (rounded to multiples of {round_to}); "
            f"choose a ratio between {round_to / before:.3f} and {1 - round_to / before:.3f}"
        )
    cfg = model_cfg(src)
    m = cfg.size_multiple
    example = torch.rand(1, cfg.in_channels, 8 * m, 8 * m)
    params_before, macs_before = count_params(src), count_macs_per_pixel(src, 8 * m * 4)
    if importance == "magnitude":
        imp: tp.importance.Importance = tp.importance.GroupMagnitudeImportance(p=2)
    else:
        if data_dir is None:
            raise ConfigError("importance 'taylor' needs --data (a folder of clean training images)")
        imp = tp.importance.GroupTaylorImportance()
    pruner = tp.pruner.MetaPruner(
        src,
        example,
        importance=imp,
        pruning_ratio=1.0 - target / before,
        ignored_layers=[out_layer],
        round_to=round_to,
    )
    if importance == "taylor":
        _taylor_gradients(src, Path(str(data_dir)), batches, seed, m)
    pruner.step()
    src.zero_grad(set_to_none=True)
    for r in relus:
        r.inplace = True
    widths = sorted({_width(layer) for layer in hidden})
    if widths != [target]:
        raise ConfigError(f"pruning left uneven widths {widths} (expected {target} everywhere); report this model")
    src.build_overrides = {**getattr(model, "build_overrides", {}), "features": target}  # type: ignore[assignment]
    return PruneResult(
        model=src.eval(),
        width_before=before,
        width_after=target,
        params_before=params_before,
        params_after=count_params(src),
        macs_before=macs_before,
        macs_after=count_macs_per_pixel(src, 8 * m * 4),
    )


def _taylor_gradients(model: nn.Module, data_dir: Path, batches: int, seed: int, multiple: int) -> None:
    """Accumulate the MSE gradients of ``batches`` noisy-patch batches (the Taylor criterion reads ``.grad``)."""
    from ..data.noise import make_noise
    from ..data.patches import PatchSampler, load_folder
    from ..runtime.imageio import list_images

    cfg = model_cfg(model)
    images = load_folder(str(data_dir), cfg.in_channels, list_images(str(data_dir)))
    side = min(50, *(min(im.shape[1:]) for im in images))  # 50x50 patches, or the smallest image side
    sampler = PatchSampler(images, side - side % multiple, seed=seed)
    noise = make_noise("awgn_blind", [0.0, 55.0])
    gen = torch.Generator().manual_seed(seed)
    model.zero_grad(set_to_none=True)
    for _ in range(batches):
        clean = sampler.batch(16)
        loss = nn.functional.mse_loss(model(noise(clean, gen)), clean)
        loss.backward()
