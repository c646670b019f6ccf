"""The backend interface, and choosing a backend honestly.

A backend runs one artifact on one device: ``input_spec`` (what shapes and dtype it takes),
``run(batch) -> batch`` on ``(N, C, H, W) float32`` arrays, and a context manager that owns its device
resources. Implementations: :class:`~.ort_backend.OrtBackend` (ONNX Runtime with the CPU, CUDA or TensorRT
execution provider) and :class:`~.trt_backend.TensorRTBackend` (native TensorRT for ``.engine`` files).

:func:`open_backend` picks one. ``auto`` takes the best that can run (for an engine: TensorRT; for an ONNX
file: ORT CUDA, then ORT CPU) and records why each better one could not. A backend the user *named* that
cannot run raises :class:`BackendUnavailableError` unless ``allow_fallback=True``; then the fallback and its
reason are recorded in :class:`RuntimeInfo`, never silent. ONNX Runtime itself drops a provider that fails to
load without raising; :class:`~.ort_backend.OrtBackend` checks ``session.get_providers()`` and which provider
ran each node, so that cannot pass unnoticed either.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np

from .artifact import ArtifactContract, is_engine_path
from .errors import BackendUnavailableError, InvalidInputError


class BackendKind(str, enum.Enum):
    """Backends by name, as ``--backend`` takes them."""

    AUTO = "auto"
    TENSORRT = "tensorrt"  # native TensorRT: .engine files built on this device
    ORT_TENSORRT = "ort-tensorrt"  # ONNX Runtime's TensorRT execution provider (builds engines at first run)
    ORT_CUDA = "ort-cuda"  # ONNX Runtime's CUDA execution provider
    ORT_CPU = "ort-cpu"  # ONNX Runtime on the CPU

    @classmethod
    def parse(cls, value: str | BackendKind) -> BackendKind:
        """``"ort-cpu"`` -> :attr:`ORT_CPU`.

        Raises:
            InvalidInputError: an unknown name; lists the valid ones.
        """
        if isinstance(value, BackendKind):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise InvalidInputError(f"unknown backend {value!r}; choose one of: {names}") from None


# Order of preference for `auto` and for fallbacks.
ONNX_PREFERENCE = (BackendKind.ORT_CUDA, BackendKind.ORT_CPU)
ONNX_FALLBACKS = (BackendKind.ORT_TENSORRT, BackendKind.ORT_CUDA, BackendKind.ORT_CPU)


@dataclass(frozen=True)
class InputSpec:
    """What a backend accepts.

    Attributes:
        channels: C of the ``(N, C, H, W)`` input (the model's ``in_channels``).
        dtype: host dtype the model computes on (float32, or float16 for FP16-I/O artifacts); :meth:`Backend.run`
            takes float32 and converts.
        min_hw: smallest ``(H, W)`` (an engine profile's minimum or a static shape; ``(1, 1)`` otherwise).
        max_hw: largest ``(H, W)`` (an engine profile's maximum or a static shape), None if unbounded.
        max_batch: largest N, None if unbounded.
        noise_level: the model has the ``sigma`` input, a per-pixel noise map (see :mod:`.contract`).
    """

    channels: int
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    min_hw: tuple[int, int] = (1, 1)
    max_hw: tuple[int, int] | None = None
    max_batch: int | None = None
    noise_level: bool = False


@dataclass(frozen=True)
class RuntimeInfo:
    """What really runs, for logs and for ``edgedenoise infer``'s report.

    Attributes:
        backend: the backend that runs (a :class:`BackendKind` value).
        requested: what the user asked for (``"auto"`` or a backend name).
        providers: ONNX Runtime's registered execution providers in priority order (``session.get_providers()``)
            or ``("TensorRT <version>",)`` for native engines.
        node_providers: graph nodes per execution provider in a profiled warm-up run (ONNX Runtime only;
            empty for engines). This is where a silent CPU fallback of single nodes shows.
        device: ``"cpu"`` or ``"cuda:<index>"`` (with the GPU name when known).
        artifact: the model file.
        precision: the artifact's precision (``fp32``, ``fp16``, ``int8``).
        fallbacks: for each better backend that was tried and could not run: ``"<name>: <reason>"``.
    """

    backend: str
    requested: str
    providers: tuple[str, ...]
    node_providers: Mapping[str, int]
    device: str
    artifact: Path
    precision: str
    fallbacks: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line, e.g. ``ort-cpu [CPUExecutionProvider: 21 nodes] on cpu, fp32 model.onnx``."""
        if self.node_providers:
            prov = ", ".join(f"{p}: {n} nodes" for p, n in self.node_providers.items())
        else:
            prov = ", ".join(self.providers)
        line = f"{self.backend} [{prov}] on {self.device}, {self.precision} {self.artifact.name}"
        if self.fallbacks:  # the reason's first clause; the install hint is in .fallbacks
            short = [f.split(";")[0] for f in self.fallbacks]
            line += f" (requested {self.requested}; not used: {'; '.join(short)})"
        return line


_C = TypeVar("_C", bound="Closeable")


class Closeable(abc.ABC):
    """Something that holds resources until :meth:`close`: a backend, a :class:`~.denoiser.Denoiser`, an
    :class:`~.infer.InferRun`. ``with obj:`` closes it when the block ends, also when it ends by an exception
    (which then propagates)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the resources. Idempotent."""

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Backend(Closeable):
    """One artifact loaded on one device. Use as a context manager, or call :meth:`close`.

    Subclasses set ``kind``, ``contract``, ``input_spec``, ``providers``, ``node_providers``, ``device``,
    ``path`` and ``thread_safe`` in their constructor.
    """

    kind: BackendKind
    contract: ArtifactContract
    input_spec: InputSpec
    providers: tuple[str, ...]
    node_providers: Mapping[str, int]
    device: str
    path: Path
    thread_safe: bool  # True if run() may be called from several threads at once

    @abc.abstractmethod
    def run(self, batch: np.ndarray, noise_level: np.ndarray | None = None) -> np.ndarray:
        """Run the model.

        Args:
            batch: ``(N, C, H, W)`` float32, C = ``input_spec.channels``, H/W within the spec's limits.
            noise_level: ``(N, 1, H, W)`` float32, the per-pixel noise standard deviation in value units (σ/255),
                only for models with ``input_spec.noise_level``.

        Returns:
            ``(N, C, H, W)`` float32: the model's output, not clipped.
        """

    def close(self) -> None:  # noqa: B027  (optional hook: backends without device resources keep it)
        """Release device resources. Idempotent."""


class SerializedBackend(Backend):
    """Mixin state for backends whose ``run`` is not re-entrant: a lock serialises calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread_safe = True  # made safe by the lock (calls run one at a time)


def candidates(path: Path, requested: BackendKind, allow_fallback: bool, device: int | None) -> list[BackendKind]:
    """Backends to try, best first, for ``path`` and the user's request.

    Raises:
        InvalidInputError: the request cannot apply to this kind of file (an engine on ONNX Runtime, or the
            native TensorRT backend on an ONNX file).
    """
    engine = is_engine_path(path)
    if engine:
        if requested not in (BackendKind.AUTO, BackendKind.TENSORRT):
            raise InvalidInputError(
                f"{path.name} is a TensorRT engine, which only the 'tensorrt' backend runs (got {requested.value!r}); "
                "pass the .onnx file to run it on ONNX Runtime"
            )
        return [BackendKind.TENSORRT]
    if requested is BackendKind.TENSORRT:
        raise InvalidInputError(
            f"the 'tensorrt' backend runs TensorRT .engine files, not {path.name}; build an engine on this device "
            f"(`edgedenoise build {path.name}`) or use --backend ort-tensorrt"
        )
    if requested is BackendKind.AUTO:
        # An explicit GPU index is a request for a GPU: the CPU is then a fallback, not a choice.
        order = list(ONNX_PREFERENCE)
        if device is not None and not allow_fallback:
            order.remove(BackendKind.ORT_CPU)
        return order
    if not allow_fallback:
        return [requested]
    return [requested] + [k for k in ONNX_FALLBACKS[ONNX_FALLBACKS.index(requested) + 1 :]]


def open_backend(
    model: str | Path,
    backend: str | BackendKind = BackendKind.AUTO,
    *,
    device: int | None = None,
    allow_fallback: bool = False,
    threads: int | None = None,
    max_tile: int | None = None,
) -> tuple[Backend, RuntimeInfo]:
    """Open ``model`` on the best backend that can run it.

    Args:
        model: path of an ``.onnx`` or ``.engine`` artifact (see :func:`~.artifact.resolve_model` for names).
        backend: ``auto`` or a :class:`BackendKind` value.
        device: CUDA device index (GPU backends); None means device 0, and lets ``auto`` use the CPU.
        allow_fallback: if the named backend cannot run, try the next ones (recorded in the info).
        threads: ONNX Runtime intra-op threads (None: ONNX Runtime's default, one per core).
        max_tile: largest tile side the ORT TensorRT provider builds its profile for
            (default :data:`~.tiling.DEFAULT_TILE`).

    Returns:
        ``(backend, info)``: the open backend (caller closes it) and what really runs.

    Raises:
        ArtifactError: the file is missing, corrupt or lacks the contract.
        BackendUnavailableError: no candidate can run; the message gives each one's reason and the fix.
        InvalidInputError: an unknown backend name, or one that cannot apply to this file type.
    """
    from .artifact import resolve_model

    path = resolve_model(model)
    requested = BackendKind.parse(backend)
    tried: list[str] = []
    for kind in candidates(path, requested, allow_fallback, device):
        try:
            opened = _open_one(path, kind, device, threads, max_tile)
        except BackendUnavailableError as exc:
            tried.append(f"{kind.value}: {exc}")
            continue
        info = RuntimeInfo(
            backend=opened.kind.value,
            requested=requested.value,
            providers=opened.providers,
            node_providers=dict(opened.node_providers),
            device=opened.device,
            artifact=path,
            precision=opened.contract.precision,
            fallbacks=tuple(tried),
        )
        return opened, info
    if len(tried) == 1:
        hint = "" if allow_fallback or requested is BackendKind.AUTO else "; or allow a fallback (--allow-fallback)"
        raise BackendUnavailableError(f"cannot run {path.name} on " + tried[0] + hint)
    raise BackendUnavailableError("no backend can run " + path.name + ": " + "; ".join(tried))


def _open_one(path: Path, kind: BackendKind, device: int | None, threads: int | None, max_tile: int | None) -> Backend:
    if kind is BackendKind.TENSORRT:
        from .trt_backend import TensorRTBackend

        return TensorRTBackend(path, device=device or 0)
    from .ort_backend import OrtBackend

    return OrtBackend(path, kind, device=device or 0, threads=threads, max_tile=max_tile)
