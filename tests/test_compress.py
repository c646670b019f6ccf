"""Pruning (torch-pruning), distillation and warm starts; slim students' counts against hand formulas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_train_config
from runtime_helpers import run_cli
from torch import nn

from edgedenoise.compress import distill_config, prune_model
from edgedenoise.models import count_macs_per_pixel, count_params, create_model, load_weights, save_weights
from edgedenoise.runtime.errors import ConfigError
from edgedenoise.train import config_from_dict, train


def _tiny(images: Path, out: Path, **top: Any) -> dict[str, Any]:
    """:func:`conftest.tiny_train_config` cut to 4 steps at a constant learning rate of 1e-2, a checkpoint every 2."""
    short = {"optim": {"lr": 1e-2, "warmup_steps": 0, "schedule": "constant"}, "steps": 4, "ckpt_every": 2}
    return tiny_train_config(images, out, **(short | top))


# ---------------------------------------------------------------- slim students


@pytest.mark.parametrize(
    ("name", "depth", "f", "s"),
    [
        ("rednet12_slim64_u2", 12, 64, 2),
        ("rednet12_slim64_u4", 12, 64, 4),
        ("rednet10_slim32_u2", 10, 32, 2),
        ("rednet10_slim16", 10, 16, 1),
    ],
)
def test_slim_counts_match_hand_formula(name: str, depth: int, f: int, s: int) -> None:
    model = create_model(name)
    c = s * s  # gray input after space-to-depth
    assert count_macs_per_pixel(model) == pytest.approx(9 * (2 * c * f + (depth - 2) * f * f) / (s * s))
    assert count_params(model) == 9 * (2 * c * f + (depth - 2) * f * f) + (depth - 1) * f + c
    assert model.cfg.size_multiple == s


def test_slim_u2_is_under_fifteen_percent_of_red30() -> None:
    assert count_macs_per_pixel(create_model("rednet12_slim64_u2")) < 0.15 * count_macs_per_pixel(
        create_model("rednet30")
    )


def test_slim_skip_joins_mirrored_layers() -> None:
    """With body layers 2..8 zeroed, the only route from the input to the noise estimate is the skip from
    encoder layer 1 into decoder layer 8 (RED-Net's every-two-layers scheme; layer 9 stays alive)."""
    torch.manual_seed(0)
    model = create_model("rednet12_slim64_u2", features=8).eval()
    assert model._skip_from == {8: 1, 6: 3}
    with torch.no_grad():
        for i, conv in enumerate(model.body):
            if 2 <= i <= 8:
                conv.weight.zero_()
                conv.bias.zero_()
    x1, x2 = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        noise_skip = [x - model(x) for x in (x1, x2)]
        model._skip_from = {}
        noise_plain = [x - model(x) for x in (x1, x2)]
    torch.testing.assert_close(noise_plain[0], noise_plain[1])  # cut path: the estimate ignores the input
    assert (noise_skip[0] - noise_skip[1]).abs().max() > 1e-4


# ---------------------------------------------------------------- pruning


def _dead_half_rednet(name: str, features: int) -> nn.Module:
    """A RED-Net whose hidden channels features/2.. are dead (zero weights in and out, zero bias)."""
    torch.manual_seed(1)
    model = create_model(name, features=features).eval()
    half = features // 2
    with torch.no_grad():
        layers = [*model.convs, *list(model.deconvs)]
        for i, layer in enumerate(layers):
            w = layer.weight
            out_dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
            in_dim = 1 - out_dim
            if i < len(layers) - 1:  # not the image output
                w.narrow(out_dim, half, features - half).zero_()
                layer.bias[half:].zero_()
            if i > 0:  # not the image input
                w.narrow(in_dim, half, features - half).zero_()
    return model


@pytest.mark.parametrize("name", ["rednet10", "rednet20"])
def test_magnitude_pruning_removes_the_dead_channels_exactly(name: str) -> None:
    """Oracle: channels with zero weights contribute nothing, so pruning them must not change the output."""
    model = _dead_half_rednet(name, 16)
    res = prune_model(model, 0.5, round_to=8)
    assert res.width_before == 16 and res.width_after == 8
    x = torch.rand(2, 1, 21, 19)
    with torch.no_grad():
        torch.testing.assert_close(res.model(x), model(x), rtol=0, atol=1e-6)
    # the original is untouched and keeps in-place ReLUs
    assert model.convs[0].out_channels == 16 and model.relu.inplace and res.model.relu.inplace


def test_pruned_red30_loads_into_the_registered_variant(tmp_path: Path) -> None:
    model = create_model("rednet30", features=32)
    res = prune_model(model, 0.5)
    assert res.width_after == 16
    assert {layer.out_channels for layer in [*res.model.convs, *list(res.model.deconvs)[:-1]]} == {16}
    assert res.params_after == count_params(create_model("rednet30", features=16))
    assert res.macs_after == pytest.approx(res.macs_before / 4, rel=0.01)
    path = save_weights(res.model, tmp_path / "p.safetensors")
    again = load_weights(path)
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(again(x), res.model(x))


def test_slim_students_prune_too() -> None:
    model = create_model("rednet12_slim64_u2", features=32).eval()
    res = prune_model(model, 0.5)
    assert res.width_after == 16
    assert {c.out_channels for c in [model.head, *model.body]} == {32}  # source untouched
    assert {c.out_channels for c in [res.model.head, *res.model.body]} == {16}
    assert res.model(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)


@pytest.mark.parametrize(
    ("ratio", "match"), [(0.0, "between 0 and 1"), (1.0, "between 0 and 1"), (0.97, "leaves 0 of 64")]
)
def test_bad_ratios_are_one_line_errors(ratio: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        prune_model(create_model("rednet10"), ratio)


def test_memnet_and_taylor_without_data_are_refused() -> None:
    with pytest.raises(ConfigError, match="MemNet"):
        prune_model(create_model("memnet_m4r4", features=8), 0.5)
    with pytest.raises(ConfigError, match="needs --data"):
        prune_model(create_model("rednet10", features=16), 0.5, importance="taylor")


def test_taylor_pruning_runs_on_data(images: Path) -> None:
    res = prune_model(create_model("rednet10", features=16), 0.5, importance="taylor", data_dir=images, batches=1)
    assert res.width_after == 8
    assert all(p.grad is None for p in res.model.parameters())


# ---------------------------------------------------------------- warm start and distillation


def test_distillation_towards_an_identical_teacher_leaves_the_student_unchanged(images: Path, tmp_path: Path) -> None:
    """With α = 1 and the student starting as the teacher, every gradient is zero: Adam must not move it.
    With α = 0 (clean targets) the same start does move: the teacher really shapes the target."""
    torch.manual_seed(0)
    teacher = create_model("rednet10", features=4)
    tpath = save_weights(teacher, tmp_path / "teacher.safetensors")
    runs = {}
    for alpha in (1.0, 0.0):
        cfg = config_from_dict(
            _tiny(
                images,
                tmp_path / f"run{alpha}",
                init_weights=str(tpath),
                distill={"teacher": str(tpath), "weight": alpha},
                channels_last=False,
            )
        )
        train(cfg, progress=False)
        runs[alpha] = load_weights(tmp_path / f"run{alpha}" / "best.safetensors").state_dict()
    ref = teacher.state_dict()
    for k, v in ref.items():
        torch.testing.assert_close(runs[1.0][k], v, rtol=0, atol=0)
    assert any(not torch.equal(runs[0.0][k], v) for k, v in ref.items())


def test_distill_and_init_errors(images: Path, tmp_path: Path) -> None:
    rgb = save_weights(create_model("rednet10", features=4, in_channels=3), tmp_path / "rgb.safetensors")
    other = save_weights(create_model("rednet10", features=8), tmp_path / "f8.safetensors")
    with pytest.raises(ConfigError, match="takes 3 channels"):
        train(config_from_dict(_tiny(images, tmp_path / "a", distill={"teacher": str(rgb)})), progress=False)
    with pytest.raises(ConfigError, match=r"distill.weight=1.5"):
        train(
            config_from_dict(_tiny(images, tmp_path / "b", distill={"teacher": str(other), "weight": 1.5})),
            progress=False,
        )
    with pytest.raises(ConfigError, match="init_weights .*f8.safetensors.* does not fit"):
        train(config_from_dict(_tiny(images, tmp_path / "c", init_weights=str(other))), progress=False)


def test_distill_config_replaces_model_and_teacher(tmp_path: Path) -> None:
    cfg = distill_config("rednet30", "rednet12_slim64_u4", weight=0.3, out_dir=str(tmp_path), steps=None)
    assert (cfg.model, cfg.distill.teacher, cfg.distill.weight, cfg.out_dir) == (
        "rednet12_slim64_u4",
        "rednet30",
        0.3,
        str(tmp_path),
    )


# ---------------------------------------------------------------- CLI


def test_prune_and_distill_cli(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_weights(create_model("rednet10", features=16), tmp_path / "src.safetensors")
    out = tmp_path / "pruned" / "p.safetensors"
    code, stdout, _ = run_cli(["prune", str(src), "--ratio", "0.5", "-o", str(out)], capsys)
    assert code == 0 and "16 -> 8 channels" in stdout
    assert load_weights(out).convs[0].out_channels == 8
    code, _, err = run_cli(["prune", str(src), "--ratio", "0.5", "-o", str(src)], capsys)
    assert code == 1 and "is the input model" in err and len(err.strip().splitlines()) == 1
    cfg_file = tmp_path / "d.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(_tiny(images, tmp_path / "drun", steps=2, model_overrides={"features": 8})))
    code, stdout, err = run_cli(
        ["distill", str(src), "rednet10", "--config", str(cfg_file), "--init", str(out), "--no-progress"], capsys
    )
    assert code == 0, err
    assert load_weights(tmp_path / "drun" / "best.safetensors").convs[0].out_channels == 8
