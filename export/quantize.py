"""FP16 and calibrated INT8 (QDQ) ONNX artifacts from an FP32 export, with ONNX Runtime's tooling.

INT8 uses explicit quantization: QuantizeLinear/DequantizeLinear (QDQ) pairs around the quantized operators,
with scales from post-training calibration (``onnxruntime.quantization.quantize_static``; ONNX Runtime docs,
"Quantize ONNX models", static quantization, QDQ format). Explicit QDQ is what TensorRT >= 10.1 wants (its
implicit-calibration API is deprecated) and what ONNX Runtime's CPU provider runs as integer kernels.

Two flavours (:class:`Int8Flavour`):

* ``cpu``: uint8 activations (asymmetric, per tensor) and symmetric int8 weights per output channel (U8S8) —
  the combination ONNX Runtime recommends for x86 and that ran fastest here (docs/export.md).
* ``trt``: symmetric int8 activations and weights (S8S8, zero point 0), weights per output channel — TensorRT
  accepts only symmetric INT8 (TensorRT developer guide, "Explicit quantization").

Calibration methods (:class:`CalibMethod`): min-max, entropy (KL divergence, the TensorRT entropy calibrator's
criterion; Migacz, "8-bit Inference with TensorRT", GTC 2017) and percentile of the absolute-value histogram.
Calibration runs once per method; its ranges are cached (ORT's calibration cache JSON), so the quality gate can
re-quantize with some layers kept in float without calibrating again.

FP16 uses ONNX Runtime's ``onnxruntime.transformers.float16.convert_float_to_float16`` (ONNX Runtime's maintained
copy of onnxconverter-common's converter, shipped in the ``onnxruntime`` wheel we already depend on, so no extra
package) with ``keep_io_types=True``: the graph takes and returns float32 and casts at its edges.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime.contract import FLAVOUR_KEY, INPUT_NAME, PRECISION_KEY, SIGMA_NAME
from ..runtime.errors import InvalidInputError
from .errors import CalibrationError, ExportError
from .onnx_export import FLOAT_NODES_KEY, save_onnx_atomic, set_metadata

if TYPE_CHECKING:
    import onnx

CALIBRATION_KEY = "edgedenoise.calibration"  # JSON: method, images, sha256 of the set, noise sigmas


class CalibMethod(str, Enum):
    """How activation ranges are chosen from the calibration data."""

    MINMAX = "minmax"  #: the observed min and max
    ENTROPY = "entropy"  #: the range minimising the KL divergence between float and quantized histograms
    PERCENTILE = "percentile"  #: a high percentile of the |x| histogram (``Int8Options.percentile``)


class Int8Flavour(str, Enum):
    """Which INT8 scheme: ``cpu`` (U8S8, ONNX Runtime on x86) or ``trt`` (symmetric S8S8, TensorRT)."""

    CPU = "cpu"
    TRT = "trt"


# Operators ONNX Runtime quantizes here. Conv carries almost all the work; quantizing the skip-connection Add,
# Relu and the DepthToSpace of the stride-2 models keeps whole chains in INT8 (no dequantize/requantize between
# layers), which the CPU and TensorRT both fuse. The image-level residual (Sub) stays in float: it adds the
# noisy input back and would otherwise round the output to 8 bits (docs/export.md, measured).
DEFAULT_OP_TYPES: tuple[str, ...] = ("Conv", "Add", "Relu", "DepthToSpace", "Concat")

# TensorRT flavour: Q/DQ only on the inputs of the weighted layers (activation and weights), no Q/DQ on any
# output. This is NVIDIA's recommended placement for explicit quantization (TensorRT developer guide,
# "Q/DQ Layer-Placement Recommendations": quantize the inputs of weighted operations; TensorRT fuses the
# Conv + bias + ReLU (+ Add) that follow and picks their output precision). Each activation is then rounded once
# per layer, after the ReLU, on its non-negative range; ONNX Runtime's default placement (above) also rounds the
# signed pre-ReLU Conv output, which symmetric int8 cannot fold into the ReLU the way asymmetric uint8 does:
# on the shipped RED30 the drop went from 0.585 dB to the figure in docs/export.md.
TRT_OP_TYPES: tuple[str, ...] = ("Conv",)


# The calibration method each flavour uses unless told otherwise, measured on the shipped RED30 (figures in
# docs/export.md). Symmetric int8 (TensorRT), with half the levels for a non-negative activation, gains most
# from clipping rare outliers. For uint8 activations on the CPU min-max was as good on the first CPU-trained
# RED30, but on the better-trained GPU RED30 its first drop was 0.228 dB against 0.180 with percentile, and the
# gate could not bring min-max within 0.1 dB even with half the nodes in float (0.106 dB), while percentile
# got there with two Convs in float (0.084 dB): percentile for both.
DEFAULT_CALIB_METHOD: dict[Int8Flavour, CalibMethod] = {
    Int8Flavour.CPU: CalibMethod.PERCENTILE,
    Int8Flavour.TRT: CalibMethod.PERCENTILE,
}


@dataclass(frozen=True)
class Int8Options:
    """Settings of one INT8 quantization.

    Attributes:
        flavour: :class:`Int8Flavour`.
        method: :class:`CalibMethod`.
        percentile: for ``PERCENTILE``, the percentile of ``|x|`` kept (default 99.99).
        per_channel: per-output-channel weight scales (True for both flavours).
        reduce_range: 7-bit weights, for x86 CPUs without VNNI where U8S8 can saturate (ONNX Runtime
            ``quantize_static`` docs); only valid with the ``cpu`` flavour.
        op_types: ONNX operator types to quantize (``None``: :data:`DEFAULT_OP_TYPES` for ``cpu``,
            :data:`TRT_OP_TYPES` for ``trt``).
        quantize_outputs: also put Q/DQ on the outputs of those operators (``None``: yes for ``cpu``, where ONNX
            Runtime needs them to run QLinearConv chains; no for ``trt``, TensorRT's placement).
        exclude: names of nodes kept in float (the gate's choice, or the user's).
        strided_calibration: calibrate in chunks of this many images (bounds memory: histogram calibrators keep
            every intermediate tensor of a chunk).
    """

    flavour: Int8Flavour = Int8Flavour.CPU
    method: CalibMethod = CalibMethod.MINMAX
    percentile: float = 99.99  # best of 99.9 / 99.99 / 99.999 for the trt flavour on RED30 (docs/export.md)
    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple[str, ...] = None  # type: ignore[assignment]  # resolved per flavour in __post_init__
    quantize_outputs: bool = None  # type: ignore[assignment]  # resolved per flavour in __post_init__
    exclude: tuple[str, ...] = field(default_factory=tuple)
    strided_calibration: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "flavour", Int8Flavour(self.flavour))
        object.__setattr__(self, "method", CalibMethod(self.method))
        trt = self.flavour is Int8Flavour.TRT
        if self.op_types is None:
            object.__setattr__(self, "op_types", TRT_OP_TYPES if trt else DEFAULT_OP_TYPES)
        object.__setattr__(self, "op_types", tuple(self.op_types))
        if self.quantize_outputs is None:
            object.__setattr__(self, "quantize_outputs", not trt)
        if not 90.0 <= self.percentile < 100.0:
            raise InvalidInputError(f"percentile {self.percentile} must be in [90, 100)")
        if self.reduce_range and self.flavour is not Int8Flavour.CPU:
            raise InvalidInputError("reduce_range applies to the cpu flavour only; TensorRT needs full-range int8")
        if self.strided_calibration < 1:
            raise InvalidInputError(f"strided_calibration must be >= 1, got {self.strided_calibration}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ONNX Runtime's quantization tooling, which prints and logs at INFO level (a library never prints)."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def preprocess_for_quantization(fp32_path: str | Path, out_path: str | Path) -> Path:
    """ONNX Runtime's ``quant_pre_process`` (graph optimisation + ONNX shape inference) on a dynamic-H/W model.

    Symbolic shape inference is skipped: it fails on dynamic H and W ("Incomplete symbolic shape inference"
    with ONNX Runtime 1.32) and adds nothing for convolutional models.

    Raises:
        ExportError: pre-processing failed.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with _quiet():
            quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=True)
    except Exception as exc:  # ORT raises assorted types
        raise ExportError(f"quant_pre_process failed on {str(fp32_path)!r}: {exc}") from exc
    return Path(out_path)


