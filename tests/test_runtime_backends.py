"""Backend choice: `auto`, explicit requests, fallbacks that are reported, and honest TensorRT detection."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from runtime_helpers import tiny_onnx

from edgedenoise.runtime import Denoiser
from edgedenoise.runtime.backend import BackendKind, candidates, open_backend
from edgedenoise.runtime.contract import ModelCfg
from edgedenoise.runtime.engine_meta import EngineMeta, Profile, write_sidecar
from edgedenoise.runtime.errors import ArtifactError, BackendUnavailableError, InvalidInputError
from edgedenoise.runtime.optional import tensorrt_module
from edgedenoise.runtime.ort_backend import OrtBackend, node_providers_from_profile

HAS_CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()
needs_no_cuda = pytest.mark.skipif(HAS_CUDA_EP, reason="this onnxruntime build has the CUDA provider")


def test_candidates_order() -> None:
    onnx, engine = Path("m.onnx"), Path("m.int8.engine")
    assert candidates(onnx, BackendKind.AUTO, False, None) == [BackendKind.ORT_CUDA, BackendKind.ORT_CPU]
    assert candidates(onnx, BackendKind.AUTO, False, 0) == [BackendKind.ORT_CUDA]  # a GPU index asks for a GPU
    assert candidates(onnx, BackendKind.ORT_CUDA, False, None) == [BackendKind.ORT_CUDA]
    assert candidates(onnx, BackendKind.ORT_TENSORRT, True, None) == [
        BackendKind.ORT_TENSORRT,
        BackendKind.ORT_CUDA,
        BackendKind.ORT_CPU,
    ]
    assert candidates(engine, BackendKind.AUTO, True, None) == [BackendKind.TENSORRT]
    with pytest.raises(InvalidInputError, match="only the 'tensorrt' backend"):
        candidates(engine, BackendKind.ORT_CPU, False, None)
    with pytest.raises(InvalidInputError, match=r"\.engine files"):
        candidates(onnx, BackendKind.TENSORRT, False, None)
    with pytest.raises(InvalidInputError, match="choose one of"):
        BackendKind.parse("cuda")


@needs_no_cuda
def test_requested_gpu_backend_that_cannot_run_is_an_error() -> None:
    for name in ("ort-cuda", "ort-tensorrt"):
        with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
            Denoiser(tiny_onnx("rednet10"), backend=name)
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        Denoiser(tiny_onnx("rednet10"), device=0)  # auto, but a GPU index was given


@needs_no_cuda
def test_fallback_only_when_allowed_and_reported() -> None:
    with Denoiser(tiny_onnx("rednet10"), backend="ort-cuda", allow_fallback=True) as d:
        info = d.info
        assert info.backend == "ort-cpu" and info.requested == "ort-cuda"
        assert info.fallbacks and info.fallbacks[0].startswith("ort-cuda: ")
        assert "not used: ort-cuda" in info.summary()
        assert d(np.zeros((8, 8), np.float32)).shape == (8, 8)


@needs_no_cuda
@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available")
def test_provider_that_silently_does_not_load_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend the build lists the CUDA provider (as onnxruntime-gpu does on a machine without a GPU): ONNX
    # Runtime then creates a CPU-only session with a warning. The backend must refuse it.
    real = ort.get_available_providers
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real()])
    with pytest.raises(BackendUnavailableError, match="did not load"):
        OrtBackend(tiny_onnx("rednet10"), BackendKind.ORT_CUDA)


def test_node_providers_from_a_profile_trace() -> None:
    events = [
        {"cat": "Session", "name": "model_run"},
        {"cat": "Node", "name": "conv1_kernel_time", "args": {"provider": "CUDAExecutionProvider"}},
        {"cat": "Node", "name": "conv1_fence_before", "args": {}},
        {"cat": "Node", "name": "conv2_kernel_time", "args": {"provider": "CUDAExecutionProvider"}},
        {"cat": "Node", "name": "conv2_kernel_time", "args": {"provider": "CUDAExecutionProvider"}},
        {"cat": "Node", "name": "shape_kernel_time", "args": {"provider": "CPUExecutionProvider"}},
    ]
    assert node_providers_from_profile(events) == {"CUDAExecutionProvider": 2, "CPUExecutionProvider": 1}


def test_open_backend_reports_what_ran() -> None:
    backend, info = open_backend(tiny_onnx("rednet10"), "ort-cpu", threads=1)
    with backend:
        assert info.backend == "ort-cpu" and info.fallbacks == () and info.device == "cpu"
        assert backend.input_spec.channels == 1 and backend.input_spec.max_hw is None
        y = backend.run(np.zeros((2, 1, 9, 11), np.float32))
        assert y.shape == (2, 1, 9, 11) and y.dtype == np.float32


def _engine_with_sidecar(tmp_path: Path) -> Path:
    engine = tmp_path / "m.fp16.engine"
    engine.write_bytes(b"\x00" * 64)
    meta = EngineMeta(
        tensorrt_version="10.3.0",
        gpu_name="NVIDIA Orin",
        compute_capability="8.7",
        precision="fp16",
        profile=Profile((1, 1, 64, 64), (1, 1, 512, 512), (1, 1, 1088, 1920)),
        source_onnx_sha256="0" * 64,
        model_cfg=ModelCfg(arch="rednet30", receptive_field=61),
    )
    write_sidecar(engine, meta)
    return engine


def test_engine_needs_its_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(ArtifactError, match="no sidecar"):
        Denoiser(engine)
    sidecar = _engine_with_sidecar(tmp_path)
    bad = json.loads(Path(str(sidecar) + ".json").read_text())
    bad["schema"] = 99
    Path(str(sidecar) + ".json").write_text(json.dumps(bad))
    with pytest.raises(ArtifactError, match="schema"):
        Denoiser(sidecar)


@pytest.mark.skipif(tensorrt_module() is not None, reason="real TensorRT is installed here")
def test_engine_without_real_tensorrt_is_unavailable(tmp_path: Path) -> None:
    # tensorrt-stubs makes `import tensorrt` succeed as an empty namespace package; that is not TensorRT.
    if importlib.util.find_spec("tensorrt") is not None:
        import tensorrt

        assert not hasattr(tensorrt, "Builder")
    with pytest.raises(BackendUnavailableError, match="needs TensorRT"):
        Denoiser(_engine_with_sidecar(tmp_path))
    with pytest.raises(BackendUnavailableError, match="needs TensorRT"):
        Denoiser(_engine_with_sidecar(tmp_path), backend="tensorrt", allow_fallback=True)


def test_runtime_alias_table_matches_the_model_registry() -> None:
    from edgedenoise.models import aliases
    from edgedenoise.runtime.artifact import MODEL_ALIASES

    assert aliases() == MODEL_ALIASES
