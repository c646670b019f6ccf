"""Compare INT8 calibration methods per flavour: the PSNR drop vs FP32 with every layer quantized (no gate).

Usage: python benchmarks/int8_methods.py [MODEL] [--methods minmax,entropy,percentile:99.99,...] [--threads 1]

Uses the same calibration (calib_data/gray) and validation (calib_data/val_gray, σ=25) sets as `export`; prints
one line per flavour x method: drop in dB and the seconds it took. Its figures back the defaults in
docs/export.md ("Calibration method per flavour").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edgedenoise.export.calibration import (
    add_noise,
    calibration_sigmas,
    default_calib_dir,
    default_val_dir,
    gate_sigma,
    load_images,
)
from edgedenoise.export.onnx_export import export_onnx
from edgedenoise.export.pipeline import load_model_source
from edgedenoise.export.quality import compare_outputs, make_validation_set, run_outputs
from edgedenoise.export.quantize import Int8Options, entry_convs, preprocess_for_quantization, quantize_int8
from edgedenoise.models import model_cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="rednet30")
    ap.add_argument("--flavours", default="trt,cpu")
    ap.add_argument("--methods", default="minmax,entropy,percentile:99.99,percentile:99.999")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-calib", type=int, default=None)
    ap.add_argument("--exclude-first", action="store_true", help="keep the Conv that reads the input in float")
    args = ap.parse_args()
    model, sha = load_model_source(args.model)
    cfg = model_cfg(model)
    val = make_validation_set(load_images(default_val_dir(1), 1, cfg.size_multiple), gate_sigma(cfg))
    images = load_images(default_calib_dir(1), 1, cfg.size_multiple, max_images=args.max_calib)
    calib = add_noise(images, calibration_sigmas(cfg), seed=10_000)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "m.onnx", weights_sha256=sha)
        ref = run_outputs(fp32, val, threads=args.threads)
        prepared = preprocess_for_quantization(fp32, Path(tmp) / "prep.onnx")
        exclude = entry_convs(prepared) if args.exclude_first else ()
        for flavour in args.flavours.split(","):
            for spec in args.methods.split(","):
                method, _, pct = spec.partition(":")
                opts = Int8Options(flavour=flavour, method=method, percentile=float(pct or 99.999),
                                   strided_calibration=7 if len(calib) % 7 == 0 else 1, exclude=exclude)  # fmt: skip
                t0 = time.time()
                out = quantize_int8(prepared, Path(tmp) / "q.onnx", opts, inputs=calib, cache_dir=tmp, calib_id=spec)
                rep = compare_outputs(val, ref, run_outputs(out, val, threads=args.threads))
                tag = "first conv float " if exclude else ""
                print(f"{args.model} {flavour:4s} {spec:18s} {tag}drop {rep.drop_db:.3f} dB ({time.time() - t0:.0f} s)",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
