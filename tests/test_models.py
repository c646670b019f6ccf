"""Registry-driven tests: every registered model, tiny widths, odd sizes, gradients, counts."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from edgedenoise.models import count_macs_per_pixel, count_params, create_model, list_models, model_cfg, resolve_name
from edgedenoise.models.opponent import RGB_ONLY
from edgedenoise.runtime.errors import UnknownModelError

EXPECTED = {"rednet10", "rednet20", "rednet30", "rednet30_s2", "memnet_m6r6", "memnet_m4r4"}


def _pad(x: torch.Tensor, m: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")


def _run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, with a random per-pixel σ map (value units, up to 75/255) for a conditioned model."""
    if model.cfg.noise_level_input:
        return model(x, torch.rand(x.shape[0], 1, *x.shape[2:]) * (75 / 255))
    return model(x)


def test_registry_has_the_model_zoo() -> None:
    assert set(list_models()) >= EXPECTED
    assert resolve_name("rednet") == "rednet30"
    assert resolve_name("memnet") == "memnet_m6r6"
    with pytest.raises(UnknownModelError, match="unknown model 'rednet31'.*rednet30"):
        create_model("rednet31")


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_shape_grad_finite(name: str, in_channels: int) -> None:
    torch.manual_seed(0)
    if in_channels == 1 and name in RGB_ONLY:
        with pytest.raises(ValueError, match="take 3 channels"):
            create_model(name, features=8, in_channels=1)
        return
    model = create_model(name, features=8, in_channels=in_channels)
    cfg = model.cfg
    assert cfg.in_channels == in_channels and cfg.arch == name
    x = torch.rand(1, in_channels, 37, 53)
    xp = _pad(x, cfg.size_multiple)
    model.train()
    y = _run(model, xp)
    assert y.shape == xp.shape
    assert y[..., :37, :53].shape == x.shape
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("name", list_models())
def test_residual_contract(name: str) -> None:
    """The model returns an image estimate: zeroing the last layer makes it the identity."""
    model = create_model(name, features=8).eval()
    if hasattr(model, "deconvs"):
        last = model.deconvs[-1]
    elif hasattr(model, "tail"):
        last = model.tail
    else:
        last = model.reconnet[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    if name in RGB_ONLY:
        # the opponent composites return their chrominance through 2x2 means, not the identity: tested below
        x = torch.rand(1, 3, 32, 32)
        expect = _written_out_composite(lambda p, s: p, x.double(), torch.zeros(1, 1, 32, 32, dtype=torch.float64))
        torch.testing.assert_close(_run(model, x).double(), expect, atol=1e-6, rtol=0)
        return
    x = torch.rand(1, model_cfg(model).in_channels, 32, 32)  # the _rgb variants default to 3 channels
    torch.testing.assert_close(_run(model, x), x)


def test_rednet30_counts_match_hand_computation() -> None:
    model = create_model("rednet30")
    f, c, k = 64, 1, 9
    conv_first = k * c * f + f
    hidden = k * f * f + f
    deconv_last = k * f * c + c
    assert count_params(model) == conv_first + 14 * hidden + 14 * hidden + deconv_last == 1_035_201
    macs = k * c * f + 28 * k * f * f + k * f * c
    assert count_macs_per_pixel(model, 32) == macs == 1_033_344


def test_rednet30_s2_quarter_macs() -> None:
    s1 = count_macs_per_pixel(create_model("rednet30"), 32)
    s2 = count_macs_per_pixel(create_model("rednet30_s2"), 32)
    assert s2 == pytest.approx(s1 / 4)
    assert create_model("rednet30_s2").cfg.size_multiple == 2


def test_memnet_m6r6_counts_match_hand_computation() -> None:
    model = create_model("memnet_m6r6")
    f, c, k, m_blocks, r = 64, 1, 9, 6, 6
    fenet = k * c * f + f
    recursive = 2 * (k * f * f + f) + r * 2 * (2 * f)  # shared convs + per-recursion BN (weight, bias)
    gates = sum(2 * (r + m) * f + (r + m) * f * f + f for m in range(1, m_blocks + 1))
    recon = 2 * f + k * f * c + c
    assert count_params(model) == fenet + m_blocks * recursive + gates + recon + m_blocks == 694_855
    macs = k * c * f + m_blocks * r * 2 * k * f * f + sum((r + m) * f * f for m in range(1, 7)) + m_blocks * k * f * c
    assert count_macs_per_pixel(model, 32) == macs == 2_891_712


def test_memnet_shares_recursion_weights() -> None:
    model = create_model("memnet_m4r4", features=8)
    block = model.blocks[0]
    assert len(block.bn1) == 4 and len({id(b) for b in block.bn1}) == 4
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3  # conv1, conv2 shared across 4 recursions, plus the 1x1 gate


def test_rednet_skip_connections_are_symmetric() -> None:
    m30 = create_model("rednet30")
    assert m30._skip_from == {k: 15 - k for k in range(1, 15) if (15 - k) % 2 == 0}
    assert create_model("rednet10")._skip_from == {}


def _written_out_composite(gray: Any, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The opponent composite in float64, written out plane by plane: the transform, each plane through
    ``gray(plane, sigma)`` (chrominance at half resolution: 2x2 means told σ/2 from the blocks' root mean square
    variance, back up by bilinear interpolation), then the inverse transform."""
    scale = 2
    t = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]], dtype=torch.float64)
    offset = torch.tensor([0, 0.5, 0.5], dtype=torch.float64)
    opp = torch.einsum("kc,nchw->nkhw", t, x) + offset.view(1, 3, 1, 1)
    planes = []
    for k in range(3):
        plane, sig = opp[:, k : k + 1], sigma * t[k].norm()
        if k and scale > 1:
            lo = torch.nn.functional.avg_pool2d(plane, scale)
            sig_lo = torch.nn.functional.avg_pool2d(sigma**2, scale).sqrt() * t[k].norm() / scale
            out = torch.nn.functional.interpolate(gray(lo, sig_lo), scale_factor=scale, mode="bilinear")
        else:
            out = gray(plane, sig)
        planes.append(out)
    return torch.einsum("ck,nkhw->nchw", torch.linalg.inv(t), torch.cat(planes, dim=1) - offset.view(1, 3, 1, 1))


@pytest.mark.parametrize(
    ("name", "gray"),
    [("rednet18_slim64_u2_nl_rgb", "rednet18_slim64_u2_nl"), ("unet3_f32_u4_nl_rgb", "unet3_f32_u4_nl")],
)
def test_opponent_composite_is_the_gray_model_on_opponent_planes(name: str, gray: str) -> None:
    """Same state dict as the gray model; output = the gray model on each opponent plane (told σ times the plane's
    row length), chrominance at half resolution, through the inverse transform, written out here."""
    torch.manual_seed(1)
    g = create_model(gray, features=8).eval()
    c = create_model(name, features=8).eval()
    assert c.cfg.in_channels == 3 and c.cfg.noise_level_input
    assert c.cfg.size_multiple == 2 * g.cfg.size_multiple
    assert c.state_dict().keys() == g.state_dict().keys()
    c.load_state_dict(g.state_dict())
    x = torch.rand(2, 3, 64, 96, dtype=torch.float64)
    sigma = torch.rand(2, 1, 64, 96, dtype=torch.float64) * 0.2
    with torch.no_grad():
        expect = _written_out_composite(g.double(), x, sigma)
        got = c.double()(x, sigma)
    torch.testing.assert_close(got, expect, atol=1e-6, rtol=0)  # the transform is kept in float32
    # MACs: the luminance plane at full size, each chrominance plane at a quarter of the pixels
    expect_macs = 1.5 * count_macs_per_pixel(g.float())
    assert count_macs_per_pixel(c.float()) == pytest.approx(expect_macs, rel=1e-6)
