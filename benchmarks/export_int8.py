"""Measure the export stage on a trained model: INT8/FP16 PSNR drop vs FP32 and ONNX Runtime CPU speed.

Prints figures (no assertions); docs/export.md quotes them. Run from the repository root, e.g.

    .venv/bin/python benchmarks/export_int8.py --model runs/rednet30_blind/best.safetensors --methods minmax entropy

For each calibration method it runs the real ``export_model`` (calibration, quality gate with its default
0.1 dB budget), then re-measures every artifact with ``compare_artifacts`` on the gate images and, when
../shared/data/Set12 is present, on Set12 at sigma 25 (reporting only; nothing is tuned on Set12), and times
FP32 vs INT8-cpu at 512x512 with ONNX Runtime on the CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _time(path: Path, threads: int, size: int, repeats: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32)
    sess.run(None, {"noisy": x})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {"noisy": x})
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="rednet30", help="name (shipped weights), .safetensors or trainer .pt")
    ap.add_argument("--methods", nargs="+", default=["minmax", "entropy", "percentile"])
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="keep the artifacts here (default: a temporary folder)")
    args = ap.parse_args()

    from edgedenoise.export.errors import CalibrationError
    from edgedenoise.export.onnx_export import read_metadata
    from edgedenoise.export.pipeline import ExportOptions, export_model
    from edgedenoise.export.quality import compare_artifacts
    from edgedenoise.runtime.contract import QUALITY_KEY

    set12 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "Set12"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        speed_done = False
        for method in args.methods:
            for flavour in ("cpu", "trt"):
                out = root / method
                t = time.perf_counter()
                try:
                    opts = ExportOptions(int8=True, flavours=(flavour,), fp16=args.fp16 and not speed_done,
                                         calib_method=method, threads=args.threads, progress=True)  # fmt: skip
                    records = export_model(args.model, out, opts)
                except CalibrationError as exc:
                    print(f"\n== {method} {flavour}: FAILED after {time.perf_counter() - t:.0f} s: {exc}", flush=True)
                    continue
                print(f"\n== {method} {flavour}: export {time.perf_counter() - t:.0f} s")
                fp32 = records[0].path
                for r in records[1:]:
                    q = json.loads(read_metadata(r.path)[QUALITY_KEY])
                    first = q.get("first_drop_db", q["drop_db"])
                    line = (
                        f"{r.path.name:28s} gate: drop {q['drop_db']:+.3f} dB (all-INT8 first try {first:+.3f}),"
                        f" PSNR vs FP32 {q['psnr_vs_fp32_db']} dB, SSIM {q['ssim']} vs {q['ssim_fp32']},"
                        f" kept float {q.get('kept_float', [])}"
                    )
                    if set12.is_dir():
                        rep = compare_artifacts(fp32, r.path, set12, sigma=25.0, threads=args.threads)
                        line += f"; Set12 s25: FP32 {rep.psnr_fp32_db:.3f} dB, drop {rep.drop_db:+.3f} dB"
                    print(line, flush=True)
                if not speed_done and flavour == "cpu":
                    cpu = next(r.path for r in records if r.flavour == "cpu")
                    t32 = _time(fp32, args.threads, args.size, args.repeats)
                    t8 = _time(cpu, args.threads, args.size, args.repeats)
                    print(
                        f"speed {args.size}x{args.size}, {args.threads} threads, median of {args.repeats}:"
                        f" FP32 {t32:.3f} s, INT8-cpu {t8:.3f} s ({t32 / t8:.2f}x)",
                        flush=True,
                    )
                    speed_done = True


if __name__ == "__main__":
    main()
