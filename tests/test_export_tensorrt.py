"""TensorRT engine building: the logic around the API (profiles, plans, cache keys, reuse), and a real build.

The real build (``-m trt``) runs only where TensorRT, cuda-python and a GPU are present; everything else runs
everywhere and never imports TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import engine_meta

from edgedenoise.export.tensorrt_build import (
    ENGINE_NOTICE,
    GpuInfo,
    default_cache_dir,
    default_engine_path,
    engines_available,
    make_profile,
    parse_hw,
    plan_build,
    reuse_reasons,
    timing_cache_path,
)
from edgedenoise.runtime.contract import FLAVOUR_KEY, PRECISION_KEY, ModelCfg
from edgedenoise.runtime.engine_meta import EngineMeta, Profile, write_sidecar
from edgedenoise.runtime.errors import ArtifactError, BackendUnavailableError, InvalidInputError
from edgedenoise.runtime.optional import tensorrt_module

CFG1 = ModelCfg(arch="rednet30", size_multiple=1, receptive_field=61)
CFG2 = ModelCfg(arch="rednet30_s2", size_multiple=2, receptive_field=119)


def test_parse_hw_takes_width_x_height() -> None:
    assert parse_hw("1920x1080") == (1080, 1920)  # WxH on the command line, as bench and image tools write it
    assert parse_hw(" 64 X 32 ") == (32, 64)
    for bad in ("512", "0x5", "ax4", "5x-1", "5x5x5", "5x5,6x6"):
        with pytest.raises(InvalidInputError, match="WIDTHxHEIGHT"):
            parse_hw(bad)


def test_profile_rounds_to_the_size_multiple() -> None:
    p = make_profile(CFG2, (63, 65), (511, 513), (1081, 1919), batch=4)
    # min rounded up, max down, opt to the nearest multiple of 2; batch 1..4, opt at the largest batch
    assert p == Profile((1, 1, 64, 66), (4, 1, 512, 514), (4, 1, 1080, 1918))
    assert all(v % 2 == 0 for shape in (p.min, p.opt, p.max) for v in shape[2:])
    p1 = make_profile(CFG1, (63, 65), (511, 513), (1081, 1919))
    assert p1 == Profile((1, 1, 63, 65), (1, 1, 511, 513), (1, 1, 1081, 1919))
    rgb = make_profile(CFG1.replace(in_channels=3))
    assert rgb.min[1] == rgb.max[1] == 3


def test_profile_rejects_inverted_sizes() -> None:
    with pytest.raises(InvalidInputError, match="min 64x64, opt 32x32"):
        make_profile(CFG1, (64, 64), (32, 32), (128, 128))
    with pytest.raises(InvalidInputError, match="max 0x0|choose"):
        make_profile(CFG2, (1, 1), (1, 1), (1, 1))
    with pytest.raises(InvalidInputError, match="--batch"):
        make_profile(CFG1, batch=0)


def test_plan_build_precision_rules() -> None:
    int8_trt = {PRECISION_KEY: "int8", FLAVOUR_KEY: "trt"}
    assert plan_build(int8_trt, None) == plan_build(int8_trt, "int8")
    assert plan_build(int8_trt, None).precision == "int8" and plan_build(int8_trt, None).strongly_typed
    assert plan_build({PRECISION_KEY: "fp16"}, None).strongly_typed
    fp32 = {PRECISION_KEY: "fp32"}
    assert plan_build(fp32, None).precision == "fp32"
    flag_route = plan_build(fp32, "fp16")
    assert flag_route.precision == "fp16" and not flag_route.strongly_typed
    with pytest.raises(InvalidInputError, match="QDQ ONNX.*deprecated"):
        plan_build(fp32, "int8")
    with pytest.raises(InvalidInputError, match="uint8 activations"):
        plan_build({PRECISION_KEY: "int8", FLAVOUR_KEY: "cpu"}, None)
    with pytest.raises(InvalidInputError, match="fp32 engine from a int8"):
        plan_build(int8_trt, "fp32")
    with pytest.raises(ArtifactError, match="edgedenoise export"):
        plan_build({}, None)


def test_engine_and_cache_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_engine_path("out/rednet30.int8.trt.onnx", "int8") == Path("out/rednet30.int8.engine")
    assert default_engine_path("out/rednet30.fp16.onnx", "fp16") == Path("out/rednet30.fp16.engine")
    assert default_engine_path("out/rednet30.onnx", "fp16") == Path("out/rednet30.fp16.engine")
    assert default_engine_path("a.b/model.onnx", "fp32") == Path("a.b/model.fp32.engine")
    orin = GpuInfo("NVIDIA Orin (nvgpu)", "8.7")
    key = timing_cache_path(tmp_path, "10.3.0", orin)
    assert key == tmp_path / "timing-10.3.0-sm87-nvidia-orin-nvgpu.cache"
    # a different GPU, compute capability or TensorRT version never shares a timing cache
    assert len({key, timing_cache_path(tmp_path, "10.4.0", orin),
                timing_cache_path(tmp_path, "10.3.0", GpuInfo("NVIDIA Orin (nvgpu)", "8.6")),
                timing_cache_path(tmp_path, "10.3.0", GpuInfo("NVIDIA H100", "8.7"))}) == 4  # fmt: skip
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "edgedenoise" / "tensorrt"


def _meta(**kw: object) -> EngineMeta:
    return engine_meta(CFG1, make_profile(CFG1), **kw)


def test_reuse_only_when_the_sidecar_matches(tmp_path: Path) -> None:
    engine = tmp_path / "m.int8.engine"
    assert reuse_reasons(engine, _meta()) == ["no engine file"]
    engine.write_bytes(b"serialized engine")
    assert reuse_reasons(engine, _meta())[0].startswith("sidecar unusable: ")
    write_sidecar(engine, _meta(built_at="yesterday"))
    assert reuse_reasons(engine, _meta(built_at="today")) == []
    assert reuse_reasons(engine, _meta(source_onnx_sha256="cd" * 32)) == [
        f"source_onnx_sha256: have {'ab' * 32!r}, want {'cd' * 32!r}"
    ]
    reasons = reuse_reasons(engine, _meta(tensorrt_version="10.4.0", gpu_name="NVIDIA H100", precision="fp16"))
    assert [r.split(":")[0] for r in reasons] == ["tensorrt_version", "gpu_name", "precision"]
    other_profile = make_profile(CFG1, max_hw=(720, 1280))
    assert [r.split(":")[0] for r in reuse_reasons(engine, _meta(profile=other_profile))] == ["profile"]


@pytest.mark.skipif(tensorrt_module() is not None, reason="TensorRT is installed here")
def test_build_without_tensorrt_says_so(tmp_path: Path) -> None:
    from edgedenoise.export.tensorrt_build import build_engine

    assert not engines_available()
    assert "edgedenoise build" in ENGINE_NOTICE
    with pytest.raises(BackendUnavailableError, match="needs TensorRT, which is not installed"):
        build_engine(tmp_path / "missing.onnx")


def test_engine_notice_names_the_files_written() -> None:
    from edgedenoise.export.tensorrt_build import engine_notice

    assert engine_notice([]) == ENGINE_NOTICE
    only_fp32 = engine_notice([Path("out/rednet30.onnx")])
    assert only_fp32.endswith("`edgedenoise build out/rednet30.onnx`") and "int8.trt" not in only_fp32


def _cuda_ok() -> bool:
    from edgedenoise.runtime.optional import cuda_runtime_module

    cudart = cuda_runtime_module()
    if tensorrt_module() is None or cudart is None:
        return False
    err, count = cudart.cudaGetDeviceCount()
    return int(err) == 0 and count > 0


@pytest.mark.trt
@pytest.mark.skipif(not _cuda_ok(), reason="needs real TensorRT, cuda-python and an NVIDIA GPU")
def test_real_engine_build_reuse_and_run(tmp_path: Path) -> None:
    import torch

    from edgedenoise.export.calibration import CALIB_DIR, add_noise, load_images
    from edgedenoise.export.onnx_export import export_onnx, run_onnx
    from edgedenoise.export.quantize import Int8Flavour, Int8Options, preprocess_for_quantization, quantize_int8
    from edgedenoise.export.tensorrt_build import build_engine
    from edgedenoise.models import create_model
    from edgedenoise.runtime.metrics import psnr
    from edgedenoise.runtime.trt_backend import TensorRTBackend

    torch.manual_seed(0)
    model = create_model("rednet10_s2", features=8).eval()
    fp32 = export_onnx(model, tmp_path / "m.onnx")
    prepared = preprocess_for_quantization(fp32, tmp_path / "m.pre.onnx")
    calib = add_noise(load_images(CALIB_DIR / "gray", 1, 2, max_images=8), (25.0,))
    int8 = quantize_int8(prepared, tmp_path / "m.int8.trt.onnx", Int8Options(flavour=Int8Flavour.TRT),
                         inputs=calib, cache_dir=tmp_path)  # fmt: skip
    cache = tmp_path / "cache"
    x = calib[0][:, :, :96, :128]
    for onnx_path, min_psnr in ((fp32, 60.0), (int8, 35.0)):
        res = build_engine(onnx_path, min_hw=(32, 32), opt_hw=(96, 128), max_hw=(256, 256), cache_dir=cache)
        assert not res.reused and res.engine_path.is_file()
        assert res.engine_path.with_name(res.engine_path.name + ".json").is_file()
        assert list(cache.glob("timing-*.cache"))
        again = build_engine(onnx_path, min_hw=(32, 32), opt_hw=(96, 128), max_hw=(256, 256), cache_dir=cache)
        assert again.reused
        moved = build_engine(onnx_path, min_hw=(32, 32), opt_hw=(64, 64), max_hw=(256, 256), cache_dir=cache)
        assert not moved.reused and [r.split(":")[0] for r in moved.rebuilt_because] == ["profile"]
        with TensorRTBackend(res.engine_path) as backend:
            y = backend.run(x)
        ref = run_onnx(fp32, x)
        assert y.shape == ref.shape and np.isfinite(y).all()
        assert psnr(np.clip(y, 0, 1), np.clip(ref, 0, 1), data_range=1.0) > min_psnr
