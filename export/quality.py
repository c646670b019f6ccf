"""The quality gate: how much an artifact (FP16, INT8) loses against the FP32 model, on held-out images.

Protocol (the denoising benchmark protocol of :mod:`edgedenoise.runtime.metrics`): each validation image gets
seeded AWGN (:func:`edgedenoise.runtime.metrics.awgn`, seed = image index), both models denoise it with ONNX
Runtime on the CPU, outputs are clipped and quantised to 8 bits, and PSNR/SSIM are computed with peak 255.
The **drop** is ``mean PSNR(FP32 vs clean) - mean PSNR(artifact vs clean)`` in dB (positive = the artifact is
worse); **PSNR vs FP32** compares the two outputs directly (a fidelity measure: inf if identical).

The validation images must be disjoint from the calibration images and from any test set: the shipped ones
(``calib_data/val_gray``) are CBSD432 crops, see ``calib_data/README.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.contract import INPUT_NAME, SIGMA_NAME
from ..runtime.errors import InvalidInputError
from ..runtime.metrics import psnr, quantize8, ssim


@dataclass(frozen=True)
class ValidationSet:
    """Clean images and their noisy versions.

    Attributes:
        clean: ``(C, H, W)`` float32 in [0, 1].
        noisy: ``(1, C, H, W)`` float32 (AWGN, not clipped).
        sigma: AWGN level on the 0-255 scale.
    """

    clean: list[np.ndarray]
    noisy: list[np.ndarray]
    sigma: float


def make_validation_set(images: Sequence[np.ndarray], sigma: float, seed: int = 0) -> ValidationSet:
    """AWGN of ``sigma`` (0-255) on each ``(C, H, W)`` image, seed ``seed + index``."""
    from .calibration import add_noise

    return ValidationSet(list(images), add_noise(images, [sigma], seed), float(sigma))


@dataclass(frozen=True)
class QualityReport:
    """Quality of one artifact against the FP32 model on a :class:`ValidationSet`.

    Attributes:
        psnr_fp32_db: mean PSNR of the FP32 model vs the clean images (dB).
        psnr_db: mean PSNR of the artifact vs the clean images (dB).
        drop_db: ``psnr_fp32_db - psnr_db`` (dB; positive = worse than FP32).
        psnr_vs_fp32_db: mean PSNR between the artifact's and the FP32 model's outputs (dB, inf if identical).
        ssim: mean SSIM of the artifact vs the clean images.
        ssim_fp32: mean SSIM of the FP32 model vs the clean images.
        max_abs_err: max |artifact - FP32| over all output pixels, before clipping ([0, 1] scale).
        finite: every output value was finite (an FP16 overflow gives inf/NaN).
        n_images: number of validation images; sigma: their AWGN level (0-255).
    """

    psnr_fp32_db: float
    psnr_db: float
    drop_db: float
    psnr_vs_fp32_db: float
    ssim: float
    ssim_fp32: float
    max_abs_err: float
    finite: bool
    n_images: int
    sigma: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (inf written as the string ``"inf"``), values rounded to 4 decimals."""
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            if isinstance(v, float):
                out[k] = "inf" if math.isinf(v) else round(v, 4)
            else:
                out[k] = v
        return out


class OnnxRunner:
    """One ONNX Runtime CPU session of a model file, for repeated runs on the validation set.

    Args:
        path: ONNX file with input ``noisy``.
        threads: intra-op threads (0 = one per physical core).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        from ..runtime.ort_session import cpu_session

        self.path = str(path)
        self.session = cpu_session(path, threads=max(threads, 0))  # 0: ONNX Runtime picks (one per core)
        self._fp16_in = "float16" in self.session.get_inputs()[0].type
        self.takes_sigma = SIGMA_NAME in {i.name for i in self.session.get_inputs()}

    def __call__(self, x: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """``(N, C, H, W)`` float32 -> ``(N, C, H, W)`` float32; ``sigma`` (0-255 scale) is given to a model with
        a noise-level input as a uniform map, and ignored by a blind one."""
        dtype = np.float16 if self._fp16_in else np.float32
        feeds = {INPUT_NAME: x.astype(dtype, copy=False)}
        if self.takes_sigma:
            if sigma is None:
                raise InvalidInputError(f"{self.path} takes a noise-level map; give the noise σ")
            feeds[SIGMA_NAME] = np.full((x.shape[0], 1, *x.shape[2:]), sigma / 255.0, dtype)
        (y,) = self.session.run(None, feeds)
        return np.asarray(y, dtype=np.float32)


def _hwc(x: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W)`` for gray, ``(H, W, C)`` for colour (what the metrics take)."""
    return x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))


