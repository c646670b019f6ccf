"""The camera-pipeline example runs without torch and reports ordered latency percentiles."""

from __future__ import annotations

import re
import subprocess
import sys

from runtime_helpers import BLOCK_TORCH, ROOT, tiny_onnx


def test_camera_pipeline_example_without_torch() -> None:
    argv = ["camera_pipeline.py", str(tiny_onnx("rednet10")), "--frames", "6", "--size", "40x56", "--threads", "1"]
    code = (
        BLOCK_TORCH
        + f"sys.argv = {argv!r}\nimport runpy\nrunpy.run_path('examples/camera_pipeline.py', run_name='__main__')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("backend: ort-cpu")
    m = re.search(
        r"6 frames: latency p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms; ([\d.]+) frames/s; PSNR", res.stdout
    )
    assert m, res.stdout
    p50, p90, p99, fps = (float(v) for v in m.groups())
    assert 0 < p50 <= p90 <= p99 and fps > 0
