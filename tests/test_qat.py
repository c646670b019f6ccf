"""Quantization-aware fine-tuning (edgedenoise.compress.qat): the simulated INT8 forward against a numpy
re-implementation of the rounding, and that the model's float state is untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgedenoise.compress.qat import enable_fake_quant
from edgedenoise.models import create_model
from edgedenoise.runtime.errors import ConfigError


def _np_fake_quant_weight(w: np.ndarray) -> np.ndarray:
    """Per-output-channel symmetric int8 on [-127, 127]: scale = max|w| / 127 per channel."""
    scale = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0
    scale = scale.reshape(-1, 1, 1, 1).astype(np.float32)
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)


def _np_fake_quant_act(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per-tensor asymmetric uint8 over [min(lo, 0), max(hi, 0)] (zero exactly representable)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0)
    zp = np.clip(np.round(-lo / scale), 0, 255)
    return ((np.clip(np.round(x / scale) + zp, 0, 255) - zp) * scale).astype(np.float32)


def test_fake_quant_conv_matches_numpy_rounding() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    x = torch.rand(1, 1, 8, 8)
    h = enable_fake_quant(model, keep_float=("0",))
    assert h.names == ["2"]
    with torch.no_grad():
        y = model(x)  # the first call initialises the observers from this very batch
    a = torch.relu(model[0](x)).detach().numpy()  # conv 0 stays float
    w = model[2].weight.detach().numpy()
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(_np_fake_quant_act(a, float(a.min()), float(a.max()))),
        torch.from_numpy(_np_fake_quant_weight(w)),
        model[2].bias.detach(),
        padding=1,
    ).numpy()
    o_lo, o_hi = float(ref.min()), float(ref.max())
    ref = _np_fake_quant_act(ref, o_lo, o_hi)  # the last Conv's output (the noise estimate) is rounded too
    np.testing.assert_allclose(y.numpy(), ref, atol=2e-6)
    # it really is rounded: the float model differs by more than float error
    h.remove()
    with torch.no_grad():
        assert (model(x) - y).abs().max() > 1e-4


def test_state_dict_unchanged_and_remove_restores_the_float_model() -> None:
    torch.manual_seed(1)
    model = create_model("rednet8_slim32_u4", features=8).eval()
    keys = list(model.state_dict())
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        ref = model(x)
        h = enable_fake_quant(model)
        assert list(model.state_dict()) == keys  # nothing added to the checkpoint format
        assert h.names == [f"body.{i}" for i in range(6)] + ["tail"]  # head kept float by default
        assert not torch.equal(model(x), ref)
        h.observe(False)  # frozen ranges: same input, same output
        first = model(x)
        assert torch.equal(model(x), first)
        h.remove()
        assert torch.equal(model(x), ref)


def test_gradients_flow_through_the_rounding() -> None:
    torch.manual_seed(2)
    model = create_model("rednet8_slim32_u4", features=8)
    enable_fake_quant(model)
    loss = model(torch.rand(2, 1, 16, 16)).square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.body[0].weight.grad.abs().sum() > 0


def test_bad_keep_float_names_raise() -> None:
    model = create_model("rednet8_slim32_u4", features=8)
    with pytest.raises(ConfigError, match=r"\['nope'\] are not Conv2d layers"):
        enable_fake_quant(model, keep_float=("nope",))
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    with pytest.raises(ConfigError, match="every Conv2d is kept in float"):
        enable_fake_quant(model, keep_float=convs)
