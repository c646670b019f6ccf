"""edgedenoise.evaluate and `edgedenoise eval`: against a hand-written loop with scikit-image, the x8 ensemble,
every way to name a model (name, .safetensors, .pt, .onnx), the seed scheme, and the errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import checkpoint_dict, shared_set
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from edgedenoise.cli import cli, main
from edgedenoise.data import augment
from edgedenoise.errors import ArtifactError, InvalidInputError, UnknownModelError
from edgedenoise.evaluate import (
    LUMA_WEIGHTS,
    TorchPredictor,
    denoise_array,
    dihedral,
    dihedral_inverse,
    evaluate,
    load_clean,
)
from edgedenoise.models import create_model, load_weights, model_card, save_weights, shipped_models
from edgedenoise.runtime.contract import ModelCfg
from edgedenoise.train import config_from_dict, train


@pytest.fixture
def gray_dir(tmp_path: Path) -> Path:
    """Three 8-bit gray PNGs of odd sizes (smooth pattern + texture), names out of creation order."""
    folder = tmp_path / "gray"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for name, (h, w) in (("b.png", (27, 33)), ("a.png", (31, 25)), ("c.png", (24, 24))):
        yy, xx = np.mgrid[0:h, 0:w]
        im = 120 + 80 * np.sin(xx / 4.0 + yy / 6.0) + rng.normal(0, 10, (h, w))
        Image.fromarray(np.clip(np.rint(im), 0, 255).astype(np.uint8)).save(folder / name)
    return folder


@pytest.fixture
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return create_model("rednet10_s2", features=8).eval()


def _hand_eval(model: nn.Module, folder: Path, sigma: float, seed: int) -> list[tuple[str, float, float]]:
    """The protocol written out independently: PIL, numpy's generator, reflect pad, skimage metrics."""
    rows = []
    for i, f in enumerate(sorted(folder.glob("*.png"))):
        clean8 = np.asarray(Image.open(f), dtype=np.uint8)
        clean = clean8.astype(np.float32) / 255
        noise = np.random.default_rng(seed + i).standard_normal(clean.shape, dtype=np.float32)
        noisy = clean + noise * np.float32(sigma / 255)
        h, w = clean.shape
        m = model.cfg.size_multiple
        padded = np.pad(noisy, ((0, -h % m), (0, -w % m)), mode="reflect")
        with torch.no_grad():
            out = model(torch.from_numpy(padded)[None, None]).numpy()[0, 0, :h, :w]
        est = np.round(np.clip(out, 0, 1) * 255).astype(np.float64)
        ref = clean8.astype(np.float64)
        p = peak_signal_noise_ratio(ref, est, data_range=255)
        s = structural_similarity(
            ref, est, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        rows.append((f.name, float(p), float(s)))
    return rows


def test_evaluate_matches_a_hand_written_loop(tiny: nn.Module, gray_dir: Path) -> None:
    res = evaluate(tiny, gray_dir, [15, 50], seed=3, threads=1)
    assert [r.sigma for r in res.results] == [15.0, 50.0]
    for r in res.results:
        hand = _hand_eval(tiny, gray_dir, r.sigma, seed=3)
        assert [s.name for s in r.images] == ["a.png", "b.png", "c.png"]  # sorted order = seed order
        for s, (name, p, q) in zip(r.images, hand, strict=True):
            assert s.name == name
            assert s.psnr == pytest.approx(p, abs=1e-6)
            assert s.ssim == pytest.approx(q, abs=1e-6)
        assert r.psnr == pytest.approx(np.mean([h[1] for h in hand]), abs=1e-6)
        assert r.ssim == pytest.approx(np.mean([h[2] for h in hand]), abs=1e-6)
    assert res.at(15).psnr > res.at(50).psnr  # sanity: more noise, lower PSNR


def test_seed_scheme_limit_and_seed(tiny: nn.Module, gray_dir: Path) -> None:
    full = evaluate(tiny, gray_dir, [25], seed=5)
    first2 = evaluate(tiny, gray_dir, [25], seed=5, limit=2)
    assert first2.at(25).images == full.at(25).images[:2]  # limit keeps the first images and their seeds
    other = evaluate(tiny, gray_dir, [25], seed=6)
    assert other.at(25).images[0].psnr != full.at(25).images[0].psnr
    # image i uses seed + i: with seed 6, image 0 sees the noise image 1 saw with seed 5
    assert _hand_eval(tiny, gray_dir, 25, seed=6)[0][1] == pytest.approx(other.at(25).images[0].psnr, abs=1e-6)


# ---------------------------------------------------------------- ensemble


class _Identity(nn.Module):
    cfg = ModelCfg(arch="identity", receptive_field=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _ShiftRight(nn.Module):
    """Not rotation-equivariant: moves the image one pixel right (wrapping around)."""

    cfg = ModelCfg(arch="shift", receptive_field=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, 1, dims=-1)


def test_dihedral_matches_training_augment_and_inverts() -> None:
    x = np.arange(3 * 4 * 6, dtype=np.float32).reshape(3, 4, 6)
    for m in range(8):
        assert np.array_equal(dihedral(x, m), augment(x, m))
        assert np.array_equal(dihedral_inverse(dihedral(x, m), m), x)


def test_ensemble_of_identity_is_identity(gray_dir: Path) -> None:
    plain = evaluate(_Identity(), gray_dir, [25])
    ens = evaluate(_Identity(), gray_dir, [25], ensemble=True)
    assert ens.at(25).images == plain.at(25).images
    # the identity's score is the clipped noisy image's score (hand-computed)
    f = sorted(gray_dir.glob("*.png"))[0]
    clean8 = np.asarray(Image.open(f), dtype=np.float64)
    noisy = clean8 / 255 + np.random.default_rng(0).standard_normal(clean8.shape, dtype=np.float32) * (25 / 255)
    est = np.round(np.clip(noisy, 0, 1) * 255)
    assert plain.at(25).images[0].psnr == pytest.approx(peak_signal_noise_ratio(clean8, est, data_range=255), abs=1e-4)


def test_ensemble_averages_the_back_transformed_outputs() -> None:
    # Conjugating "shift right by 1" by the 8 symmetries of the square gives shifts by 1 in the 4 directions,
    # each twice: the ensemble must be the mean of the 4 unit shifts (a non-square image checks the rotations).
    x = np.random.default_rng(0).random((1, 5, 8), dtype=np.float32)
    pred = TorchPredictor(_ShiftRight(), device="cpu")
    out = denoise_array(pred, x, ensemble=True)
    hand = (np.roll(x, 1, -1) + np.roll(x, -1, -1) + np.roll(x, 1, -2) + np.roll(x, -1, -2)) / 4
    np.testing.assert_allclose(out, hand, atol=1e-6)
    np.testing.assert_array_equal(denoise_array(pred, x, ensemble=False), np.roll(x, 1, -1))


def test_ensemble_with_padding_keeps_the_shape(tiny: nn.Module) -> None:
    x = np.random.default_rng(1).random((1, 13, 9), dtype=np.float32)
    pred = TorchPredictor(tiny, device="cpu")
    plain, ens = denoise_array(pred, x), denoise_array(pred, x, ensemble=True)
    assert plain.shape == ens.shape == x.shape
    assert not np.allclose(plain, ens)  # a random CNN is not rotation-invariant: the average differs


# ---------------------------------------------------------------- every way to name a model


def test_safetensors_pt_onnx_and_name_agree(
    tiny: nn.Module, gray_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = evaluate(tiny, gray_dir, [25])
    st = save_weights(tiny, tmp_path / "tiny.safetensors")
    pt = tmp_path / "best.pt"
    torch.save(checkpoint_dict(tiny), pt)
    for spec in (str(st), pt):
        res = evaluate(spec, gray_dir, [25])
        assert res.at(25).images == ref.at(25).images and res.backend == "torch"
    # a registered name loads the shipped weights: point the weights folder at ours
    import edgedenoise.models.pretrained as pretrained

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    save_weights(tiny, tmp_path / "weights" / "rednet10_s2.safetensors")
    assert evaluate("rednet10_s2", gray_dir, [25]).at(25).images == ref.at(25).images
    # ONNX through ONNX Runtime: float32 on another engine, equal to a few 1e-4 dB
    from edgedenoise.export.onnx_export import export_onnx

    onnx_path = export_onnx(tiny, tmp_path / "tiny.onnx")
    ort = evaluate(str(onnx_path), gray_dir, [25], ensemble=True)
    ort_plain = evaluate(str(onnx_path), gray_dir, [25])
    ens = evaluate(tiny, gray_dir, [25], ensemble=True)
    assert ort.backend == "onnxruntime" and ort.cfg == tiny.cfg
    for a, b in zip(ort.at(25).images, ens.at(25).images, strict=True):
        assert a.psnr == pytest.approx(b.psnr, abs=2e-3)
        assert a.ssim == pytest.approx(b.ssim, abs=1e-4)

    # `edgedenoise eval` on an .onnx file runs without torch (a runtime-only install)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from edgedenoise.cli import main\n"
        f"main(['eval', {str(onnx_path)!r}, '--data', {str(gray_dir)!r}, '--sigma', '25', '--json'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["backend"] == "onnxruntime"
    assert data["results"][0]["psnr"] == pytest.approx(ort_plain.at(25).psnr, abs=1e-9)
    assert data["results"][0]["psnr"] == pytest.approx(ref.at(25).psnr, abs=2e-3)


def test_model_errors(gray_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'rednet31'"):
        evaluate("rednet31", gray_dir, [25])
    with pytest.raises(ArtifactError, match="does not exist"):
        evaluate(str(tmp_path / "nope.safetensors"), gray_dir, [25])
    (tmp_path / "model.txt").write_text("hello")
    with pytest.raises(ArtifactError, match="not a model file"):
        evaluate(str(tmp_path / "model.txt"), gray_dir, [25])
    torch.save({"state_dict": {}}, tmp_path / "partial.pt")
    with pytest.raises(ArtifactError, match=r"lacks checkpoint key\(s\) \['arch', 'cfg', 'overrides'\]"):
        evaluate(str(tmp_path / "partial.pt"), gray_dir, [25])
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ArtifactError, match="cannot be loaded by ONNX Runtime"):
        evaluate(str(tmp_path / "junk.onnx"), gray_dir, [25])


# ---------------------------------------------------------------- images and arguments


def test_colour_images_need_to_gray_for_gray_models(tiny: nn.Module, tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (20, 22, 3), dtype=np.uint8)
    (tmp_path / "colour").mkdir()
    Image.fromarray(rgb).save(tmp_path / "colour" / "x.png")
    with pytest.raises(InvalidInputError, match=r"x\.png: colour image for a gray model.*--gray"):
        evaluate(tiny, tmp_path / "colour", [25])
    # with to_gray: the same as evaluating the luma image written by hand
    luma = np.rint(rgb[..., 0] * 0.298936021293775 + rgb[..., 1] * 0.587043074451121 + rgb[..., 2] * 0.114020904255103)
    (tmp_path / "luma").mkdir()
    Image.fromarray(luma.astype(np.uint8)).save(tmp_path / "luma" / "x.png")
    a = evaluate(tiny, tmp_path / "colour", [25], to_gray=True)
    b = evaluate(tiny, tmp_path / "luma", [25])
    assert a.at(25).images == b.at(25).images and a.to_gray


def test_rgb_model_on_colour_matches_hand_loop(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = create_model("rednet10", in_channels=3, features=4).eval()
    rgb = np.random.default_rng(3).integers(0, 256, (16, 19, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    res = evaluate(model, tmp_path, [30], seed=9)
    clean = rgb.astype(np.float32) / 255  # noise drawn in the file's (H, W, 3) layout
    noisy = clean + np.random.default_rng(9).standard_normal(clean.shape, dtype=np.float32) * np.float32(30 / 255)
    with torch.no_grad():
        out = model(torch.from_numpy(noisy.transpose(2, 0, 1).copy())[None]).numpy()[0].transpose(1, 2, 0)
    est = np.round(np.clip(out, 0, 1) * 255)
    ref = rgb.astype(np.float64)
    assert res.at(30).psnr == pytest.approx(peak_signal_noise_ratio(ref, est, data_range=255), abs=1e-6)
    sk = structural_similarity(
        ref, est, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1
    )
    assert res.at(30).ssim == pytest.approx(sk, abs=1e-6)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "d.png")
    with pytest.raises(InvalidInputError, match=r"d\.png: gray image for an RGB model"):
        evaluate(model, tmp_path, [30])


def test_image_and_argument_errors(tiny: nn.Module, gray_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    with pytest.raises(InvalidInputError, match="no image files"):
        evaluate(tiny, tmp_path / "none", [25])
    for bad in ([], [-1], [float("nan")]):
        with pytest.raises(InvalidInputError, match="sigmas must be"):
            evaluate(tiny, gray_dir, bad)
    with pytest.raises(InvalidInputError, match="seed must be >= 0"):
        evaluate(tiny, gray_dir, [25], seed=-1)
    with pytest.raises(InvalidInputError, match="limit must be >= 1"):
        evaluate(tiny, gray_dir, [25], limit=0)
    (tmp_path / "deep").mkdir()
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(tmp_path / "deep" / "d16.png")
    with pytest.raises(InvalidInputError, match=r"d16\.png: uint16 pixels; the benchmark protocol is 8-bit"):
        evaluate(tiny, tmp_path / "deep", [25])
    (tmp_path / "small").mkdir()
    Image.fromarray(np.zeros((8, 20), np.uint8)).save(tmp_path / "small" / "s.png")
    with pytest.raises(InvalidInputError, match=r"s\.png: 20x8 is smaller than SSIM's 11x11 window"):
        evaluate(tiny, tmp_path / "small", [25])


# ---------------------------------------------------------------- CLI


def test_cli_json_table_and_per_image(tiny: nn.Module, gray_dir: Path, tmp_path: Path) -> None:
    st = str(save_weights(tiny, tmp_path / "tiny.safetensors"))
    ref = evaluate(st, gray_dir, [15, 25], seed=2)
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", st, "--data", str(gray_dir), "--sigma", "15,25", "--seed", "2", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["arch"] == "rednet10_s2" and data["seed"] == 2 and "seed + i" in data["seed_scheme"]
    assert [r["sigma"] for r in data["results"]] == [15.0, 25.0]
    assert data["results"][1]["psnr"] == pytest.approx(ref.at(25).psnr, abs=1e-12)
    assert [i["name"] for i in data["results"][0]["images"]] == ["a.png", "b.png", "c.png"]

    res = runner.invoke(cli, ["eval", st, "--data", str(gray_dir), "--sigma", "25", "--seed", "2", "--per-image"])
    assert res.exit_code == 0, res.output
    assert f"{ref.at(25).psnr:.3f}" in res.output and f"{ref.at(25).ssim:.4f}" in res.output
    assert "b.png" in res.output and f"{ref.at(25).images[1].psnr:.3f}" in res.output

    res = runner.invoke(cli, ["eval", st, "--data", str(gray_dir), "--sigma", "15,abc"])
    assert res.exit_code == 2 and "comma-separated list" in res.output


def test_cli_errors_are_one_line(gray_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "rednet31", "--data", str(gray_dir), "--sigma", "25"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: unknown model 'rednet31'") and "\n" not in err


# ---------------------------------------------------------------- real data (skipped without ../shared/data)


@pytest.mark.data
def test_luma_of_cbsd68_is_bsd68() -> None:
    colour, gray = shared_set("CBSD68"), shared_set("BSD68")
    pairs = list(zip(sorted(colour.glob("*.png")), sorted(gray.glob("*.png")), strict=True))
    assert len(pairs) == 68
    for c, g in pairs:
        assert np.array_equal(load_clean(c, 1, to_gray=True), np.asarray(Image.open(g))), (c.name, g.name)
    assert LUMA_WEIGHTS[0] == pytest.approx(0.299, abs=1e-3)


def onnx_path(name: str) -> Path:
    from edgedenoise.runtime.artifact import weights_dir

    return weights_dir() / f"{name}.onnx"


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name", shipped_models() or ["(none shipped)"])
def test_shipped_model_card_reproduces_on_set12_or_mcmaster(name: str) -> None:
    if name == "(none shipped)":
        pytest.skip("no weights ship yet")
    card = model_card(name)
    test_set = "McMaster" if card["cfg"]["in_channels"] == 3 else "Set12"  # colour models: the colour set
    row = next(r for r in card["evaluation"]["sets"][test_set]["results"] if r["sigma"] == 25)
    # MemNet (1.3-2.9 M MACs/pixel) is checked through its shipped FP32 ONNX: ONNX Runtime takes 52 s for M4R4
    # on Set12 against 195 s for torch eager on 2 cores (447 s for M6R6), most of the suite's time otherwise.
    # The other models go through torch, the `edgedenoise eval NAME` path.
    heavy = card["macs_per_pixel"] > 1.2e6
    target = onnx_path(name) if heavy else name
    res = evaluate(target, shared_set(test_set), [25], seed=card["evaluation"]["seed"])
    assert res.at(25).psnr == pytest.approx(row["psnr"], abs=0.01)
    assert res.at(25).ssim == pytest.approx(row["ssim"], abs=1e-4)


# ---------------------------------------------------------------- scripts/model_card.py


def _tiny_run_setup(tmp_path: Path, seed: int, sets: tuple[str, ...]) -> tuple[Path, Path, dict]:
    """Random 24x28 gray PNGs: 4 training images and 2 per test set, and a 4-feature RED10 config (no steps,
    no out_dir) over them. Returns (train_dir, data_root, config dict)."""
    rng = np.random.default_rng(seed)
    train_dir, data_root = tmp_path / "train", tmp_path / "data"
    for folder, n in ((train_dir, 4), *((data_root / name, 2) for name in sets)):
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (24, 28), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    cfg = {
        "model": "rednet10",
        "model_overrides": {"features": 4},
        "data": {"train_dir": str(train_dir), "patch_size": 16, "batch_size": 2, "val_holdout": 1},
        "val_every": 2,
        "log_every": 1,
        "threads": 1,
    }
    return train_dir, data_root, cfg


def test_card_validation_best_is_the_step_the_weights_were_saved_at() -> None:
    """The log rounds PSNR to 3 decimals: of tied best points, the card names the one the weights come from."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "model_card", Path(__file__).resolve().parent.parent / "scripts" / "model_card.py"
    )
    assert spec is not None and spec.loader is not None
    card = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(card)
    rows = [
        {"step": str(s), "val_psnr": v, "wall_s": str(s / 10)}
        for s, v in ((100, "28.449"), (150, ""), (200, "28.440"), (300, "28.449"), (400, "28.432"))
    ]
    assert card.validation_summary(rows, weights_step=300)["best"] == {"step": 300, "psnr": 28.449, "wall_s": 30.0}
    assert card.validation_summary(rows)["best"]["step"] == 100
    assert card.validation_summary(rows, weights_step=200)["best"]["step"] == 100  # 200 is not a best point
    assert card.validation_summary(rows)["points"] == 4


def test_model_card_script_on_a_tiny_run(tmp_path: Path) -> None:
    train_dir, data_root, base = _tiny_run_setup(tmp_path, 4, ("BSD68", "Set12"))
    run = tmp_path / "runs" / "tiny"
    cfg_dict = {**base, "steps": 6, "out_dir": str(run)}
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg_dict))
    line = f"nohup edgedenoise train {cfg_file} > {tmp_path}/tiny.out 2>&1 &"
    (tmp_path / "train.sh").write_text(f"#!/usr/bin/env bash\n# comment\n{line}\nedgedenoise train other.yaml\n")
    result = train(config_from_dict(cfg_dict), progress=False)
    out = tmp_path / "weights"
    script = Path(__file__).resolve().parent.parent / "scripts" / "model_card.py"
    args = [sys.executable, str(script), str(run / "best.safetensors"), "--data-root", str(data_root)]
    args += ["--out-dir", str(out), "--train-script", str(tmp_path / "train.sh"), "--threads", "1"]

    bad = subprocess.run([*args, "--name", "rednet20"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "does not match the weights' architecture 'rednet10'" in bad.stderr
    assert not out.exists()  # nothing half-written

    proc = subprocess.run([*args, "--name", "rednet10"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((out / "rednet10.json").read_text())
    shipped = out / "rednet10.safetensors"
    assert (run / "best.safetensors").read_bytes() == shipped.read_bytes()
    assert card["weights"]["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert (
        card["arch"] == "rednet10"
        and card["cfg"]["noise"] == "awgn:0-55"
        and card["overrides"] == {"features": 4, "in_channels": 1}
    )
    tr = card["training"]
    assert tr["commands"] == [line] and tr["config_file"] == str(cfg_file)
    assert tr["config"] == yaml.safe_load((run / "config.resolved.yaml").read_text())
    assert tr["iterations"] == 6 and tr["best_step"] == result["best_step"]
    assert tr["validation"]["best"]["psnr"] == pytest.approx(result["best_psnr"], abs=1e-3)
    assert [p["step"] for p in tr["validation"]["curve"]] == [2, 4, 6]
    assert card["hardware"]["torch_threads"] == 1 and card["hardware"]["cpu"]
    # the table is what `evaluate` (and so `edgedenoise eval`) measures on the shipped file
    model = load_weights(shipped)
    for name in ("BSD68", "Set12"):
        entry = card["evaluation"]["sets"][name]
        res = evaluate(model, data_root / name, [15, 25, 50], seed=0)
        assert entry["n_images"] == 2
        assert [r["sigma"] for r in entry["results"]] == [15.0, 25.0, 50.0]
        for row, r in zip(entry["results"], res.results, strict=True):
            assert row["psnr"] == pytest.approx(r.psnr, abs=1e-4) and row["ssim"] == pytest.approx(r.ssim, abs=1e-5)
        assert entry["command"] == f"edgedenoise eval rednet10 --data {data_root / name} --sigma 15,25,50 --seed 0"


def test_gpu_cards_checks_weights_and_merges_two_stages(tmp_path: Path) -> None:
    """scripts/gpu_cards.py: sha256 against the card, git revisions, and stage 1 + stage 2 under training.stages."""
    _, data_root, base = _tiny_run_setup(tmp_path, 5, ("Set12",))
    runs = tmp_path / "runs"
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    stage1 = train(config_from_dict({**base, "steps": 4, "out_dir": str(runs / "rednet10_blind")}), progress=False)
    ft = {**base, "steps": 2, "init_weights": str(runs / "rednet10_blind" / "best.safetensors")}
    train(config_from_dict({**ft, "out_dir": str(runs / "rednet10_ft")}), progress=False)
    for stage, cards in (("blind", "cards_stage1"), ("ft", "cards")):
        proc = subprocess.run(
            [sys.executable, str(scripts / "model_card.py"), str(runs / f"rednet10_{stage}" / "best.safetensors"),
             "--name", "rednet10", "--run-dir", str(runs / f"rednet10_{stage}"), "--data-root", str(data_root),
             "--data-label", "../shared/data", "--sets", "Set12", "--out-dir", str(runs / cards / "rednet10"),
             "--command", "bash scripts/gpu_train.sh", "--threads", "1"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "weights"
    args = [sys.executable, str(scripts / "gpu_cards.py"), "rednet10", "--runs", str(runs), "--out-dir", str(out)]
    args += ["--git-rev", "aaa111", "--git-rev-ft", "bbb222", "--note", "rednet10=two stages"]

    weights = runs / "rednet10_ft" / "best.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-4] + b"\0\0\0\0")  # not the weights the card measured
    bad = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "does not match the card's sha256" in bad.stderr and not out.exists()
    weights.write_bytes(good)

    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads((out / "rednet10.json").read_text())
    assert (out / "rednet10.safetensors").read_bytes() == good
    tr = card["training"]
    assert tr["git_rev"] == card["card"]["git_rev"] == "bbb222" and tr["note"] == "two stages"
    first, second = tr["stages"]
    assert first["iterations"] == stage1["steps"] == 4 and second["iterations"] == tr["iterations"] == 2
    assert tr["iterations_total"] == 6 and first["git_rev"] == "aaa111"
    assert first["config"]["out_dir"].endswith("rednet10_blind")
    assert second["config"]["init_weights"] == ft["init_weights"]
    command = card["evaluation"]["sets"]["Set12"]["command"]
    assert command.startswith("edgedenoise eval rednet10 --data ../shared/data/Set12")
    assert "hardware" in first and first["hardware"] == second["hardware"]

    # Stage 3, as for rednet8_slim32_u4: quantization-aware fine-tuning on the CPU from the shipped weights, then
    # model_card.py --previous-card with the card it replaces: three stages, totals, both sets of commands.
    qat = {**base, "steps": 2, "qat": True, "init_weights": str(out / "rednet10.safetensors")}
    qat_run = runs / "rednet10_qat"
    train(config_from_dict({**qat, "out_dir": str(qat_run)}), progress=False)
    proc = subprocess.run(
        [sys.executable, str(scripts / "model_card.py"), str(qat_run / "best.safetensors"), "--name", "rednet10",
         "--run-dir", str(qat_run), "--data-root", str(data_root), "--sets", "Set12", "--out-dir", str(out),
         "--command", "edgedenoise train qat.yaml", "--config-file", "qat.yaml", "--threads", "1",
         "--previous-card", str(out / "rednet10.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    card3 = json.loads((out / "rednet10.json").read_text())
    tr3 = card3["training"]
    assert [s["iterations"] for s in tr3["stages"]] == [4, 2, 2] and tr3["iterations_total"] == 8
    assert tr3["stages"][:2] == tr["stages"] and tr3["stages"][2]["config_file"] == "qat.yaml"
    assert tr3["stages"][2]["config"]["qat"] is True and tr3["config_file"] == "qat.yaml"
    assert tr3["commands"] == [*tr["commands"], "edgedenoise train qat.yaml"]
    assert card3["weights"]["sha256"] == hashlib.sha256((out / "rednet10.safetensors").read_bytes()).hexdigest()