def _ort_settings(options: Int8Options) -> dict[str, object]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    method = {
        CalibMethod.MINMAX: CalibrationMethod.MinMax,
        CalibMethod.ENTROPY: CalibrationMethod.Entropy,
        CalibMethod.PERCENTILE: CalibrationMethod.Percentile,
    }[options.method]
    symmetric = options.flavour is Int8Flavour.TRT
    extra: dict[str, object] = {
        "ActivationSymmetric": symmetric,
        "WeightSymmetric": True,
        "CalibTensorRangeSymmetric": symmetric,
        "CalibStridedMinMax": options.strided_calibration,
        "CalibPercentile": options.percentile,
    }
    if not options.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = list(options.op_types)
    return {
        "quant_format": QuantFormat.QDQ,
        "activation_type": QuantType.QInt8 if symmetric else QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        "per_channel": options.per_channel,
        "reduce_range": options.reduce_range,
        "calibrate_method": method,
        "op_types_to_quantize": list(options.op_types),
        "extra_options": extra,
    }


def quantizable_nodes(model_path: str | Path, op_types: Sequence[str] = ("Conv",)) -> list[str]:
    """Names of the nodes of ``op_types`` in graph order (the candidates for per-layer sensitivity), less those
    the model declares float (:func:`declared_float`)."""
    import onnx

    model = onnx.load_model(str(model_path), load_external_data=False)
    declared = declared_float(model)
    return [n.name for n in model.graph.node if n.op_type in op_types and n.name not in declared]