def run_outputs(
    path: str | Path, val: ValidationSet, *, threads: int = 1, progress: str | None = None
) -> list[np.ndarray]:
    """Outputs ``(1, C, H, W)`` float32 of the model at ``path`` on every noisy validation image."""
    runner = OnnxRunner(path, threads)
    items = val.noisy
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=progress, unit="img", leave=False)  # type: ignore[assignment]
    return [runner(x, val.sigma) for x in items]


def compare_outputs(val: ValidationSet, ref: Sequence[np.ndarray], out: Sequence[np.ndarray]) -> QualityReport:
    """Score ``out`` against the FP32 outputs ``ref`` and the clean images (see the module docstring).

    Args:
        val: the validation set.
        ref: FP32 outputs, ``(1, C, H, W)`` per image.
        out: the artifact's outputs, same shapes.
    """
    p_ref, p_out, p_vs, s_ref, s_out = [], [], [], [], []
    max_err, finite = 0.0, True
    for clean, r, o in zip(val.clean, ref, out, strict=True):
        finite = finite and bool(np.isfinite(o).all())
        c8 = _hwc(quantize8(clean))
        r8, o8 = _hwc(quantize8(r[0])), _hwc(quantize8(np.nan_to_num(o[0], nan=0.0)))
        max_err = max(max_err, float(np.nanmax(np.abs(o - r))) if np.isfinite(o).any() else math.inf)
        p_ref.append(psnr(r8, c8))
        p_out.append(psnr(o8, c8))
        p_vs.append(psnr(o8, r8))
        s_ref.append(ssim(r8, c8))
        s_out.append(ssim(o8, c8))
    if not finite:
        max_err = math.inf
    mean_ref, mean_out = float(np.mean(p_ref)), float(np.mean(p_out))
    return QualityReport(
        psnr_fp32_db=mean_ref,
        psnr_db=mean_out,
        drop_db=mean_ref - mean_out,
        psnr_vs_fp32_db=float(np.mean(p_vs)),
        ssim=float(np.mean(s_out)),
        ssim_fp32=float(np.mean(s_ref)),
        max_abs_err=max_err,
        finite=finite,
        n_images=len(val.clean),
        sigma=val.sigma,
    )


def quality_record(
    report: QualityReport, *, budget_db: float | None = None, val_id: str = "", extra: dict[str, Any] | None = None
) -> str:
    """The JSON written under ``QUALITY_KEY`` in an artifact's ``metadata_props``.

    Holds the :class:`QualityReport` fields, the reference (``"fp32"``), the budget, the validation set's id and
    the ``extra`` fields of the step that made the artifact (the INT8 gate adds its own:
    :meth:`.gate.GateResult.record_fields`).
    """
    rec: dict[str, Any] = {"reference": "fp32", **report.to_dict()}
    if budget_db is not None:
        rec["budget_db"] = budget_db
    if val_id:
        rec["validation_set"] = val_id
    rec.update(extra or {})
    return json.dumps(rec, sort_keys=True)


def compare_artifacts(
    a: str | Path, b: str | Path, data_dir: str | Path, *, sigma: float = 25.0, seed: int = 0, threads: int = 1
) -> QualityReport:
    """Run two ONNX artifacts on the same noisy images and score B against A (A plays the FP32 role).

    Args:
        a, b: ONNX files written by edgedenoise (their ``metadata_props`` give the channels and size multiple;
            the two must agree).
        data_dir: a folder of clean images; each gets AWGN of ``sigma`` (0-255) with seed ``seed + index``.

    Returns:
        :class:`QualityReport` with ``psnr_fp32_db`` = A vs clean, ``psnr_db`` = B vs clean, ``drop_db`` = their
        difference, ``psnr_vs_fp32_db`` = B vs A, and the max abs difference of the raw outputs.

    Raises:
        ArtifactError: a file without edgedenoise metadata, external data outside its folder, or the two
            contracts disagree on the I/O.
        InvalidInputError: the folder has no readable images.
    """
    from ..runtime.bench import read_onnx_contract
    from ..runtime.errors import ArtifactError
    from .calibration import load_images

    # the contract through ONNX Runtime (which refuses external data outside the model's folder): no `onnx`
    # needed, so compare runs in a runtime-only install
    cfgs = [read_onnx_contract(p).cfg for p in (a, b)]
    if (cfgs[0].in_channels, cfgs[0].size_multiple) != (cfgs[1].in_channels, cfgs[1].size_multiple):
        raise ArtifactError(f"{str(a)!r} and {str(b)!r} take different inputs ({cfgs[0]} vs {cfgs[1]})")
    multiple = max(cfgs[0].size_multiple, cfgs[1].size_multiple)
    val = make_validation_set(load_images(data_dir, cfgs[0].in_channels, multiple), sigma, seed)
    return compare_outputs(val, run_outputs(a, val, threads=threads), run_outputs(b, val, threads=threads))
