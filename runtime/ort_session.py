"""One way to open an ONNX file with ONNX Runtime on the CPU, for every tool that runs a model outside a backend.

The runtime backends (:mod:`.ort_backend`) own the GPU providers and the profiling; evaluation, the export
checks, ``compare`` and the benchmarks' contract reads all use :func:`cpu_session`, which refuses external data
outside the model's folder first (:func:`~.onnx_scan.check_external_data`) and turns ONNX Runtime's own error
types into one :class:`~.errors.ArtifactError` line. Sessions are cached per file, modification time and
settings, so a loop that runs the same file on many images (calibration checks, the quality gate) opens it once.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .errors import ArtifactError
from .onnx_scan import check_external_data
from .optional import onnxruntime_module


def cpu_session(path: str | Path, *, threads: int | None = None, optimize: bool = True) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path`` on the CPU provider (cached; see the module docstring).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None or 0: ONNX Runtime's default, one per physical core).
        optimize: False opens the graph as written (``ORT_DISABLE_ALL``): enough to read metadata and I/O.

    Raises:
        ArtifactError: the file is missing, refers to external data outside its folder, or ONNX Runtime cannot
            load it (the message starts with the path and quotes ONNX Runtime's first line).
    """
    p = Path(path)
    try:
        stamp = os.stat(p).st_mtime_ns
    except OSError as exc:
        raise ArtifactError(f"{p}: cannot open the model file ({exc.strerror or exc})") from exc
    return _cached(str(p.resolve()), stamp, threads or 0, optimize)


@functools.lru_cache(maxsize=8)
def _cached(path: str, stamp: int, threads: int, optimize: bool) -> Any:
    ort = onnxruntime_module()
    check_external_data(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's own pybind error types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{path}: ONNX Runtime cannot load this model ({first})") from exc


__all__ = ["cpu_session"]
