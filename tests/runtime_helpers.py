"""Helpers shared by the runtime and infer tests: tiny exported models, hand-built ONNX graphs, torch-free CLI runs.

Tiny models are real registry models (``create_model(name, features=8)``, fixed seed) exported with the
project's own exporter (``edgedenoise.export.onnx_export.export_onnx``); each is exported once per test process.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="edgedenoise-rt-tests-"))
atexit.register(shutil.rmtree, _TMP, True)

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"


@functools.cache
def tiny_model(name: str = "rednet10", in_channels: int = 1, seed: int = 0):  # type: ignore[no-untyped-def]
    """A registry model with 8 features and seeded random weights, in eval mode."""
    import torch

    from edgedenoise.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, features=8, in_channels=in_channels).eval()
    # Random biases near zero make an untrained net a near-identity; shift them so outputs really differ.
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.05 * torch.randn_like(p))
    return model


@functools.cache
def tiny_onnx(name: str = "rednet10", in_channels: int = 1) -> Path:
    """Export :func:`tiny_model` once per process; returns the ``.onnx`` path."""
    from edgedenoise.export.onnx_export import export_onnx

    return export_onnx(tiny_model(name, in_channels), _TMP / f"{name}_c{in_channels}.onnx")


def torch_forward(name: str, x: np.ndarray, in_channels: int = 1) -> np.ndarray:
    """The tiny model's PyTorch output for ``(N, C, H, W)`` float32 (the independent oracle)."""
    import torch

    with torch.no_grad():
        return tiny_model(name, in_channels)(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def static_onnx(src: Path, height: int, width: int) -> Path:
    """A copy of ``src`` whose input/output H and W are fixed (like an engine profile with min = max)."""
    import onnx

    model = onnx.load(str(src))
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[2].ClearField("dim_param")
        dims[2].dim_value = height
        dims[3].ClearField("dim_param")
        dims[3].dim_value = width
    del model.graph.value_info[:]
    out = _TMP / f"{src.stem}_static{height}x{width}.onnx"
    onnx.save(model, str(out))
    return out


def graph_onnx(kind: str, cfg_json: str | None = None) -> Path:
    """A hand-built ONNX graph with the contract's I/O names.

    Args:
        kind: ``"sub_noise"`` (``denoised = noisy - sigma``, with the per-pixel noise-level input ``sigma``),
            ``"div_zero"`` (``denoised = noisy / 0``: Inf/NaN output), ``"identity"``.
        cfg_json: ModelCfg JSON for the metadata; None writes no metadata at all.
    """
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("noisy", TensorProto.FLOAT, ["N", 1, "H", "W"])
    y = helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["N", 1, "H", "W"])
    inputs = [x]
    inits = []
    if kind == "sub_noise":
        inputs.append(helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["N", 1, "H", "W"]))
        nodes = [helper.make_node("Sub", ["noisy", "sigma"], ["denoised"])]
    elif kind == "div_zero":
        inits.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
        nodes = [helper.make_node("Div", ["noisy", "zero"], ["denoised"])]
    elif kind == "identity":
        nodes = [helper.make_node("Identity", ["noisy"], ["denoised"])]
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, kind, inputs, [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if cfg_json is not None:
        helper.set_model_props(model, {"edgedenoise.cfg": cfg_json, "edgedenoise.precision": "fp32"})
    onnx.checker.check_model(model)
    out = _TMP / f"graph_{kind}_{'meta' if cfg_json else 'nometa'}.onnx"
    onnx.save(model, str(out))
    return out


def run_cli_without_torch(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``edgedenoise ARGS`` in a fresh interpreter where ``import torch`` (and ``import onnx``) fail."""
    code = BLOCK_TORCH + f"sys.argv = ['edgedenoise', *{json.dumps(args)}]\nfrom edgedenoise.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))


def psnr_np(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB written out here, independent of edgedenoise.runtime.metrics."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10.0 * np.log10(peak * peak / mse))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process through its real entry point (``edgedenoise.cli.main``).

    Returns ``(exit code, stdout, stderr)``; SystemExit is caught and its code returned.
    """
    from edgedenoise.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
