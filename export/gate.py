"""INT8 with a quality budget: quantize, measure, and keep the most sensitive layers in float until within budget.

Method (partial quantization guided by a per-layer sensitivity ranking; Wu et al., "Integer Quantization for
Deep Learning Inference: Principles and Empirical Evaluation", arXiv:2004.09602, Sec. 5.1):

1. Quantize every candidate layer and measure the PSNR drop against FP32 on the validation set
   (:mod:`.quality`). Within the budget: done, nothing is kept in float.
2. Otherwise rank the quantized nodes (every node of ``options.op_types``: Convs, and also the Add/Relu/...
   nodes whose activation ranges can cost more than any Conv) by quantization noise in **one pass**: the FP32
   model runs once on a few validation images (``sweep_images``) with every calibrated tensor as an output, each
   tensor is rounded to the INT8 grid of its calibrated range (uint8 asymmetric for ``cpu``, int8 symmetric for
   ``trt``), and a node's noise is the worst quantization-noise-to-signal ratio (dB) of the tensors it quantizes
   (per-layer SQNR; Nagel et al., "A White Paper on Neural Network Quantization", arXiv:2106.08295, Sec. 3.7).
   Noise alone does not say what reaches the output, so the **sensitivity** (how much the drop shrinks when a
   node alone stays in float, on those images) is measured for a few candidates only: the noisiest nodes and
   the first and last ones (:func:`sweep_candidates`).
3. Keep nodes in float in order of decreasing measured sensitivity (those that help), then of decreasing
   noise, re-measuring on all images after each, until the drop is within the budget. If more than
   ``max_float_fraction`` of those nodes would have to stay in float, INT8 is not worth shipping for this model:
   :class:`CalibrationError`.

Calibration runs once (:func:`.calibration.calibrate_flavours`); every re-quantization above reuses the
cached ranges (a fraction of a second each). Measuring every node alone in float cost one evaluation per node
(94 on RED30's two flavours); the ranking costs one FP32 run and the sweep at most ``3 * candidates``
evaluations.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.contract import INPUT_NAME, QUALITY_KEY, SIGMA_NAME
from ..runtime.ort_session import cpu_session
from .errors import CalibrationError
from .quality import QualityReport, ValidationSet, compare_outputs, quality_record, run_outputs
from .quantize import (
    Int8Flavour,
    Int8Options,
    calibrated_ranges,
    calibration_cache_path,
    quantizable_nodes,
    quantize_int8,
)


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`quantize_with_budget`.

    Attributes:
        path: the INT8 ONNX written.
        options: the options used, with ``exclude`` = the nodes kept in float.
        report: quality of the written model vs FP32.
        first_drop_db: the drop with every layer quantized.
        sensitivity: ``{node: dB}``, for each swept node the drop saved by keeping it alone in float (empty when
            the first try was within budget).
        noise_db: ``{node: dB}``, every quantized node's quantization-noise-to-signal ratio
            (:func:`quantization_noise_db`; empty when the first try was within budget).
        budget_db: the budget.
    """

    path: Path
    options: Int8Options
    report: QualityReport
    first_drop_db: float
    budget_db: float
    sensitivity: dict[str, float] = field(default_factory=dict)
    noise_db: dict[str, float] = field(default_factory=dict)

    @property
    def kept_float(self) -> tuple[str, ...]:
        """Names of the nodes kept in float."""
        return self.options.exclude

    def record_fields(self) -> dict[str, Any]:
        """What the gate adds to the artifact's quality record: the nodes kept in float, the drop before any
        was kept, and the per-node sensitivities (dB) when they were ranked."""
        rec: dict[str, Any] = {"kept_float": list(self.kept_float), "first_drop_db": round(self.first_drop_db, 4)}
        if self.sensitivity:
            rec["sensitivity_db"] = {k: round(v, 4) for k, v in self.sensitivity.items()}
        if self.noise_db:
            rec["quant_noise_db"] = {k: round(v, 2) for k, v in self.noise_db.items()}
        return rec


def _ok(report: QualityReport, budget_db: float) -> bool:
    return report.finite and report.drop_db <= budget_db