LAYOUT_OP_TYPES: tuple[str, ...] = ("DepthToSpace", "SpaceToDepth", "Transpose", "Reshape")


def float_layout_nodes(model_path: str | Path, options: Int8Options) -> list[str]:
    """Layout operators (:data:`LAYOUT_OP_TYPES`) whose every consumer stays in float: kept in float too.

    The last ``DepthToSpace`` of a pixel-shuffle model moves the noise estimate to full resolution for the
    float residual ``noisy - noise``. Quantized, it gets a Q/DQ pair of its own at full resolution that rounds
    nothing new (a layout operator shares its input's scale) but reads and writes every pixel twice more:
    2.5 ms of 123 at 1920x1080 for ``rednet8_slim32_u4`` on the 2-core CPU (docs/compression.md). Left in
    float, it reads the dequantized output of the quantized Conv before it. Not reported as a layer kept in
    float (it computes nothing).
    """
    import onnx

    model = onnx.load_model(str(model_path), load_external_data=False)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def quantized(n: onnx.NodeProto) -> bool:
        return n.op_type in options.op_types and n.name not in options.exclude

    out = []
    for n in model.graph.node:
        if n.op_type not in LAYOUT_OP_TYPES or n.op_type not in options.op_types or n.name in options.exclude:
            continue
        users = [u for o in n.output for u in consumers.get(o, [])]
        if not any(quantized(u) for u in users):  # a graph output with no readers counts as float
            out.append(n.name)
    return out


