"""Independent check of shipped figures: onnxruntime + numpy + Pillow only, no edgedenoise code.

For each ONNX file: every PNG of DATA, AWGN of σ drawn as ``numpy.random.default_rng(seed + i)
.standard_normal(shape, float32) * σ / 255`` (the `edgedenoise eval` noise, documented in docs/training.md, so the
numbers are comparable with the model cards), reflect padding to a multiple of 4, output clipped to [0, 1] and
rounded to 8 bits, PSNR against the 8-bit clean image in numpy. Prints mean PSNR per file and, with --cards,
the model card's figure for the same set and σ and the difference.

Usage:
  python benchmarks/independent_check.py ../shared/data/BSD68 25 edgedenoise/weights/*.onnx --cards
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def card_psnr(onnx_path: Path, data: Path, sigma: float) -> float | None:
    """The card's PSNR for ``data``'s set name at ``sigma``, if ``<name>.json`` beside the FP32 file has it."""
    card = onnx_path.with_name(onnx_path.name.split(".")[0] + ".json")
    if not card.is_file():
        return None
    sets = json.loads(card.read_text()).get("evaluation", {}).get("sets", {})
    for row in sets.get(data.name, {}).get("results", []):
        if float(row.get("sigma", -1)) == sigma:
            return float(row["psnr"])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("sigma", type=float)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cards", action="store_true", help="compare with the model cards beside the files")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    args = ap.parse_args()
    files = sorted(glob.glob(str(args.data / "*.png")))
    for m in args.models:
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(str(m), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        scores = []
        for i, f in enumerate(files):
            clean8 = np.asarray(Image.open(f).convert("L"), dtype=np.float64)
            clean = (clean8 / 255.0).astype(np.float32)
            noise = np.random.default_rng(args.seed + i).standard_normal(clean.shape, dtype=np.float32)
            noisy = clean + noise * np.float32(args.sigma / 255.0)
            h, w = clean.shape
            x = np.pad(noisy, ((0, (-h) % 4), (0, (-w) % 4)), mode="reflect")[None, None]
            y = sess.run(None, {name: x})[0][0, 0, :h, :w]
            y8 = np.round(np.clip(y.astype(np.float64), 0.0, 1.0) * 255.0)
            scores.append(10 * np.log10(255.0**2 / np.mean((y8 - clean8) ** 2)))
        line = f"{m.name}: {args.data.name} σ={args.sigma:g} mean PSNR {np.mean(scores):.3f} dB ({len(files)} images)"
        ref = card_psnr(m, args.data, args.sigma) if args.cards else None
        if ref is not None:
            line += f"; card {ref:.3f} dB, difference {np.mean(scores) - ref:+.3f} dB"
        print(line, flush=True)


if __name__ == "__main__":
    main()
