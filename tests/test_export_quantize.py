"""Calibration data, FP16 and INT8 QDQ artifacts, and the quality gate, checked against independent oracles.

Oracles: ONNX Runtime running the FP32 model; the calibration inputs' own min/max (for the min-max scales);
the FP32 weights (for the per-channel weight quantization); Pillow's own gray conversion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from PIL import Image

from edgedenoise.export.calibration import (
    CALIB_DIR,
    NoisyImageReader,
    add_noise,
    calibration_feeds,
    calibration_sigmas,
    default_calib_dir,
    default_val_dir,
    load_images,
)
from edgedenoise.export.errors import CalibrationError, ExportError
from edgedenoise.export.gate import quantize_with_budget, sweep_candidates
from edgedenoise.export.onnx_export import (
    FLOAT_NODES_KEY,
    declared_float_nodes,
    export_onnx,
    read_metadata,
    run_onnx,
)
from edgedenoise.export.quality import compare_outputs, make_validation_set, run_outputs
from edgedenoise.export.quantize import (
    CalibMethod,
    Int8Flavour,
    Int8Options,
    calibration_cache_path,
    convert_fp16,
    entry_convs,
    preprocess_for_quantization,
    quantize_int8,
)
from edgedenoise.models import create_model
from edgedenoise.runtime.contract import FLAVOUR_KEY, PRECISION_KEY, QUALITY_KEY, ModelCfg
from edgedenoise.runtime.errors import InvalidInputError
from edgedenoise.runtime.metrics import awgn, psnr

# ---------------------------------------------------------------- calibration data


def test_shipped_calibration_and_validation_sets_are_disjoint_and_small() -> None:
    calib = sorted(p.name for p in (CALIB_DIR / "gray").glob("*.png"))
    val = sorted(p.name for p in (CALIB_DIR / "val_gray").glob("*.png"))
    assert 32 <= len(calib) <= 64 and len(val) >= 8
    assert not set(calib) & set(val)
    # The trainer holds out the last 8 Train400 images (test_393..test_400) for validation: never calibrate on them.
    assert all(int(n[len("test_") : -len(".png")]) <= 392 for n in calib)
    assert all(n.startswith("cbsd432_") for n in val)
    total = sum(p.stat().st_size for p in CALIB_DIR.rglob("*.png"))
    assert total < 2_000_000
    assert default_calib_dir(1) == CALIB_DIR / "gray"
    assert default_calib_dir(3) == CALIB_DIR / "rgb" and default_val_dir(3) == CALIB_DIR / "val_rgb"
    with pytest.raises(CalibrationError, match="--calib"):
        default_calib_dir(4)
    # RGB: calibration from CBSD432 training photos, the gate from the colour trainer's hold-out (the last 8
    # photos of the sorted training folder), so the two are disjoint and no colour model trained on the gate set
    rgb = {p.name for p in (CALIB_DIR / "rgb").glob("*.png")}
    val_rgb = sorted(p.name for p in (CALIB_DIR / "val_rgb").glob("*.png"))
    assert len(rgb) == 32 and len(val_rgb) == 16
    assert not {n.split("_")[1] for n in rgb} & {n.split("_")[1] for n in val_rgb}
    if (CALIB_DIR.parent.parent / "shared" / "data" / "CBSD432").is_dir():
        held_out = sorted(p.stem for p in (CALIB_DIR.parent.parent / "shared" / "data" / "CBSD432").glob("*.jpg"))[-8:]
        assert {n.split("_")[1] for n in val_rgb} == set(held_out)


def test_load_images_gray_rgb_and_cropping(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "b.png")
    gray = load_images(tmp_path, 1, size_multiple=2)
    assert [x.shape for x in gray] == [(1, 20, 30), (1, 20, 30)]
    assert all(x.dtype == np.float32 for x in gray)
    # RGB -> gray with BT.601 luma: Pillow's own convert("L") (integer rounding) agrees within one gray level.
    pil = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)[:20] / 255
    assert np.abs(gray[0][0] - pil).max() <= 1.0 / 255 + 1e-6
    assert np.array_equal(gray[1][0], rgb[:20, :, 0].astype(np.float32) / 255)
    with pytest.raises(CalibrationError, match="gray image for an RGB model"):
        load_images(tmp_path, 3)
    colour = load_images(tmp_path, 3, max_images=1)
    assert colour[0].shape == (3, 21, 30) and np.array_equal(colour[0][1], rgb[..., 1] / np.float32(255))


@pytest.mark.parametrize(
    "noise,expected",
    [("awgn:25", (25.0,)), ("awgn:0-55", (5.0, 30.0, 55.0)), ("awgn:15-15", (15.0,)), ("untrained", (25.0,))],
)
def test_calibration_sigmas(noise: str, expected: tuple[float, ...]) -> None:
    assert calibration_sigmas(ModelCfg(arch="x", noise=noise)) == expected


def test_noisy_reader_protocol() -> None:
    clean = [np.full((1, 4, 4), v, np.float32) for v in (0.1, 0.5, 0.9)]
    noisy = add_noise(clean, [10.0, 50.0], seed=7)
    assert np.array_equal(noisy[1][0], awgn(clean[1], 50.0, 8))  # image i: sigmas[i % 2], seed 7 + i
    reader = NoisyImageReader(noisy)
    assert len(reader) == 3
    feeds = [reader.get_next() for _ in range(4)]
    assert feeds[3] is None and all(f is not None and f["noisy"].shape == (1, 1, 4, 4) for f in feeds[:3])
    reader.set_range(1, 2)
    first = reader.get_next()
    assert first is not None and first["noisy"] is noisy[1]
    assert reader.get_next() is None


# ---------------------------------------------------------------- a tiny exported model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small stride-2 RED-Net (its last layer is a re-parameterised stride-2 deconv), exported and prepared."""
    torch.manual_seed(0)
    model = create_model("rednet10_s2", features=8, noise="awgn:0-55").eval()
    d = tmp_path_factory.mktemp("q")
    fp32 = export_onnx(model, d / "m.onnx")
    prepared = preprocess_for_quantization(fp32, d / "m.pre.onnx")
    images = [x[:, :48, :48] for x in load_images(CALIB_DIR / "gray", 1, 2, max_images=8)]
    calib = add_noise(images, (5.0, 30.0, 55.0), seed=100)
    val_images = [x[:, :48, :48] for x in load_images(CALIB_DIR / "val_gray", 1, 2, max_images=6)]
    val = make_validation_set(val_images, 25.0)
    return {"model": model, "dir": d, "fp32": fp32, "prepared": prepared, "calib": calib, "val": val}


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _producer(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


@pytest.mark.parametrize("flavour", ["cpu", "trt"])
def test_int8_minmax_scales_weights_and_accuracy(tiny: dict, flavour: str) -> None:
    d: Path = tiny["dir"]
    opts = Int8Options(flavour=Int8Flavour(flavour), method=CalibMethod.MINMAX, strided_calibration=4)
    out = quantize_int8(
        tiny["prepared"], d / f"q_{flavour}.onnx", opts, inputs=tiny["calib"], cache_dir=d, calib_id="t"
    )
    q = onnx.load_model(str(out))
    inits = _initializers(q)
    producer = _producer(q)
    meta = read_metadata(out)
    assert meta[PRECISION_KEY] == "int8" and meta[FLAVOUR_KEY] == flavour
    assert "ConvTranspose" not in {n.op_type for n in q.graph.node}

    # Input activation scale from min-max over the calibration inputs (ranges always include 0).
    lo = min(0.0, min(float(x.min()) for x in tiny["calib"]))
    hi = max(0.0, max(float(x.max()) for x in tiny["calib"]))
    q_in = next(n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "noisy")
    scale, zp = inits[q_in.input[1]], inits[q_in.input[2]]
    if flavour == "cpu":
        assert zp.dtype == np.uint8
        assert scale == pytest.approx((hi - lo) / 255, rel=1e-5)
        assert int(zp) == round(-lo / ((hi - lo) / 255))
    else:
        assert zp.dtype == np.int8 and int(zp) == 0
        assert scale == pytest.approx(max(-lo, hi) / 127, rel=1e-5)
    if flavour == "trt":  # TensorRT needs every zero point to be 0 (symmetric int8)
        zps = [inits[n.input[2]] for n in q.graph.node if n.op_type == "QuantizeLinear"]
        assert all(z.dtype == np.int8 and not z.any() for z in zps)

    # Every Conv is fed by DequantizeLinear (activation and per-channel int8 weight): all layers run in INT8.
    fp32_inits = _initializers(onnx.load_model(str(tiny["prepared"])))
    for conv in (n for n in q.graph.node if n.op_type == "Conv"):
        act, w = producer[conv.input[0]], producer[conv.input[1]]
        assert act.op_type == "DequantizeLinear" and w.op_type == "DequantizeLinear"
        wq, ws = inits[w.input[0]], inits[w.input[1]]
        assert wq.dtype == np.int8 and ws.shape == (wq.shape[0],)  # one scale per output channel
        w_float = fp32_inits[w.input[0].removesuffix("_quantized")]
        deq = wq.astype(np.float32) * ws[:, None, None, None]
        assert np.all(np.abs(deq - w_float) <= ws[:, None, None, None] / 2 + 1e-7)

    # Placement. trt: Q/DQ only on Conv inputs (TensorRT's recommendation), so no Conv output is rounded and every
    # activation QuantizeLinear reads the graph input or a ReLU/Add output. cpu: ORT's placement, Conv outputs
    # are quantized too (that is what makes QLinearConv chains).
    conv_outputs = {n.output[0] for n in q.graph.node if n.op_type == "Conv"}
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    if flavour == "trt":
        assert not quantized & conv_outputs
        assert {producer[t].op_type for t in quantized if t in producer} <= {"Relu", "Add"}
    else:
        assert conv_outputs & quantized

    # The image-level residual (Sub) stays float: it takes the raw input, not a dequantized copy.
    sub = next(n for n in q.graph.node if n.op_type == "Sub")
    assert sub.input[0] == "noisy"

    val = tiny["val"]
    rep = compare_outputs(val, run_outputs(tiny["fp32"], val), run_outputs(out, val))
    assert rep.finite and rep.psnr_vs_fp32_db > 35.0, rep
    assert abs(rep.drop_db) < 0.5, rep


def test_entropy_and_percentile_clip_the_input_range(tiny: dict) -> None:
    d: Path = tiny["dir"]
    scales = {}
    for method in CalibMethod:
        opts = Int8Options(flavour=Int8Flavour.TRT, method=method, strided_calibration=4, percentile=99.9)
        out = quantize_int8(tiny["prepared"], d / f"m_{method.value}.onnx", opts, inputs=tiny["calib"],
                            cache_dir=d, calib_id="t")  # fmt: skip
        q = onnx.load_model(str(out))
        q_in = next(n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "noisy")
        scales[method] = float(_initializers(q)[q_in.input[1]])
        assert np.isfinite(run_onnx(out, tiny["calib"][0])).all()
    # min-max covers every sample; a 99.9th percentile of |x| must not exceed it.
    assert scales[CalibMethod.PERCENTILE] <= scales[CalibMethod.MINMAX] + 1e-9
    assert scales[CalibMethod.ENTROPY] <= scales[CalibMethod.MINMAX] + 1e-9


def test_calibration_cache_is_reused_and_keyed(tiny: dict, tmp_path: Path) -> None:
    opts = Int8Options(flavour=Int8Flavour.CPU, strided_calibration=4)
    with pytest.raises(CalibrationError, match="at least one image"):
        quantize_int8(tiny["prepared"], tmp_path / "a.onnx", opts, inputs=None, cache_dir=tmp_path, calib_id="c")
    a = quantize_int8(tiny["prepared"], tmp_path / "a.onnx", opts, inputs=tiny["calib"], cache_dir=tmp_path,
                      calib_id="c")  # fmt: skip
    cache = calibration_cache_path(tmp_path, tiny["prepared"], opts, "c")
    assert cache.is_file()
    b = quantize_int8(tiny["prepared"], tmp_path / "b.onnx", opts, inputs=None, cache_dir=tmp_path, calib_id="c")
    x = tiny["calib"][1]
    assert np.array_equal(run_onnx(a, x), run_onnx(b, x))
    others = {
        calibration_cache_path(tmp_path, tiny["prepared"], Int8Options(method=CalibMethod.ENTROPY), "c"),
        calibration_cache_path(tmp_path, tiny["prepared"], Int8Options(op_types=("Conv",)), "c"),
        calibration_cache_path(tmp_path, tiny["prepared"], Int8Options(flavour=Int8Flavour.TRT), "c"),
        calibration_cache_path(tmp_path, tiny["prepared"], opts, "other images"),
    }
    assert cache not in others and len(others) == 4
    # excluding nodes does not change the calibration
    assert calibration_cache_path(tmp_path, tiny["prepared"], Int8Options(exclude=("n",)), "c") == cache


def test_int8_options_validation(tiny: dict, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="reduce_range"):
        Int8Options(flavour=Int8Flavour.TRT, reduce_range=True)
    with pytest.raises(InvalidInputError, match="percentile"):
        Int8Options(percentile=100.0)
    with pytest.raises(ValueError):
        Int8Options(method="kl")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not found"):
        quantize_int8(tiny["prepared"], tmp_path / "x.onnx", Int8Options(exclude=("no_such_node",)),
                      inputs=tiny["calib"], cache_dir=tmp_path)  # fmt: skip


def test_fp16_keeps_float32_io_and_matches(tiny: dict) -> None:
    d: Path = tiny["dir"]
    out = convert_fp16(tiny["fp32"], d / "m.fp16.onnx")
    m = onnx.load_model(str(out))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    conv_w = [i for i in m.graph.initializer if i.dims and len(i.dims) == 4]
    assert conv_w and all(i.data_type == onnx.TensorProto.FLOAT16 for i in conv_w)
    assert read_metadata(out)[PRECISION_KEY] == "fp16"
    x = tiny["calib"][2]
    ref = run_onnx(tiny["fp32"], x)
    got = run_onnx(out, x)
    assert np.isfinite(got).all()
    assert psnr(got, ref, data_range=1.0) > 50.0


def test_gate_keeps_the_most_sensitive_layers_in_float(tiny: dict, tmp_path: Path) -> None:
    val = tiny["val"]
    ref = run_outputs(tiny["fp32"], val)
    common = dict(calib_inputs=tiny["calib"], calib_id="t", cache_dir=tiny["dir"], val=val, fp32_outputs=ref)
    # Only Convs quantized: with every Conv in float the model is FP32 again, so any budget >= 0 is reachable.
    opts = Int8Options(flavour=Int8Flavour.TRT, strided_calibration=4, op_types=("Conv",))
    easy = quantize_with_budget(tiny["prepared"], tmp_path / "easy.onnx", opts, budget_db=10.0, **common)
    assert easy.kept_float == () and easy.sensitivity == {}
    assert easy.report.drop_db == pytest.approx(easy.first_drop_db)
    first = easy.first_drop_db
    assert first > 0  # an 8-feature random net loses something in INT8, else this test says nothing

    budget = first / 3
    res = quantize_with_budget(tiny["prepared"], tmp_path / "gated.onnx", opts, budget_db=budget,
                               max_float_fraction=1.0, **common)  # fmt: skip
    convs = [n.name for n in onnx.load_model(str(tiny["prepared"])).graph.node if n.op_type == "Conv"]
    assert sorted(res.noise_db) == sorted(convs)  # every node ranked by quantization noise
    assert set(res.sensitivity) == set(sweep_candidates(convs, res.noise_db, 3))  # the sweep measured these
    assert set(res.sensitivity) >= set(convs[:3]) | set(convs[-3:])
    assert res.kept_float, "a third of the first drop needs at least one float layer"
    helpful = sorted((n for n in res.sensitivity if res.sensitivity[n] > 0), key=lambda n: -res.sensitivity[n])
    ranked = helpful + sorted((n for n in convs if n not in helpful), key=lambda n: -res.noise_db[n])
    assert list(res.kept_float) == ranked[: len(res.kept_float)]
    assert res.report.drop_db <= budget
    # Independent re-measurement of the written file, and the kept layers really are float there.
    again = compare_outputs(val, ref, run_outputs(res.path, val))
    assert again.drop_db == pytest.approx(res.report.drop_db, abs=1e-9)
    q = onnx.load_model(str(res.path))
    producer = _producer(q)
    for conv in q.graph.node:
        if conv.op_type == "Conv":
            fed_by = producer.get(conv.input[1])
            assert (fed_by is None) == (conv.name in res.kept_float), conv.name
    rec = json.loads(read_metadata(res.path)[QUALITY_KEY])
    assert rec["kept_float"] == list(res.kept_float) and rec["budget_db"] == budget
    assert rec["first_drop_db"] == pytest.approx(first, abs=1e-4)

    with pytest.raises(CalibrationError, match="even with 0 layers in float"):
        quantize_with_budget(tiny["prepared"], tmp_path / "no.onnx", opts, budget_db=budget,
                             max_float_fraction=0.0, **common)  # fmt: skip
    assert not (tmp_path / "no.onnx").exists()


def test_one_calibration_pass_gives_each_flavour_the_ranges_onnx_runtime_computes(tiny: dict, tmp_path: Path) -> None:
    """The shared pass (calibrate_flavours) against ONNX Runtime calibrating each flavour alone: same ranges."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    from edgedenoise.export.calibration import calibrate_flavours

    feeds = [{"noisy": x} for x in tiny["calib"]]
    opts = [Int8Options(flavour=f, method=CalibMethod.PERCENTILE, strided_calibration=4) for f in Int8Flavour]
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    written = calibrate_flavours(
        tiny["prepared"], opts, feeds, cache_dir=shared, calib_id="t", threads=1, value_stride=1
    )
    assert len(written) == 2
    for o in opts:
        quantize_int8(tiny["prepared"], alone / f"{o.flavour.value}.onnx", o, inputs=tiny["calib"], cache_dir=alone,
                      calib_id="t")  # fmt: skip
        ours = load_tensors_data(calibration_cache_path(shared, tiny["prepared"], o, "t")).data
        ort = load_tensors_data(calibration_cache_path(alone, tiny["prepared"], o, "t")).data
        assert set(ours) == set(ort)
        for name, td in ort.items():
            np.testing.assert_allclose(ours[name].range_value, td.range_value, rtol=1e-6, atol=1e-7, err_msg=name)
        if o.flavour is Int8Flavour.TRT:  # symmetric: -hi .. hi, clamped to the observed minimum (0 after a ReLU)
            assert any(float(td.range_value[0]) < 0 for td in ours.values())
    # the caches exist now: a second call has nothing to do
    assert calibrate_flavours(tiny["prepared"], opts, feeds, cache_dir=shared, calib_id="t") == []


def test_colour_composite_int8_keeps_the_transforms_and_both_entry_convs_float(tmp_path: Path) -> None:
    """The opponent composite calls its gray network twice (luminance, half-resolution chrominance): both Convs
    reading a noisy plane stay float, and the colour transforms the model declares float carry no Q/DQ, so the
    image reaches each network and the output unrounded. Oracle: the graph's own topology (which nodes read
    ``noisy`` before any Conv) and torch's module scopes, independently of the quantizer."""
    torch.manual_seed(3)
    model = create_model("unet3_f32_u4_nl_rgb", features=8).eval()
    fp32 = export_onnx(model, tmp_path / "c.onnx")
    declared = json.loads(read_metadata(fp32)[FLOAT_NODES_KEY])
    proto = onnx.load_model(str(fp32))
    scopes = {
        n.name: p.value for n in proto.graph.node for p in n.metadata_props if p.key == "pkg.torch.onnx.name_scopes"
    }
    assert declared and all(("'to_opponent'" in scopes[n]) or ("'from_opponent'" in scopes[n]) for n in declared)
    prepared = preprocess_for_quantization(fp32, tmp_path / "c.pre.onnx")
    entry = entry_convs(prepared)
    heads = [n.name for n in onnx.load_model(str(prepared)).graph.node if "'head'" in scopes.get(n.name, "")]
    assert len(entry) == 2 and set(entry) == set(heads)  # one head Conv per plane resolution
    images = [x[:, :64, :64] for x in load_images(CALIB_DIR / "rgb", 3, 32, max_images=4)]
    feeds = calibration_feeds(images, (15.0, 50.0), model.cfg, seed=7)
    opts = Int8Options(flavour=Int8Flavour.CPU, method=CalibMethod.MINMAX, exclude=entry)
    out = quantize_int8(prepared, tmp_path / "c.int8.onnx", opts, inputs=feeds, cache_dir=tmp_path, calib_id="c")
    q = onnx.load_model(str(out))
    producer = _producer(q)
    quantized_inputs = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert "noisy" not in quantized_inputs  # the RGB input enters the float transform as it is
    by_name = {n.name: n for n in q.graph.node}
    for name in declared:
        node = by_name[name]
        assert all(producer[i].op_type != "DequantizeLinear" for i in node.input if i in producer), name
    for name in entry:  # float Convs: their weights are not quantized
        assert by_name[name].input[1] not in producer or producer[by_name[name].input[1]].op_type != "DequantizeLinear"
    assert any(n.op_type == "Conv" and producer.get(n.input[0], n).op_type == "DequantizeLinear" for n in q.graph.node)
    x = feeds[0]["noisy"]
    sigma = feeds[0]["sigma"]
    ref = run_onnx(fp32, x, sigma=sigma)
    got = run_onnx(out, x, sigma=sigma)
    assert psnr(got, ref, data_range=1.0) > 35.0


def test_a_float_module_without_nodes_is_an_export_error(tmp_path: Path) -> None:
    """A declared float module the exporter's scopes do not show would be quantized silently: refused."""
    fp32 = export_onnx(create_model("rednet10_s2", features=8).eval(), tmp_path / "r.onnx")
    proto = onnx.load_model(str(fp32))
    assert declared_float_nodes(proto, ["deconvs"])  # a real submodule: its nodes are found
    with pytest.raises(ExportError, match="to_opponent"):
        declared_float_nodes(proto, ["to_opponent"])
