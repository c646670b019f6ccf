"""Benchmark core (runtime/bench/), torch eager as one of its backends, `edgedenoise bench`, and the baselines'
scoring path.

Cheap on purpose (the machine is shared): tiny 8-feature models, sizes <= 64x64, at most 3 timed runs. No test
asserts a speed; they check the relations between the figures, the MAC count against a hand count, the JSON
round trip, and the CLI's errors.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import graph_onnx, psnr_np, run_cli, run_cli_without_torch, tiny_model, tiny_onnx

from edgedenoise.runtime import bench
from edgedenoise.runtime.bench import (
    BenchReport,
    BenchRow,
    BenchSettings,
    MatmulCeiling,
    Target,
    bench_artifact,
    check_precision,
    macs_from_contract,
    parse_sizes,
    read_json,
    read_onnx_contract,
    resolve_targets,
    time_runs,
)
from edgedenoise.runtime.contract import MACS_PER_PIXEL_KEY
from edgedenoise.runtime.errors import ArtifactError, InvalidInputError

ROOT = Path(__file__).resolve().parent.parent
# rednet10 with 8 features, all 3x3 stride 1: conv 1->8, four conv 8->8, four deconv 8->8, deconv 8->1.
RED10_F8_MACS = 9 * (1 * 8 + 8 * 8 * 8 + 8 * 1)  # = 4752 per pixel


def _row(**over: object) -> BenchRow:
    base: dict[str, object] = dict(
        model="m",
        artifact="m.onnx",
        backend="ort-cpu",
        providers=("CPUExecutionProvider",),
        precision="fp32",
        height=32,
        width=64,
        batch=2,
        threads=1,
        warmup=1,
        samples_ms=(10.0, 40.0, 20.0, 30.0),
        macs_per_pixel=1000.0,
        macs_source="onnx-metadata",
        rss_start_mib=50.0,
        peak_rss_mib=60.0,
        memory_method="rss-sampled",
    )
    base.update(over)
    return BenchRow(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------- figures


def test_row_figures_follow_the_documented_formulas() -> None:
    r = _row()
    samples = np.array([10.0, 40.0, 20.0, 30.0])
    for q, got in ((50, r.p50_ms), (90, r.p90_ms), (99, r.p99_ms)):
        assert got == pytest.approx(float(np.percentile(samples, q)), rel=1e-12)
    assert r.p50_ms == 25.0  # median of 10, 20, 30, 40
    assert r.frames_per_s == pytest.approx(2 * 1000.0 / 25.0, rel=1e-12)  # batch * 1000 / p50 ms
    assert r.mp_per_s == pytest.approx(80.0 * 32 * 64 / 1e6, rel=1e-12)
    assert r.gflops == pytest.approx(2 * 1000.0 * 32 * 64 * 2 / 0.025 / 1e9, rel=1e-12)
    assert r.size == "64x32" and r.iters == 4
    assert _row(macs_per_pixel=None).gflops is None
    with pytest.raises(ValueError):
        _row(samples_ms=())


def test_parse_sizes_is_width_by_height() -> None:
    assert parse_sizes("512x512,1920x1080") == [(512, 512), (1080, 1920)]
    for bad in ("512", "0x4", "axb", "12x", ""):
        with pytest.raises(InvalidInputError):
            parse_sizes(bad)


def test_time_runs_counts_warmup_and_stops_at_max_seconds() -> None:
    calls = []
    t = time_runs(lambda: calls.append(1), warmup=2, iters=3)
    assert len(t.samples_ms) == 3 and t.warmup_runs == 2 and len(calls) == 5 and all(s >= 0 for s in t.samples_ms)
    assert t.memory_method in ("rss-sampled", "ru_maxrss", "none")
    if t.memory_method == "rss-sampled":
        assert t.rss_start_mib is not None and t.peak_rss_mib is not None
        assert t.peak_rss_mib >= t.rss_start_mib > 0
    calls.clear()
    # A budget of 0 s is spent by the first run of each phase: one warm-up, then the minimum of timed runs.
    t = time_runs(lambda: calls.append(1), warmup=5, iters=50, max_seconds=0.0)
    assert t.warmup_runs == 1 and len(t.samples_ms) == bench.MIN_TIMED and len(calls) == 1 + bench.MIN_TIMED
    t = time_runs(lambda: None, warmup=0, iters=2, max_seconds=0.0)  # fewer iters than the minimum: iters
    assert t.warmup_runs == 0 and len(t.samples_ms) == 2
    for bad in ({"warmup": -1, "iters": 1}, {"warmup": 0, "iters": 0}, {"warmup": 0, "iters": 1, "max_seconds": -1}):
        with pytest.raises(InvalidInputError):
            time_runs(lambda: None, **bad)  # type: ignore[arg-type]


def test_rss_sampler_sees_a_large_allocation() -> None:
    if bench.current_rss_bytes() is None:
        pytest.skip("no RSS source on this platform")
    with bench.RssSampler(interval=0.001) as s:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
    assert s.peak_mib is not None and s.start_mib is not None
    assert s.peak_mib - s.start_mib > 48  # the block was resident while sampled (the last sample at exit at least)


def test_matmul_ceiling_formula() -> None:
    c = bench.matmul_ceiling(64, repeats=2)
    assert c.n == 64 and c.repeats == 2 and c.best_s > 0
    assert c.gflops == pytest.approx(2 * 64**3 / c.best_s / 1e9, rel=1e-12)
    assert "GFLOP/s" in c.line()


# ---------------------------------------------------------------- a real run on a tiny model


@pytest.fixture(scope="module")
def tiny_rows() -> list[BenchRow]:
    path = tiny_onnx("rednet10")
    settings = BenchSettings(sizes=[(32, 32), (48, 64)], batch=2, warmup=1, iters=3, threads=1)
    return bench_artifact(Target("tiny", path, "fp32"), settings)


def test_export_writes_the_mac_count() -> None:
    from edgedenoise.export.reparam import reparameterize
    from edgedenoise.models import count_macs_per_pixel

    meta = read_onnx_contract(tiny_onnx("rednet10")).metadata
    assert float(meta[MACS_PER_PIXEL_KEY]) == RED10_F8_MACS
    assert count_macs_per_pixel(reparameterize(tiny_model("rednet10"))[0]) == RED10_F8_MACS


def test_export_reserves_the_mac_key(tmp_path: Path) -> None:
    from edgedenoise.export.onnx_export import export_onnx

    with pytest.raises(InvalidInputError, match=MACS_PER_PIXEL_KEY):
        export_onnx(tiny_model("rednet10"), tmp_path / "x.onnx", extra_metadata={MACS_PER_PIXEL_KEY: "1"})
    assert not list(tmp_path.iterdir())


def test_bench_artifact_rows(tiny_rows: list[BenchRow]) -> None:
    assert [(r.height, r.width) for r in tiny_rows] == [(32, 32), (48, 64)]
    for r in tiny_rows:
        assert r.iters == 3 and r.warmup == 1 and r.batch == 2 and r.precision == "fp32" and r.backend == "ort-cpu"
        assert r.providers == ("CPUExecutionProvider",)
        assert r.macs_per_pixel == RED10_F8_MACS and r.macs_source == "onnx-metadata"
        p50_s = float(np.percentile(r.samples_ms, 50)) / 1000.0
        assert r.gflops == pytest.approx(2 * RED10_F8_MACS * r.height * r.width * 2 / p50_s / 1e9, rel=1e-9)
        assert r.frames_per_s == pytest.approx(2 / p50_s, rel=1e-9)
        if r.memory_method == "rss-sampled":
            assert r.peak_rss_mib is not None and r.rss_start_mib is not None and r.peak_rss_mib >= r.rss_start_mib


def test_json_round_trip(tiny_rows: list[BenchRow], tmp_path: Path) -> None:
    report = BenchReport(tuple(tiny_rows), bench.machine_info(), MatmulCeiling(64, 3, 0.001))
    path = report.write_json(tmp_path / "b.json")
    back = read_json(path)
    assert back == report
    raw = json.loads(path.read_text())
    assert raw["rows"][1]["derived"]["p90_ms"] == tiny_rows[1].p90_ms
    assert raw["ceiling"]["gflops"] == report.ceiling.gflops  # type: ignore[union-attr]
    table = report.markdown().splitlines()
    assert table[0].startswith("| model | precision |") and len([t for t in table if t.startswith("| tiny |")]) == 2
    assert table[-1].startswith("float32 matmul ceiling:")
    with pytest.raises(ArtifactError):
        BenchReport.from_dict({"format": "something else"})


def test_torch_eager_rows_match_the_onnx_mac_count(tmp_path: Path) -> None:
    from edgedenoise.models import save_weights
    from edgedenoise.torch_bench import TorchEagerSource

    weights = save_weights(tiny_model("rednet10"), tmp_path / "tiny10.safetensors")
    settings = BenchSettings(sizes=[(32, 48)], warmup=1, iters=2, threads=1)
    report = bench.bench_models([weights], TorchEagerSource(), settings, matmul_n=0)
    (row,) = report.rows
    assert row.backend == "torch" and row.model == "tiny10" and row.iters == 2 and row.width == 48
    assert row.macs_per_pixel == RED10_F8_MACS and row.macs_source == "torch-count"
    assert row.providers[0].startswith("torch ")


# ---------------------------------------------------------------- artifacts and MAC sources


def test_precision_resolution_beside_a_file(tmp_path: Path) -> None:
    fp32 = tmp_path / "tiny.onnx"
    shutil.copy(tiny_onnx("rednet10"), fp32)
    assert resolve_targets(fp32, None, "ort-cpu") == [Target("tiny", fp32, None)]
    assert resolve_targets(fp32, ["fp32"], "ort-cpu") == [Target("tiny", fp32, "fp32")]
    with pytest.raises(ArtifactError, match=r"tiny\.int8\.cpu\.onnx does not exist.*--int8 --flavour cpu"):
        resolve_targets(fp32, ["int8"], "ort-cpu")
    with pytest.raises(ArtifactError, match=r"tiny\.int8\.trt\.onnx"):  # TensorRT takes the symmetric flavour
        resolve_targets(fp32, ["int8"], "ort-tensorrt")
    fake = tmp_path / "tiny.int8.cpu.onnx"
    shutil.copy(fp32, fake)  # an FP32 model under the INT8 name: refused when its metadata is read
    (t8,) = resolve_targets(fp32, ["int8"], "ort-cpu")
    assert t8 == Target("tiny", fake, "int8")
    settings = BenchSettings(sizes=[(16, 16)], iters=1, warmup=0)
    with pytest.raises(ArtifactError, match="metadata says fp32"):
        bench.bench_models([fp32], settings=settings, precisions=["int8"], matmul_n=0)


def test_shipped_names_default_to_fp32_plus_shipped_int8() -> None:
    names = bench.shipped_models()
    assert "rednet30" in names and all("." not in n for n in names)
    targets = resolve_targets("rednet", None, "ort-cpu")  # alias
    assert targets[0].model == "rednet30" and targets[0].precision == "fp32"
    assert targets[0].path.name == "rednet30.onnx"
    int8 = targets[0].path.parent / "rednet30.int8.cpu.onnx"
    assert [t.path for t in targets[1:]] == ([int8] if int8.is_file() else [])


def test_a_shipped_name_with_its_precision_is_that_file() -> None:
    """``unet3_f32_u4_nl.int8.cpu`` (the form ``infer`` takes) names one file: benchmarked as the INT8 it is."""
    (t,) = resolve_targets("unet3_f32_u4_nl.int8.cpu", None, "ort-cpu")
    assert t.model == "unet3_f32_u4_nl" and t.path.name == "unet3_f32_u4_nl.int8.cpu.onnx" and t.precision is None
    check_precision(t, read_onnx_contract(t.path))  # the metadata agrees: no refusal
    assert read_onnx_contract(t.path).precision == "int8"
    (t8,) = resolve_targets("unet3_f32_u4_nl.int8.cpu", ["int8"], "ort-cpu")
    assert t8 == Target("unet3_f32_u4_nl", t.path, "int8")


def test_shipped_models_skip_precision_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.onnx", "a.int8.cpu.onnx", "a.fp16.onnx", "b.onnx", "b.json"):
        (tmp_path / name).write_bytes(b"")
    from edgedenoise.runtime import artifact

    monkeypatch.setattr(artifact, "weights_dir", lambda: tmp_path)
    assert bench.shipped_models() == ["a", "b"]


def test_macs_from_a_model_card_when_metadata_lacks_them(tmp_path: Path) -> None:
    cfg = '{"arch": "ident", "in_channels": 1}'
    model = tmp_path / "ident.onnx"
    shutil.copy(graph_onnx("identity", cfg), model)
    contract = read_onnx_contract(model)
    assert MACS_PER_PIXEL_KEY not in contract.metadata
    assert macs_from_contract(contract, model) == (None, None)
    (tmp_path / "ident.json").write_text(json.dumps({"arch": "other", "macs_per_pixel": 123.0}))
    assert macs_from_contract(contract, model) == (None, None)  # a card of another architecture is ignored
    (tmp_path / "ident.json").write_text(json.dumps({"arch": "ident", "macs_per_pixel": 123.0}))
    assert macs_from_contract(contract, model) == (123.0, "model-card")


# ---------------------------------------------------------------- CLI


def test_cli_without_torch_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    md = tmp_path / "b.md"
    args = [
        "bench",
        str(tiny_onnx("rednet10")),
        "--size",
        "32x32,48x32",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--matmul",
        "64",
        "--json",
        str(out),
        "--markdown",
        str(md),
    ]
    res = run_cli_without_torch(args, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    # the machine line first: its CPU features decide how much INT8 gains
    assert lines[0].startswith("Machine: ") and "logical cores" in lines[0] and lines[1] == ""
    assert lines[2].startswith("| model | precision | backend [providers] | size |")
    rows = [ln for ln in lines if ln.startswith("| rednet10_c1 |")]
    assert len(rows) == 2 and "| 48x32 |" in rows[1]
    assert lines[-1].startswith("float32 matmul ceiling:")
    report = read_json(out)
    assert [(r.height, r.width, r.iters) for r in report.rows] == [(32, 32, 2), (32, 48, 2)]
    assert "torch" not in report.machine  # the no-torch path reports no torch
    assert md.read_text().startswith("Machine: ")


def test_cli_bad_size_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["bench", str(tiny_onnx("rednet10")), "--size", "32"], capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == ["Error: size '32' is not WIDTHxHEIGHT with positive integers (e.g. 1920x1080)"]


def test_bench_pads_a_frame_to_the_size_multiple(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 33x31 frame on a size-multiple-2 model is timed as the Denoiser runs it (padded to 34x32), and reported
    at the frame's own size."""
    out = tmp_path / "b.json"
    opts = ["--size", "33x31", "--iters", "1", "--warmup", "0", "--matmul", "0", "--json", str(out)]
    code, _, err = run_cli(["bench", str(tiny_onnx("rednet10_s2")), *opts], capsys)
    assert code == 0, err
    (row,) = read_json(out).rows
    assert (row.height, row.width) == (31, 33)


