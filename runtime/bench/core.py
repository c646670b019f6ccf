"""The benchmark protocol, the same for every backend: settings, subjects, the timing loop, the report.

A :class:`BenchSource` turns each MODEL argument into openers of :class:`BenchSubject` (a model loaded for
timing: what its rows record, its input rules, and ``bind(x, noise)``, the call to time). :func:`bench_models`
plans every model first (so a typo in the last one fails before minutes of timing), then times each subject at
every size with :func:`time_subject` and one :class:`BenchSettings`, then the matmul ceiling, and returns one
:class:`~.report.BenchReport`. :class:`ArtifactSource` runs ONNX files and TensorRT engines on the runtime's
backends; ``edgedenoise.torch_bench.TorchEagerSource`` runs PyTorch eager with the same loop.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ..artifact import is_engine_path
from ..backend import BackendKind, InputSpec, open_backend
from ..errors import InvalidInputError
from .artifacts import (
    Target,
    check_precision,
    check_sizes,
    macs_from_contract,
    padded_size,
    read_onnx_contract,
    resolve_targets,
)
from .machine import machine_info
from .report import BenchReport, BenchRow
from .timing import matmul_ceiling, time_runs

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((512, 512), (1080, 1920))  # (H, W)
NOISE_SIGMA = 25.0 / 255.0  # the noise map given to models with a noise-level input (value units)


@dataclass(frozen=True)
class BenchSettings:
    """How every configuration is timed, whatever the backend.

    Attributes:
        sizes: ``(H, W)`` frame sizes in pixels; the timed input is padded up to the model's ``size_multiple``
            as the Denoiser pads a frame (:func:`~.artifacts.padded_size`); rows report the frame's own size.
        batch: images per run (N >= 1).
        warmup: untimed runs first (>= 0).
        iters: most timed runs (>= 1).
        max_seconds: time budget of each phase in seconds (None: none); see :func:`~.timing.time_runs`.
        threads: intra-op CPU threads (0: the library's default, one per physical core).

    Raises:
        InvalidInputError: no size, or a count or budget out of range.
    """

    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES
    batch: int = 1
    warmup: int = 3
    iters: int = 20
    max_seconds: float | None = None
    threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple((int(h), int(w)) for h, w in self.sizes))
        if not self.sizes:
            raise InvalidInputError("no size given; pass e.g. 512x512,1920x1080")
        if self.warmup < 0 or self.iters < 1 or self.batch < 1 or self.threads < 0:
            raise InvalidInputError(
                f"need warmup >= 0, iters >= 1, batch >= 1, threads >= 0 "
                f"(got {self.warmup}, {self.iters}, {self.batch}, {self.threads})"
            )
        if self.max_seconds is not None and self.max_seconds < 0:
            raise InvalidInputError(f"max_seconds must be >= 0 or None, got {self.max_seconds}")


@dataclass(frozen=True)
class BenchSubject:
    """One model loaded for timing, whatever runs it.

    Attributes:
        model, artifact, backend, providers, precision, macs_per_pixel, macs_source: copied into every
            :class:`~.report.BenchRow` (see there).
        spec: the input rules: channels C, smallest and largest ``(H, W)``, largest N, noise-level input.
        size_multiple: H and W of the model's input must be multiples of this (frames are padded up to it).
        bind: ``bind(x, noise)`` -> the zero-argument call that :func:`~.timing.time_runs` times; ``x`` is the
            ``(N, C, H, W)`` float32 input, ``noise`` the ``(N, 1, H, W)`` float32 noise map (σ/255) for models
            with a noise-level input, else None. Any conversion belongs in ``bind``, outside the timed call.
    """

    model: str
    artifact: str
    backend: str
    providers: tuple[str, ...]
    precision: str
    spec: InputSpec
    size_multiple: int
    bind: Callable[[np.ndarray, np.ndarray | None], Callable[[], object]]
    macs_per_pixel: float | None = None
    macs_source: str | None = None

    def row_fields(self) -> dict[str, Any]:
        """The :class:`~.report.BenchRow` fields that describe the subject (the same in each of its rows)."""
        names = ("model", "artifact", "backend", "providers", "precision", "macs_per_pixel", "macs_source")
        return {n: getattr(self, n) for n in names}


Opener = Callable[[], AbstractContextManager[BenchSubject]]
"""Loads one subject on entry and releases it on exit (a session, an engine, torch's thread setting)."""


class BenchSource(Protocol):
    """Where a benchmark's models come from and what runs them: one implementation per kind of backend.

    Attributes:
        model_hint: what a MODEL argument may be besides a shipped name, for the "no model" error.
    """

    model_hint: ClassVar[str]

    def plan(self, model: str | Path, precisions: Sequence[str] | None, settings: BenchSettings) -> list[Opener]:
        """The subjects to time for one MODEL argument, after every check that needs no timing.

        Raises:
            EdgeDenoiseError: a model that cannot be found or loaded, or settings it cannot take (one line).
        """
        ...

    def machine_extra(self) -> dict[str, Any]:
        """Keys added to :func:`~.machine.machine_info` (e.g. ``{"torch": "2.13.0"}``)."""
        ...


def bench_input(batch: int, channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(batch, channels, height, width)`` float32 uniform in [0, 1), seeded: the timed input."""
    return np.random.default_rng(seed).random((batch, channels, height, width), dtype=np.float32)


def time_subject(opener: Opener, settings: BenchSettings) -> list[BenchRow]:
    """Open one subject and time it at each of ``settings.sizes`` (see :mod:`edgedenoise.runtime.bench`).

    Returns:
        One :class:`~.report.BenchRow` per size, in order.

    Raises:
        InvalidInputError: a size or batch the subject cannot take.
        EdgeDenoiseError: whatever opening the subject raises.
    """
    rows = []
    with opener() as subject:
        spec, multiple = subject.spec, subject.size_multiple
        name = Path(subject.artifact).name
        check_sizes(settings.sizes, multiple, name, spec.min_hw, spec.max_hw)
        if spec.max_batch is not None and settings.batch > spec.max_batch:
            raise InvalidInputError(f"batch {settings.batch} exceeds what {name} takes ({spec.max_batch})")
        for h, w in settings.sizes:
            x = bench_input(settings.batch, spec.channels, *padded_size(h, w, multiple))
            noise = np.full((settings.batch, 1, *x.shape[2:]), NOISE_SIGMA, np.float32) if spec.noise_level else None
            timing = time_runs(
                subject.bind(x, noise), warmup=settings.warmup, iters=settings.iters, max_seconds=settings.max_seconds
            )
            fields = {**subject.row_fields(), **timing.row_fields()}
            rows.append(BenchRow(height=h, width=w, batch=settings.batch, threads=settings.threads, **fields))
    return rows


def bench_models(
    models: Sequence[str | Path],
    source: BenchSource | None = None,
    settings: BenchSettings | None = None,
    *,
    precisions: Sequence[str] | None = None,
    matmul_n: int = 4096,
) -> BenchReport:
    """Benchmark every model x precision x size on one source, then the float32 matmul ceiling.

    Every MODEL is planned (resolved, loaded or its contract read, its size rules checked) before anything is
    timed, so a typo in the last model fails at once, not after minutes of timing.

    Args:
        models: MODEL arguments, as ``source`` takes them (shipped names, artifact or weight files).
        source: what runs them (default: :class:`ArtifactSource` on ONNX Runtime's CPU).
        settings: sizes, batch, runs, budget, threads (default: :class:`BenchSettings`'s).
        precisions: ``fp32`` / ``fp16`` / ``int8``, as ``source.plan`` takes them (None: each model's default).
        matmul_n: side of the ceiling matmul (0: skip it).

    Returns:
        :class:`~.report.BenchReport` with the rows in order (model, precision, size) and
        :func:`~.machine.machine_info` (plus ``source.machine_extra()``).

    Raises:
        InvalidInputError: no model; see ``source.plan`` and :func:`time_subject` for the rest.
    """
    source = source if source is not None else ArtifactSource()
    settings = settings if settings is not None else BenchSettings()
    if not models:
        raise InvalidInputError(f"no model given; pass a shipped name (e.g. rednet30) or {source.model_hint}")
    openers = [op for m in models for op in source.plan(m, precisions, settings)]
    rows = [row for op in openers for row in time_subject(op, settings)]
    ceiling = matmul_ceiling(matmul_n) if matmul_n else None
    return BenchReport(tuple(rows), machine_info(**source.machine_extra()), ceiling)


@dataclass(frozen=True)
class ArtifactSource:
    """ONNX files and TensorRT engines on a runtime backend (:func:`~..backend.open_backend`); no torch.

    What is timed is the backend's ``run`` (:meth:`~..backend.Backend.run`): the model itself, with no tiling and
    no dtype conversion. MACs per pixel come from :func:`~.artifacts.macs_from_contract`; ``providers`` records
    the ONNX Runtime execution providers that ran at least one node in the backend's profiled warm-up (or
    TensorRT's version).

    Attributes:
        backend: a :class:`~..backend.BackendKind` (or its name); the backend really used is recorded.
        device: CUDA device index for GPU backends (None: the default).
    """

    backend: BackendKind | str = BackendKind.ORT_CPU
    device: int | None = None
    model_hint: ClassVar[str] = "an .onnx file"

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", BackendKind.parse(self.backend))

    def plan(self, model: str | Path, precisions: Sequence[str] | None, settings: BenchSettings) -> list[Opener]:
        """One opener per artifact of ``model`` (:func:`~.artifacts.resolve_targets`), after reading each ONNX
        file's contract: its precision must be the one asked for and ``settings.sizes`` must fit its rules.

        Raises:
            ArtifactError, UnknownModelError, InvalidInputError: see :func:`~.artifacts.resolve_targets`,
                :func:`~.artifacts.check_precision` and :func:`~.artifacts.check_sizes`.
        """
        targets = resolve_targets(model, precisions, self.backend)
        for t in targets:
            if not is_engine_path(t.path):
                contract = read_onnx_contract(t.path)
                check_precision(t, contract)
                check_sizes(settings.sizes, contract.cfg.size_multiple, t.path.name)
        return [functools.partial(self.open, t, settings) for t in targets]

    def machine_extra(self) -> dict[str, Any]:
        """Nothing beyond :func:`~.machine.machine_info` (it records ONNX Runtime's version already)."""
        return {}

    @contextlib.contextmanager
    def open(self, target: Target, settings: BenchSettings) -> Iterator[BenchSubject]:
        """Open ``target`` on the backend with ``settings.threads`` intra-op threads, sized for the largest frame.

        Raises:
            ArtifactError, BackendUnavailableError: see :func:`~..backend.open_backend`; ArtifactError also when
                the file's precision is not the one it was picked for.
        """
        max_tile = max(max(h, w) for h, w in settings.sizes)
        be, info = open_backend(
            target.path, self.backend, device=self.device, threads=settings.threads or None, max_tile=max_tile
        )
        with be:
            check_precision(target, be.contract)
            macs, macs_source = macs_from_contract(be.contract, target.path)

            def bind(x: np.ndarray, noise: np.ndarray | None) -> Callable[[], object]:
                return functools.partial(be.run, x, noise)

            yield BenchSubject(
                model=target.model,
                artifact=str(target.path),
                backend=info.backend,
                providers=tuple(info.node_providers) or tuple(info.providers),
                precision=be.contract.precision,
                spec=be.input_spec,
                size_multiple=be.contract.cfg.size_multiple,
                bind=bind,
                macs_per_pixel=macs,
                macs_source=macs_source,
            )


def bench_artifact(
    target: Target,
    settings: BenchSettings,
    *,
    backend: BackendKind | str = BackendKind.ORT_CPU,
    device: int | None = None,
) -> list[BenchRow]:
    """Benchmark one artifact at each size of ``settings`` on ``backend`` (:class:`ArtifactSource`).

    Args:
        target: from :func:`~.artifacts.resolve_targets` (or built by hand: display name, file, precision).

    Returns:
        One :class:`~.report.BenchRow` per size, in order.

    Raises:
        see :meth:`ArtifactSource.open` and :func:`time_subject`.
    """
    source = ArtifactSource(backend, device)
    return time_subject(functools.partial(source.open, target, settings), settings)
