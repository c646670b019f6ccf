"""Precision by measurement: a shipped name runs FP32 or INT8, whichever a cached probe finds faster here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from runtime_helpers import tiny_onnx

from edgedenoise.runtime import Denoiser, artifact, precision
from edgedenoise.runtime.errors import InvalidInputError


@pytest.fixture()
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights folder with ``tiny.onnx`` and ``tiny.int8.cpu.onnx``, and a private cache folder."""
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(tiny_onnx("rednet10"), weights / "tiny.onnx")
    shutil.copy(tiny_onnx("rednet10"), weights / "tiny.int8.cpu.onnx")
    for mod in (artifact, precision):
        monkeypatch.setattr(mod, "weights_dir", lambda: weights)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return weights


@pytest.mark.parametrize(("fp32_ms", "int8_ms", "chosen"), [(100.0, 40.0, "int8"), (100.0, 97.0, "fp32")])
def test_the_faster_file_is_chosen_and_cached(
    shipped: Path, monkeypatch: pytest.MonkeyPatch, fp32_ms: float, int8_ms: float, chosen: str
) -> None:
    calls: list[str] = []

    def probe(path: Path, threads: int | None) -> float:
        calls.append(path.name)
        return int8_ms if ".int8." in path.name else fp32_ms

    monkeypatch.setattr(precision, "_probe_ms", probe)
    first = precision.choose_precision("tiny", threads=1)
    assert first is not None and first.precision == chosen and not first.cached
    assert first.path.name == ("tiny.int8.cpu.onnx" if chosen == "int8" else "tiny.onnx")
    again = precision.choose_precision("tiny", threads=1)  # from the cache: no second probe
    assert again is not None and again.cached and again.precision == chosen and len(calls) == 2
    cache = json.loads((shipped.parent / "cache" / "edgedenoise" / "precision.json").read_text())
    (key,) = cache
    assert key.startswith("tiny.onnx|") and "threads 1" in key and cache[key] == {"fp32": fp32_ms, "int8": int8_ms}
    # a new INT8 file (another export) is probed again
    shutil.copy(tiny_onnx("rednet10_s2"), shipped / "tiny.int8.cpu.onnx")
    precision.choose_precision("tiny", threads=1)
    assert len(calls) == 4


def test_denoiser_reports_the_choice_and_honours_explicit_precisions(
    shipped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "_probe_ms", lambda path, threads: 10.0 if ".int8." in path.name else 50.0)
    with Denoiser("tiny", backend="ort-cpu", threads=1) as dn:
        assert dn.info.artifact.name == "tiny.int8.cpu.onnx"
        assert dn.precision_choice is not None and dn.precision_choice.summary().startswith("int8 chosen: 10.0 ms")
    with Denoiser("tiny", backend="ort-cpu", threads=1, precision="fp32") as dn:
        assert dn.info.artifact.name == "tiny.onnx" and dn.precision_choice is None
    with Denoiser("tiny.int8.cpu", backend="ort-cpu", threads=1) as dn:  # a name with its precision: as given
        assert dn.info.artifact.name == "tiny.int8.cpu.onnx" and dn.precision_choice is None
    with pytest.raises(InvalidInputError, match="unknown precision"):
        Denoiser("tiny", precision="int4")


def test_cpu_features_read_from_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0\nmodel name : Test CPU\nflags : fpu sse4_2 avx avx2 fma avx512f avx512_vnni\n")
    real = Path

    class FakePath(type(Path())):  # type: ignore[misc]
        def __new__(cls, *args: object) -> Path:
            return real(fake) if args == ("/proc/cpuinfo",) else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(precision, "Path", FakePath)
    assert precision.cpu_features() == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert precision.cpu_name() == "Test CPU"
