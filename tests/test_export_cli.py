"""``edgedenoise export / build / compare`` end to end on a tiny model, and the model-source rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from conftest import checkpoint_dict
from PIL import Image

from edgedenoise.cli import cli
from edgedenoise.export.calibration import CALIB_DIR, load_images
from edgedenoise.export.onnx_export import describe_graph, read_metadata, run_onnx
from edgedenoise.export.pipeline import ExportOptions, export_model, load_model_source
from edgedenoise.export.tensorrt_build import engines_available
from edgedenoise.models import create_model, save_weights
from edgedenoise.runtime.contract import FLAVOUR_KEY, PRECISION_KEY, QUALITY_KEY, WEIGHTS_SHA_KEY
from edgedenoise.runtime.errors import ArtifactError, InvalidInputError, UnknownModelError
from edgedenoise.runtime.metrics import awgn, psnr, quantize8


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, Path]:
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    weights = save_weights(create_model("rednet10_s2", features=8, noise="awgn:0-55"), d / "tiny.safetensors")
    calib = d / "calib"
    calib.mkdir()
    for p in sorted((CALIB_DIR / "gray").glob("*.png"))[:6]:  # six 64x64 crops keep calibration quick
        Image.open(p).crop((0, 0, 64, 64)).save(calib / p.name)
    out = d / "out"
    res = CliRunner().invoke(
        cli, ["export", "--model", str(weights), "--fp16", "--int8", "--calib", str(calib), "-o", str(out),
              "--threads", "1", "--no-progress"],
    )  # fmt: skip
    return out, res, weights


def test_export_writes_every_artifact_and_the_table(exported: tuple[Path, Result, Path]) -> None:
    out, res, weights = exported
    assert res.exit_code == 0, res.output
    names = ["rednet10_s2.onnx", "rednet10_s2.fp16.onnx", "rednet10_s2.int8.cpu.onnx", "rednet10_s2.int8.trt.onnx"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    lines = res.output.splitlines()
    assert lines[0].split() == ["artifact", "precision", "size", "PSNR", "vs", "FP32", "PSNR", "change", "path"]
    rows = {ln.split()[0]: ln for ln in lines[2:6]}
    assert sorted(rows) == sorted(names)
    assert "reference" in rows["rednet10_s2.onnx"]
    if not engines_available():
        # the notice names the files an engine is built from: the fp16 and the TensorRT-flavour INT8 ones
        assert lines[-1] == (
            "TensorRT is not installed here: build the engine on the target device with "
            f"`edgedenoise build {out / 'rednet10_s2.fp16.onnx'}` and "
            f"`edgedenoise build {out / 'rednet10_s2.int8.trt.onnx'}`"
        )
    import hashlib

    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    for name in names:
        meta = read_metadata(out / name)
        assert meta[WEIGHTS_SHA_KEY] == sha
        assert "ConvTranspose" not in describe_graph(out / name)["ops"]
    for flavour in ("cpu", "trt"):
        path = out / f"rednet10_s2.int8.{flavour}.onnx"
        meta = read_metadata(path)
        assert meta[PRECISION_KEY] == "int8" and meta[FLAVOUR_KEY] == flavour
        quality = json.loads(meta[QUALITY_KEY])
        assert quality["reference"] == "fp32" and quality["drop_db"] <= 0.1 and quality["budget_db"] == 0.1
        # the table shows the drop recorded in the file
        # a loss shows as a negative change (the file keeps 4 decimals, the table 3)
        shown = float(rows[path.name].split()[-3])
        assert shown == pytest.approx(-quality["drop_db"], abs=6e-4) and rows[path.name].split()[-2] == "dB"
        calib = json.loads(meta["edgedenoise.calibration"])
        assert calib["images"] == 6 and calib["sigmas"] == [5.0, 30.0, 55.0]
        assert calib["method"] == {"cpu": "percentile", "trt": "percentile"}[flavour]  # --calib-method auto
        # the first Conv (it reads the noisy image) stays float by default, and the output says so
        import onnx

        g = onnx.load_model(str(path)).graph
        producer = {o: n for n in g.node for o in n.output}
        convs = [n for n in g.node if n.op_type == "Conv"]
        assert producer.get(convs[0].input[0]) is None or producer[convs[0].input[0]].op_type != "DequantizeLinear"
        assert all(producer[c.input[0]].op_type == "DequantizeLinear" for c in convs[1:])
        assert f"{path.name}: 1 node kept in float: {convs[0].name}" in res.output
    fp16 = json.loads(read_metadata(out / "rednet10_s2.fp16.onnx")[QUALITY_KEY])
    assert fp16["finite"] is True and fp16["calib_images"] == 6 and fp16["calib_psnr_vs_fp32_db"] >= 45.0
    assert abs(fp16["drop_db"]) <= 0.02


def test_compare_reports_psnr_of_both(exported: tuple[Path, Result, Path]) -> None:
    out, _, _ = exported
    a, b = out / "rednet10_s2.onnx", out / "rednet10_s2.int8.cpu.onnx"
    res = CliRunner().invoke(cli, ["compare", str(a), str(b), "--data", str(CALIB_DIR / "val_gray"), "--sigma", "15"])
    assert res.exit_code == 0, res.output
    # Independent recomputation of A's mean PSNR with the benchmark protocol.
    vals = []
    for i, clean in enumerate(load_images(CALIB_DIR / "val_gray", 1, 2)):
        y = run_onnx(a, awgn(clean, 15.0, i)[None])
        vals.append(psnr(quantize8(y[0, 0]), quantize8(clean[0])))
    assert f"PSNR vs clean: A {np.mean(vals):.3f} dB" in res.output
    assert "images: 16, AWGN sigma 15" in res.output


def test_build_exits_1_with_one_line_without_tensorrt(exported: tuple[Path, Result, Path]) -> None:
    if engines_available():
        pytest.skip("TensorRT is installed here")
    out, _, _ = exported
    proc = subprocess.run(
        [sys.executable, "-m", "edgedenoise.cli", "build", str(out / "rednet10_s2.int8.trt.onnx"), "--max", "1280x720"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "needs TensorRT, which is not installed" in proc.stderr


def test_model_sources(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = create_model("rednet10", features=8, noise="awgn:25")
    ck = tmp_path / "best.pt"
    torch.save(checkpoint_dict(model), ck)
    loaded, sha = load_model_source(ck)
    assert loaded.cfg == model.cfg and sha is not None and len(sha) == 64
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert load_model_source(model) == (model, None)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_model_source(tmp_path / "missing.safetensors")
    with pytest.raises(UnknownModelError, match="unknown model 'nosuchnet'"):
        load_model_source("nosuchnet")
    with pytest.raises(InvalidInputError, match="same"):
        export_model(
            model,
            tmp_path / "o",
            ExportOptions(int8=True, calib_dir=CALIB_DIR / "val_gray", val_dir=CALIB_DIR / "val_gray"),
        )


def test_table_marks_a_failed_flavour() -> None:
    from edgedenoise.commands.export import format_table
    from edgedenoise.export.pipeline import ArtifactKind, ArtifactRecord
    from edgedenoise.export.quality import QualityReport

    q = QualityReport(30.0, 29.95, 0.05, 45.123, 0.8, 0.81, 0.01, True, 16, 25.0)
    records = [
        ArtifactRecord(Path("o/m.onnx"), "fp32", "", ArtifactKind.ONNX, 4_200_000),
        ArtifactRecord(Path("o/m.int8.cpu.onnx"), "int8", "cpu", ArtifactKind.ONNX, 1_150_000, quality=q),
        ArtifactRecord(Path("o/m.int8.trt.onnx"), "int8", "trt", ArtifactKind.ONNX, 0, failure="loses 0.2 dB"),
    ]
    lines = format_table(records)
    assert lines[2].split()[:4] == ["m.onnx", "fp32", "4.20", "MB"] and "reference" in lines[2]
    assert lines[3].split()[:7] == ["m.int8.cpu.onnx", "int8-cpu", "1.15", "MB", "45.12", "dB", "-0.050"]
    assert lines[4].split()[:4] == ["m.int8.trt.onnx", "int8-trt", "-", "FAILED"]


def test_shipped_model_reexports_with_its_shipped_calibration(tmp_path: Path) -> None:
    """``export --model NAME --int8`` calibrates a shipped model at the σ levels its shipped INT8 file records (read
    here with the onnx library), so the FFDNet-cost model, whose file was calibrated at σ 15 / 25 / 50 because the
    default 20 / 40 / 60 misses the 0.1 dB gate, re-exports within budget."""
    import onnx

    from edgedenoise.commands.export import shipped_calibration_sigmas
    from edgedenoise.models.pretrained import WEIGHTS_DIR

    name = "rednet18_slim64_u2_nl"
    meta = {p.key: p.value for p in onnx.load(str(WEIGHTS_DIR / f"{name}.int8.cpu.onnx")).metadata_props}
    recorded = tuple(json.loads(meta["edgedenoise.calibration"])["sigmas"])
    assert recorded == (15.0, 25.0, 50.0)
    assert shipped_calibration_sigmas(name) == recorded
    assert shipped_calibration_sigmas(str(WEIGHTS_DIR / f"{name}.safetensors")) is None  # a file: defaults apply

    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli, ["export", "--model", name, "--int8", "--flavour", "cpu", "-o", str(out), "--threads", "2",
              "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "calibration σ 15, 25, 50: those of the shipped INT8 file" in res.output
    assert f"{name}.int8.cpu.onnx: 21 nodes kept in float: " in res.output
    written = {p.key: p.value for p in onnx.load(str(out / f"{name}.int8.cpu.onnx")).metadata_props}
    assert json.loads(written["edgedenoise.calibration"])["sigmas"] == [15.0, 25.0, 50.0]
