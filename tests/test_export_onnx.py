"""torch -> ONNX export and the ConvTranspose -> Conv re-parameterisation, checked against torch itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgedenoise.export.errors import ExportError
from edgedenoise.export.onnx_export import describe_graph, export_onnx, read_metadata, run_onnx, verify_onnx
from edgedenoise.export.reparam import SubPixelConv, conv_from_transposed, conv_from_unshuffle, reparameterize
from edgedenoise.models import create_model, list_models
from edgedenoise.runtime.contract import (
    CFG_METADATA_KEY,
    PRECISION_KEY,
    VERSION_KEY,
    WEIGHTS_SHA_KEY,
    ModelCfg,
)
from edgedenoise.runtime.errors import InvalidInputError

# (kernel, stride, padding, output_padding): every form the rewrite claims to handle exactly.
SUPPORTED = [
    (3, 1, 1, 0),
    (3, 1, 0, 0),
    (5, 1, 2, 0),
    (5, 1, 1, 0),
    (1, 1, 0, 0),
    (3, 2, 1, 1),
    (4, 2, 1, 0),
    (2, 2, 0, 0),
    (5, 3, 1, 0),
    (6, 3, 2, 1),
]


@pytest.mark.parametrize("k,s,p,op", SUPPORTED)
def test_conv_from_transposed_is_exact(k: int, s: int, p: int, op: int) -> None:
    torch.manual_seed(k * 100 + s * 10 + p)
    deconv = nn.ConvTranspose2d(3, 5, k, stride=s, padding=p, output_padding=op).eval()
    conv = conv_from_transposed(deconv)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in conv.modules())
    assert isinstance(conv, nn.Conv2d if s == 1 else SubPixelConv)
    x = torch.randn(2, 3, 7, 10)
    with torch.no_grad():
        ref, got = deconv(x), conv(x)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-5, rtol=0), (got - ref).abs().max()


def test_stride2_k3_is_pad_2x2conv_4c_depth_to_space() -> None:
    deconv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    sub = conv_from_transposed(deconv)
    assert isinstance(sub, SubPixelConv)
    pad, conv, shuffle = sub
    assert isinstance(pad, nn.ZeroPad2d) and tuple(pad.padding) == (0, 1, 0, 1)
    assert isinstance(conv, nn.Conv2d) and tuple(conv.kernel_size) == (2, 2) and conv.out_channels == 8
    assert isinstance(shuffle, nn.PixelShuffle) and shuffle.upscale_factor == 2
    # Hand-derived taps: output (2m, 2n) of channel c = x[m, n] * W[:, c, 1, 1] (channel 4c + 0, tap (0, 0)).
    assert torch.equal(conv.weight[0::4, :, 0, 0], deconv.weight[:, :, 1, 1].T)
    assert torch.count_nonzero(conv.weight[0::4, :, 1, :]) == 0


@pytest.mark.parametrize(
    "layer,why",
    [
        (nn.ConvTranspose2d(4, 4, 3, padding=1, groups=2), "groups"),
        (nn.ConvTranspose2d(4, 4, 3, padding=1, dilation=2), "dilation"),
        (nn.ConvTranspose2d(4, 4, 3, stride=(2, 1), padding=1, output_padding=(1, 0)), "stride"),
        (nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1), "output is not exactly"),
    ],
)
def test_unsupported_transposed_conv_raises(layer: nn.ConvTranspose2d, why: str) -> None:
    with pytest.raises(ExportError, match=why) as info:
        conv_from_transposed(layer, "deconvs.3")
    assert "deconvs.3" in str(info.value) and "reparam=False" in str(info.value)


def test_reparameterize_copies_and_keeps_cfg() -> None:
    model = create_model("rednet10", features=8)
    model.train()
    new, names = reparameterize(model)
    assert names == [f"deconvs.{i}" for i in range(5)]
    assert isinstance(model.deconvs[0], nn.ConvTranspose2d)  # the input is untouched
    assert model.training and not new.training
    assert new.cfg == model.cfg


@pytest.mark.parametrize("c,s,k,p", [(1, 2, 3, 1), (1, 4, 3, 1), (3, 2, 3, 1), (3, 4, 5, 2), (2, 3, 3, 0)])
def test_conv_from_unshuffle_is_exact(c: int, s: int, k: int, p: int) -> None:
    """Folded strided Conv == PixelUnshuffle then Conv, in float64 (exact up to summation order)."""
    torch.manual_seed(c * 100 + s * 10 + k)
    un = nn.PixelUnshuffle(s)
    conv = nn.Conv2d(c * s * s, 6, k, padding=p).double()
    fused = conv_from_unshuffle(un, conv, "head")
    assert tuple(fused.stride) == (s, s) and tuple(fused.kernel_size) == (s * k, s * k)
    x = torch.randn(2, c, 5 * s, 7 * s, dtype=torch.float64)
    with torch.no_grad():
        ref, got = conv(un(x)), fused(x)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-12, rtol=0), (got - ref).abs().max()


@pytest.mark.parametrize(
    "conv,why",
    [
        (nn.Conv2d(4, 4, 3, padding=1, stride=2), "stride"),
        (nn.Conv2d(4, 4, 3, padding=1, groups=2), "groups"),
        (nn.Conv2d(4, 4, 3, padding="same"), "padding"),
        (nn.Conv2d(6, 4, 3, padding=1), "multiple of 4"),
    ],
)
def test_unsupported_unshuffle_fold_raises(conv: nn.Conv2d, why: str) -> None:
    with pytest.raises(ExportError, match=why) as info:
        conv_from_unshuffle(nn.PixelUnshuffle(2), conv, "head")
    assert "head" in str(info.value)


def test_reparameterize_folds_the_unshuffle_of_slim_models() -> None:
    torch.manual_seed(3)
    model = create_model("rednet8_slim32_u4", in_channels=3, features=8).eval()
    new, names = reparameterize(model)
    assert names == ["unshuffle", "head"]
    assert isinstance(new.unshuffle, nn.Identity) and tuple(new.head.kernel_size) == (12, 12)
    assert isinstance(model.unshuffle, nn.PixelUnshuffle)  # the input is untouched
    x = torch.rand(1, 3, 16, 24, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(new.double()(x), model.double()(x), atol=1e-12, rtol=0)


def _size(m: int) -> tuple[int, int]:
    # odd sizes where the model allows them (size_multiple 1), and H != W
    return {1: (17, 23), 2: (18, 26), 4: (20, 28), 16: (48, 64), 32: (96, 128)}[m]


@pytest.fixture(scope="module", params=list_models())
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    model = create_model(request.param, features=8).eval()
    # Non-trivial BatchNorm statistics so that exporting them in eval mode is really checked.
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx", weights_sha256="ab" * 32)
    return model, path


def test_export_matches_torch_for_every_model(exported: tuple[nn.Module, Path]) -> None:
    model, path = exported
    h, w = _size(model.cfg.size_multiple)
    x = np.random.default_rng(1).random((2, model.cfg.in_channels, h, w), dtype=np.float32)
    rep = verify_onnx(path, model, [x, x[:1, :, : h - 2 * model.cfg.size_multiple]])
    assert rep.n_images == 3
    assert rep.max_abs_err < 1e-5, rep
    assert rep.psnr_db > 90.0, rep


def _conv_calls(model: nn.Module) -> int:
    """How many (transposed) convolutions one forward pass runs (MemNet re-uses its convs R times)."""
    calls = []
    hooks = [
        m.register_forward_hook(lambda *_: calls.append(1))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    side = max(8, model.cfg.size_multiple)
    x = torch.zeros(1, model.cfg.in_channels, side, side)
    with torch.no_grad():
        model(x, torch.zeros_like(x[:, :1])) if model.cfg.noise_level_input else model(x)
    for hk in hooks:
        hk.remove()
    return len(calls)


def test_export_graph_has_no_transposed_conv_or_pad(exported: tuple[nn.Module, Path]) -> None:
    model, path = exported
    info = describe_graph(path)
    assert info["opset"] == 18
    assert "ConvTranspose" not in info["ops"] and "Pad" not in info["ops"], info
    assert info["ops"]["Conv"] == _conv_calls(model)
    if model.cfg.size_multiple == 2:
        assert info["ops"]["DepthToSpace"] == 1
    if model.cfg.noise_level_input:  # the σ map is the second input, (N, 1, H, W) with N, H, W dynamic
        assert info["inputs"] == ["noisy", "sigma"]
    if getattr(model, "fold_unshuffle", None) and model.cfg.size_multiple > 1:
        # the unshuffle is folded into the first Conv: no 6-D Transpose left at full resolution
        assert "Transpose" not in info["ops"], info


def test_export_metadata(exported: tuple[nn.Module, Path]) -> None:
    model, path = exported
    meta = read_metadata(path)
    assert ModelCfg.from_json(meta[CFG_METADATA_KEY]) == model.cfg
    assert meta[PRECISION_KEY] == "fp32"
    assert meta[WEIGHTS_SHA_KEY] == "ab" * 32
    import edgedenoise

    assert meta[VERSION_KEY] == edgedenoise.__version__


def test_export_carries_no_path_of_the_exporting_machine(exported: tuple[nn.Module, Path]) -> None:
    """The exporter's per-node stack traces (absolute paths of the checkout and of torch) are dropped; the
    module scopes that INT8 export reads stay."""
    import onnx

    import edgedenoise

    _, path = exported
    data = path.read_bytes()
    for where in (Path(edgedenoise.__file__).resolve().parent.parent, Path(torch.__file__).resolve().parent):
        assert str(where).encode() not in data, where
    keys = {p.key for n in onnx.load(str(path)).graph.node for p in n.metadata_props}
    assert "pkg.torch.onnx.stack_trace" not in keys and "pkg.torch.onnx.name_scopes" in keys, keys


def test_export_without_reparam_keeps_transposed_conv(tmp_path: Path) -> None:
    model = create_model("rednet10_s2", features=8).eval()
    path = export_onnx(model, tmp_path / "m.onnx", reparam=False, extra_metadata={"note": json.dumps([1])})
    assert describe_graph(path)["ops"]["ConvTranspose"] == 5
    assert read_metadata(path)["note"] == "[1]"
    x = np.random.default_rng(2).random((1, 1, 10, 14), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(run_onnx(path, x) - ref).max() < 1e-5


def test_export_rejects_bad_arguments(tmp_path: Path) -> None:
    model = create_model("rednet10", features=8)
    with pytest.raises(InvalidInputError, match="opset 13"):
        export_onnx(model, tmp_path / "a.onnx", opset=13)
    with pytest.raises(InvalidInputError, match=PRECISION_KEY):
        export_onnx(model, tmp_path / "a.onnx", extra_metadata={PRECISION_KEY: "int8"})
    assert not list(tmp_path.iterdir())
