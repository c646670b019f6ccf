"""The torch-free runtime: open an exported model on TensorRT, ONNX Runtime CUDA or ONNX Runtime CPU, denoise arrays.

Start with :class:`Denoiser` (``from edgedenoise.runtime import Denoiser``); see docs/runtime.md. This package
needs numpy, onnxruntime and Pillow only; TensorRT and cuda-python are imported when an engine is opened.
"""

from .backend import BackendKind, RuntimeInfo, open_backend
from .denoiser import ColorMode, Denoiser, NonFinite, PixelFormat
from .noise_level import estimate_sigma

__all__ = [
    "BackendKind",
    "ColorMode",
    "Denoiser",
    "NonFinite",
    "PixelFormat",
    "RuntimeInfo",
    "estimate_sigma",
    "open_backend",
]
