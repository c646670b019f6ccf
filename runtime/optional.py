"""Optional dependencies of the runtime, imported lazily and detected honestly.

The runtime's hard dependencies are numpy, onnxruntime and Pillow. TensorRT (``tensorrt``) and its CUDA
binding (``cuda-python``) are optional and imported by module name only, so the system packages that JetPack
ships on a Jetson satisfy them as well as the x86 wheels do (see docs/runtime.md, "GPU and Jetson").

Real TensorRT detection: ``tensorrt-stubs`` (installed here for mypy) makes ``import tensorrt`` succeed as an
empty *namespace package*. :func:`tensorrt_module` therefore checks for the API (``tensorrt.Runtime``,
``tensorrt.Builder``) and a version string, never for a successful import alone. Use this module everywhere
TensorRT is needed (runtime and export), so there is one definition of "TensorRT is installed".
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BackendUnavailableError

_TRT_HINT = (
    "install TensorRT 10 (x86: `pip install 'edgedenoise[trt]'`; Jetson: it comes with JetPack as "
    "python3-libnvinfer) — see docs/runtime.md, 'GPU and Jetson'"
)


def tensorrt_module() -> ModuleType | None:
    """The real ``tensorrt`` module, or None when it is absent or only the type stubs are installed."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return None
    version = getattr(trt, "__version__", None)
    if not (hasattr(trt, "Runtime") and hasattr(trt, "Builder") and isinstance(version, str)):
        return None  # a namespace package (tensorrt-stubs) or a broken install
    return trt


def tensorrt_version() -> str | None:
    """``tensorrt.__version__`` of the real TensorRT (e.g. ``"10.3.0"``), or None when it is not installed."""
    trt = tensorrt_module()
    return None if trt is None else str(trt.__version__)


def require_tensorrt(what: str) -> ModuleType:
    """The real ``tensorrt`` module.

    Raises:
        BackendUnavailableError: TensorRT is not installed (or only ``tensorrt-stubs`` is); says how to install.
    """
    trt = tensorrt_module()
    if trt is None:
        raise BackendUnavailableError(f"{what} needs TensorRT, which is not installed; {_TRT_HINT}")
    major = str(trt.__version__).split(".")[0]
    if not major.isdigit() or int(major) < 10:
        raise BackendUnavailableError(
            f"{what} needs TensorRT >= 10 (the tensor-name API), found {trt.__version__}; {_TRT_HINT}"
        )
    return trt


def cuda_runtime_module() -> ModuleType | None:
    """The CUDA runtime binding of cuda-python: ``cuda.bindings.runtime`` (>= 12.6) or ``cuda.cudart`` (older)."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "cudaMalloc"):
            return mod
    return None


def require_cuda_runtime(what: str) -> ModuleType:
    """The cuda-python runtime binding.

    Raises:
        BackendUnavailableError: cuda-python is not installed; says how to install it.
    """
    mod = cuda_runtime_module()
    if mod is None:
        raise BackendUnavailableError(
            f"{what} needs cuda-python for device buffers and streams, which is not installed; "
            "install it with `pip install 'cuda-python>=12'` (matching your CUDA major version)"
        )
    return mod


def onnxruntime_module() -> ModuleType:
    """The ``onnxruntime`` module (CPU or GPU build: both install the same module name).

    Raises:
        BackendUnavailableError: onnxruntime is not installed.
    """
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise BackendUnavailableError(
            "ONNX Runtime is not installed; install `onnxruntime` (CPU) or `onnxruntime-gpu` (CUDA), "
            "or on a Jetson NVIDIA's onnxruntime-gpu wheel for your JetPack"
        ) from exc