def test_cli_missing_int8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "tiny.onnx"
    shutil.copy(tiny_onnx("rednet10"), model)
    code, out, err = run_cli(["bench", str(model), "--precision", "int8", "--size", "16x16"], capsys)
    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert "no int8 artifact for tiny" in line and "edgedenoise export --model tiny --int8 --flavour cpu" in line


def test_cli_torch_backend_refuses_onnx(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["bench", str(tiny_onnx("rednet10")), "--backend", "torch", "--size", "16x16"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "exported artifact" in err


# ---------------------------------------------------------------- baselines (only with the bench extra)


def _baselines():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("baselines", ROOT / "benchmarks" / "baselines.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def tiny_set(tmp_path: Path) -> tuple[Path, np.ndarray]:
    from PIL import Image

    y, x = np.mgrid[0:24, 0:24]
    clean = np.clip(128 + 60 * np.sin(x / 3.0) + 40 * np.cos(y / 4.0), 0, 255).astype(np.uint8)
    Image.fromarray(clean).save(tmp_path / "img.png")
    return tmp_path, clean


def test_nlm_baseline_scores_like_the_protocol(tiny_set: tuple[Path, np.ndarray]) -> None:
    cv2 = pytest.importorskip("cv2", reason="OpenCV (bench extra) not installed")
    from edgedenoise.runtime.metrics import awgn

    folder, clean = tiny_set
    base = _baselines()
    got = base.score(base.nlm_denoiser(20.0), folder, 25.0, seed=3, limit=None)
    noisy = awgn(clean.astype(np.float32) / 255, 25.0, 3)  # image 0 gets seed + 0
    u8 = np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    ref = cv2.fastNlMeansDenoising(u8, None, h=20.0, templateWindowSize=7, searchWindowSize=21)
    assert got["n_images"] == 1 and got["seconds_per_image"] > 0
    assert got["psnr"] == pytest.approx(psnr_np(ref, clean), abs=1e-9)


def test_bm3d_baseline_scores_like_the_protocol(
    tiny_set: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    bm3d = pytest.importorskip("bm3d", reason="bm3d (bench extra) not installed")
    from edgedenoise.runtime.metrics import awgn

    real, calls = bm3d.bm3d, []

    def spy(z: np.ndarray, sigma_psd: float) -> np.ndarray:  # one real BM3D call (about 1 s), recorded
        out = real(z, sigma_psd=sigma_psd)
        calls.append((z.copy(), sigma_psd, np.asarray(out)))
        return out

    monkeypatch.setattr(bm3d, "bm3d", spy)
    folder, clean = tiny_set
    base = _baselines()
    got = base.score(base.bm3d_denoiser(25.0), folder, 25.0, seed=0, limit=None)
    ((z, sigma_psd, out),) = calls
    noisy = awgn(clean.astype(np.float32) / 255, 25.0, 0)  # image 0 gets seed + 0, unclipped
    np.testing.assert_array_equal(z, noisy)
    assert sigma_psd == 25.0 / 255
    ref = np.rint(np.clip(out, 0, 1) * 255)
    assert got["psnr"] == pytest.approx(psnr_np(ref, clean), abs=1e-9)
    assert got["psnr"] > psnr_np(np.rint(np.clip(noisy, 0, 1) * 255), clean)  # it does denoise
