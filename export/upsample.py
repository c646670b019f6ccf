"""Nearest-neighbour x2 up-sampling of an INT8 QDQ model as channels-last 8-bit copies (ONNX Runtime CPU flavour).

The U-Net models (:mod:`edgedenoise.models.unet`) bring each decoder level up with ``nn.Upsample(scale_factor=2,
mode="nearest")``, an ONNX ``Resize``. In FP32 ONNX Runtime runs it in its blocked NCHWc layout, fast. In an INT8
QDQ model ONNX Runtime 1.32 runs the quantized convolutions channels-last (NHWC) and moves the ``Resize`` there
too, into an 8-bit kernel that computes every output element's source index: 5.8 of 27 ms per 1920x1080 frame of
``unet3_f32_u4_nl`` on the 2-core CPU (AVX-512 VNNI), against 0.3 ms for the two convolutions beside them.

:func:`rewrite_nearest_upsample` replaces, in the quantized model only, the pattern

    x_q -> DequantizeLinear(s, z) -> Resize(nearest, x2) -> QuantizeLinear(s', z') -> DequantizeLinear(s', z')

by the same up-sampling done on the 8-bit tensor itself, written channels-last:

    x_q -> Transpose(NCHW -> NHWC) -> Concat(x, x; C) -> Reshape(N, H, 2W, C)
        -> Concat(x, x; W) -> Reshape(N, 2H, 2W, C) -> Transpose(NHWC -> NCHW) -> DequantizeLinear(s, z)

Doubling the channel vector of each pixel and reshaping interleaves columns; doubling each row and reshaping
interleaves rows: that is ``out[y, x] = in[y // 2, x // 2]``, ONNX ``Resize`` with ``mode="nearest"``,
``coordinate_transformation_mode="asymmetric"`` and ``nearest_mode="floor"`` (what ``torch.onnx`` writes for
``nn.Upsample``) at scales (1, 1, 2, 2). ONNX Runtime cancels the two Transposes against those its layout
transformer puts around the NHWC convolutions, and each Concat copies whole C-byte pixel vectors or whole rows.
Measured on the same machine (``edgedenoise bench``, 2 threads): 22.5 ms per frame for ``unet3_f32_u4_nl`` INT8,
against 27-29 ms with the ``Resize``.

The result is exact: nearest up-sampling commutes with the element-wise dequantization, so the rewritten
branch gives ``Resize(DequantizeLinear(x_q))`` bit for bit and drops the second rounding (to ``s'``) that the
QDQ model applied after it. FP32, FP16 and the TensorRT flavour keep the ``Resize`` (TensorRT runs it as one
fused layer). A ``Resize`` that does not match the pattern (another mode, scale, or a float input) is left as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_SCALES = (1.0, 1.0, 2.0, 2.0)


def _attr(node: Any, name: str, default: str) -> str:
    for a in node.attribute:
        if a.name == name:
            return a.s.decode() if isinstance(a.s, bytes) else str(a.s)
    return default


def _is_nearest_x2(node: Any, consts: dict[str, np.ndarray]) -> bool:
    """``node`` is a Resize that maps ``out[y, x] = in[y // 2, x // 2]`` on an NCHW tensor."""
    if node.op_type != "Resize" or _attr(node, "mode", "nearest") != "nearest":
        return False
    if _attr(node, "coordinate_transformation_mode", "half_pixel") != "asymmetric":
        return False
    # source coordinate y / 2: floor, and round-half-down, both give y // 2
    if _attr(node, "nearest_mode", "round_prefer_floor") not in ("floor", "round_prefer_floor"):
        return False
    if len(node.input) < 3 or node.input[2] not in consts or (len(node.input) > 3 and node.input[3]):
        return False
    scales = consts[node.input[2]].astype(np.float64).ravel()
    return scales.shape == (4,) and bool(np.all(scales == _SCALES))


def rewrite_nearest_upsample(model: Any) -> int:
    """Rewrite, in place, every quantized nearest x2 ``Resize`` of an ONNX QDQ model (see the module docstring).

    Args:
        model: an ``onnx.ModelProto`` written by ``onnxruntime.quantization.quantize_static`` (QDQ format), NCHW
            tensors ``(N, C, H, W)``; the up-sampled branch is uint8 or int8 with per-tensor scales.

    Returns:
        The number of ``Resize`` nodes rewritten (0 leaves the model unchanged).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in graph.output}

    done = 0
    dropped: set[str] = set()  # tensors the removed nodes read
    for resize in [n for n in graph.node if _is_nearest_x2(n, consts)]:
        dq = producer.get(resize.input[0])
        users = consumers.get(resize.output[0], [])
        if dq is None or dq.op_type != "DequantizeLinear" or len(users) != 1 or resize.output[0] in graph_outputs:
            continue
        q = users[0]
        readers = consumers.get(q.output[0], [])
        if q.op_type != "QuantizeLinear" or not readers or q.output[0] in graph_outputs:
            continue
        if any(r.op_type != "DequantizeLinear" for r in readers):
            continue
        if any(consts.get(t, np.zeros(1)).size != 1 for t in dq.input[1:]):
            continue  # per-channel scales: not an activation
        x_q, scale = dq.input[0], dq.input[1:]
        p = f"{resize.name}_channels_last"
        shape = helper.make_node("Shape", [x_q], [f"{p}_shape"], name=f"{p}_shape")
        gather = helper.make_node("Gather", [f"{p}_shape", f"{p}_perm"], [f"{p}_nhwc"], name=f"{p}_gather", axis=0)
        wide = helper.make_node("Mul", [f"{p}_nhwc", f"{p}_x2w"], [f"{p}_shape_w"], name=f"{p}_shape_w")
        tall = helper.make_node("Mul", [f"{p}_nhwc", f"{p}_x2hw"], [f"{p}_shape_hw"], name=f"{p}_shape_hw")
        graph.initializer.extend(
            [
                helper.make_tensor(f"{p}_perm", TensorProto.INT64, [4], [0, 2, 3, 1]),
                helper.make_tensor(f"{p}_x2w", TensorProto.INT64, [4], [1, 1, 2, 1]),
                helper.make_tensor(f"{p}_x2hw", TensorProto.INT64, [4], [1, 2, 2, 1]),
            ]
        )
        ops = [
            shape,
            gather,
            wide,
            tall,
            helper.make_node("Transpose", [x_q], [f"{p}_t"], name=f"{p}_to_nhwc", perm=[0, 2, 3, 1]),
            helper.make_node("Concat", [f"{p}_t", f"{p}_t"], [f"{p}_c"], name=f"{p}_pixels", axis=3),
            helper.make_node("Reshape", [f"{p}_c", f"{p}_shape_w"], [f"{p}_w"], name=f"{p}_columns"),
            helper.make_node("Concat", [f"{p}_w", f"{p}_w"], [f"{p}_r"], name=f"{p}_rows_copy", axis=2),
            helper.make_node("Reshape", [f"{p}_r", f"{p}_shape_hw"], [f"{p}_hw"], name=f"{p}_rows"),
            helper.make_node("Transpose", [f"{p}_hw"], [f"{p}_up"], name=f"{p}_to_nchw", perm=[0, 3, 1, 2]),
        ]
        at = list(graph.node).index(resize)
        for k, op in enumerate(ops):
            graph.node.insert(at + k, op)
        for r in readers:  # read the up-sampled 8-bit tensor on the grid it was quantized on
            r.input[0] = f"{p}_up"
            r.input[1] = scale[0]
            if len(r.input) > 2 or len(scale) > 1:
                del r.input[2:]
                r.input.extend(scale[1:])
        dropped.update(resize.input, q.input)
        graph.node.remove(resize)
        graph.node.remove(q)
        if not any(dq.output[0] in n.input for n in graph.node) and dq.output[0] not in graph_outputs:
            graph.node.remove(dq)
        done += 1
    if done:  # the Resize scales and the second Q/DQ pair's scale and zero point, if nothing else reads them
        used = {i for n in graph.node for i in n.input}
        for t in [t for t in graph.initializer if t.name in dropped and t.name not in used]:
            graph.initializer.remove(t)
    return done
