"""Noise-level-conditioned models end to end: noise recipe, σ estimation, the two-input contract through export,
calibration, evaluation, the TensorRT profile and the runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgedenoise.data.noise import BlindAWGN, clip_round8, make_noise, noise_label
from edgedenoise.evaluate import evaluate
from edgedenoise.export.calibration import calibration_feeds, calibration_sigmas
from edgedenoise.export.onnx_export import describe_graph, export_onnx, verify_onnx
from edgedenoise.export.quantize import sigma_path_nodes
from edgedenoise.export.tensorrt_build import make_profile, profile_inputs
from edgedenoise.models import create_model
from edgedenoise.models.slim import add_noise_level_input
from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.contract import ModelCfg
from edgedenoise.runtime.errors import InvalidInputError
from edgedenoise.runtime.noise_level import estimate_sigma, sigma_map_from

SAMPLE = Path(__file__).resolve().parent.parent / "edgedenoise" / "samples" / "cbsd432_103006_gray.png"


def _sample() -> np.ndarray:
    return np.asarray(Image.open(SAMPLE).convert("L"), np.float32) / 255.0


# ------------------------------------------------------------------------------------------ noise recipe


def test_blind_awgn_sample_gives_the_sigma_it_drew() -> None:
    clean = torch.rand(64, 1, 48, 48) * 0.6 + 0.2  # away from the ends: clipping changes nothing
    noisy, smap = BlindAWGN(0, 75, zero_share=0.25).sample(clean, torch.Generator().manual_seed(0))
    assert smap.shape == (64, 1, 48, 48) and noisy.shape == clean.shape
    assert torch.all(smap == smap[:, :, :1, :1])  # uniform per image
    measured = (noisy - clean).flatten(1).std(dim=1)
    told = smap[:, 0, 0, 0]
    clean_ones = told == 0
    assert 8 <= int(clean_ones.sum()) <= 24  # a quarter of 64 stays clean, give or take
    assert torch.equal(noisy[clean_ones], clean[clean_ones])
    np.testing.assert_allclose(measured[~clean_ones].numpy(), told[~clean_ones].numpy(), rtol=0.06)


def test_clip8_share_makes_8_bit_files() -> None:
    clean = torch.rand(200, 1, 8, 8)
    noisy, _ = BlindAWGN(30, 30, clip8_share=0.5).sample(clean, torch.Generator().manual_seed(1))
    as_file = torch.all(noisy == clip_round8(noisy).clone(), dim=(1, 2, 3))
    assert 70 <= int(as_file.sum()) <= 130
    assert float(noisy[as_file].min()) >= 0 and float(noisy[as_file].max()) <= 1
    assert float(noisy[~as_file].min()) < 0  # the others keep unclipped float noise
    assert noise_label(make_noise("awgn_blind", [0, 75], clip8_share=0.5)) == "awgn:0-75,clip8=0.5"
    with pytest.raises(ValueError, match="clip8_share"):
        make_noise("awgn_blind", [0, 75], clip8_share=1.5)


# ------------------------------------------------------------------------------------------ σ estimation


@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0, 50.0])
def test_estimate_sigma_against_scikit_image(sigma: float) -> None:
    """On a smooth image both read the same wavelet (db2) the same way; on a detailed photograph scikit-image's
    plain median reads texture as noise, and the flat-block selection here lands closer to the true σ."""
    from skimage.restoration import estimate_sigma as sk_estimate

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    smooth = 0.3 + 0.4 * (xx / 640) * (yy / 480)
    noisy = smooth + rng.normal(0, sigma / 255, smooth.shape).astype(np.float32)
    assert estimate_sigma(noisy) == pytest.approx(float(sk_estimate(noisy.astype(np.float64))) * 255, rel=0.03)
    photo = _sample()
    noisy = photo + rng.normal(0, sigma / 255, photo.shape).astype(np.float32)
    ours, oracle = estimate_sigma(noisy), float(sk_estimate(noisy.astype(np.float64))) * 255
    assert ours == pytest.approx(sigma, rel=0.1)
    if sigma <= 25:  # where texture is a large part of HH
        assert abs(ours - sigma) <= abs(oracle - sigma) + 0.1


def test_estimate_sigma_on_clipped_8_bit_files_and_clean_images() -> None:
    clean = _sample()
    for sigma in (15.0, 25.0):
        noisy = clean + np.random.default_rng(4).normal(0, sigma / 255, clean.shape).astype(np.float32)
        file8 = np.clip(np.rint(noisy * 255), 0, 255) / 255
        assert estimate_sigma(file8) == pytest.approx(sigma, rel=0.1)
    assert estimate_sigma(clean) < 2.0  # a clean 8-bit photo: little beyond its texture and rounding
    assert estimate_sigma(np.full((16, 16), 0.5, np.float32)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InvalidInputError, match="at least 4x4"):
        estimate_sigma(np.zeros((3, 9), np.float32))


def test_sigma_map_from() -> None:
    np.testing.assert_allclose(sigma_map_from(25.5, (2, 3)), np.full((2, 3), 0.1, np.float32))
    ramp = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(sigma_map_from(ramp, (2, 3), (0.0, 2.0)), ramp * 2 / 255)
    for bad, msg in ((-1.0, ">= 0"), (np.zeros((3, 2)), "shape"), (np.full((2, 3), np.nan), "finite")):
        with pytest.raises(InvalidInputError, match=msg):
            sigma_map_from(bad, (2, 3))


# ------------------------------------------------------------------------------------------ models and export


def test_blind_to_conditioned_warm_start_is_exact() -> None:
    torch.manual_seed(0)
    blind = create_model("rednet12_slim64_u2", features=8).eval()
    cond = add_noise_level_input(blind, "rednet12_slim64_u2_nl").eval()
    assert cond.cfg.noise_level_input and not blind.cfg.noise_level_input
    x = torch.rand(2, 1, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(cond(x, torch.rand(2, 1, 20, 28)), blind(x))
    with pytest.raises(ValueError, match="already takes"):
        add_noise_level_input(cond, "again")


@pytest.mark.parametrize("name", ["unet3_f32_u4_nl", "rednet18_slim64_u2_nl"])
def test_conditioned_model_uses_sigma_and_exports_two_inputs(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, features=8).eval()
    m = model.cfg.size_multiple
    x = torch.rand(1, 1, 2 * m, 3 * m)
    with torch.no_grad():
        lo, hi = model(x, torch.zeros_like(x)), model(x, torch.full_like(x, 0.2))
    assert not torch.allclose(lo, hi)  # the σ map changes the output
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    assert describe_graph(path)["inputs"] == ["noisy", "sigma"]
    rep = verify_onnx(path, model, [x.numpy(), np.random.default_rng(0).random((2, 1, 4 * m, m), np.float32)])
    assert rep.max_abs_err < 1e-5, rep
    assert len(sigma_path_nodes(path)) >= 1  # the σ path stays float in INT8


def test_calibration_feeds_and_sigmas() -> None:
    cfg = ModelCfg("x", size_multiple=4, noise="awgn:0-75,clip8=0.5", noise_level_input=True)
    assert calibration_sigmas(cfg) == (20.0, 40.0, 60.0)  # conditioned: inside the range (calibration_sigmas)
    assert calibration_sigmas(cfg.replace(noise_level_input=False)) == (5.0, 40.0, 75.0)  # blind: its ends
    images = [np.full((1, 8, 12), 0.5, np.float32)] * 4
    feeds = calibration_feeds(images, (5.0, 75.0), cfg, seed=3)
    assert [sorted(f) for f in feeds] == [["noisy", "sigma"]] * 4
    assert feeds[1]["sigma"].shape == (1, 1, 8, 12) and float(feeds[1]["sigma"].max()) == pytest.approx(75 / 255)
    assert float(feeds[2]["sigma"].max()) == pytest.approx(5 / 255)
    blind = calibration_feeds(images, (25.0,), cfg.replace(noise_level_input=False))
    assert [sorted(f) for f in blind] == [["noisy"]] * 4


def test_tensorrt_profile_covers_the_sigma_input() -> None:
    cfg = ModelCfg("x", size_multiple=16, noise_level_input=True)
    profile = make_profile(cfg, (16, 16), (256, 256), (1088, 1920), 2)
    rows = profile_inputs(cfg, profile)
    assert [r[0] for r in rows] == ["noisy", "sigma"]
    assert rows[1][1:] == ((1, 1, 16, 16), (2, 1, 256, 256), (2, 1, 1088, 1920))
    assert [r[0] for r in profile_inputs(cfg.replace(noise_level_input=False), profile)] == ["noisy"]


# ------------------------------------------------------------------------------------------ evaluate and runtime


def test_evaluate_tells_a_conditioned_model_its_sigma(tmp_path: Path) -> None:
    """A model that only scales its residual by σ: told σ = 0 it returns the noisy image, so its PSNR equals the
    noisy PSNR; told the true σ it does something else. --clip8 feeds 8-bit files."""
    torch.manual_seed(0)
    model = create_model("rednet18_slim64_u2_nl", features=8).eval()
    data = tmp_path / "set"
    data.mkdir()
    Image.open(SAMPLE).crop((0, 0, 64, 48)).save(data / "a.png")
    zero = evaluate(model, data, [25], model_sigma=0)
    true = evaluate(model, data, [25])
    clip = evaluate(model, data, [25], clip8=True, model_sigma="auto")
    assert true.at(25).psnr != zero.at(25).psnr
    assert clip.clip8 and clip.model_sigma == "auto" and "8 bits" in clip.format_table()
    with pytest.raises(InvalidInputError, match="model_sigma"):
        evaluate(model, data, [25], model_sigma="loud")


def test_denoiser_runs_an_exported_conditioned_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("unet3_f32_u4_nl", features=8).eval()
    path = export_onnx(model, tmp_path / "u.onnx")
    img = (_sample()[:50, :70] * 255).round().astype(np.uint8)  # not a multiple of 16: padded and cropped back
    img = np.tile(img, (4, 4))  # 200x280: tiled in 176-pixel tiles (the receptive field is 160)
    with Denoiser(path, sigma=25.0, tile=176, blend=0) as dn:
        tiled = dn(img)
        assert dn.resolve_sigma(img) == 25.0
    with Denoiser(path, tile=0) as dn:
        whole = dn(img, sigma=25.0)
        auto = dn.resolve_sigma(img)
        assert isinstance(auto, float) and auto == pytest.approx(estimate_sigma(img / 255.0), abs=1e-4)
    assert tiled.shape == img.shape and tiled.dtype == np.uint8
    # the torch model on the padded image, cropped: what the runtime must return (tiling included)
    x = torch.from_numpy(np.pad(img / 255.0, ((0, 8), (0, 8)), mode="reflect").astype(np.float32))[None, None]
    with torch.no_grad():
        ref = model(x, torch.full_like(x, 25 / 255))[0, 0, :200, :280].clamp(0, 1).numpy()
    assert np.abs(whole.astype(np.float64) - ref * 255).max() <= 1.0
    assert np.abs(tiled.astype(np.float64) - ref * 255).max() <= 1.0  # tiles overlap by the receptive field
