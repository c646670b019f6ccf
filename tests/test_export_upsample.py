"""The channels-last 8-bit nearest up-sampling of the CPU INT8 flavour (edgedenoise/export/upsample.py).

Oracles: numpy's ``repeat`` for nearest x2 up-sampling, ONNX Runtime running the graphs before and after the
rewrite, and the FP32 model for the exported U-Net.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgedenoise.export.calibration import CALIB_DIR, calibration_feeds, load_images
from edgedenoise.export.onnx_export import export_onnx, run_onnx
from edgedenoise.export.quantize import (
    CalibMethod,
    Int8Flavour,
    Int8Options,
    entry_convs,
    preprocess_for_quantization,
    quantize_int8,
)
from edgedenoise.export.upsample import rewrite_nearest_upsample
from edgedenoise.models import create_model, model_cfg
from edgedenoise.runtime.metrics import psnr

S_IN, Z_IN, S_OUT, Z_OUT = 0.1, 3, 0.11, 4  # the second grid covers the first one's range


def _qdq_resize(
    mode: str = "nearest", ctm: str = "asymmetric", nearest_mode: str = "floor", scales: tuple = (1, 1, 2, 2)
) -> onnx.ModelProto:
    """x_q (uint8) -> DQ -> Resize -> Q -> DQ -> y: the pattern quantize_static writes around a Resize."""
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s_in", "z_in"], ["xf"], name="dq_in"),
        helper.make_node(
            "Resize",
            ["xf", "", "scales"],
            ["up"],
            name="resize",
            mode=mode,
            coordinate_transformation_mode=ctm,
            nearest_mode=nearest_mode,
        ),  # fmt: skip
        helper.make_node("QuantizeLinear", ["up", "s_out", "z_out"], ["up_q"], name="q_up"),
        helper.make_node("DequantizeLinear", ["up_q", "s_out", "z_out"], ["y"], name="dq_up"),
    ]
    inits = [
        helper.make_tensor("s_in", TensorProto.FLOAT, [], [S_IN]),
        helper.make_tensor("z_in", TensorProto.UINT8, [], [Z_IN]),
        helper.make_tensor("s_out", TensorProto.FLOAT, [], [S_OUT]),
        helper.make_tensor("z_out", TensorProto.UINT8, [], [Z_OUT]),
        helper.make_tensor("scales", TensorProto.FLOAT, [4], [float(v) for v in scales]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", "C", "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "C", "H2", "W2"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"x": x})[0])


def test_rewrite_is_nearest_upsampling_of_the_8_bit_tensor() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(2, 3, 5, 7), dtype=np.uint8)
    model = _qdq_resize()
    before = _run(model, x)
    assert rewrite_nearest_upsample(model) == 1
    onnx.checker.check_model(model)
    assert not [n for n in model.graph.node if n.op_type in ("Resize", "QuantizeLinear")]
    after = _run(model, x)
    oracle = np.repeat(np.repeat(x.astype(np.float32) - Z_IN, 2, axis=2), 2, axis=3) * np.float32(S_IN)
    assert after.shape == (2, 3, 10, 14)
    np.testing.assert_array_equal(after, oracle)
    # the QDQ graph rounded the same values once more, to the second grid: at most half its step apart
    assert np.abs(before - oracle).max() <= S_OUT / 2 + 1e-6
    assert np.abs(before - oracle).max() > 0  # ... and the rewrite did remove that rounding
    assert {t.name for t in model.graph.initializer}.isdisjoint({"scales", "s_out", "z_out"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "linear"},
        {"ctm": "half_pixel"},
        {"nearest_mode": "round_prefer_ceil"},
        {"scales": (1, 1, 3, 3)},
        {"scales": (1, 2, 2, 2)},
    ],
)
def test_other_resizes_are_left_alone(kwargs: dict) -> None:
    model = _qdq_resize(**kwargs)
    before = model.SerializeToString()
    assert rewrite_nearest_upsample(model) == 0
    assert model.SerializeToString() == before


def test_unet_cpu_int8_has_no_resize_and_matches_fp32(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(5)
    model = create_model("unet3_f32_u4_nl", features=8).eval()
    fp32 = export_onnx(model, tmp_path / "u.onnx")
    assert sum(n.op_type == "Resize" for n in onnx.load_model(str(fp32)).graph.node) == 2  # FP32 keeps them
    prepared = preprocess_for_quantization(fp32, tmp_path / "u.pre.onnx")
    images = [x[:, :64, :64] for x in load_images(CALIB_DIR / "gray", 1, 16, max_images=4)]
    feeds = calibration_feeds(images, (15.0, 50.0), model_cfg(model), seed=3)
    kinds = {}
    for flavour in (Int8Flavour.CPU, Int8Flavour.TRT):
        opts = Int8Options(flavour=flavour, method=CalibMethod.MINMAX, exclude=entry_convs(prepared))
        out = quantize_int8(
            prepared, tmp_path / f"u.{flavour.value}.onnx", opts, inputs=feeds, cache_dir=tmp_path,
            calib_id=flavour.value,
        )  # fmt: skip
        kinds[flavour] = [n.op_type for n in onnx.load_model(str(out)).graph.node]
        x, sigma = feeds[1]["noisy"], feeds[1]["sigma"]
        ref = run_onnx(fp32, x, sigma=sigma)
        assert psnr(run_onnx(out, x, sigma=sigma), ref) > 40.0, flavour
    assert "Resize" not in kinds[Int8Flavour.CPU] and kinds[Int8Flavour.CPU].count("Concat") >= 4
    assert kinds[Int8Flavour.TRT].count("Resize") == 2  # TensorRT fuses its own Resize