def declared_float(model: Any) -> set[str]:
    """The node names the exported model declares float (``FLOAT_NODES_KEY``: fixed colour transforms).

    Raises:
        ExportError: a declared node is not in the graph (renamed on the way): it would be quantized silently.
    """
    meta = {p.key: p.value for p in model.metadata_props}
    names = set(json.loads(meta.get(FLOAT_NODES_KEY, "[]")))
    missing = names - {n.name for n in model.graph.node}
    if missing:
        raise ExportError(f"nodes declared float are not in the graph any more: {sorted(missing)[:5]}")
    return names


def float_module_nodes(model_path: str | Path) -> list[str]:
    """The nodes the model declares float (:func:`declared_float`), in graph order: kept in float, not reported
    as layers kept in float."""
    import onnx

    model = onnx.load_model(str(model_path), load_external_data=False)
    names = declared_float(model)
    return [n.name for n in model.graph.node if n.name in names]


def _first_convs_from(model: Any, start: str, through: Callable[[Any], bool]) -> list[str]:
    """Nodes on every path from the graph input ``start`` up to and including the first Conv on it, passing only
    through nodes for which ``through`` holds (a Conv always ends a path, unless declared float: those are the
    colour transforms in front of the network)."""
    passthrough = declared_float(model)
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out: list[str] = []
    todo = [start] if any(i.name == start for i in model.graph.input) else []
    while todo:
        for n in consumers.get(todo.pop(), []):
            if n.name in out or n.op_type == "Shape" or not (n.op_type == "Conv" or through(n)):
                continue  # a Shape's output is dimensions, not pixels: no path through it
            out.append(n.name)
            if n.op_type != "Conv" or n.name in passthrough:
                todo.extend(n.output)
    return out


def sigma_path_nodes(model_path: str | Path) -> list[str]:
    """The nodes between a noise-level-conditioned model's ``sigma`` input and the first Conv on each path from
    it (that Conv included): kept in float, not reported as layers kept in float.

    The σ map is smooth (uniform for AWGN) and enters through one small Conv (1 input channel, e.g. FFDNet's σ
    channel); quantized, ONNX Runtime runs it as a QLinearConv whose one-channel input packs badly: 13 ms of
    about 200 at 1920x1080 for ``unet3_f32_u4_nl`` on the 2-core CPU, against about 1 ms in float. Its output
    joins the float first Conv's output anyway. Empty for blind models.
    """
    import onnx

    model = onnx.load_model(str(model_path), load_external_data=False)
    return _first_convs_from(model, SIGMA_NAME, lambda n: n.op_type not in ("Add", "Sub", "Concat"))


def entry_convs(model_path: str | Path) -> tuple[str, ...]:
    """Names of the Convs that read the noisy image: the first Conv on every path from the ``noisy`` input,
    directly or through a space-to-depth, a colour transform or a down-sampling (one for a plain model, one per
    plane resolution for the opponent-colour composites); ``()`` if there is none.

    Keeping them in float is the default (:func:`.pipeline.export_model`): their input is the noisy image, and the
    rounding error of an 8-bit copy of it passes straight to the output through the image-level residual, since
    the network then estimates the noise of the rounded image while ``noisy - noise`` subtracts from the exact
    one. Each costs ``9 * C * features`` MACs per pixel of its plane (576 of RED30's 1,033,344).
    """
    import onnx

    model = onnx.load_model(str(model_path), load_external_data=False)
    names = set(_first_convs_from(model, INPUT_NAME, lambda n: True)) - declared_float(model)
    return tuple(n.name for n in model.graph.node if n.op_type == "Conv" and n.name in names)


