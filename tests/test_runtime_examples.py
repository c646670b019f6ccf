"""The camera-pipeline example runs without torch, reports ordered latency percentiles, and writes a real video."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import BLOCK_TORCH, ROOT, tiny_onnx


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = (
        BLOCK_TORCH
        + f"sys.argv = {argv!r}\nimport runpy\nrunpy.run_path('examples/camera_pipeline.py', run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(ROOT))


def _stats(stdout: str, frames: int) -> tuple[float, ...]:
    m = re.search(
        rf"{frames} frames: latency p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms; ([\d.]+) frames/s; "
        r"PSNR ([\d.]+) dB noisy -> ([\d.]+) dB denoised",
        stdout,
    )
    assert m, stdout
    return tuple(float(v) for v in m.groups())


def test_camera_pipeline_example_without_torch() -> None:
    res = _run(["camera_pipeline.py", str(tiny_onnx("rednet10")), "--frames", "6", "--size", "40x56", "--threads", "1"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("backend: ort-cpu")
    p50, p90, p99, fps, noisy, _ = _stats(res.stdout, 6)
    assert 0 < p50 <= p90 <= p99 and fps > 0
    # the generated frames carry Poisson-Gaussian noise a = 0.01, b = 0.0004: σ ≈ 15-26 gray levels -> ~21-25 dB
    assert 18.0 < noisy < 28.0


@pytest.mark.parametrize("pixel_format", ["bgr", "nv12"])
def test_camera_pipeline_writes_the_denoised_video(tmp_path: Path, pixel_format: str) -> None:
    cv2 = pytest.importorskip("cv2", reason="the camera extra (opencv-python-headless) is not installed")
    out = tmp_path / "clean.mp4"
    model = tiny_onnx("rednet10", in_channels=3)
    res = _run(
        ["camera_pipeline.py", str(model), "--frames", "5", "--size", "64x48", "--threads", "1",
         "--pixel-format", pixel_format, "--output", str(out)]
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    _stats(res.stdout, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.mp4"]  # no temporary file left beside it
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert np.std(frames[0]) > 5  # a picture, not a blank frame


def test_camera_pipeline_refuses_a_missing_source(tmp_path: Path) -> None:
    pytest.importorskip("cv2", reason="the camera extra (opencv-python-headless) is not installed")
    out = tmp_path / "clean.mp4"
    res = _run(["camera_pipeline.py", str(tiny_onnx("rednet10")), "--source", str(tmp_path / "nope.mp4"),
                "--output", str(out)])  # fmt: skip
    assert res.returncode != 0
    assert "cannot open video source" in res.stderr and not out.exists()
