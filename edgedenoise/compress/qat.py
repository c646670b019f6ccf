"""Quantization-aware fine-tuning (QAT): train the float weights under simulated INT8 rounding.

Method: fake quantization with straight-through gradients (Jacob et al., "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018, Sec. 3): in the forward pass every
quantized convolution sees its weights rounded to int8 (per output channel, symmetric) and its input activations
rounded to uint8 (per tensor, asymmetric, range from a moving average of the batch min/max), the placement the
``cpu`` INT8 flavour of :mod:`edgedenoise.export.quantize` gives ONNX Runtime (U8S8, Q/DQ on the inputs of every
Conv; the last Conv's output, the noise estimate, is rounded too). The backward pass treats the rounding as the
identity, so the float weights move to where their rounded copies denoise well.

The fake quantizers are torch's own (``torch.ao.quantization.FakeQuantize`` with the min/max observers). They
are kept outside the module tree: the model's ``state_dict`` keeps its usual keys, :func:`save_weights` writes
float weights as always, and export calibrates its own ranges (percentile) and re-measures the drop. The
simulation is therefore approximate (min/max here, percentile there) and the export gate is what vouches for
the INT8 artifact.

Why: post-training quantization of the smallest students loses 0.2-0.3 dB (``rednet8_slim32_u4``, docs/export.md)
and keeping layers in float costs speed (ONNX Runtime quantizes a float Conv between Q/DQ pairs itself, slowly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..runtime.errors import ConfigError


@dataclass
class FakeQuantHandle:
    """What :func:`enable_fake_quant` installed; ``remove()`` restores the plain float model."""

    handles: list[Any] = field(default_factory=list)  # RemovableHandle or _Restore: both have remove()
    quantizers: dict[str, Any] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def observe(self, on: bool) -> None:
        """Let the range observers follow the data (training) or freeze them (validation)."""
        for q in self.quantizers.values():
            for fq in q if isinstance(q, tuple) else (q,):
                if on:
                    fq.enable_observer()
                else:
                    fq.disable_observer()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _act_fq() -> Any:
    from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

    return FakeQuantize(
        observer=MovingAverageMinMaxObserver,
        quant_min=0,
        quant_max=255,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
        averaging_constant=0.01,
    )


def _weight_fq() -> Any:
    from torch.ao.quantization import FakeQuantize, PerChannelMinMaxObserver

    return FakeQuantize(
        observer=PerChannelMinMaxObserver,
        quant_min=-127,
        quant_max=127,
        dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
    )


def enable_fake_quant(model: nn.Module, keep_float: Sequence[str] | None = None) -> FakeQuantHandle:
    """Make every ``nn.Conv2d`` of ``model`` compute with fake-quantized weights and input (module docstring).

    Args:
        model: a model from :func:`edgedenoise.models.create_model`; changed in place (forward hooks only, no new
            parameters or state-dict keys).
        keep_float: dotted names of Convs left in float; ``None`` (default): the first Conv2d (``head`` of a
            slim student, ``convs.0`` of RED-Net), which the export keeps in float unless
            ``--quantize-first-conv``. The input of the Conv that follows a float one is still rounded, as it is
            in the exported graph. ``ConvTranspose2d`` layers (RED-Net's decoder, Convs after export) are not
            simulated.

    Returns:
        A :class:`FakeQuantHandle`; ``handle.remove()`` undoes it. Quantizer ranges follow the module's device
        at call time; move the model first. The model still maps ``(N, C, H, W)`` float32 to the same shape and
        dtype; only the values carry the simulated rounding (int8 weight steps of ``max|w| / 127`` per output
        channel, uint8 activation steps of ``(max - min) / 255`` per tensor).

    Raises:
        ConfigError: a name in ``keep_float`` is not a Conv2d of the model, or the model has no Conv2d left to
            quantize.
    """
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if keep_float is None:
        keep_float = list(convs)[:1]
    unknown = sorted(set(keep_float) - set(convs))
    if unknown:
        raise ConfigError(f"qat keep_float names {unknown} are not Conv2d layers of the model; valid: {sorted(convs)}")
    quantized = [n for n in convs if n not in keep_float]
    if not quantized:
        raise ConfigError("qat: every Conv2d is kept in float; nothing to fine-tune for INT8")
    device = next(model.parameters()).device
    out = FakeQuantHandle(names=quantized)
    last = list(convs)[-1]
    for name in quantized:
        conv = convs[name]
        w_fq, a_fq = _weight_fq().to(device), _act_fq().to(device)
        out.quantizers[name] = (w_fq, a_fq)

        def conv_forward(mod: nn.Conv2d, x: torch.Tensor, w_fq: Any = w_fq, a_fq: Any = a_fq) -> torch.Tensor:
            return mod._conv_forward(a_fq(x), w_fq(mod.weight), mod.bias)

        # an instance attribute shadows the class's forward; the state dict does not see it
        conv.forward = conv_forward.__get__(conv)  # type: ignore[method-assign]
        out.handles.append(_Restore(conv))
        if name == last:  # the noise estimate (the last Conv's output) is rounded before the residual
            o_fq = _act_fq().to(device)
            out.quantizers[name + ".output"] = o_fq
            out.handles.append(conv.register_forward_hook(lambda _m, _a, y, o_fq=o_fq: o_fq(y)))
    return out


class _Restore:
    """Undoes the instance-level ``forward`` override of one Conv (quacks like a ``RemovableHandle``)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv

    def remove(self) -> None:
        self.conv.__dict__.pop("forward", None)
