"""ONNX Runtime backend: the CPU, CUDA or TensorRT execution provider running an ``.onnx`` artifact.

Honesty checks (ONNX Runtime drops a provider that fails to load, and places single nodes on the CPU, without
raising; ``get_available_providers()`` only lists what the build was compiled with): after the session is
created, its first provider (``session.get_providers()``) must be the one asked for, a warm-up run must
succeed, and that run is profiled to record which provider ran each node (ONNX Runtime's profiler, "Node"
events, ``args.provider``; https://onnxruntime.ai/docs/performance/tune-performance/profiling-tools.html).
If the asked-for provider ran no node at all, the backend is unavailable.

Thread safety: ``InferenceSession.run`` may be called from several threads at once
(https://onnxruntime.ai/docs/api/python/api_summary.html, "InferenceSession"), so this backend takes no lock.

The TensorRT execution provider builds an engine when the session starts (minutes on a Jetson); it is built
for one optimization profile, ``1 x C x m x m`` to ``1 x C x T x T`` with ``T = max_tile``, and cached under
``$XDG_CACHE_HOME/edgedenoise/ort-trt`` (https://onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import ArtifactContract
from .backend import Backend, BackendKind, InputSpec
from .contract import INPUT_NAME, OUTPUT_NAME, SIGMA_NAME
from .errors import ArtifactError, BackendUnavailableError, InferenceError, InvalidInputError
from .onnx_scan import check_external_data
from .optional import onnxruntime_module
from .tiling import DEFAULT_TILE

_EP = {
    BackendKind.ORT_CPU: "CPUExecutionProvider",
    BackendKind.ORT_CUDA: "CUDAExecutionProvider",
    BackendKind.ORT_TENSORRT: "TensorrtExecutionProvider",
}
_GPU_HINT = (
    "install onnxruntime-gpu in place of onnxruntime (`pip uninstall -y onnxruntime && pip install onnxruntime-gpu`; "
    "Jetson: NVIDIA's wheel for your JetPack) and check that a CUDA GPU is visible"
)
_ORT_DTYPES: dict[str, np.dtype[Any]] = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16)}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgedenoise" / "ort-trt"


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def node_providers_from_profile(events: list[dict[str, Any]]) -> dict[str, int]:
    """Count the distinct graph nodes each execution provider ran, from an ONNX Runtime profile trace.

    Args:
        events: the JSON list ``session.end_profiling()`` wrote (Chrome trace format).

    Returns:
        ``{provider: node count}``, providers in order of first appearance.
    """
    seen: dict[str, set[str]] = {}
    for ev in events:
        if ev.get("cat") != "Node":
            continue
        name = str(ev.get("name", ""))
        if not name.endswith("_kernel_time"):
            continue
        provider = ev.get("args", {}).get("provider")
        if provider:
            seen.setdefault(str(provider), set()).add(name)
    return {p: len(nodes) for p, nodes in seen.items()}


class OrtBackend(Backend):
    """An ONNX artifact in an ONNX Runtime session on one execution provider.

    Args:
        path: the ``.onnx`` file (with the edgedenoise contract in its metadata).
        kind: :attr:`BackendKind.ORT_CPU`, ``ORT_CUDA`` or ``ORT_TENSORRT``.
        device: CUDA device index (GPU providers).
        threads: intra-op threads (None: ONNX Runtime's default).
        max_tile: TensorRT provider only: the profile's largest H and W.

    Raises:
        ArtifactError: the file is not a loadable ONNX model, lacks the contract, its inputs/outputs do not
            follow it (input ``noisy`` (N, C, H, W), output ``denoised``), or it refers to external data outside
            its folder (:func:`~.onnx_scan.check_external_data`, checked before ONNX Runtime opens the file).
        BackendUnavailableError: the provider is not in this onnxruntime build, did not load, or ran no node.
    """

    def __init__(
        self,
        path: str | Path,
        kind: BackendKind = BackendKind.ORT_CPU,
        *,
        device: int = 0,
        threads: int | None = None,
        max_tile: int | None = None,
    ) -> None:
        if kind not in _EP:
            raise ValueError(f"OrtBackend runs {', '.join(k.value for k in _EP)}, not {kind.value}")
        ort = onnxruntime_module()
        self.path = Path(path)
        self.kind = kind
        self.thread_safe = True
        ep = _EP[kind]
        available = list(ort.get_available_providers())
        if ep not in available:
            raise BackendUnavailableError(
                f"this onnxruntime build ({ort.__version__}) has no {ep} (it has {', '.join(available)}); {_GPU_HINT}"
            )
        # External data outside the model's folder is refused before ONNX Runtime reads anything.
        check_external_data(self.path)
        max_tile = max_tile or DEFAULT_TILE
        providers: list[Any]
        if kind is BackendKind.ORT_CPU:
            providers = ["CPUExecutionProvider"]
            self.device = "cpu"
        else:
            self.device = f"cuda:{device}"
            cuda_opts = {"device_id": device}
            providers = [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
            if kind is BackendKind.ORT_TENSORRT:
                # The profile needs the channel count and precision before the TRT session exists.
                probe = self._create(ort, ["CPUExecutionProvider"], threads, profile=False)
                contract = ArtifactContract.from_metadata(probe.get_modelmeta().custom_metadata_map, self.path.name)
                del probe
                providers.insert(0, ("TensorrtExecutionProvider", self._trt_options(contract, device, max_tile)))
        session = self._create(ort, providers, threads, profile=True)
        try:
            got = tuple(session.get_providers())
            if not got or got[0] != ep:
                raise BackendUnavailableError(
                    f"{ep} did not load (the session would run on {', '.join(got) or 'nothing'}); {_GPU_HINT}"
                )
            self._session: Any = session
            self.providers = got
            self.contract = ArtifactContract.from_metadata(session.get_modelmeta().custom_metadata_map, self.path.name)
            self.input_spec = self._spec(session, kind, max_tile)
        except BaseException:
            self._drop_profile(session)  # a refused model leaves no profiler trace in the temp folder
            raise
        try:
            self.node_providers = self._profiled_warmup()
        except InferenceError as exc:
            if kind is BackendKind.ORT_CPU:
                raise
            # get_available_providers() is what the build was compiled with; only a run shows that its
            # kernels suit this GPU (e.g. a Jetson wheel built for another compute capability).
            raise BackendUnavailableError(
                f"{ep} loaded but could not run {self.path.name} ({exc}); the onnxruntime-gpu build may not "
                "match this GPU or CUDA version (see docs/runtime.md, 'GPU and Jetson')"
            ) from exc
        if not self.node_providers.get(ep):
            raise BackendUnavailableError(
                f"{ep} loaded but ran no node of {self.path.name} (nodes ran on: {self.node_providers}); {_GPU_HINT}"
            )

    # -- construction -------------------------------------------------------------------------------------
    def _create(self, ort: Any, providers: list[Any], threads: int | None, profile: bool) -> Any:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # errors only; what ran is reported through RuntimeInfo instead
        if self.kind is BackendKind.ORT_CPU:
            # ONNX Runtime's memory-pattern planner keeps a plan per input shape and grows its arena with each
            # new one: frames of changing sizes took RSS from 77.6 to 85.6 MB (+10 %) over 3,000 frames, and
            # with it off the run stayed flat (+1.3 % over 1,000 frames) at the same speed (fixed 256x256:
            # 118 vs 112 ms median, interleaved). docs/reliability.md, "Soak".
            so.enable_mem_pattern = False
        if threads:
            so.intra_op_num_threads = int(threads)
        if profile:
            self._profile_dir = tempfile.mkdtemp(prefix="edgedenoise-ort-")
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(self._profile_dir, "warmup")
        try:
            return ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as exc:  # ORT raises its own pybind classes; sort them into ours
            if profile:
                with contextlib.suppress(OSError):
                    os.rmdir(self._profile_dir)
            kind = type(exc).__name__
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
            if kind in ("InvalidProtobuf", "InvalidGraph", "NoSuchFile", "InvalidArgument", "NotImplemented"):
                raise ArtifactError(f"{self.path}: not a loadable ONNX model ({first})") from exc
            if providers != ["CPUExecutionProvider"]:
                raise BackendUnavailableError(f"session creation failed ({first}); {_GPU_HINT}") from exc
            raise ArtifactError(f"{self.path}: ONNX Runtime cannot load this model ({first})") from exc

    def _drop_profile(self, session: Any) -> None:
        """End the profiler of a session that will not be used and delete its trace and folder."""
        with contextlib.suppress(Exception):
            trace = session.end_profiling()
            if trace:
                Path(trace).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.rmdir(self._profile_dir)

    @staticmethod
    def _trt_options(contract: ArtifactContract, device: int, max_tile: int) -> dict[str, Any]:
        m = contract.cfg.size_multiple
        cache = _cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        return {
            "device_id": device,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_fp16_enable": contract.precision == "fp16",
            "trt_int8_enable": contract.precision == "int8",
            "trt_profile_min_shapes": _profile_shapes(contract, m),
            "trt_profile_opt_shapes": _profile_shapes(contract, max_tile),
            "trt_profile_max_shapes": _profile_shapes(contract, max_tile),
        }

    def _spec(self, session: Any, kind: BackendKind, max_tile: int) -> InputSpec:
        name = self.path.name
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        extra = set(inputs) - {INPUT_NAME, SIGMA_NAME}
        if INPUT_NAME not in inputs or extra or OUTPUT_NAME not in outputs:
            raise ArtifactError(
                f"{name}: inputs {sorted(inputs)} / outputs {sorted(outputs)} do not follow the contract "
                f"(input {INPUT_NAME!r}, optional {SIGMA_NAME!r}, output {OUTPUT_NAME!r}); re-export the model"
            )
        x = inputs[INPUT_NAME]
        if len(x.shape) != 4:
            raise ArtifactError(f"{name}: input {INPUT_NAME!r} has shape {x.shape}, expected (N, C, H, W)")
        dtype = _ORT_DTYPES.get(x.type)
        if dtype is None:
            raise ArtifactError(f"{name}: input type {x.type} is not float32/float16; re-export the model")
        n, c, h, w = (_static(d) for d in x.shape)
        cfg = self.contract.cfg
        if c is not None and c != cfg.in_channels:
            raise ArtifactError(f"{name}: input has {c} channels but the contract says {cfg.in_channels}")
        max_hw: tuple[int, int] | None = None
        min_hw = (1, 1)
        if h is not None and w is not None:
            min_hw = max_hw = (h, w)
        elif kind is BackendKind.ORT_TENSORRT:
            min_hw, max_hw = (cfg.size_multiple, cfg.size_multiple), (max_tile, max_tile)
        return InputSpec(
            channels=cfg.in_channels,
            dtype=dtype,
            min_hw=min_hw,
            max_hw=max_hw,
            max_batch=n if n is not None else (1 if kind is BackendKind.ORT_TENSORRT else None),
            noise_level=SIGMA_NAME in inputs,
        )

    def _profiled_warmup(self) -> dict[str, int]:
        """Run once on the smallest valid input with the profiler on, then turn it off; provider per node."""
        spec = self.input_spec
        m = self.contract.cfg.size_multiple
        side = -(-16 // m) * m
        h, w = (max(side, spec.min_hw[0]), max(side, spec.min_hw[1]))
        if spec.max_hw is not None:
            h, w = min(h, spec.max_hw[0]), min(w, spec.max_hw[1])
        noise = np.zeros((1, 1, h, w), np.float32) if spec.noise_level else None
        try:
            self.run(np.zeros((1, spec.channels, h, w), np.float32), noise)
        finally:
            trace = self._session.end_profiling()
        try:
            events = json.loads(Path(trace).read_text()) if trace else []
        finally:
            if trace:
                Path(trace).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                os.rmdir(self._profile_dir)
        return node_providers_from_profile(events)

    # -- running -------------------------------------------------------------------------------------------
    def run(self, batch: np.ndarray, noise_level: np.ndarray | None = None) -> np.ndarray:
        """Run the session on ``(N, C, H, W)`` float32 (see :meth:`Backend.run`).

        Raises:
            InvalidInputError: a missing or unexpected noise level.
            InferenceError: ONNX Runtime failed while running (e.g. out of memory), or the backend is closed.
        """
        if self._session is None:
            raise InferenceError(f"{self.path.name}: the backend is closed")
        spec = self.input_spec
        feeds = {INPUT_NAME: np.ascontiguousarray(batch, dtype=spec.dtype)}
        if spec.noise_level:
            if noise_level is None:
                raise InvalidInputError(f"{self.path.name} takes a noise level; pass sigma=...")
            feeds[SIGMA_NAME] = np.ascontiguousarray(noise_level, dtype=spec.dtype)
        elif noise_level is not None:
            raise InvalidInputError(f"{self.path.name} has no noise-level input; do not pass sigma")
        try:
            (out,) = self._session.run([OUTPUT_NAME], feeds)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InferenceError(f"{self.path.name}: ONNX Runtime failed on input {batch.shape} ({first})") from exc
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees its memory when the session is garbage-collected)."""
        self._session = None

    @property
    def provider_options(self) -> Mapping[str, Any]:
        """ONNX Runtime's effective options per provider (``session.get_provider_options()``)."""
        return dict(self._session.get_provider_options()) if self._session is not None else {}


def _profile_shapes(contract: ArtifactContract, side: int) -> str:
    """The ORT TensorRT provider's shape string for one profile point: every input at batch 1 and ``side``."""
    cfg = contract.cfg
    shapes = f"{INPUT_NAME}:1x{cfg.in_channels}x{side}x{side}"
    if cfg.noise_level_input:
        shapes += f",{SIGMA_NAME}:1x1x{side}x{side}"
    return shapes