def calibration_cache_path(
    cache_dir: str | Path, prepared_path: str | Path, options: Int8Options, calib_id: str
) -> Path:
    """``<cache_dir>/calib-<method>-<key>.json``: the key hashes the model file, the calibration inputs' id and
    the options that change the ranges (method, percentile, flavour, op types, output Q/DQ), but not ``exclude``."""
    from .onnx_export import sha256_file

    key = json.dumps(
        [
            sha256_file(prepared_path),
            calib_id,
            options.method.value,
            options.percentile,
            options.flavour.value,
            sorted(options.op_types),
            options.quantize_outputs,
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"calib-{options.method.value}-{digest}.json"


def calibrated_ranges(cache_path: str | Path) -> dict[str, tuple[float, float]]:
    """``{tensor: (lo, hi)}`` from a calibration cache :func:`quantize_int8` wrote (ONNX Runtime's JSON).

    Raises:
        CalibrationError: the cache is missing or unreadable.
    """
    from onnxruntime.quantization.calibrate import load_tensors_data

    try:
        data = load_tensors_data(cache_path)
    except (OSError, ValueError, KeyError) as exc:
        raise CalibrationError(f"calibration cache {str(cache_path)!r} cannot be read: {exc}") from exc
    out = {}
    for name, td in data.data.items():
        lo, hi = td.range_value if hasattr(td, "range_value") else td
        out[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
    return out


def quantize_int8(
    prepared_path: str | Path,
    out_path: str | Path,
    options: Int8Options,
    *,
    inputs: Sequence[dict[str, np.ndarray]] | None = None,
    cache_dir: str | Path,
    calib_id: str = "",
    metadata: dict[str, str] | None = None,
    progress: bool = False,
) -> Path:
    """Write an INT8 QDQ model of a pre-processed FP32 model.

    Args:
        prepared_path: FP32 ONNX after :func:`preprocess_for_quantization` (its node names are the ones
            ``options.exclude`` refers to).
        out_path: destination ``.onnx``; written atomically.
        options: :class:`Int8Options`.
        inputs: calibration feeds (:func:`.calibration.calibration_feeds`); needed unless ``cache_path`` already
            holds the ranges of this method.
        cache_dir: folder of calibration caches (ORT's JSON ranges). The file name is derived from everything
            that decides the ranges (:func:`calibration_cache_path`); it is read if it exists and written after
            calibrating otherwise.
        calib_id: identifies the calibration inputs (e.g. the image set's sha256 and the noise sigmas).
        metadata: entries added to the model's ``metadata_props`` (the FP32 model's entries are kept); the
            precision and flavour keys are set here.
        progress: tqdm bar while calibrating.

    Returns:
        ``out_path``. The model maps ``noisy`` ``(N, C, H, W)`` float32 to ``denoised`` float32.

    Raises:
        CalibrationError: no inputs and no cache, or calibration failed (e.g. images too few/odd-sized).
        ExportError: quantization failed.
    """
    import onnx
    from onnxruntime.quantization import quantize_static

    from .calibration import NoisyImageReader

    cache_path = calibration_cache_path(cache_dir, prepared_path, options, calib_id)
    unknown = set(options.exclude) - set(quantizable_nodes(prepared_path, options.op_types + ("Sub", "Mul")))
    if unknown:
        raise InvalidInputError(f"nodes to keep in float not found in the model: {sorted(unknown)}")
    reader = None
    if not cache_path.is_file():
        if not inputs:
            raise CalibrationError("INT8 calibration needs at least one image (the calibration folder is empty?)")
        reader = NoisyImageReader(list(inputs), progress=progress)
        if len(inputs) % options.strided_calibration:
            options = replace(options, strided_calibration=1)
    settings = _ort_settings(options)
    with tempfile.TemporaryDirectory(prefix="edgedenoise.q.") as tmp:
        tmp_out = Path(tmp) / "int8.onnx"
        try:
            with _quiet():
                quantize_static(
                    str(prepared_path),
                    str(tmp_out),
                    reader,
                    nodes_to_exclude=list(options.exclude)
                    + float_layout_nodes(prepared_path, options)
                    + sigma_path_nodes(prepared_path)
                    + float_module_nodes(prepared_path),
                    calibration_cache_path=cache_path,
                    **settings,  # type: ignore[arg-type]
                )
        except CalibrationError:
            raise
        except Exception as exc:
            if not cache_path.is_file():
                raise CalibrationError(f"INT8 calibration ({options.method.value}) failed: {exc}") from exc
            raise ExportError(f"INT8 quantization failed: {exc}") from exc
        model = onnx.load_model(str(tmp_out))
    _float_inputs_for_float_nodes(model, options)
    if options.flavour is Int8Flavour.CPU:
        from .upsample import rewrite_nearest_upsample

        rewrite_nearest_upsample(model)  # 8-bit channels-last copies instead of ONNX Runtime's slow uint8 Resize
    set_metadata(model, {PRECISION_KEY: "int8", FLAVOUR_KEY: options.flavour.value, **(metadata or {})})
    return save_onnx_atomic(model, out_path)


def _float_inputs_for_float_nodes(model: onnx.ModelProto, options: Int8Options) -> None:
    """Give the float consumers of a quantized *graph input* the input itself, in place.

    ONNX Runtime quantizes a tensor for all its consumers: the image-level residual ``noisy - noise`` (a float
    ``Sub``) would read the 8-bit copy of the noisy input and put its rounding error straight into the output
    (about 0.5 gray levels RMS). Float consumers (operators not quantized, or excluded) are rewired to the
    original float input; a Q/DQ pair left without consumers is removed. Only graph inputs are rewired: an
    intermediate tensor's pre-quantization value may differ from its dequantized one (ORT folds a ReLU into the
    uint8 range of the preceding Conv's output).
    """
    graph = model.graph
    inputs = {i.name for i in graph.input}
    producer = {o: n for n in graph.node for o in n.output}
    float_nodes = [
        n
        for n in graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and (n.op_type not in options.op_types or n.name in options.exclude)
    ]
    for node in float_nodes:
        for k, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] in inputs:
                node.input[k] = q.input[0]
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    changed = True
    while changed:  # drop Q/DQ nodes whose outputs nobody reads
        dead = [
            n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not set(n.output) & used
        ]
        changed = bool(dead)
        for n in dead:
            graph.node.remove(n)
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}


def convert_fp16(fp32_path: str | Path, out_path: str | Path, *, keep_io_types: bool = True) -> Path:
    """Write an FP16 copy of an FP32 ONNX model (weights and compute in float16).

    Args:
        fp32_path: FP32 ONNX (e.g. from :func:`.onnx_export.export_onnx`).
        out_path: destination ``.onnx``; written atomically.
        keep_io_types: keep the ``noisy``/``denoised`` tensors float32 (casts inside the graph); False gives
            float16 I/O.

    Returns:
        ``out_path``; ``metadata_props`` copied with ``PRECISION_KEY = "fp16"``.

    Raises:
        ExportError: the converter failed.
    """
    import onnx
    from onnxruntime.transformers import float16

    model = onnx.load_model(str(fp32_path))
    try:
        with _quiet():
            half = float16.convert_float_to_float16(model, keep_io_types=keep_io_types, disable_shape_infer=False)
    except Exception as exc:
        raise ExportError(f"FP16 conversion of {str(fp32_path)!r} failed: {exc}") from exc
    half = _toposorted(half)
    set_metadata(half, {PRECISION_KEY: "fp16", FLAVOUR_KEY: ""})
    return save_onnx_atomic(half, out_path)


def _toposorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its nodes in topological order (the float16 converter appends the input casts at the end,
    which ``onnx.checker`` rejects); sorted with onnx-ir's stable sort."""
    import onnx_ir as ir

    irmodel = ir.from_proto(model)
    irmodel.graph.sort()
    return ir.to_proto(irmodel)


def calibration_record(method: CalibMethod, n_images: int, sha256: str, sigmas: Sequence[float]) -> str:
    """The JSON stored under :data:`CALIBRATION_KEY`."""
    return json.dumps(
        {"method": CalibMethod(method).value, "images": n_images, "sha256": sha256, "sigmas": list(sigmas)},
        sort_keys=True,
    )
