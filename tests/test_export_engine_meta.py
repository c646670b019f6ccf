"""The engine sidecar schema (runtime/engine_meta.py): round trip, validation, mismatch detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import engine_meta

from edgedenoise.runtime.contract import ModelCfg
from edgedenoise.runtime.engine_meta import (
    EngineMeta,
    Profile,
    mismatches,
    read_sidecar,
    runtime_mismatches,
    sidecar_path,
    write_sidecar,
)
from edgedenoise.runtime.errors import ArtifactError

CFG = ModelCfg(arch="rednet30", in_channels=1, receptive_field=63, noise="awgn:0-55")
PROFILE = Profile((1, 1, 64, 64), (1, 1, 512, 512), (4, 1, 1088, 1920))


def _meta(**changes: object) -> EngineMeta:
    """A TensorRT 10.13 sidecar with the informational fields filled in, as a real build writes it."""
    built = {
        "tensorrt_version": "10.13.0.35",
        "source_onnx_sha256": "0" * 63 + "a",
        "edgedenoise_version": "0.1.0",
        "built_at": "2025-01-01T00:00:00+00:00",
    }
    return engine_meta(CFG, PROFILE, **(built | changes))


def test_sidecar_round_trip(tmp_path: Path) -> None:
    engine = tmp_path / "rednet30.int8.engine"
    path = write_sidecar(engine, _meta())
    assert path == tmp_path / "rednet30.int8.engine.json" == sidecar_path(engine)
    data = json.loads(path.read_text())
    assert data["schema"] == 1
    assert data["profile"] == {"min": [1, 1, 64, 64], "opt": [1, 1, 512, 512], "max": [4, 1, 1088, 1920]}
    assert data["model_cfg"]["arch"] == "rednet30" and data["input_name"] == "noisy"
    assert read_sidecar(engine) == _meta()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d.update(schema=2), "schema 2"),
        (lambda d: d.update(extra=1), "unknown fields \\['extra'\\]"),
        (lambda d: d.pop("gpu_name"), "lacks \\['gpu_name'\\]"),
        (lambda d: d.update(precision="int4"), "int4"),
        (lambda d: d.update(source_onnx_sha256="xyz"), "xyz"),
        (lambda d: d["profile"].update(min=[1, 1, 600, 600]), "min <= opt <= max"),
        (lambda d: d["profile"].update(max=[1, 1, 1088]), "4 axes"),
        (lambda d: d["model_cfg"].update(in_channels=3), "3 channels|channels"),
        (lambda d: d.update(gpu_name=7), "gpu_name"),
    ],
)
def test_invalid_sidecar_raises(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    engine = tmp_path / "m.engine"
    data = _meta().to_dict()
    edit(data)
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=match):
        read_sidecar(engine)


def test_missing_or_garbled_sidecar(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no sidecar 'm.engine.json'.*edgedenoise build"):
        read_sidecar(tmp_path / "m.engine")
    sidecar_path(tmp_path / "m.engine").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_sidecar(tmp_path / "m.engine")


def test_mismatches_name_every_differing_field() -> None:
    assert mismatches(_meta(), _meta(built_at="later", edgedenoise_version="9")) == []
    other = _meta(
        tensorrt_version="10.3.0",
        compute_capability="8.6",
        profile=Profile((1, 1, 64, 64), (1, 1, 256, 256), (4, 1, 1088, 1920)),
        model_cfg=CFG.replace(noise="awgn:25"),
    )
    diffs = mismatches(_meta(), other)
    assert [d.split(":")[0] for d in diffs] == ["tensorrt_version", "compute_capability", "profile", "model_cfg"]
    assert "have '10.13.0.35', want '10.3.0'" in diffs[0]
    assert '"opt":[1,1,512,512]' in diffs[2] and '"opt":[1,1,256,256]' in diffs[2]


def test_runtime_mismatches() -> None:
    meta = _meta()
    assert (
        runtime_mismatches(meta, tensorrt_version="10.13.0.35", gpu_name="NVIDIA Orin", compute_capability="8.7") == []
    )
    diffs = runtime_mismatches(meta, tensorrt_version="10.13.0.35", gpu_name="NVIDIA H100", compute_capability="9.0")
    assert diffs == [
        "gpu_name: engine 'NVIDIA Orin', here 'NVIDIA H100'",
        "compute_capability: engine '8.7', here '9.0'",
    ]


def test_profile_contains() -> None:
    assert PROFILE.contains((1, 1, 64, 64)) and PROFILE.contains((4, 1, 1088, 1920))
    assert not PROFILE.contains((1, 1, 63, 64))
    assert not PROFILE.contains((5, 1, 512, 512))
    assert not PROFILE.contains((1, 3, 512, 512))
    assert not PROFILE.contains((1, 512, 512))
