"""Which precision runs fastest here: CPU instruction-set features and a short, cached timing probe.

INT8 is not faster on every CPU. ONNX Runtime's U8S8 kernels use AVX-512 VNNI (or AVX-VNNI) dot products where
the CPU has them: on such a 2-core Xeon RED30 INT8 ran 3.25x its FP32. On a 2-core AMD EPYC Zen 1 (AVX2 executed
as two 128-bit halves) the same file ran at 1.00x, and the real-time model at 0.95x. So, for a shipped model
named without a precision, the runtime measures instead of assuming: :func:`choose_precision` times the FP32 file
and its INT8 sibling (``<name>.int8.cpu.onnx``, which passed the export's quality gate, so either is within the
quality budget) on one small frame and takes the faster, unless INT8 is not at least 5 % faster. The verdict is
cached per machine (CPU model and features, ONNX Runtime version, threads) and file (size and modification time)
in ``$XDG_CACHE_HOME/edgedenoise/precision.json`` (``~/.cache/...``), so it costs a second once.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifact import MODEL_ALIASES, ONNX_SUFFIX, weights_dir
from .atomic import write_atomic
from .backend import BackendKind, open_backend
from .errors import InvalidInputError

#: Instruction-set extensions that decide how fast ONNX Runtime's CPU kernels run (x86 names in /proc/cpuinfo,
#: and the Arm ones a Jetson reports).
RELEVANT_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "bf16",
)  # fmt: skip
PROBE_SIZE = 256  # pixels per side of the probe frame
PROBE_RUNS = 3
MIN_GAIN = 1.05  # INT8 must be at least 5 % faster to be chosen


def cpu_features() -> list[str]:
    """The :data:`RELEVANT_FLAGS` this CPU reports (Linux ``/proc/cpuinfo`` ``flags`` / ``Features``), in that
    order; empty where the OS does not tell."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return [f for f in RELEVANT_FLAGS if f in flags]


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class PrecisionChoice:
    """What :func:`choose_precision` decided.

    Attributes:
        path: the artifact to run.
        precision: ``"fp32"`` or ``"int8"``.
        ms: median probe latency per candidate (``{"fp32": ms, "int8": ms}``), in milliseconds.
        cached: the verdict came from the cache file.
    """

    path: Path
    precision: str
    ms: dict[str, float]
    cached: bool

    def summary(self) -> str:
        """One line, e.g. ``int8 chosen: 41.2 ms vs fp32 78.9 ms on a 256x256 probe (cached)``."""
        other = "fp32" if self.precision == "int8" else "int8"
        vs = f" vs {other} {self.ms[other]:.1f} ms" if other in self.ms else ""
        return (
            f"{self.precision} chosen: {self.ms.get(self.precision, float('nan')):.1f} ms{vs} on a "
            f"{PROBE_SIZE}x{PROBE_SIZE} probe{' (cached)' if self.cached else ''}"
        )


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgedenoise" / "precision.json"


def _key(fp32: Path, int8: Path, threads: int | None) -> str:
    from .optional import onnxruntime_module

    stamp = [f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in (fp32, int8)]
    ort_version = getattr(onnxruntime_module(), "__version__", "?")
    return "|".join(
        [fp32.name, *stamp, cpu_name(), ",".join(cpu_features()), f"ort {ort_version}", f"threads {threads or 0}"]
    )


def _probe_ms(path: Path, threads: int | None) -> float:
    backend, _ = open_backend(path, "ort-cpu", threads=threads)
    with backend:
        spec = backend.input_spec
        m = backend.contract.cfg.size_multiple
        side = -(-PROBE_SIZE // m) * m
        x = np.random.default_rng(0).random((1, spec.channels, side, side), dtype=np.float32)
        noise = np.full((1, 1, side, side), 25.0 / 255.0, np.float32) if spec.noise_level else None
        backend.run(x, noise)  # warm-up
        times = []
        for _ in range(PROBE_RUNS):
            t0 = time.perf_counter()
            backend.run(x, noise)
            times.append(1000.0 * (time.perf_counter() - t0))
    return float(np.median(times))


def choose_precision(name: str, threads: int | None = None) -> PrecisionChoice | None:
    """For a shipped model name with both an FP32 and a CPU INT8 file, the faster of the two on this machine.

    Returns None when there is nothing to choose (no INT8 file ships for ``name``). The probe runs on ONNX
    Runtime's CPU provider with ``threads``; the cache is read and written as the module docstring says (an
    unwritable cache is not an error: the probe just runs again next time).
    """
    fp32 = weights_dir() / f"{name}{ONNX_SUFFIX}"
    int8 = weights_dir() / f"{name}.int8.cpu{ONNX_SUFFIX}"
    if not (fp32.is_file() and int8.is_file()):
        return None
    key = _key(fp32, int8, threads)
    cache = _cache_file()
    table: dict[str, dict[str, float]] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(cache.read_text())
        if isinstance(loaded, dict):
            table = loaded
    ms = table.get(key)
    cached = isinstance(ms, dict) and {"fp32", "int8"} <= set(ms)
    if not cached:
        ms = {"fp32": _probe_ms(fp32, threads), "int8": _probe_ms(int8, threads)}
        table[key] = ms
        with contextlib.suppress(OSError):
            write_atomic(cache, json.dumps(table, indent=1, sort_keys=True) + "\n")
    assert ms is not None
    faster = ms["int8"] * MIN_GAIN <= ms["fp32"]
    return PrecisionChoice(int8 if faster else fp32, "int8" if faster else "fp32", dict(ms), bool(cached))


def resolve_precision(
    model: str | Path, precision: str, backend: str | BackendKind, device: int | None, threads: int | None
) -> tuple[str | Path, PrecisionChoice | None]:
    """The artifact a shipped model name runs as under ``precision`` (see :class:`~.denoiser.Denoiser`), and the
    probe's verdict when one ran.

    Raises:
        InvalidInputError: an unknown ``precision``, or ``int8`` for a model without an INT8 file.
    """
    if precision not in ("auto", "fp32", "int8"):
        raise InvalidInputError(f"unknown precision {precision!r}; choose auto, fp32 or int8")
    text = str(model)
    name = MODEL_ALIASES.get(text, text)
    if Path(text).suffix or "/" in text or "\\" in text or not (weights_dir() / f"{name}.onnx").is_file():
        return model, None  # a path, or a name that already says its precision: run as given
    if precision == "fp32":
        return name, None
    if precision == "int8":
        if not (weights_dir() / f"{name}.int8.cpu.onnx").is_file():
            raise InvalidInputError(f"no INT8 file ships for {name}; use precision fp32, or export one")
        return f"{name}.int8.cpu", None
    kind = BackendKind.parse(backend)
    on_cpu = kind is BackendKind.ORT_CPU or (kind is BackendKind.AUTO and device is None and not _has_cuda_ep())
    if not on_cpu:
        return name, None
    choice = choose_precision(name, threads)
    return (choice.path if choice else name), choice


def _has_cuda_ep() -> bool:
    from .optional import onnxruntime_module

    with contextlib.suppress(Exception):
        return "CUDAExecutionProvider" in onnxruntime_module().get_available_providers()
    return False


__all__ = [
    "MIN_GAIN",
    "PROBE_SIZE",
    "RELEVANT_FLAGS",
    "PrecisionChoice",
    "choose_precision",
    "cpu_features",
    "cpu_name",
    "resolve_precision",
]
