"""``export_model``: one call from a model (name, weights file or module) to every deployable artifact.

Artifacts written to ``out_dir`` (names from ``cfg.arch``):

* ``<name>.onnx`` — FP32, re-parameterised (no ConvTranspose), verified against torch on the validation images;
* ``<name>.fp16.onnx`` — FP16 weights and compute, float32 I/O; gated on finiteness and its PSNR drop;
* ``<name>.int8.cpu.onnx`` / ``<name>.int8.trt.onnx`` — calibrated INT8 QDQ, the two flavours of
  :mod:`.quantize`, each within the PSNR-drop budget (:mod:`.gate`);
* ``<name>.<precision>.engine`` + ``.json`` sidecar — TensorRT engines, only when TensorRT is installed here
  (otherwise :data:`.tensorrt_build.ENGINE_NOTICE` applies).

Every ONNX artifact carries the ModelCfg, precision, flavour, weights sha256, calibration record and measured
quality in its ``metadata_props``. Nothing is half-written: every file goes through a temporary name.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime.contract import INPUT_NAME, QUALITY_KEY, SIGMA_NAME
from ..runtime.errors import InvalidInputError
from .calibration import (
    calibrate_flavours,
    calibration_feeds,
    calibration_sigmas,
    default_calib_dir,
    default_val_dir,
    files_sha256,
    gate_sigma,
    load_images,
)
from .errors import CalibrationError, ExportError
from .quality import (
    QualityReport,
    ValidationSet,
    compare_outputs,
    make_validation_set,
    quality_record,
    run_outputs,
)
from .quantize import (
    CALIBRATION_KEY,
    DEFAULT_CALIB_METHOD,
    CalibMethod,
    Int8Flavour,
    Int8Options,
    calibration_record,
    entry_convs,
)

if TYPE_CHECKING:
    from torch import nn

DEFAULT_FP16_BUDGET_DB = 0.02
DEFAULT_FP16_MIN_PSNR_DB = 45.0


class ArtifactKind(str, Enum):
    """What an :class:`ArtifactRecord` names: an ONNX model or a TensorRT engine."""

    ONNX = "onnx"
    ENGINE = "engine"


@dataclass(frozen=True)
class ArtifactRecord:
    """One file written by :func:`export_model`.

    Attributes:
        path: where it was written.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        flavour: ``"cpu"``/``"trt"`` for INT8, ``""`` otherwise.
        kind: :class:`ArtifactKind`.
        size_bytes: file size.
        quality: vs FP32 on the validation set (None for the FP32 model itself and for engines).
        kept_float: INT8 nodes kept in float by the gate.
        note: one line of extra information (e.g. the FP32-vs-torch check, an engine reuse).
        failure: why the artifact was not written (only with ``strict=False``); empty for a written one.
    """

    path: Path
    precision: str
    flavour: str
    kind: ArtifactKind
    size_bytes: int
    quality: QualityReport | None = None
    kept_float: tuple[str, ...] = ()
    note: str = ""
    failure: str = ""

    @property
    def written(self) -> bool:
        """True unless the artifact failed its gate (and so was not written)."""
        return not self.failure

    @property
    def label(self) -> str:
        """``fp32``, ``fp16``, ``int8-cpu``, ``int8-trt`` (+ `` engine``)."""
        base = self.precision + (f"-{self.flavour}" if self.flavour else "")
        return base + (" engine" if self.kind is ArtifactKind.ENGINE else "")


def load_model_source(spec: str | Path | nn.Module) -> tuple[nn.Module, str | None]:
    """The model to export, and the sha256 of its weights file when there is one.

    Args:
        spec: an ``nn.Module`` built by ``create_model`` (returned as is, no sha256); a ``.safetensors`` file; a
            trainer checkpoint ``.pt``/``.pth`` (read with ``torch.load(weights_only=True)``); or a registered
            model name or alias whose weights ship with the package. Loaded by
            :func:`edgedenoise.models.load_model`.

    Returns:
        ``(module in eval mode, hex sha256 of the weights file or None)``.

    Raises:
        ArtifactError: a model file that is missing, unreadable or not a torch model.
        UnknownModelError: a name that is not registered or has no shipped weights.
    """
    from ..models import load_model

    loaded = load_model(spec)
    return loaded.module, loaded.weights_sha256()


def _record(path: Path, precision: str, flavour: str = "", **kw: Any) -> ArtifactRecord:
    return ArtifactRecord(path, precision, flavour, ArtifactKind.ONNX, path.stat().st_size, **kw)


@dataclass(frozen=True)
class ExportOptions:
    """What :func:`export_model` writes and how it checks it.

    Attributes:
        fp16: also write ``<name>.fp16.onnx``.
        int8: also write one INT8 QDQ model per flavour in ``flavours``.
        flavours: INT8 flavours, ``"cpu"`` and/or ``"trt"``.
        calib_dir: calibration images (default: the shipped ``calib_data/gray`` or ``rgb``); INT8 calibrates on them and
            the FP16 check runs on them.
        calib_method: ``"minmax"``, ``"entropy"``, ``"percentile"``, or ``"auto"``: each flavour's default
            (:data:`.quantize.DEFAULT_CALIB_METHOD`, chosen by measurement, docs/export.md).
        quantize_first_conv: also quantize the Conv(s) reading the noisy image; by default they stay float in both
            INT8 flavours (:func:`.quantize.entry_convs` says why; they are reported as kept in float).
        int8_budget_db: largest acceptable INT8 PSNR drop vs FP32 (dB).
        fp16_budget_db: largest acceptable FP16 PSNR drop vs FP32 on the validation set (dB).
        fp16_min_psnr_db: smallest acceptable PSNR between FP16 and FP32 outputs on the calibration images
            (dB, peak 1.0); with finiteness it catches float16 overflow.
        val_dir: quality-gate images (default: the shipped ``calib_data/val_gray`` or ``val_rgb``); must differ
            from ``calib_dir``.
        val_sigma: AWGN of the gate (0-255; default :func:`.calibration.gate_sigma`).
        calib_sigmas: AWGN levels for calibration (default :func:`.calibration.calibration_sigmas`).
        max_calib_images: use at most this many calibration images.
        opset: ONNX opset (default :data:`.onnx_export.DEFAULT_OPSET`).
        reparam: re-parameterise ConvTranspose layers (:mod:`.reparam`).
        engines: build TensorRT engines; None = when TensorRT is installed here.
        progress: tqdm bars on calibration and gating (stderr).
        threads: ONNX Runtime threads for calibration checks and gating.
        strict: raise :class:`CalibrationError` as soon as an INT8 flavour cannot meet its budget. With False,
            the other artifacts are still written and the failed one is returned as a record whose ``failure``
            holds the reason (nothing written): the caller must check ``written``.
    """

    fp16: bool = False
    int8: bool = False
    flavours: Sequence[Int8Flavour | str] = (Int8Flavour.CPU, Int8Flavour.TRT)
    calib_dir: str | Path | None = None
    calib_method: CalibMethod | str = "auto"
    int8_budget_db: float = 0.1
    quantize_first_conv: bool = False
    fp16_budget_db: float = DEFAULT_FP16_BUDGET_DB
    fp16_min_psnr_db: float = DEFAULT_FP16_MIN_PSNR_DB
    val_dir: str | Path | None = None
    val_sigma: float | None = None
    calib_sigmas: Sequence[float] | None = None
    max_calib_images: int | None = None
    opset: int | None = None
    reparam: bool = True
    engines: bool | None = None
    progress: bool = False
    threads: int = 1
    strict: bool = True


def export_model(
    model_or_name: str | Path | nn.Module, out_dir: str | Path, options: ExportOptions | None = None
) -> list[ArtifactRecord]:
    """Export a model to FP32 ONNX and, on request, FP16 and INT8 ONNX artifacts (and engines where possible).

    Args:
        model_or_name: see :func:`load_model_source`.
        out_dir: output folder (created). Existing artifacts of the same names are replaced atomically.
        options: what to write and how to check it (:class:`ExportOptions`; default: FP32 only).

    Returns:
        One :class:`ArtifactRecord` per file written, FP32 first (plus unwritten records when not strict).

    Raises:
        InvalidInputError: bad arguments (e.g. the same folder for calibration and validation).
        CalibrationError: unusable calibration images, or an artifact outside its budget.
        ExportError: the export itself failed; BackendUnavailableError: ``engines=True`` without TensorRT.
    """
    o = options or ExportOptions()
    from .gate import quantize_with_budget
    from .onnx_export import DEFAULT_OPSET, export_onnx, verify_onnx
    from .quantize import preprocess_for_quantization

    model, weights_sha = load_model_source(model_or_name)
    from ..models import model_cfg

    cfg = model_cfg(model)
    methods = {
        f: DEFAULT_CALIB_METHOD[f] if o.calib_method == "auto" else CalibMethod(o.calib_method) for f in Int8Flavour
    }
    flavour_list = [Int8Flavour(f) for f in o.flavours]
    if o.int8 and not flavour_list:
        raise InvalidInputError("--int8 needs at least one flavour (cpu, trt)")
    out = Path(out_dir)
    name = cfg.arch

    vdir = Path(o.val_dir) if o.val_dir else default_val_dir(cfg.in_channels)
    cdir = (Path(o.calib_dir) if o.calib_dir else default_calib_dir(cfg.in_channels)) if (o.int8 or o.fp16) else None
    if cdir is not None and cdir.resolve() == vdir.resolve():
        raise InvalidInputError(f"calibration and validation folders are the same ({cdir}); use disjoint sets")
    for folder, option in ((vdir, "--val"), (cdir, "--calib")):
        if folder is not None and not folder.is_dir():
            raise InvalidInputError(
                f"image folder {str(folder)!r} does not exist; pass a folder of clean images with {option}"
            )
    val_images = load_images(vdir, cfg.in_channels, cfg.size_multiple)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are known good: a refused export leaves nothing
    val = make_validation_set(val_images, o.val_sigma if o.val_sigma is not None else gate_sigma(cfg))
    val_id = f"{vdir.name}:{files_sha256(vdir)[:16]}:sigma={val.sigma:g}"

    records: list[ArtifactRecord] = []
    fp32_path = export_onnx(
        model, out / f"{name}.onnx", opset=o.opset or DEFAULT_OPSET, reparam=o.reparam, weights_sha256=weights_sha
    )
    check = verify_onnx(fp32_path, model, val.noisy)
    if check.max_abs_err > 1e-3:
        fp32_path.unlink()
        raise ExportError(
            f"the ONNX export differs from torch by {check.max_abs_err:.2e} (PSNR {check.psnr_db:.1f} dB) on the "
            "validation images; export with reparam=False to isolate the cause"
        )
    records.append(
        _record(fp32_path, "fp32", note=f"vs torch: max |err| {check.max_abs_err:.1e}, PSNR {check.psnr_db:.1f} dB")
    )
    fp32_out = run_outputs(fp32_path, val, threads=o.threads, progress="gate fp32" if o.progress else None)

    calib_inputs: list[Any] = []
    if cdir is not None:
        images = load_images(cdir, cfg.in_channels, cfg.size_multiple, max_images=o.max_calib_images)
        sigmas = tuple(o.calib_sigmas) if o.calib_sigmas else calibration_sigmas(cfg)
        calib_inputs = calibration_feeds(images, sigmas, cfg, seed=10_000)
        calib_sha = files_sha256(cdir)
        calib_id = f"{calib_sha}:{len(images)}:{','.join(f'{s:g}' for s in sigmas)}"
        calib_meta = {
            f: {CALIBRATION_KEY: calibration_record(m, len(images), calib_sha, sigmas)} for f, m in methods.items()
        }

    if o.fp16:
        fp16_rec = _fp16(
            fp32_path, out / f"{name}.fp16.onnx", val, fp32_out, calib_inputs,
            budget_db=o.fp16_budget_db, min_psnr_db=o.fp16_min_psnr_db, val_id=val_id, threads=o.threads,
        )  # fmt: skip
        records.append(fp16_rec)

    if o.int8:
        with tempfile.TemporaryDirectory(prefix="edgedenoise.int8.") as tmp:
            prepared = preprocess_for_quantization(fp32_path, Path(tmp) / "prepared.onnx")
            entry = () if o.quantize_first_conv else entry_convs(prepared)
            flavour_opts = {
                flavour: Int8Options(
                    flavour=flavour,
                    method=methods[flavour],
                    strided_calibration=_stride(len(calib_inputs)),
                    exclude=entry,
                )
                for flavour in flavour_list
            }
            # one pass over the calibration images serves every flavour (each keeps its own ranges)
            calibrate_flavours(
                prepared, list(flavour_opts.values()), calib_inputs, cache_dir=tmp, calib_id=calib_id,
                progress=o.progress, threads=o.threads,
            )  # fmt: skip
            for flavour, opts in flavour_opts.items():
                target = out / f"{name}.int8.{flavour.value}.onnx"
                try:
                    res = quantize_with_budget(
                        prepared,
                        target,
                        opts,
                        calib_inputs=calib_inputs,
                        calib_id=calib_id,
                        cache_dir=tmp,
                        val=val,
                        fp32_outputs=fp32_out,
                        budget_db=o.int8_budget_db,
                        metadata=calib_meta[flavour],
                        val_id=val_id,
                        progress=o.progress,
                        threads=o.threads,
                    )
                except CalibrationError as exc:
                    if o.strict:
                        raise
                    records.append(
                        ArtifactRecord(target, "int8", flavour.value, ArtifactKind.ONNX, 0, failure=str(exc))
                    )
                    continue
                note = f"{len(res.kept_float)} layer(s) kept in float" if res.kept_float else "all layers INT8"
                records.append(
                    _record(res.path, "int8", flavour.value, quality=res.report, kept_float=res.kept_float, note=note)
                )
    records += _engines([r for r in records if r.written], o.engines)
    return records


def _stride(n: int) -> int:
    """Calibrate in chunks of about 8 images (bounds the histogram calibrators' memory); must divide ``n``."""
    for s in range(min(8, n), 0, -1):
        if n % s == 0:
            return s
    return 1


def _fp16(
    fp32_path: Path,
    path: Path,
    val: ValidationSet,
    fp32_out: Sequence[np.ndarray],
    calib_inputs: Sequence[dict[str, np.ndarray]],
    *,
    budget_db: float,
    min_psnr_db: float,
    val_id: str,
    threads: int,
) -> ArtifactRecord:
    """Convert to FP16 and check it: finite with PSNR vs FP32 >= ``min_psnr_db`` on the calibration inputs
    (every noise level, so the largest activations), and a drop <= ``budget_db`` on the validation set."""
    import onnx

    from .onnx_export import run_onnx, save_onnx_atomic, set_metadata
    from .quantize import convert_fp16

    with tempfile.TemporaryDirectory(prefix="edgedenoise.fp16.") as tmp:
        trial = convert_fp16(fp32_path, Path(tmp) / "fp16.onnx")
        sq, count, finite = 0.0, 0, True
        for feed in calib_inputs:
            x, smap = feed[INPUT_NAME], feed.get(SIGMA_NAME)
            y16 = run_onnx(trial, x, threads=threads, sigma=smap)
            y32 = run_onnx(fp32_path, x, threads=threads, sigma=smap)
            finite = finite and bool(np.isfinite(y16).all())
            d = np.clip(np.nan_to_num(y16), 0, 1).astype(np.float64) - np.clip(y32, 0, 1)
            sq, count = sq + float(np.sum(d * d)), count + d.size
        calib_psnr = math.inf if sq == 0 else 10 * math.log10(count / sq)
        if not finite:
            raise CalibrationError(
                "the FP16 model gives inf/NaN on the calibration images (float16 overflow); deploy FP32 or INT8"
            )
        if calib_psnr < min_psnr_db:
            raise CalibrationError(
                f"FP16 output is only {calib_psnr:.1f} dB from FP32 on the calibration images (need >= {min_psnr_db} "
                "dB); deploy FP32 or INT8"
            )
        report = compare_outputs(val, fp32_out, run_outputs(trial, val, threads=threads))
        if not report.finite or report.drop_db > budget_db:
            raise CalibrationError(
                f"FP16 loses {report.drop_db:.3f} dB against FP32 on the validation images (budget {budget_db} dB, "
                f"finite: {report.finite}); deploy FP32 or INT8"
            )
        record = json.loads(quality_record(report, budget_db=budget_db, val_id=val_id))
        record["calib_psnr_vs_fp32_db"] = "inf" if math.isinf(calib_psnr) else round(calib_psnr, 2)
        record["calib_images"] = len(calib_inputs)
        proto = onnx.load_model(str(trial))
        set_metadata(proto, {QUALITY_KEY: json.dumps(record, sort_keys=True)})
        save_onnx_atomic(proto, path)
    return _record(path, "fp16", quality=report, note=f"calibration images: {calib_psnr:.1f} dB vs FP32, finite")


def _engines(records: list[ArtifactRecord], engines: bool | None) -> list[ArtifactRecord]:
    from .tensorrt_build import build_engine, engines_available

    if engines is None:
        engines = engines_available()
    if not engines:
        return []
    sources = [r for r in records if r.precision == "fp16" or (r.precision == "int8" and r.flavour == "trt")]
    if not sources:
        sources = [records[0]]
    out = []
    for r in sources:
        res = build_engine(r.path)
        note = "reused (sidecar matches)" if res.reused else "built"
        if res.rebuilt_because:
            note = "rebuilt: " + "; ".join(res.rebuilt_because)
        out.append(
            ArtifactRecord(
                res.engine_path, r.precision, "", ArtifactKind.ENGINE, res.engine_path.stat().st_size, note=note
            )
        )
    return out


def records_json(records: Sequence[ArtifactRecord]) -> str:
    """The records as a JSON list (for ``--json`` output and logs)."""
    rows = []
    for r in records:
        rows.append(
            {
                "path": str(r.path),
                "precision": r.precision,
                "flavour": r.flavour,
                "kind": r.kind.value,
                "written": r.written,
                "failure": r.failure,
                "size_bytes": r.size_bytes,
                "quality": r.quality.to_dict() if r.quality else None,
                "kept_float": list(r.kept_float),
                "note": r.note,
            }
        )
    return json.dumps(rows, indent=2)
