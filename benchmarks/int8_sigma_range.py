"""INT8 of a noise-level-conditioned model across σ: the PSNR drop vs FP32 at several noise levels, per set of
calibration levels, with every layer quantized but the Conv(s) reading the noisy image (no gate).

Usage:
    python benchmarks/int8_sigma_range.py MODEL [--calib 5,40,75 20,40,60 ...] [--sigmas 5,15,25,50,75]
        [--json benchmarks/results/int8_sigma_range.json]

MODEL is a shipped name or a weights file; the calibration (calib_data/gray or rgb) and gate images
(calib_data/val_gray or val_rgb) are the export's, the INT8 flavour is ``cpu`` with its default method. One line
per calibration set: the drop (dB, positive = worse than FP32) at each σ of ``--sigmas``. Its figures back the
calibration levels of :func:`edgedenoise.export.calibration.calibration_sigmas` (docs/export.md); ``--json``
adds them, with the model and the machine-independent settings, to a JSON file keyed by model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edgedenoise.export.calibration import calibration_feeds, default_calib_dir, default_val_dir, load_images
from edgedenoise.export.onnx_export import export_onnx
from edgedenoise.export.pipeline import load_model_source
from edgedenoise.export.quality import compare_outputs, make_validation_set, run_outputs
from edgedenoise.export.quantize import (
    CalibMethod,
    Int8Flavour,
    Int8Options,
    entry_convs,
    preprocess_for_quantization,
    quantize_int8,
)
from edgedenoise.models import model_cfg


def _levels(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--calib", nargs="+", default=["5,40,75", "20,40,60"], help="calibration level sets")
    ap.add_argument("--sigmas", default="5,15,25,50,75", help="noise levels to measure at")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    model, _ = load_model_source(args.model)
    cfg = model_cfg(model)
    if not cfg.noise_level_input:
        raise SystemExit(f"{cfg.arch} is blind: this benchmark is for models told the noise level")
    calib_images = load_images(default_calib_dir(cfg.in_channels), cfg.in_channels, cfg.size_multiple)
    val_images = load_images(default_val_dir(cfg.in_channels), cfg.in_channels, cfg.size_multiple)
    sigmas = _levels(args.sigmas)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        fp32 = export_onnx(model, d / "m.onnx")
        prepared = preprocess_for_quantization(fp32, d / "m.pre.onnx")
        vals = {s: make_validation_set(val_images, s) for s in sigmas}
        refs = {s: run_outputs(fp32, v, threads=args.threads) for s, v in vals.items()}
        opts = Int8Options(flavour=Int8Flavour.CPU, method=CalibMethod.PERCENTILE, exclude=entry_convs(prepared))
        for spec in args.calib:
            feeds = calibration_feeds(calib_images, _levels(spec), cfg, seed=10_000)
            out = quantize_int8(prepared, d / "q.onnx", opts, inputs=feeds, cache_dir=d, calib_id=f"sigmas={spec}")
            drops = {
                f"{s:g}": round(compare_outputs(v, refs[s], run_outputs(out, v, threads=args.threads)).drop_db, 3)
                for s, v in vals.items()
            }
            rows[spec] = drops
            print(
                f"{cfg.arch}  calibrated at σ {spec:>12}: drop (dB) at σ "
                + ", ".join(f"{k}: {v:+.3f}" for k, v in drops.items())
            )
    if args.json:
        doc = json.loads(args.json.read_text()) if args.json.exists() else {}
        doc[cfg.arch] = {
            "source": str(args.model),
            "calibration_images": default_calib_dir(cfg.in_channels).name,
            "gate_images": default_val_dir(cfg.in_channels).name,
            "flavour": "cpu",
            "method": "percentile",
            "float": "the Conv(s) reading the noisy image",
            "drop_db_by_calibration_sigmas": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
