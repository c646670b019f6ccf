"""Regenerate docs/results.md and docs/results.png: quality and speed of every shipped model, with baselines.

One command, from the repository root (takes roughly an hour on a 2-core CPU; nothing else should run)::

    .venv/bin/python benchmarks/results.py

Smoke run (two images, one 256x256 size, a few timed runs; writes under build/results-quick/, never over the
committed report)::

    .venv/bin/python benchmarks/results.py --quick --models rednet30_s2 --skip-bm3d

What it does, all in this one run:

1. For every shipped model (``edgedenoise/weights/<name>.onnx``; whatever ships, never a fixed list) and each of
   its artifacts (FP32 ONNX, INT8 CPU ONNX ``<name>.int8.cpu.onnx`` when it ships) plus torch eager FP32 (when
   ``<name>.safetensors`` ships and torch is installed): PSNR/SSIM on BSD68 at σ = 25 with
   :func:`edgedenoise.evaluate.evaluate` (the ``edgedenoise eval`` protocol, seeded noise), and the mean
   seconds per image of the model call alone. The ONNX artifacts (not torch eager) are also scored at every
   ``--extra-sigmas`` level (default 15 and 50), same protocol and seed: ``point["quality_by_sigma"]``.
2. Speed of each at every ``--sizes`` entry (default 512x512 and 1920x1080) with ``edgedenoise bench``, one fresh
   process per artifact and size, so that each peak-memory figure is its own (:mod:`edgedenoise.runtime.bench`).
3. The float32 matmul ceiling of the machine; the baselines (BM3D, OpenCV NLM, ``benchmarks/baselines.py``; cached
   in ``benchmarks/results/baselines.json`` per machine and setting, ``--refresh-baselines`` measures again).
4. Params and MACs per pixel of every shipped model (:func:`model_info`: its model card, else the FP32 ONNX file).
5. Writes ``benchmarks/results/results.json`` (every figure and sample), ``docs/results.md`` (machine, date,
   tables, the target ratios computed from this run), ``docs/results.png`` (BSD68 PSNR vs frames/s at the
   largest size, log x axis) and ``docs/models.md`` (the model zoo table and its targets, also a
   section of results.md). ``--report-only`` re-renders the three docs from the JSON without measuring; a JSON
   written before the zoo existed shows "n/a" where it lacks a figure.

``--update --models A,B`` measures only those models (same protocol) and replaces their rows in the existing
``results.json``, keeping every other figure; the run is listed under ``updates`` (command, times, machine,
matmul ceiling) and named in the report, so a reader sees which rows are newer. Use it after re-shipping a few
models; settings that differ from the JSON's (σ, sizes, limit, backend, threads) are refused.

``--backend ort-cuda`` / ``--backend ort-tensorrt`` time the ONNX artifacts on a GPU instead (PSNR is still
computed with ONNX Runtime on the CPU; torch eager stays on the CPU). Without ../shared/data/BSD68 it exits
with a one-line error.

This file is the command (arguments, presets, which steps run); the steps live in ``benchmarks/report/``:
``collect`` (measuring, ``--update`` merging), ``targets`` (figures read back, target checks) and ``render``
(the pages and the plot).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # benchmarks/ is not a package: baselines.py and report/ import from here
from report.collect import log, measure, merge_update, models_info  # noqa: E402
from report.render import render_markdown, render_models_md, render_plot  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
QUICK = {"limit": 2, "sizes": "256x256", "iters": 3, "warmup": 1, "matmul": 1024}
FULL = {"limit": None, "sizes": "512x512,1920x1080", "iters": 10, "warmup": 2, "matmul": 4096}


def parse_sigmas(text: str) -> list[float]:
    """``"15,50"`` -> ``[15.0, 50.0]`` (σ on the 0-255 scale); ``""`` -> ``[]``.

    Raises:
        ValueError: an entry that is not a number, or not in (0, 255].
    """
    out = []
    for part in (t.strip() for t in text.split(",")):
        if not part:
            continue
        value = float(part)  # ValueError names the bad entry
        if not 0.0 < value <= 255.0:
            raise ValueError(f"sigma {part} is outside (0, 255]")
        out.append(value)
    return list(dict.fromkeys(out))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with the ``--quick`` / full presets filled in and ``--models`` / ``--extra-sigmas``
    parsed; a bad combination or value exits with argparse's one-line usage error (SystemExit 2)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}; outputs under build/results-quick/")
    ap.add_argument("--models", help="comma-separated shipped models (default: every shipped model)")
    ap.add_argument("--data", type=Path, default=DATA / "BSD68")
    ap.add_argument("--train", type=Path, default=DATA / "Train400", help="training images (NLM h tuning)")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument(
        "--extra-sigmas",
        default="15,50",
        help="more σ for the PSNR/SSIM of the ONNX artifacts (comma-separated, 0-255 scale; '' for none)",
    )
    ap.add_argument("--limit", type=int, help=f"first N test images (default: all; --quick: {QUICK['limit']})")
    ap.add_argument("--sizes", help=f"WIDTHxHEIGHT list (default {FULL['sizes']}; --quick: {QUICK['sizes']})")
    ap.add_argument("--backend", default="ort-cpu", choices=["ort-cpu", "ort-cuda", "ort-tensorrt"])
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: each library's default)")
    ap.add_argument("--warmup", type=int, help=f"untimed runs per size (default {FULL['warmup']})")
    ap.add_argument("--iters", type=int, help=f"timed runs per size, at most (default {FULL['iters']})")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="stop timing a size after this long (>= 3 runs)")
    ap.add_argument("--matmul", type=int, help=f"ceiling matmul side (default {FULL['matmul']})")
    ap.add_argument("--skip-bm3d", action="store_true", help="leave BM3D out (minutes per run)")
    ap.add_argument("--skip-torch", action="store_true", help="leave torch eager out")
    ap.add_argument("--skip-torch-eval", action="store_true", help="time torch eager but do not evaluate its PSNR")
    ap.add_argument("--refresh-baselines", action="store_true", help="measure the baselines even if cached")
    ap.add_argument("--out-dir", type=Path, help="root for docs/ and benchmarks/results/ (default: the repository)")
    ap.add_argument("--report-only", action="store_true", help="re-render the docs from the results JSON")
    ap.add_argument(
        "--update", action="store_true", help="measure only --models and replace their rows in the existing JSON"
    )
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for k in ("limit", "sizes", "iters", "warmup", "matmul"):
        if getattr(args, k) is None:
            setattr(args, k, preset[k])
    if args.out_dir is None:
        args.out_dir = ROOT / "build" / "results-quick" if args.quick else ROOT
    args.models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    if args.update and (not args.models or args.report_only):
        ap.error("--update needs --models (the models to re-measure) and cannot be combined with --report-only")
    try:
        args.extra_sigmas = parse_sigmas(args.extra_sigmas)
    except ValueError as exc:
        ap.error(f"--extra-sigmas {args.extra_sigmas!r}: {exc}; pass e.g. 15,50")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Measure (or, with ``--report-only``, re-read) the results and write the JSON, the pages and the plot.

    Returns:
        0, or 1 after a one-line ``Error: ...`` on stderr (missing data, no JSON to update, a project error).
    """
    args = parse_args(argv)
    json_path = args.out_dir / "benchmarks" / "results" / "results.json"
    doc = args.out_dir / "docs" / "results.md"
    png = args.out_dir / "docs" / "results.png"
    zoo = args.out_dir / "docs" / "models.md"
    from edgedenoise.runtime.atomic import write_atomic
    from edgedenoise.runtime.bench import shipped_models
    from edgedenoise.runtime.errors import EdgeDenoiseError

    if args.report_only:
        res = json.loads(json_path.read_text())
        if "models" not in res:  # written before the zoo: params and MACs of the weights shipped now
            try:
                res["models"] = models_info(
                    [m for m in dict.fromkeys(p["model"] for p in res["points"]) if m in shipped_models()]
                )
            except EdgeDenoiseError as exc:
                print(f"Error: {exc}", file=sys.stderr)
                return 1
            log("the results JSON has no params/MACs: read them from the shipped model cards/ONNX files")
    else:
        for d in (args.data, args.train):
            if not d.is_dir():
                print(
                    f"Error: {d} not found; put the benchmark sets in ../shared/data beside the checkout",
                    file=sys.stderr,
                )
                return 1
        old_res = None
        if args.update:
            if not json_path.is_file():
                print(f"Error: --update needs an existing {json_path}; run without --update first", file=sys.stderr)
                return 1
            old_res = json.loads(json_path.read_text())
        try:
            res = measure(args)
            if old_res is not None:
                res = merge_update(old_res, res, shipped_models())
        except EdgeDenoiseError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        write_atomic(json_path, json.dumps(res, indent=2) + "\n")
    render_plot(res, png)
    write_atomic(doc, render_markdown(res, png.name))
    write_atomic(zoo, render_models_md(res))
    log(f"wrote {', '.join(str(f) for f in ([] if args.report_only else [json_path]) + [doc, png, zoo])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
