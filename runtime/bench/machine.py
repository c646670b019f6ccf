"""Where and when a benchmark ran: CPU (model and instruction-set features), cores, load, library versions."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..precision import cpu_features, cpu_name


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` "model name", else :func:`platform.processor`), or ``"unknown"``."""
    return cpu_name() or "unknown"


def machine_info(**extra: Any) -> dict[str, Any]:
    """Where and when a benchmark ran: CPU, logical cores, load average, OS, Python/numpy/ONNX Runtime versions,
    UTC time; plus ``extra`` (e.g. ``torch="2.13.0"``)."""
    from ..optional import onnxruntime_module

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
