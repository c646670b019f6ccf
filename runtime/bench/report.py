"""The benchmark result schema and its writers: :class:`BenchRow` (one configuration, every timed sample),
:class:`MatmulCeiling`, :class:`BenchReport` (rows + machine + ceiling), JSON (format :data:`JSON_FORMAT`) and a
markdown table. Every backend's rows share this schema; the figures are derived from the samples, never stored
apart (see :mod:`edgedenoise.runtime.bench` for the formulas).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic
from ..errors import ArtifactError
from .machine import describe_machine

JSON_FORMAT = "edgedenoise.bench/1"


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
            f"all BLAS threads whatever --threads says, best of {self.repeats}, {self.best_s * 1000:.1f} ms; "
            "INT8 models can exceed it)"
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
