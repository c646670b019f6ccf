"""INT8 with a quality budget: quantize, measure, and keep the most sensitive layers in float until within budget.

Method (partial quantization guided by a per-layer sensitivity analysis; Wu et al., "Integer Quantization for
Deep Learning Inference: Principles and Empirical Evaluation", arXiv:2004.09602, Sec. 5.1):

1. Quantize every candidate layer and measure the PSNR drop against FP32 on the validation set
   (:mod:`.quality`). Within the budget: done, nothing is kept in float.
2. Otherwise, for each quantized node (every node of ``options.op_types``: Convs, and also the Add/Relu/...
   nodes whose symmetric activation ranges can cost more than any Conv), quantize everything *except* that
   node and measure the drop again; the node's **sensitivity** is how much the drop shrinks when it alone
   stays in float (dB). This sweep runs on a
   few of the validation images (``sweep_images``): it only ranks the nodes.
3. Keep nodes in float in order of decreasing sensitivity, re-measuring after each, until the drop is within
   the budget. If more than ``max_float_fraction`` of those nodes would have to stay in float, INT8 is not
   worth shipping for this model: :class:`CalibrationError`.

Calibration runs once; every re-quantization above reuses the cached ranges (a fraction of a second each), so
the cost is dominated by evaluating the validation images, once per quantized node.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..runtime.contract import QUALITY_KEY
from ..runtime.errors import CalibrationError
from .quality import QualityReport, ValidationSet, compare_outputs, quality_record, run_outputs
from .quantize import Int8Options, quantizable_nodes, quantize_int8


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`quantize_with_budget`.

    Attributes:
        path: the INT8 ONNX written.
        options: the options used, with ``exclude`` = the nodes kept in float.
        report: quality of the written model vs FP32.
        first_drop_db: the drop with every layer quantized.
        sensitivity: ``{node: dB}`` for every quantized node (empty when the first try was within budget).
        budget_db: the budget.
    """

    path: Path
    options: Int8Options
    report: QualityReport
    first_drop_db: float
    budget_db: float
    sensitivity: dict[str, float] = field(default_factory=dict)

    @property
    def kept_float(self) -> tuple[str, ...]:
        """Names of the nodes kept in float."""
        return self.options.exclude


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
    sweep_images: int = 4,
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
        sweep_images: the sensitivity sweep (one evaluation per quantized node) uses only the first this-many
            validation images; every acceptance decision uses all of them.
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
        if not _ok(first, budget_db):
            convs = [n for n in quantizable_nodes(prepared_path, options.op_types) if n not in options.exclude]
            items = convs
            if progress:
                from tqdm import tqdm

                items = tqdm(convs, desc="layer sensitivity", unit="layer", leave=False)  # type: ignore[assignment]
            base = measure(options, sweep=True).drop_db if k < len(val.clean) else first.drop_db
            for node in items:
                r = measure(replace(options, exclude=options.exclude + (node,)), sweep=True)
                sensitivity[node] = base - r.drop_db
            order = sorted(convs, key=lambda n: sensitivity[n], reverse=True)
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
        result = GateResult(Path(out_path), final, report, first.drop_db, budget_db, sensitivity)
        meta = {
            **(metadata or {}),
            QUALITY_KEY: quality_record(report, budget_db=budget_db, gate=result, val_id=val_id),
        }
        quantize_int8(prepared_path, out_path, final, cache_dir=cache_dir, calib_id=calib_id, metadata=meta)
    return result
