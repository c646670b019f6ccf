"""`edgedenoise infer`: the runtime's acceptance checks, with torch blocked from import where it matters.

Oracles: PSNR recomputed here with onnxruntime + numpy (noise drawn with numpy's documented generator),
Pillow's view of the written files, and file hashes for "inputs untouched".
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import shared_set
from PIL import Image
from runtime_helpers import ROOT, graph_onnx, psnr_np, run_cli_without_torch, tiny_onnx
from runtime_helpers import run_cli as run_main

SAMPLE = ROOT / "edgedenoise" / "samples" / "cbsd432_103006_gray.png"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_for_bsd68() -> tuple[Path, bool]:
    """The shipped FP32 ONNX of rednet30 if it is there (trained), else a tiny untrained export."""
    shipped = ROOT / "edgedenoise" / "weights" / "rednet30.onnx"
    return (shipped, True) if shipped.is_file() else (tiny_onnx("rednet10"), False)


@pytest.mark.data
def test_psnr_matches_independent_onnxruntime_numpy_without_torch(tmp_path: Path) -> None:
    bsd68 = shared_set("BSD68")
    files = [bsd68 / f"test00{i}.png" for i in (1, 2, 3)]
    model, trained = _model_for_bsd68()
    out_dir, report = tmp_path / "out", tmp_path / "report.json"
    args = ["infer", str(model), *map(str, files), "-o", str(out_dir), "--noisy-sigma", "25", "--seed", "5"]
    res = run_cli_without_torch([*args, "--report", str(report), "--threads", "1"])
    assert res.returncode == 0, res.stderr
    assert "ort-cpu" in res.stdout and "PSNR" in res.stdout
    rows = json.loads(report.read_text())["files"]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for i, (f, row) in enumerate(zip(files, rows, strict=True)):
        clean = np.asarray(Image.open(f), dtype=np.uint8)
        x = clean.astype(np.float32) / np.float32(255)
        noisy = x + np.random.default_rng(5 + i).standard_normal(x.shape, dtype=np.float32) * np.float32(25 / 255)
        (den,) = sess.run(["denoised"], {"noisy": noisy[None, None]})
        den8 = np.rint(np.clip(den[0, 0], 0, 1) * 255)
        noisy8 = np.rint(np.clip(noisy, 0, 1) * 255)
        assert abs(row["psnr_noisy"] - psnr_np(noisy8, clean)) < 0.01
        assert abs(row["psnr_denoised"] - psnr_np(den8, clean)) < 0.01
        written = np.asarray(Image.open(out_dir / f.name))
        assert written.dtype == np.uint8 and written.shape == clean.shape
        diff = np.abs(written.astype(int) - den8.astype(int))
        assert diff.max() <= 1 and np.mean(diff == 0) > 0.999
        assert f"{f} -> {out_dir / f.name}: PSNR {row['psnr_noisy']:.3f} dB" in res.stdout
        if trained:
            assert row["psnr_denoised"] > row["psnr_noisy"] + 5.0


def _size_and_mode_inputs(folder: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    rng = np.random.default_rng(0)
    made: dict[str, tuple[tuple[int, ...], str]] = {}
    for h, w in ((1, 1), (2, 2), (37, 53), (257, 89)):
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(folder / f"g{h}x{w}.png")
        made[f"g{h}x{w}.png"] = ((w, h), "L")
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 65536, (37, 53), dtype=np.uint16)).save(folder / "g16.png")
    (folder / "sub").mkdir()
    Image.fromarray(rng.integers(0, 65536, (5, 3), dtype=np.uint16)).save(folder / "sub" / "g16.tif")
    Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)).save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(folder / "c.jpg")
    Image.fromarray(rng.integers(0, 256, (2, 3), dtype=np.uint8)).save(folder / "g.bmp")
    made.update(
        {
            "rgb.png": ((53, 37), "RGB"),
            "g16.png": ((53, 37), "I;16"),
            "sub/g16.tif": ((3, 5), "I;16"),
            "rgba.png": ((53, 37), "RGBA"),
            "c.jpg": ((53, 37), "RGB"),
            "g.bmp": ((3, 2), "L"),
        }
    )
    return made


def test_sizes_modes_and_bit_depths_survive_without_torch(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    made = _size_and_mode_inputs(src)
    before = {rel: sha(src / rel) for rel in made}
    # the stride-2 model (size multiple 2) exercises reflect padding and cropping on 1x1 and odd sizes
    res = run_cli_without_torch(["infer", str(tiny_onnx("rednet10_s2")), str(src), "-o", str(out), "--threads", "1"])
    assert res.returncode == 0, res.stderr
    assert f"denoised {len(made)} files (0 skipped, 0 failed)" in res.stdout
    for rel, (size, mode) in made.items():
        a, b = Image.open(src / rel), Image.open(out / rel)
        assert (b.size, b.mode) == (size, mode), rel
        assert np.asarray(b).dtype == np.asarray(a).dtype, rel
        assert sha(src / rel) == before[rel]
    alpha_in = np.asarray(Image.open(src / "rgba.png"))[..., 3]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "rgba.png"))[..., 3], alpha_in)
    g16 = np.asarray(Image.open(out / "g16.png"))
    assert g16.max() > 255  # really 16-bit values, not 8-bit ones in a 16-bit container


@pytest.mark.slow
def test_4000x3000_with_a_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.png"
    x = np.random.default_rng(0).integers(0, 256, (3000, 4000), dtype=np.uint8)
    Image.fromarray(x).save(big, compress_level=1)
    code, out, err = run_main(["infer", str(tiny_onnx("rednet10")), str(big), "-o", str(tmp_path / "o.png")], capsys)
    assert code == 0, err
    y = Image.open(tmp_path / "o.png")
    assert (y.size, y.mode) == ((4000, 3000), "L")


def _bad_files(folder: Path) -> list[Path]:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / "full.png")
    data = (folder / "full.png").read_bytes()
    (folder / "full.png").unlink()
    bad = {
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        "truncated.png": data[: len(data) // 2],
        "empty.png": b"",
        "text.png": b"not an image, just text\n",
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).convert("1").save(folder / "bilevel.png")
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).convert("CMYK").save(folder / "cmyk.jpg")
    return sorted(folder.iterdir())


def test_unreadable_files_one_line_each_no_output_inputs_untouched(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    bad = _bad_files(src)
    shutil.copy(SAMPLE, src / "good.png")
    before = {p.name: sha(p) for p in src.iterdir()}
    res = run_cli_without_torch(["infer", str(tiny_onnx("rednet10")), str(src), "-o", str(out), "--threads", "1"])
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == len(bad), res.stderr
    for p in bad:
        assert sum(str(p) in ln for ln in lines) == 1, (p, res.stderr)
        assert not (out / p.name).exists()
    assert all(ln.startswith("Error: ") for ln in lines) and "Traceback" not in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]  # the good file still ran; no temp files
    assert {p.name: sha(p) for p in src.iterdir()} == before
    assert f"denoised 1 files (0 skipped, {len(bad)} failed)" in res.stdout


def test_never_writes_over_an_input_unless_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(tiny_onnx("rednet10"))
    img = tmp_path / "a.png"
    shutil.copy(SAMPLE, img)
    orig = sha(img)
    code, _, err = run_main(["infer", model, str(img), "-o", str(tmp_path)], capsys)
    assert code == 1 and "would overwrite an input" in err and sha(img) == orig
    code, _, err = run_main(["infer", model, str(img), "-o", str(img)], capsys)
    assert code == 1 and "would overwrite an input" in err and sha(img) == orig
    code, _, err = run_main(["infer", model, str(img), "--in-place", "--noisy-sigma", "25"], capsys)
    assert code == 1 and err.count("\n") == 1 and "--in-place" in err and sha(img) == orig
    code, _, err = run_main(["infer", model, str(img), "--in-place"], capsys)
    assert code == 0, err
    assert sha(img) != orig and Image.open(img).mode == "L"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no temp file left beside it


def test_outputs_single_file_glob_and_skip_existing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(tiny_onnx("rednet10"))
    src = tmp_path / "in"
    (src / "deep").mkdir(parents=True)
    for rel in ("a.png", "deep/b.png"):
        shutil.copy(SAMPLE, src / rel)
    code, _, err = run_main(["infer", model, str(src / "a.png"), "-o", str(tmp_path / "one.tif")], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "one.tif").mode == "L"
    code, out, err = run_main(["infer", model, str(src / "**" / "*.png"), "-o", str(tmp_path / "g")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["a.png", "b.png"]
    code, out, err = run_main(["infer", model, str(src), "-o", str(tmp_path / "g2")], capsys)
    assert code == 0 and (tmp_path / "g2" / "deep" / "b.png").is_file()
    code, out, _ = run_main(["infer", model, str(src), "-o", str(tmp_path / "g2"), "--skip-existing"], capsys)
    assert code == 0 and "denoised 0 files (2 skipped, 0 failed)" in out
    code, _, err = run_main(
        ["infer", model, str(src / "a.png"), str(src / "deep" / "b.png"), "-o", str(tmp_path / "c")], capsys
    )
    assert code == 0, err  # different names
    shutil.copy(SAMPLE, src / "deep" / "a.png")
    code, _, err = run_main(
        ["infer", model, str(src / "a.png"), str(src / "deep" / "a.png"), "-o", str(tmp_path / "d")], capsys
    )
    assert code == 1 and "is also the output of" in err


def test_model_and_backend_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "a.png"
    shutil.copy(SAMPLE, img)
    out = str(tmp_path / "o")
    cases = [
        (["infer", "nosuchmodel", str(img), "-o", out], "edgedenoise export --model nosuchmodel"),
        (["infer", str(graph_onnx("identity", None)), str(img), "-o", out], "edgedenoise export"),
        (["infer", str(tmp_path / "missing.onnx"), str(img), "-o", out], "does not exist"),
        (["infer", str(tiny_onnx("rednet10")), str(img)], "exactly one of -o"),
    ]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        cases.append(
            (["infer", str(tiny_onnx("rednet10")), str(img), "-o", out, "--backend", "ort-cuda"], "onnxruntime-gpu")
        )
    for args, needle in cases:
        code, _, err = run_main(args, capsys)
        assert code == 1 and err.count("\n") == 1 and needle in err, (args, err)
    assert not (tmp_path / "o").exists()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        args = ["infer", str(tiny_onnx("rednet10")), str(img), "-o", out, "--backend", "ort-cuda", "--allow-fallback"]
        code, stdout, err = run_main(args, capsys)
        assert code == 0 and "model: ort-cpu" in stdout and "not used: ort-cuda" in stdout, err


def test_noisy_sigma_on_16_bit_uses_float_psnr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean16 = (np.asarray(Image.open(SAMPLE), dtype=np.uint16) * 257)[:40, :50]
    Image.fromarray(clean16).save(tmp_path / "g16.png")
    report = tmp_path / "r.json"
    args = ["infer", str(tiny_onnx("rednet10")), str(tmp_path / "g16.png"), "-o", str(tmp_path / "o")]
    code, _, err = run_main([*args, "--noisy-sigma", "15", "--report", str(report)], capsys)
    assert code == 0, err
    row = json.loads(report.read_text())["files"][0]
    x = clean16.astype(np.float32) / 65535
    noisy = x + np.random.default_rng(0).standard_normal(x.shape, dtype=np.float32) * np.float32(15 / 255)
    assert abs(row["psnr_noisy"] - psnr_np(np.clip(noisy, 0, 1), x, peak=1.0)) < 0.01
    assert row["dtype"] == "uint16" and row["mode"] == "I;16"
    assert np.asarray(Image.open(tmp_path / "o" / "g16.png")).dtype == np.uint16


def test_messages_point_the_right_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A precision-less INT8 name suggests the shipped file; -o naming a file for a folder run is one line up front;
    --backend tensorrt on an ONNX file names `edgedenoise build`."""
    sample = str(ROOT / "edgedenoise" / "samples" / "cbsd432_103006_gray.png")
    code, _, err = run_main(["infer", "rednet30.int8", sample, "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and err.strip() == "Error: no shipped file rednet30.int8.onnx; did you mean rednet30.int8.cpu?"
    code, _, err = run_main(["infer", "nosuch.int8", sample, "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "edgedenoise export --model nosuch --int8" in err and "rednet30.int8.cpu" in err
    target = tmp_path / "a_file.txt"
    target.write_text("keep me")
    val = str(ROOT / "calib_data" / "val_gray")
    code, out, err = run_main(["infer", "rednet12_slim64_u2", val, "-o", str(target)], capsys)
    assert code == 1 and err.count("\n") == 1 and "is an existing file" in err and target.read_text() == "keep me"
    args = ["infer", "rednet12_slim64_u2", sample, "-o", str(tmp_path / "x.png"), "--backend", "tensorrt"]
    code, _, err = run_main(args, capsys)
    assert code == 1 and "edgedenoise build rednet12_slim64_u2.onnx" in err


def test_noise_profile_given_or_fitted_on_a_camera_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A colour file with Poisson-Gaussian noise (a = 0.01, b = 0.0004) through the shipped real-time model: with
    the profile given and fitted, the written file beats the noisy one by > 5 dB, and the line says how σ came."""
    clean = np.asarray(Image.open(ROOT / "edgedenoise" / "samples" / "cbsd432_103006.png").convert("RGB"), np.float64)
    x = clean / 255
    noisy = x + np.random.default_rng(0).normal(0, 1, x.shape) * np.sqrt(0.01 * x + 0.0004)
    src = tmp_path / "frame.png"
    Image.fromarray(np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)).save(src)
    before = psnr_np(np.asarray(Image.open(src)), clean)
    for profile, how in (("0.01,0.0004", "given"), ("auto", "fitted to the file")):
        out = tmp_path / profile.replace(",", "_")
        code, stdout, stderr = run_main(
            ["infer", "unet3_f32_u4_nl", str(src), "-o", str(out), "--noise-profile", profile, "--threads", "1"], capsys
        )
        assert code == 0, stderr
        assert f"mean of the noise profile {how})" in stdout
        assert psnr_np(np.asarray(Image.open(out / "frame.png")), clean) > before + 5.0
    code, _, stderr = run_main(["infer", "unet3_f32_u4_nl", str(src), "--noise-profile", "0.01"], capsys)
    assert code == 2 and "is not two numbers A,B" in stderr and "or auto" in stderr
