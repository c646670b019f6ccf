"""Benchmark core, torch-free: latency percentiles, throughput, peak memory and achieved GFLOP/s of artifacts.

What is timed: the backend's ``run`` on one whole ``(N, C, H, W)`` float32 batch of seeded uniform noise in
[0, 1) (:meth:`~.backend.Backend.run`): the model itself, with no tiling and no dtype conversion. The
:class:`~.denoiser.Denoiser`'s own overhead (HWC <-> NCHW, uint8, tiling) is what ``examples/bench_runtime.py``
measures. Each configuration (artifact x backend x size x batch) gets ``warmup`` untimed runs (ONNX Runtime
allocates its buffers and picks kernels on the first run of a shape), then up to ``iters`` runs, each timed
alone with :func:`time.perf_counter`. An optional time budget (``max_seconds``, :func:`time_runs`) cuts both
phases short for slow configurations (a 1080p frame through RED30 takes tens of seconds on a 2-core CPU), keeping
at least one warm-up and three timed runs; the row records how many of each really ran.

Derived figures, all from the median (p50) latency so that one slow run on a shared machine moves none of them:

* ``frames_per_s = batch * 1000 / p50_ms``; ``mp_per_s = frames_per_s * H * W / 1e6`` (input megapixels,
  all channels of a pixel count once);
* ``gflops = 2 * macs_per_pixel * H * W * batch / (p50_ms / 1000) / 1e9`` (one multiply-accumulate = two
  floating-point operations; for INT8 artifacts these are integer operations, "GOP/s", which may exceed the
  float32 ceiling). ``macs_per_pixel`` is read from the artifact's ONNX metadata
  (:data:`~.contract.MACS_PER_PIXEL_KEY`, written at export: the Conv MACs of the exported graph) or, for an
  artifact exported before that key existed, from a model card ``<base>.json`` beside it (key
  ``macs_per_pixel``, same architecture; the card counts the torch model before re-parameterisation, which
  differs by 0.04 % for the stride-2 RED30: 258,336 vs 258,448); otherwise it is unknown and ``gflops`` is None.
  ``<base>`` is a file name up to its first dot.
* ``p50/p90/p99_ms``: :func:`numpy.percentile` (linear interpolation) of the timed samples. With 20 samples
  p99 is close to the slowest run; the JSON keeps every sample.

Peak memory (``peak_rss_mib``): the resident set size of the whole process (interpreter, libraries, sessions),
sampled every :data:`RSS_INTERVAL_S` seconds by a background thread from the warm-up's start to the last timed
run; read from ``/proc/self/statm`` (Linux) or ``psutil`` when installed (other systems). Sampling can miss a
spike shorter than the interval. ``rss_start_mib`` is the RSS just before the warm-up: in one process, memory
held by earlier configurations stays in the figure, so for per-configuration figures run one configuration per
process (``benchmarks/results.py`` does). Where neither source exists, the process-wide, monotonic
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is used and ``memory_method`` says so. GPU memory is not measured.

The practical ceiling (:func:`matmul_ceiling`): the best GFLOP/s of a square float32 ``numpy.matmul`` (the
BLAS numpy was built with, all its threads) on the same machine.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import math
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import MODEL_ALIASES, ArtifactContract, is_engine_path, shipped_onnx_models
from .atomic import write_atomic
from .backend import BackendKind, open_backend
from .contract import MACS_PER_PIXEL_KEY
from .errors import ArtifactError, InvalidInputError
from .precision import cpu_features

RSS_INTERVAL_S = 0.005
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((512, 512), (1080, 1920))  # (H, W)
MIN_TIMED = 3  # runs timed at least, even past max_seconds
JSON_FORMAT = "edgedenoise.bench/1"
# File name of each precision next to an FP32 ``<base>.onnx`` (as ``edgedenoise export`` writes them).
_SUFFIX = {"fp32": ".onnx", "fp16": ".fp16.onnx", "int8-cpu": ".int8.cpu.onnx", "int8-trt": ".int8.trt.onnx"}
BENCH_PRECISIONS = ("fp32", "fp16", "int8")


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class BenchRow:
    """One benchmarked configuration: model x backend x precision x size x batch.

    Attributes:
        model: the model's name (a shipped name, or the artifact's base file name).
        artifact: the file that ran (or, for torch eager, the weights).
        backend: ``ort-cpu``, ``ort-cuda``, ``ort-tensorrt``, ``tensorrt`` or ``torch``.
        providers: what really ran: ONNX Runtime execution providers that ran at least one node in the
            backend's profiled warm-up, TensorRT's version, or torch's version and device.
        precision: ``fp32``, ``fp16`` or ``int8`` (as the artifact's metadata says).
        height, width: input size in pixels.
        batch: images per run (N).
        threads: intra-op threads asked for (0: the library's default, one per physical core).
        warmup: untimed runs done before timing (fewer than asked when a time budget cut them short).
        samples_ms: every timed run's latency in milliseconds, in order.
        macs_per_pixel: multiply-accumulates per input pixel, or None if unknown.
        macs_source: where ``macs_per_pixel`` came from (``onnx-metadata``, ``model-card``, ``torch-count``) or None.
        rss_start_mib: process RSS before the warm-up (MiB), None if not measurable.
        peak_rss_mib: peak process RSS during warm-up and timed runs (MiB), None if not measurable.
        memory_method: ``rss-sampled`` (thread), ``ru_maxrss`` (process-wide peak so far) or ``none``.
    """

    model: str
    artifact: str
    backend: str
    providers: tuple[str, ...]
    precision: str
    height: int
    width: int
    batch: int
    threads: int
    warmup: int
    samples_ms: tuple[float, ...]
    macs_per_pixel: float | None = None
    macs_source: str | None = None
    rss_start_mib: float | None = None
    peak_rss_mib: float | None = None
    memory_method: str = "none"

    def __post_init__(self) -> None:
        if not self.samples_ms:
            raise ValueError("a BenchRow needs at least one timed sample")
        object.__setattr__(self, "providers", tuple(self.providers))
        object.__setattr__(self, "samples_ms", tuple(float(s) for s in self.samples_ms))

    # The figures below are derived from the samples, never stored separately (they cannot disagree).
    @property
    def size(self) -> str:
        """``WxH`` as frame sizes are usually written (``1920x1080``)."""
        return f"{self.width}x{self.height}"

    @property
    def iters(self) -> int:
        """Number of timed runs."""
        return len(self.samples_ms)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the timed latencies in ms (numpy's linear interpolation)."""
        return float(np.percentile(np.asarray(self.samples_ms, dtype=np.float64), q))

    @property
    def p50_ms(self) -> float:
        """Median latency (ms)."""
        return self.percentile_ms(50)

    @property
    def p90_ms(self) -> float:
        """90th-percentile latency (ms)."""
        return self.percentile_ms(90)

    @property
    def p99_ms(self) -> float:
        """99th-percentile latency (ms)."""
        return self.percentile_ms(99)

    @property
    def frames_per_s(self) -> float:
        """Images per second at the median latency: ``batch * 1000 / p50_ms``."""
        return self.batch * 1000.0 / self.p50_ms

    @property
    def mp_per_s(self) -> float:
        """Input megapixels per second: ``frames_per_s * H * W / 1e6``."""
        return self.frames_per_s * self.height * self.width / 1e6

    @property
    def gflops(self) -> float | None:
        """Achieved GFLOP/s (GOP/s for INT8): ``2 * macs_per_pixel * H * W * batch / p50_s / 1e9``; None if the
        MAC count is unknown."""
        if self.macs_per_pixel is None:
            return None
        return 2.0 * self.macs_per_pixel * self.height * self.width * self.batch / (self.p50_ms / 1000.0) / 1e9

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the stored fields plus the derived figures (for readers of the JSON; ignored on load)."""
        d = asdict(self)
        d["providers"] = list(self.providers)
        d["samples_ms"] = list(self.samples_ms)
        d["derived"] = {
            "iters": self.iters,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "frames_per_s": self.frames_per_s,
            "mp_per_s": self.mp_per_s,
            "gflops": self.gflops,
        }
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchRow:
        """Inverse of :meth:`to_dict` (the ``derived`` block is recomputed, not read).

        Raises:
            ArtifactError: missing or unknown fields.
        """
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        given = {k: v for k, v in data.items() if k != "derived"}
        unknown, missing = set(given) - names, required - set(given)
        if unknown or missing:
            raise ArtifactError(f"benchmark row has unknown fields {sorted(unknown)} / lacks {sorted(missing)}")
        return cls(**given)


@dataclass(frozen=True)
class MatmulCeiling:
    """Best float32 matmul throughput: ``2 n³ / best_s / 1e9`` GFLOP/s over ``repeats`` runs of ``n x n @ n x n``."""

    n: int
    repeats: int
    best_s: float

    @property
    def gflops(self) -> float:
        """GFLOP/s of the fastest run."""
        return 2.0 * self.n**3 / self.best_s / 1e9

    def line(self) -> str:
        """One line for reports."""
        return (
            f"float32 matmul ceiling: {self.gflops:.1f} GFLOP/s (numpy {self.n}x{self.n} @ {self.n}x{self.n}, "
            f"BLAS default threads, best of {self.repeats}, {self.best_s * 1000:.1f} ms)"
        )


@dataclass(frozen=True)
class BenchReport:
    """Rows plus the machine they ran on and the matmul ceiling (None when skipped)."""

    rows: tuple[BenchRow, ...]
    machine: Mapping[str, Any] = field(default_factory=dict)
    ceiling: MatmulCeiling | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``format`` = :data:`JSON_FORMAT`)."""
        return {
            "format": JSON_FORMAT,
            "machine": dict(self.machine),
            "ceiling": None if self.ceiling is None else {**asdict(self.ceiling), "gflops": self.ceiling.gflops},
            "rows": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchReport:
        """Inverse of :meth:`to_dict`.

        Raises:
            ArtifactError: not a benchmark report of this format.
        """
        if not isinstance(data, Mapping) or data.get("format") != JSON_FORMAT:
            raise ArtifactError(f"not an edgedenoise benchmark JSON (expected format {JSON_FORMAT!r})")
        ceil = data.get("ceiling")
        ceiling = None if ceil is None else MatmulCeiling(int(ceil["n"]), int(ceil["repeats"]), float(ceil["best_s"]))
        return cls(tuple(BenchRow.from_dict(r) for r in data["rows"]), dict(data.get("machine", {})), ceiling)

    def markdown(self) -> str:
        """The markdown table of the rows, then the ceiling line (if measured)."""
        text = markdown_table(self.rows)
        return text + ("\n\n" + self.ceiling.line() if self.ceiling else "")

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as indented JSON, atomically."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def write_markdown(self, path: str | Path) -> Path:
        """Write :meth:`markdown` (with a machine line on top), atomically."""
        head = f"Machine: {describe_machine(self.machine)}\n\n" if self.machine else ""
        return write_atomic(path, head + self.markdown() + "\n")


def read_json(path: str | Path) -> BenchReport:
    """Load a :meth:`BenchReport.write_json` file.

    Raises:
        ArtifactError: unreadable file or not a benchmark report.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read benchmark JSON {str(path)!r} ({exc})") from exc
    return BenchReport.from_dict(data)


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.{digits}f}" if abs(v) < 10 ** (digits + 3) else f"{v:.0f}"


def markdown_table(rows: Sequence[BenchRow]) -> str:
    """A GitHub-flavoured markdown table: one line per row, latencies in ms, throughput, GFLOP/s, memory."""
    head = (
        "| model | precision | backend [providers] | size | batch | p50 ms | p90 ms | p99 ms | MP/s | frames/s "
        "| GFLOP/s | peak RSS MiB | runs |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.precision} | {r.backend} [{', '.join(r.providers)}] | {r.size} | {r.batch} "
            f"| {_fmt(r.p50_ms)} | {_fmt(r.p90_ms)} | {_fmt(r.p99_ms)} | {_fmt(r.mp_per_s, 2)} "
            f"| {_fmt(r.frames_per_s, 2)} | {_fmt(r.gflops)} | {_fmt(r.peak_rss_mib, 0)} | {r.iters} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- measuring


def current_rss_bytes() -> int | None:
    """Resident set size of this process in bytes (``/proc/self/statm`` or psutil), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil  # optional

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or unsupported platform
        return None


def _ru_maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


class RssSampler:
    """Peak process RSS while a block runs, sampled by a daemon thread every ``interval`` seconds.

    Use as a context manager; afterwards :attr:`start_mib`, :attr:`peak_mib` (MiB) and :attr:`method` hold the
    result (see the module docstring for the caveats).
    """

    def __init__(self, interval: float = RSS_INTERVAL_S) -> None:
        self.interval = interval
        self.start_mib: float | None = None
        self.peak_mib: float | None = None
        self.method = "none"
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            rss = current_rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __enter__(self) -> RssSampler:
        start = current_rss_bytes()
        if start is not None:
            self.method = "rss-sampled"
            self._peak = start
            self.start_mib = start / 2**20
            self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            last = current_rss_bytes()
            self.peak_mib = max(self._peak, last or 0) / 2**20
            return
        peak = _ru_maxrss_bytes()
        if peak is not None:
            self.method = "ru_maxrss"
            self.peak_mib = peak / 2**20


@dataclass(frozen=True)
class Timing:
    """What :func:`time_runs` measured: timed latencies (ms), warm-up runs done, and memory (see the module
    docstring)."""

    samples_ms: tuple[float, ...]
    warmup_runs: int
    rss_start_mib: float | None
    peak_rss_mib: float | None
    memory_method: str


def time_runs(fn: Callable[[], object], *, warmup: int, iters: int, max_seconds: float | None = None) -> Timing:
    """Run ``fn`` up to ``warmup`` times untimed, then time up to ``iters`` runs, each alone with ``perf_counter``.

    Args:
        fn: the work (e.g. one ``backend.run`` on a fixed batch).
        warmup: untimed runs first (>= 0).
        iters: most timed runs (>= 1).
        max_seconds: time budget of each phase (None: no budget). Warm-up stops once it has taken this long
            (after one run at least); timing stops once the timed runs took this long in total and at least
            ``min(iters, 3)`` were timed. Large frames on slow backends then cost a minute, not ten.

    Returns:
        :class:`Timing`, with the process RSS watched by an :class:`RssSampler` over both phases.

    Raises:
        InvalidInputError: ``warmup < 0``, ``iters < 1`` or ``max_seconds < 0``.
    """
    if warmup < 0 or iters < 1 or (max_seconds is not None and max_seconds < 0):
        raise InvalidInputError(
            f"need warmup >= 0, iters >= 1 and max_seconds >= 0, got {warmup}, {iters} and {max_seconds}"
        )
    budget = math.inf if max_seconds is None else max_seconds
    samples: list[float] = []
    done = 0
    with RssSampler() as sampler:
        t_warm = time.perf_counter()
        while done < warmup:
            fn()
            done += 1
            if time.perf_counter() - t_warm >= budget:
                break
        spent = 0.0
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            samples.append(dt * 1000.0)
            spent += dt
            if spent >= budget and len(samples) >= min(iters, MIN_TIMED):
                break
    return Timing(tuple(samples), done, sampler.start_mib, sampler.peak_mib, sampler.method)


def matmul_ceiling(n: int = 4096, repeats: int = 3, seed: int = 0) -> MatmulCeiling:
    """Time ``numpy.matmul`` of two ``(n, n)`` float32 matrices ``repeats`` times (after one untimed run).

    The practical float32 ceiling of this machine for dense convolution-like work (the BLAS numpy links, all
    its threads). Raises:
        InvalidInputError: ``n < 1`` or ``repeats < 1``.
    """
    if n < 1 or repeats < 1:
        raise InvalidInputError(f"matmul size and repeats must be >= 1, got {n} and {repeats}")
    rng = np.random.default_rng(seed)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return MatmulCeiling(n=n, repeats=repeats, best_s=best)


def make_row(timing: Timing, **info: Any) -> BenchRow:
    """A :class:`BenchRow` from a :class:`Timing` and the configuration fields (``model``, ``backend``...)."""
    return BenchRow(
        samples_ms=timing.samples_ms,
        warmup=timing.warmup_runs,
        rss_start_mib=timing.rss_start_mib,
        peak_rss_mib=timing.peak_rss_mib,
        memory_method=timing.memory_method,
        **info,
    )


# ---------------------------------------------------------------- sizes and artifacts


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"512x512,1920x1080"`` (each ``WxH``, as frame sizes are written) -> ``[(512, 512), (1080, 1920)]`` as (H, W).

    Raises:
        InvalidInputError: an entry that is not ``WxH`` with positive integers.
    """
    out = []
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", part)
        if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            raise InvalidInputError(f"size {part!r} is not WIDTHxHEIGHT with positive integers (e.g. 1920x1080)")
        out.append((int(m.group(2)), int(m.group(1))))
    if not out:
        raise InvalidInputError(f"no size in {text!r}; give e.g. 512x512,1920x1080")
    return out


def parse_precisions(text: str | None) -> list[str] | None:
    """``"fp32,int8"`` -> ``["fp32", "int8"]``; None stays None (each model's default).

    Raises:
        InvalidInputError: an unknown precision.
    """
    if text is None:
        return None
    out = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in out if p not in BENCH_PRECISIONS]
    if bad or not out:
        raise InvalidInputError(f"precision {text!r}: choose from {', '.join(BENCH_PRECISIONS)} (comma-separated)")
    return list(dict.fromkeys(out))


shipped_models = shipped_onnx_models  # the names ``edgedenoise bench`` takes for shipped artifacts


def _int8_key(backend: BackendKind) -> str:
    # TensorRT wants symmetric S8S8 QDQ; ONNX Runtime's CPU (and CUDA) kernels take the U8S8 "cpu" flavour.
    return "int8-trt" if backend is BackendKind.ORT_TENSORRT else "int8-cpu"


def _precision_of_name(filename: str) -> str:
    low = filename.lower()
    for key, suffix in _SUFFIX.items():
        if key != "fp32" and low.endswith(suffix):
            return key.split("-")[0]
    return "fp32"


def _export_hint(base: str, key: str) -> str:
    flag = {"fp32": "", "fp16": " --fp16", "int8-cpu": " --int8 --flavour cpu", "int8-trt": " --int8 --flavour trt"}
    return f"`edgedenoise export --model {base}{flag[key]} -o DIR` and pass DIR/{base}{_SUFFIX[key]}"


@dataclass(frozen=True)
class Target:
    """One artifact to benchmark: the model's display name, the requested precision (None: as the file says)."""

    model: str
    path: Path
    precision: str | None


def resolve_targets(model: str | Path, precisions: Sequence[str] | None, backend: str | BackendKind) -> list[Target]:
    """The artifact files to benchmark for one MODEL argument.

    Args:
        model: a shipped model name or alias (``rednet30`` -> ``edgedenoise/weights/rednet30.onnx``), or a path to
            an ``.onnx`` / ``.engine`` file.
        precisions: ``fp32`` / ``fp16`` / ``int8``; each maps to the file beside the FP32 ``<base>.onnx`` that
            ``edgedenoise export`` writes: ``<base>.onnx``, ``<base>.fp16.onnx``, ``<base>.int8.cpu.onnx``
            (``<base>.int8.trt.onnx`` for the ``ort-tensorrt`` backend). None: for a name, FP32 plus the INT8
            file when it ships; for a path, the file itself.
        backend: the backend the files will run on.

    Raises:
        ArtifactError: a path that does not exist, or a requested precision whose file is missing (the message
            names the file and the ``edgedenoise export`` command that makes it).
        UnknownModelError: a name that is not shipped.
        InvalidInputError: a precision for an engine file (engines have one, fixed at build time).
    """
    from .artifact import resolve_model

    kind = BackendKind.parse(backend)
    text = str(model)
    given = resolve_model(text)  # existing file, or the shipped FP32 ONNX of a name; raises otherwise
    is_name = not Path(text).is_file()
    name = MODEL_ALIASES.get(text, text) if is_name else given.name.split(".")[0]
    if is_engine_path(given):
        if precisions:
            raise InvalidInputError(
                f"{given.name} is a TensorRT engine: its precision was fixed when it was built; drop --precision"
            )
        return [Target(name, given, None)]
    if precisions is None:
        if not is_name:
            return [Target(name, given, None)]
        extra = given.parent / f"{name}{_SUFFIX[_int8_key(kind)]}"
        return [Target(name, given, "fp32")] + ([Target(name, extra, "int8")] if extra.is_file() else [])
    out = []
    for p in precisions:
        key = _int8_key(kind) if p == "int8" else p
        if not is_name and _precision_of_name(given.name) == p:
            out.append(Target(name, given, p))
            continue
        path = given.parent / f"{name}{_SUFFIX[key]}"
        if not path.is_file():
            raise ArtifactError(
                f"no {p} artifact for {name}: {path} does not exist; make it with {_export_hint(name, key)}"
            )
        out.append(Target(name, path, p))
    return out


def read_onnx_contract(path: str | Path) -> ArtifactContract:
    """The contract in an ONNX file's metadata, read with an unoptimised ONNX Runtime CPU session (no run).

    Raises:
        ArtifactError: the file cannot be loaded or lacks the contract.
    """
    from .ort_session import cpu_session

    sess = cpu_session(path, optimize=False)
    return ArtifactContract.from_metadata(sess.get_modelmeta().custom_metadata_map, Path(path).name)


def padded_size(height: int, width: int, size_multiple: int) -> tuple[int, int]:
    """``(H, W)`` rounded up to multiples of ``size_multiple``: what the Denoiser runs for a frame of that size
    (it pads by reflection and crops back), so what a benchmark at that frame size times."""
    m = size_multiple
    return -(-height // m) * m, -(-width // m) * m


def check_sizes(
    sizes: Sequence[tuple[int, int]],
    size_multiple: int,
    what: str,
    min_hw: tuple[int, int] = (1, 1),
    max_hw: tuple[int, int] | None = None,
) -> None:
    """Refuse sizes the model cannot take once padded to ``size_multiple`` (see :func:`padded_size`).

    Raises:
        InvalidInputError: the padded H or W outside ``[min_hw, max_hw]``.
    """
    for h0, w0 in sizes:
        h, w = padded_size(h0, w0, size_multiple)
        if h < min_hw[0] or w < min_hw[1] or (max_hw is not None and (h > max_hw[0] or w > max_hw[1])):
            top = f"{max_hw[1]}x{max_hw[0]}" if max_hw else "unbounded"
            raise InvalidInputError(
                f"size {w0}x{h0} is outside what {what} takes ({min_hw[1]}x{min_hw[0]} to {top}); pick a size inside it"
            )


def check_precision(target: Target, contract: ArtifactContract) -> None:
    """Refuse a file whose metadata precision is not the one it was picked for.

    Raises:
        ArtifactError: e.g. an FP32 model saved under the INT8 file name.
    """
    if target.precision is not None and contract.precision != target.precision:
        raise ArtifactError(
            f"{target.path.name} was taken as the {target.precision} artifact of {target.model}, but its metadata "
            f"says {contract.precision}; pass the right file"
        )


def macs_from_contract(contract: ArtifactContract, path: Path) -> tuple[float | None, str | None]:
    """MACs per pixel from the ONNX metadata, else from a model card ``<base>.json`` of the same architecture."""
    raw = contract.metadata.get(MACS_PER_PIXEL_KEY)
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value, "onnx-metadata"
    card = path.parent / f"{path.name.split('.')[0]}.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        data = json.loads(card.read_text())
        if isinstance(data, dict) and data.get("arch") == contract.cfg.arch:
            value = float(data.get("macs_per_pixel", math.nan))
            if math.isfinite(value) and value > 0:
                return value, "model-card"
    return None, None


def bench_input(batch: int, channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(batch, channels, height, width)`` float32 uniform in [0, 1), seeded: the timed input."""
    return np.random.default_rng(seed).random((batch, channels, height, width), dtype=np.float32)


def bench_artifact(
    target: Target,
    *,
    backend: str | BackendKind = BackendKind.ORT_CPU,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 1,
    warmup: int = 3,
    iters: int = 20,
    max_seconds: float | None = None,
    threads: int = 0,
    device: int | None = None,
) -> list[BenchRow]:
    """Benchmark one artifact at each size (see the module docstring for what is timed and derived).

    Args:
        target: from :func:`resolve_targets`.
        backend: a :class:`~.backend.BackendKind` value; the backend really used is recorded.
        sizes: ``(H, W)`` frame sizes; the timed input is padded up to the model's ``size_multiple`` as the
            Denoiser pads a frame (:func:`padded_size`), and must then fit the backend's limits.
        batch: images per run (N >= 1).
        warmup, iters, max_seconds: see :func:`time_runs`.
        threads: ONNX Runtime intra-op threads (0: its default).
        device: CUDA device index for GPU backends.

    Returns:
        One :class:`BenchRow` per size, in order.

    Raises:
        ArtifactError, BackendUnavailableError: see :func:`~.backend.open_backend`; ArtifactError also when
            the file's precision is not the one asked for.
        InvalidInputError: a size or batch the model or backend cannot take.
    """
    if batch < 1:
        raise InvalidInputError(f"batch must be >= 1, got {batch}")
    max_tile = max(max(h, w) for h, w in sizes)
    be, info = open_backend(target.path, backend, device=device, threads=threads or None, max_tile=max_tile)
    with be:
        contract, spec = be.contract, be.input_spec
        check_precision(target, contract)
        check_sizes(sizes, contract.cfg.size_multiple, f"{target.path.name}", spec.min_hw, spec.max_hw)
        if spec.max_batch is not None and batch > spec.max_batch:
            raise InvalidInputError(f"batch {batch} exceeds what {target.path.name} takes ({spec.max_batch})")
        macs, macs_source = macs_from_contract(contract, target.path)
        providers = tuple(info.node_providers) or tuple(info.providers)
        rows = []
        for h, w in sizes:
            x = bench_input(batch, spec.channels, *padded_size(h, w, contract.cfg.size_multiple))
            noise = np.full((batch, 1, *x.shape[2:]), 25.0 / 255.0, np.float32) if spec.noise_level else None
            timing = time_runs(functools.partial(be.run, x, noise), warmup=warmup, iters=iters, max_seconds=max_seconds)
            rows.append(
                make_row(
                    timing,
                    model=target.model,
                    artifact=str(target.path),
                    backend=info.backend,
                    providers=providers,
                    precision=contract.precision,
                    height=h,
                    width=w,
                    batch=batch,
                    threads=threads,
                    macs_per_pixel=macs,
                    macs_source=macs_source,
                )
            )
    return rows


def bench_models(
    models: Sequence[str | Path],
    *,
    backend: str | BackendKind = BackendKind.ORT_CPU,
    precisions: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 1,
    warmup: int = 3,
    iters: int = 20,
    max_seconds: float | None = None,
    threads: int = 0,
    device: int | None = None,
    matmul_n: int = 4096,
) -> BenchReport:
    """Benchmark every model x precision x size, then the float32 matmul ceiling.

    Every MODEL is resolved and every ONNX file's size rules checked before anything is timed, so a typo in
    the last model fails at once, not after minutes of timing.

    Args:
        models: shipped names or artifact paths (see :func:`resolve_targets`).
        backend, sizes, batch, warmup, iters, max_seconds, threads, device: see :func:`bench_artifact`.
        precisions: see :func:`resolve_targets`.
        matmul_n: side of the ceiling matmul (0: skip it).

    Returns:
        :class:`BenchReport` with the rows in order (model, precision, size) and :func:`machine_info`.

    Raises:
        see :func:`resolve_targets` and :func:`bench_artifact`.
    """
    if not models:
        raise InvalidInputError("no model given; pass a shipped name (e.g. rednet30) or an .onnx file")
    if warmup < 0 or iters < 1 or batch < 1:
        raise InvalidInputError(f"need warmup >= 0, iters >= 1, batch >= 1 (got {warmup}, {iters}, {batch})")
    kind = BackendKind.parse(backend)
    targets = [t for m in models for t in resolve_targets(m, precisions, kind)]
    for t in targets:
        if not is_engine_path(t.path):
            contract = read_onnx_contract(t.path)
            check_precision(t, contract)
            check_sizes(sizes, contract.cfg.size_multiple, t.path.name)
    rows: list[BenchRow] = []
    for t in targets:
        rows.extend(
            bench_artifact(
                t,
                backend=kind,
                sizes=sizes,
                batch=batch,
                warmup=warmup,
                iters=iters,
                max_seconds=max_seconds,
                threads=threads,
                device=device,
            )
        )
    ceiling = matmul_ceiling(matmul_n) if matmul_n else None
    return BenchReport(tuple(rows), machine_info(), ceiling)


# ---------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` "model name", else :func:`platform.processor`), or ``"unknown"``."""
    from .precision import cpu_name

    return cpu_name() or "unknown"


def machine_info(**extra: Any) -> dict[str, Any]:
    """Where and when a benchmark ran: CPU, logical cores, load average, OS, Python/numpy/ONNX Runtime versions,
    UTC time; plus ``extra`` (e.g. ``torch="2.13.0"``)."""
    from .optional import onnxruntime_module

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": getattr(onnxruntime_module(), "__version__", "unknown"),
        "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    with contextlib.suppress(OSError, AttributeError):
        info["load_avg_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    info.update(extra)
    return info


def describe_machine(machine: Mapping[str, Any]) -> str:
    """One line from :func:`machine_info`'s dict."""
    parts = [f"{machine.get('cpu', '?')}, {machine.get('logical_cores', '?')} logical cores"]
    if machine.get("cpu_features"):
        parts.append("features " + " ".join(machine["cpu_features"]))
    if "load_avg_1_5_15" in machine:
        parts.append("load average " + "/".join(str(v) for v in machine["load_avg_1_5_15"]))
    parts.append(f"ONNX Runtime {machine.get('onnxruntime', '?')}")
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']}")
    parts.append(f"numpy {machine.get('numpy', '?')}, Python {machine.get('python', '?')}")
    parts.append(str(machine.get("utc", "")))
    return "; ".join(p for p in parts if p)


__all__ = [
    "BENCH_PRECISIONS",
    "BenchReport",
    "BenchRow",
    "MatmulCeiling",
    "RssSampler",
    "Target",
    "Timing",
    "bench_artifact",
    "bench_input",
    "bench_models",
    "check_sizes",
    "padded_size",
    "current_rss_bytes",
    "machine_info",
    "make_row",
    "markdown_table",
    "matmul_ceiling",
    "parse_precisions",
    "parse_sizes",
    "read_json",
    "resolve_targets",
    "shipped_models",
    "time_runs",
]