def quantize_with_budget(
    prepared_path: str | Path,
    out_path: str | Path,
    options: Int8Options,
    *,
    calib_inputs: Sequence[dict[str, np.ndarray]],
    calib_id: str,
    cache_dir: str | Path,
    val: ValidationSet,
    fp32_outputs: Sequence[np.ndarray],
    budget_db: float = 0.1,
    max_float_fraction: float = 0.5,
    sweep_images: int = 2,
    candidates: int = 3,
    metadata: dict[str, str] | None = None,
    val_id: str = "",
    progress: bool = False,
    threads: int = 1,
) -> GateResult:
    """Quantize to INT8 within a PSNR-drop budget (see the module docstring).

    Args:
        prepared_path: FP32 ONNX after :func:`.quantize.preprocess_for_quantization`.
        out_path: destination of the INT8 ONNX (written atomically, only once the result is known).
        options: :class:`Int8Options`; its ``exclude`` is the starting set of float nodes.
        calib_inputs, calib_id, cache_dir: calibration inputs and cache (:func:`.quantize.quantize_int8`).
        val: the validation set; fp32_outputs: the FP32 model's outputs on it (:func:`.quality.run_outputs`).
        budget_db: the largest acceptable drop of mean PSNR vs FP32, dB (>= 0).
        max_float_fraction: give up when more than this fraction of the quantized nodes would stay in float.
        sweep_images: the quantization-noise ranking and the sensitivity sweep use the first this-many
            validation images; every acceptance decision uses all of them.
        candidates: the sweep measures the ``candidates`` nodes with the most quantization noise and the first
            and last ``candidates`` quantized nodes (:func:`sweep_candidates`).
        metadata: extra ``metadata_props`` for the written model; ``QUALITY_KEY`` is added
            (:func:`.quality.quality_record`).
        val_id: identifies the validation set in that record.
        progress: tqdm bars for calibration and the sensitivity sweep.
        threads: ONNX Runtime threads for the evaluations.

    Returns:
        :class:`GateResult`.

    Raises:
        CalibrationError: the budget cannot be met with at most ``max_float_fraction`` of the quantized nodes in
            float, or the INT8 output is not finite.
    """
    if budget_db < 0:
        raise CalibrationError(f"the INT8 budget must be >= 0 dB, got {budget_db}")

    with tempfile.TemporaryDirectory(prefix="edgedenoise.gate.") as tmp:
        trial = Path(tmp) / "trial.onnx"

        k = min(sweep_images, len(val.clean))
        sweep_val = ValidationSet(val.clean[:k], val.noisy[:k], val.sigma)

        def measure(opts: Int8Options, bar: bool = False, sweep: bool = False) -> QualityReport:
            quantize_int8(
                prepared_path, trial, opts, inputs=calib_inputs, cache_dir=cache_dir, calib_id=calib_id, progress=bar
            )
            if sweep:
                return compare_outputs(sweep_val, fp32_outputs[:k], run_outputs(trial, sweep_val, threads=threads))
            return compare_outputs(val, fp32_outputs, run_outputs(trial, val, threads=threads))

        first = measure(options, bar=progress)
        report, final = first, options
        sensitivity: dict[str, float] = {}
        noise_db: dict[str, float] = {}
        if not _ok(first, budget_db):
            convs = [n for n in quantizable_nodes(prepared_path, options.op_types) if n not in options.exclude]
            ranges = calibrated_ranges(calibration_cache_path(cache_dir, prepared_path, options, calib_id))
            noise_db = quantization_noise_db(prepared_path, convs, ranges, options, sweep_val, threads=threads)
            items = sweep_candidates(convs, noise_db, candidates)
            if progress:
                from tqdm import tqdm

                items = tqdm(items, desc="layer sensitivity", unit="layer", leave=False)  # type: ignore[assignment]
            base = measure(options, sweep=True).drop_db if k < len(val.clean) else first.drop_db
            for node in items:
                sensitivity[node] = (
                    base - measure(replace(options, exclude=options.exclude + (node,)), sweep=True).drop_db
                )
            helpful = sorted((n for n in sensitivity if sensitivity[n] > 0), key=lambda n: sensitivity[n], reverse=True)
            order = helpful + sorted((n for n in convs if n not in helpful), key=lambda n: noise_db[n], reverse=True)
            limit = int(max_float_fraction * (len(convs) + len(options.exclude)))
            kept = list(options.exclude)
            for node in order:
                if len(kept) >= limit:
                    break
                kept.append(node)
                final = replace(options, exclude=tuple(kept))
                report = measure(final)
                if _ok(report, budget_db):
                    break
            if not _ok(report, budget_db):
                raise CalibrationError(
                    f"INT8 ({options.flavour.value}, {options.method.value}) loses {report.drop_db:.3f} dB against "
                    f"FP32 even with {len(kept)} layers in float (budget {budget_db} dB); raise --int8-budget-db or "
                    "try another --calib-method"
                )
        result = GateResult(Path(out_path), final, report, first.drop_db, budget_db, sensitivity, noise_db)
        meta = {
            **(metadata or {}),
            QUALITY_KEY: quality_record(report, budget_db=budget_db, val_id=val_id, extra=result.record_fields()),
        }
        quantize_int8(prepared_path, out_path, final, cache_dir=cache_dir, calib_id=calib_id, metadata=meta)
    return result


