"""Native TensorRT backend for ``.engine`` files (TensorRT >= 10, cuda-python for buffers and streams).

Written against the TensorRT 10 Python API (named I/O tensors): ``Runtime.deserialize_cuda_engine``,
``ICudaEngine.num_io_tensors / get_tensor_name / get_tensor_mode / get_tensor_dtype /
get_tensor_profile_shape``, ``IExecutionContext.set_input_shape / set_tensor_address / execute_async_v3``
(TensorRT Python API reference and developer guide, "Performing inference"), type-checked with
``tensorrt-stubs``. Device memory, copies and the stream come from cuda-python's CUDA runtime binding
(``cudaMalloc``, ``cudaMemcpyAsync``, ``cudaStreamCreate``...; every call returns ``(error, *values)``).

Both are imported when the backend is created, by module name, so JetPack's system packages on a Jetson work
as well as the x86 wheels (docs/runtime.md, "GPU and Jetson"). Real TensorRT is detected with
:func:`.optional.require_tensorrt` (``tensorrt-stubs`` alone makes ``import tensorrt`` succeed).

Before deserialising, the engine's sidecar (:mod:`.engine_meta`) is checked against this machine: an engine
runs only with the TensorRT version and on the GPU it was built for; a mismatch is an :class:`ArtifactError`
that says to rebuild, not a crash inside TensorRT. The engine's own profile must match the sidecar's.

Thread safety: an execution context is not re-entrant, so :meth:`TensorRTBackend.run` holds a lock; it also
sets the CUDA device for the calling thread (the current device is per thread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .artifact import ArtifactContract
from .backend import BackendKind, InputSpec, SerializedBackend
from .contract import INPUT_NAME, OUTPUT_NAME, SIGMA_NAME
from .engine_meta import EngineMeta, read_sidecar, runtime_mismatches
from .errors import ArtifactError, BackendUnavailableError, InferenceError, InvalidInputError
from .optional import require_cuda_runtime, require_tensorrt


def _cuda_check(cudart: Any, result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(error, *values)`` result; raise :class:`InferenceError` unless it succeeded."""
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(err) != 0:
        try:
            _, text = cudart.cudaGetErrorString(err)
            msg = text.decode() if isinstance(text, bytes) else str(text)
        except Exception:  # the error string is a courtesy; never mask the real error
            msg = str(err)
        raise InferenceError(f"CUDA {what} failed: {msg}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class _DeviceBuffer:
    """A growable ``cudaMalloc`` allocation."""

    def __init__(self, cudart: Any) -> None:
        self._cudart = cudart
        self.ptr = 0
        self.nbytes = 0

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(_cuda_check(self._cudart, self._cudart.cudaMalloc(nbytes), "cudaMalloc"))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            _cuda_check(self._cudart, self._cudart.cudaFree(self.ptr), "cudaFree")
            self.ptr, self.nbytes = 0, 0


class TensorRTBackend(SerializedBackend):
    """A serialized TensorRT engine on one GPU.

    Args:
        path: the ``.engine`` file, with its ``<engine>.json`` sidecar beside it.
        device: CUDA device index.

    Raises:
        BackendUnavailableError: TensorRT (>= 10) or cuda-python is not installed, or no CUDA device.
        ArtifactError: missing/invalid sidecar; engine built for another TensorRT version or GPU; the engine
            does not deserialise or does not match its sidecar (I/O names, profile).
    """

    def __init__(self, path: str | Path, *, device: int = 0) -> None:
        super().__init__()
        self.path = Path(path)
        self.kind = BackendKind.TENSORRT
        self.node_providers = {}
        meta = read_sidecar(self.path)  # an ArtifactError before any GPU work if the sidecar is wrong
        require_tensorrt("the tensorrt backend")
        cudart = require_cuda_runtime("the tensorrt backend")
        import tensorrt as trt  # the real module (checked above); typed by tensorrt-stubs

        self._cudart = cudart
        self._device_index = device
        count = _cuda_check(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not count or device >= int(count):
            raise BackendUnavailableError(f"CUDA device {device} does not exist (this machine has {count or 0})")
        _cuda_check(cudart, cudart.cudaSetDevice(device), "cudaSetDevice")
        props = _cuda_check(cudart, cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        gpu_name = name.rstrip("\x00").strip()
        capability = f"{props.major}.{props.minor}"
        wrong = runtime_mismatches(
            meta, tensorrt_version=trt.__version__, gpu_name=gpu_name, compute_capability=capability
        )
        if wrong:
            raise ArtifactError(
                f"{self.path.name} was built for another platform ({'; '.join(wrong)}); "
                "rebuild the engine on this device with `edgedenoise build`"
            )
        self.device = f"cuda:{device} ({gpu_name}, sm {capability})"
        self.providers = (f"TensorRT {trt.__version__}",)
        self.contract = ArtifactContract(cfg=meta.model_cfg, precision=meta.precision)

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise ArtifactError(
                f"{self.path.name}: TensorRT {trt.__version__} could not deserialise the engine "
                "(corrupt file?); rebuild it with `edgedenoise build`"
            )
        self._engine = engine
        self._inputs, self._outputs = self._io_names(meta)
        self.input_spec = self._spec(meta)
        context = engine.create_execution_context()
        if context is None:
            raise InferenceError(f"{self.path.name}: could not create an execution context (out of GPU memory?)")
        self._context = context
        self._stream = int(_cuda_check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate"))
        self._buffers = {name: _DeviceBuffer(cudart) for name in (*self._inputs, *self._outputs)}
        self._dtypes = {name: np.dtype(trt.nptype(engine.get_tensor_dtype(name))) for name in self._buffers}

    def _io_names(self, meta: EngineMeta) -> tuple[list[str], list[str]]:
        import tensorrt as trt

        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        ok_inputs = {INPUT_NAME, SIGMA_NAME}
        if (
            INPUT_NAME not in inputs
            or not set(inputs) <= ok_inputs
            or outputs != [OUTPUT_NAME]
            or (meta.input_name, meta.output_name) != (INPUT_NAME, OUTPUT_NAME)
        ):
            raise ArtifactError(
                f"{self.path.name}: engine I/O {inputs} -> {outputs} does not follow the contract "
                f"({INPUT_NAME!r} -> {OUTPUT_NAME!r}); rebuild it from an edgedenoise ONNX"
            )
        return inputs, outputs

    def _spec(self, meta: EngineMeta) -> InputSpec:
        import tensorrt as trt

        shapes = self._engine.get_tensor_profile_shape(INPUT_NAME, 0)
        lo, _, hi = ([d[i] for i in range(len(d))] for d in shapes)
        if (tuple(lo), tuple(hi)) != (meta.profile.min, meta.profile.max):
            raise ArtifactError(
                f"{self.path.name}: the engine's profile {lo}..{hi} differs from its sidecar's "
                f"{list(meta.profile.min)}..{list(meta.profile.max)}; rebuild the engine"
            )
        if lo[0] != 1:
            raise ArtifactError(f"{self.path.name}: profile minimum batch is {lo[0]}; rebuild it with a minimum of 1")
        return InputSpec(
            channels=meta.model_cfg.in_channels,
            dtype=np.dtype(trt.nptype(self._engine.get_tensor_dtype(INPUT_NAME))),
            min_hw=(lo[2], lo[3]),
            max_hw=(hi[2], hi[3]),
            max_batch=hi[0],
            noise_level=SIGMA_NAME in self._inputs,
        )

    def run(self, batch: np.ndarray, noise_level: np.ndarray | None = None) -> np.ndarray:
        """Run the engine on ``(N, C, H, W)`` float32 (see :meth:`Backend.run`).

        Raises:
            InvalidInputError: a shape outside the engine's profile, or a missing/unexpected noise level.
            InferenceError: a CUDA or TensorRT failure.
        """
        if self._context is None:
            raise InferenceError(f"{self.path.name}: the backend is closed")
        feeds = {INPUT_NAME: batch}
        if self.input_spec.noise_level:
            if noise_level is None:
                raise InvalidInputError(f"{self.path.name} takes a noise level; pass sigma=...")
            feeds[SIGMA_NAME] = noise_level
        elif noise_level is not None:
            raise InvalidInputError(f"{self.path.name} has no noise-level input; do not pass sigma")
        cudart = self._cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        with self._lock:
            _cuda_check(cudart, cudart.cudaSetDevice(self._device_index), "cudaSetDevice")
            host: dict[str, np.ndarray] = {}
            for name, value in feeds.items():
                arr = np.ascontiguousarray(value, dtype=self._dtypes[name])
                if not self._context.set_input_shape(name, arr.shape):
                    spec = self.input_spec
                    raise InvalidInputError(
                        f"{self.path.name}: input {name} {arr.shape} is outside the engine's profile "
                        f"(H, W in {spec.min_hw}..{spec.max_hw}, N <= {spec.max_batch})"
                    )
                host[name] = arr
            dims = self._context.get_tensor_shape(OUTPUT_NAME)
            out = np.empty(tuple(dims[i] for i in range(len(dims))), dtype=self._dtypes[OUTPUT_NAME])
            for name, arr in host.items():
                ptr = self._buffers[name].ensure(arr.nbytes)
                _cuda_check(cudart, cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, self._stream), "copy")
                self._context.set_tensor_address(name, ptr)
            out_ptr = self._buffers[OUTPUT_NAME].ensure(out.nbytes)
            self._context.set_tensor_address(OUTPUT_NAME, out_ptr)
            if not self._context.execute_async_v3(self._stream):
                raise InferenceError(f"{self.path.name}: TensorRT execute_async_v3 failed on input {batch.shape}")
            _cuda_check(cudart, cudart.cudaMemcpyAsync(out.ctypes.data, out_ptr, out.nbytes, d2h, self._stream), "copy")
            _cuda_check(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return out.astype(np.float32, copy=False)

    def close(self) -> None:
        """Free device buffers and the stream, then the context, engine and runtime. Idempotent."""
        if getattr(self, "_context", None) is None:
            return
        with self._lock:
            for buf in self._buffers.values():
                buf.free()
            _cuda_check(self._cudart, self._cudart.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
            self._context = None  # type: ignore[assignment]
            del self._engine
            del self._runtime