def sweep_candidates(nodes: Sequence[str], noise_db: dict[str, float], count: int) -> list[str]:
    """The nodes worth a sensitivity measurement, in graph order: the ``count`` with the most quantization noise
    (:func:`quantization_noise_db`), and the first and last ``count`` quantized nodes.

    Why the ends: an error made early passes through every later layer and, in RED-Net, through every skip; an
    error in the last layers reaches the output unfiltered (the residual adds the noise estimate to the image). On
    RED30 the measured sweep ranked the last Conv and the second, fourth and sixth first (docs/export.md), while
    quantization noise alone ranked interior layers first: a gate that followed it kept 33 nodes in float and
    still missed the budget.
    """
    loud = set(sorted(nodes, key=lambda n: noise_db.get(n, -math.inf), reverse=True)[:count])
    ends = set(nodes[:count]) | set(nodes[-count:]) if count else set()
    return [n for n in nodes if n in loud | ends]


def quantization_noise_db(
    prepared_path: str | Path,
    nodes: Sequence[str],
    ranges: dict[str, tuple[float, float]],
    options: Int8Options,
    val: ValidationSet,
    *,
    threads: int = 1,
) -> dict[str, float]:
    """Each node's quantization-noise-to-signal ratio, dB: the worst over the calibrated tensors it quantizes.

    The FP32 model runs once per image of ``val`` with every tensor of ``ranges`` as an extra output; a tensor
    ``x`` is rounded to the grid of its range (``cpu``: uint8, scale ``(hi - lo) / 255`` with the range widened
    to hold 0; ``trt``: int8, scale ``max(|lo|, |hi|) / 127``, zero point 0) and clipped, and its ratio is
    ``10·log10(mean((x - q(x))²) / mean(x²))`` summed over the images. A node quantizes its activation inputs,
    and its outputs too when ``options.quantize_outputs``.

    Args:
        prepared_path: FP32 ONNX after :func:`.quantize.preprocess_for_quantization`.
        nodes: names of the nodes to rank.
        ranges: ``{tensor: (lo, hi)}`` from :func:`.quantize.calibrated_ranges`.
        options: the flavour (grid) and ``quantize_outputs``.
        val: the images to run (noisy inputs and σ maps as the gate feeds them).
        threads: ONNX Runtime threads.

    Returns:
        ``{node: dB}`` for every name in ``nodes`` (``-inf`` for a node that quantizes no calibrated tensor).
    """
    import onnx

    model = onnx.load_model(str(prepared_path))
    by_name = {n.name: n for n in model.graph.node}
    per_node: dict[str, list[str]] = {}
    for name in nodes:
        node = by_name[name]
        names = list(node.input) + (list(node.output) if options.quantize_outputs else [])
        per_node[name] = [t for t in names if t in ranges]
    wanted = sorted({t for ts in per_node.values() for t in ts})
    graph_io = {i.name for i in model.graph.input} | {o.name for o in model.graph.output}
    for t in wanted:
        if t not in graph_io:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    noise = dict.fromkeys(wanted, 0.0)
    signal = dict.fromkeys(wanted, 0.0)
    with tempfile.TemporaryDirectory(prefix="edgedenoise.rank.") as tmp:
        path = Path(tmp) / "all_outputs.onnx"
        onnx.save_model(model, str(path))
        session = cpu_session(path, threads=threads)
        names = [o.name for o in session.get_outputs()]
        takes_sigma = SIGMA_NAME in {i.name for i in session.get_inputs()}
        for x in val.noisy:
            feed = {INPUT_NAME: x}
            if takes_sigma:
                feed[SIGMA_NAME] = np.full((x.shape[0], 1, *x.shape[2:]), val.sigma / 255.0, np.float32)
            # graph inputs (the noisy image, the σ map) are read from the feed, everything else from the run
            values = {**dict(zip(names, session.run(None, feed), strict=True)), **feed}
            for t in wanted:
                v = values.get(t)
                if v is None:  # not an activation ONNX Runtime exposes (e.g. folded away): not ranked
                    continue
                err = v.astype(np.float64) - _fake_quant(v, ranges[t], options.flavour)
                noise[t] += float(np.mean(err * err))
                signal[t] += float(np.mean(np.square(v, dtype=np.float64)))

    def ratio_db(t: str) -> float:
        return 10 * math.log10(max(noise[t], 1e-30) / max(signal[t], 1e-30))

    return {n: max((ratio_db(t) for t in per_node[n]), default=-math.inf) for n in nodes}


def _fake_quant(x: np.ndarray, rng: tuple[float, float], flavour: Int8Flavour) -> np.ndarray:
    """``x`` rounded to the INT8 grid of the calibrated range ``rng`` and back to float (float64)."""
    lo, hi = float(rng[0]), float(rng[1])
    x = x.astype(np.float64)
    if flavour is Int8Flavour.TRT:
        scale = max(abs(lo), abs(hi)) / 127.0 or 1.0
        return np.clip(np.round(x / scale), -127, 127) * scale
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = round(-lo / scale)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale
