"""Rendering the report from the results dict: ``docs/results.md`` (:func:`render_markdown`), ``docs/models.md``
(:func:`render_models_md`, whose zoo section :func:`render_zoo` also is in results.md) and ``docs/results.png``
(:func:`render_plot`). Every figure comes from the dict or from :mod:`report.targets`; nothing measures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgedenoise.runtime.bench import BenchRow, describe_machine, markdown_table

from . import ROOT
from .targets import (
    FPS_TARGET,
    LIGHT_TARGET,
    REALTIME_JSON,
    REALTIME_MIN_PSNR,
    REFERENCE_MODEL,
    SPEED_REFERENCE,
    TARGETS,
    ZOO_FPS_HW,
    ZOO_MS_HW,
    baseline_fps,
    ratios,
    realtime_target,
    sigma_key,
    speed_at,
    zoo_rows,
    zoo_sigmas,
    zoo_targets,
)

NA = "n/a"


def _na(v: float | None, fmt: str) -> str:
    return NA if v is None or not math.isfinite(v) else format(v, fmt)


def _target_text(t: dict[str, Any]) -> str:
    return t["text"] + (" (**not met**)" if t["status"] == "not met" else "")


def render_zoo(res: dict[str, Any]) -> list[str]:
    """The model zoo table and its target checks, as markdown lines (no heading)."""
    s = res["settings"]
    infos = res.get("models") or {}
    ref = (infos.get(REFERENCE_MODEL) or {}).get("macs_per_pixel")
    rows = zoo_rows(res)
    sigmas = [sigma_key(v) for v in zoo_sigmas(res)]
    (mh, mw), (fh, fw) = ZOO_MS_HW, ZOO_FPS_HW
    n_img = next((p["quality"]["n_images"] for p in res["points"] if p.get("quality")), None)
    psnr_cols = [f"PSNR σ{k} {prec.upper()}" for prec in ("fp32", "int8") for k in sigmas]
    head = ["model", "params", "MACs/pixel", f"% of {REFERENCE_MODEL} MACs", *psnr_cols]
    head += [f"ms {mw}x{mh} FP32", f"ms {mw}x{mh} INT8", f"frames/s {fw}x{fh} FP32", f"frames/s {fw}x{fh} INT8"]
    lines = [
        f"Every shipped model in this run, ONNX Runtime artifacts only (FP32 `<name>.onnx`, INT8 "
        f"`<name>.int8.cpu.onnx` where it ships; {NA}: not shipped or not measured). PSNR (dB): {s['data']} "
        f"({n_img} images), AWGN at each σ with seed {s['seed']} (the `edgedenoise eval` protocol, see "
        f"docs/results.md). ms: median (p50) latency of one {mw}x{mh} frame; frames/s: 1000 / median ms of one "
        f"{fw}x{fh} frame; backend {s['backend']}, batch 1, "
        f"threads {s['threads'] or 'default'}. Params and MACs per pixel (multiply-accumulates per input pixel): "
        "the model card `edgedenoise/weights/<name>.json` (torch count), else the FP32 ONNX file (initializers, "
        f"`edgedenoise.macs_per_pixel` metadata); % of {REFERENCE_MODEL}: MACs per pixel / {REFERENCE_MODEL}'s "
        f"({_na(ref, ',.0f')}).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [
            r["model"],
            NA if r["params"] is None else f"{r['params']:,}",
            _na(r["macs_per_pixel"], ",.0f"),
            _na(r["macs_pct"], ".1f"),
            *(_na(r["psnr"][prec][k], ".2f") for prec in ("fp32", "int8") for k in sigmas),
            _na(r["ms"]["fp32"], ".1f"),
            _na(r["ms"]["int8"], ".1f"),
            _na(r["fps"]["fp32"], ".2f"),
            _na(r["fps"]["int8"], ".2f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    odd = [
        f"{m}: params {i.get('params_source')}, MACs {i.get('macs_source')}"
        for m, i in infos.items()
        if m in {r["model"] for r in rows} and (i.get("params_source"), i.get("macs_source")) != ("model-card",) * 2
    ]
    if odd:
        lines += ["", "Figures not from the model card: " + "; ".join(odd) + "."]
    t = zoo_targets(rows, ref)
    lt, ft = LIGHT_TARGET, FPS_TARGET
    bm3d = next((b for b in res["baselines"] if b["method"] == "bm3d"), None)
    bm3d_txt = (
        f"; BM3D in this run: {bm3d['psnr']:.3f} dB"
        if bm3d is not None and float(s["sigma"]) == float(lt["sigma"])
        else ""
    )
    lines += [
        "",
        "Targets, computed from the table (models with a noise-level input are told the true σ):",
        "",
        f"- FFDNet-cost class, <= {100 * lt['max_macs_fraction']:g} % of {REFERENCE_MODEL}'s MACs at >= "
        f"{lt['min_psnr_db']:.2f} dB on {s['data']} σ = {lt['sigma']:g} (FP32; FFDNet {lt['goal_psnr_db']:.2f} dB"
        f"{bm3d_txt}): {_target_text(t['light'])}.",
        f"- {fw}x{fh} gray at >= {ft['min_fps']:g} frames/s in INT8 on this machine: {_target_text(t['fps'])}.",
        *realtime_lines(rows, s["data"], lt["sigma"]),
    ]
    return lines


def realtime_lines(rows: Sequence[dict[str, Any]], data: str, sigma: float) -> list[str]:
    """The real-time class line of the targets (:func:`~report.targets.realtime_target`); no line when its
    benchmark JSON or the speed reference's row is absent."""
    check = realtime_target(rows, sigma)
    if check is None:
        return []
    ref = check["reference"]
    parts = []
    for e in check["entries"]:
        r, q = e["row"], e["psnr"]
        quality = f", {q:.2f} dB FP32" if q is not None else ""
        parts.append(
            f"{r.model} {r.precision.upper()} {r.frames_per_s:.2f} frames/s ({r.frames_per_s / ref.frames_per_s:.2f}x"
            f"{quality}){'' if e['met'] else ' (**not met**)'}"
        )
    return [
        f"- Real-time class, at least as fast as the speed reference ({SPEED_REFERENCE.name}: "
        f"{ref.frames_per_s:.2f} frames/s) at {ref.width}x{ref.height}, timed side by side in one "
        f"`edgedenoise bench` run (`{REALTIME_JSON.relative_to(ROOT)}`, {ref.iters} runs each), at >= "
        f"{REALTIME_MIN_PSNR:.1f} dB on {data} σ = {sigma:g}: " + ("; ".join(parts) or "no model timed") + ".",
    ]


def render_models_md(res: dict[str, Any]) -> str:
    """``docs/models.md``: a generated page with the machine/date line and :func:`render_zoo`."""
    return "\n".join(
        [
            "# Model zoo",
            "",
            f"Generated by `{res['command']}` from {res['started_utc']} to {res['finished_utc']}, together with "
            "docs/results.md (same run, same figures; `benchmarks/results/results.json` holds them all). Do not "
            "edit this file: regenerate it with `.venv/bin/python benchmarks/results.py` (measures everything, "
            "about an hour on a 2-core CPU) or `.venv/bin/python benchmarks/results.py --report-only` (re-renders "
            "from the JSON).",
            "",
            f"Machine: {describe_machine(res['machine'])}.",
            "",
            *_update_lines(res),
            *render_zoo(res),
            "",
        ]
    )


# ---------------------------------------------------------------- rendering


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _baseline_lib(b: dict[str, Any]) -> str:
    return f"{'bm3d' if b['method'] == 'bm3d' else 'opencv'} {b['version']}"


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _measured(res: dict[str, Any], point: dict[str, Any]) -> tuple[str, str]:
    """``(CPU, UTC date)`` of the run that measured ``point``: the ``--update`` run that replaced it (its
    ``"update"`` index), else the original run."""
    updates = res.get("updates") or []
    idx = point.get("update")
    run = updates[idx] if isinstance(idx, int) and 0 <= idx < len(updates) else None
    machine = (run or res).get("machine") or {}
    utc = (run or res).get("started_utc") or ""
    return str(machine.get("cpu", "?")), str(utc)[:10]


def _update_lines(res: dict[str, Any]) -> list[str]:
    """One paragraph per ``--update`` run: which models' rows it replaced, when, and on what machine."""
    lines = []
    for u in res.get("updates", []):
        lines += [
            f"Rows of {', '.join(f'`{m}`' for m in u['models'])} re-measured by `{u['command']}` from "
            f"{u['started_utc']} to {u['finished_utc']} (same protocol; float32 matmul ceiling then "
            f"{u['ceiling']['gflops']:.0f} GFLOP/s): machine {describe_machine(u['machine'])}."
            + (f" Retired then (rows removed): {', '.join(u['retired'])}." if u.get("retired") else ""),
            "",
        ]
    return lines


def render_markdown(res: dict[str, Any], png_name: str) -> str:
    """``docs/results.md``: machine and protocol, the quality and speed table, the model zoo, the targets, the
    speed at every size, the baselines and the caveats; ``png_name`` is the plot's file name beside it."""
    s = res["settings"]
    fh, fw = s["frame"]
    sizes_txt = ", ".join(f"{w}x{h}" for h, w in s["sizes"])
    n_img = next((p["quality"]["n_images"] for p in res["points"] if p.get("quality")), None)
    r = ratios(res)
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{res['command']}` from {res['started_utc']} to {res['finished_utc']}. Every figure below "
        "comes from that run (`benchmarks/results/results.json` holds them all, with every timed sample); nothing "
        "is typed by hand. Do not edit this file: regenerate it.",
        "",
        f"Machine: {describe_machine(res['machine'])}.",
        "",
        *_update_lines(res),
        "## Benchmarks",
        "",
        "Regenerate this page and the plot (about an hour on a 2-core CPU; run it on an otherwise idle machine):",
        "",
        "```bash",
        ".venv/bin/python benchmarks/results.py    # measures everything, writes docs/results.{md,png}, docs/models.md",
        ".venv/bin/python benchmarks/results.py --report-only  # re-renders them from benchmarks/results/results.json",
        ".venv/bin/python benchmarks/results.py --quick --models rednet30_s2 --skip-bm3d  # smoke run, build/",
        "```",
        "",
        "Single models: `edgedenoise bench MODEL... [--precision fp32,int8] [--size 512x512,1920x1080] [--json F]` "
        "(no torch needed for ONNX files; `--backend torch` times PyTorch eager). On a GPU the same command and "
        "`benchmarks/results.py` take `--backend ort-cuda` or `--backend ort-tensorrt`, and `edgedenoise bench` takes "
        "`--backend tensorrt` for engines built on the device; the figures here are CPU only (no GPU on this "
        "machine). The baselines (BM3D, OpenCV NLM) need the `bench` extra: `pip install -e '.[bench]'`.",
        "",
        f"Protocol: quality on {s['data']} ({n_img} images) at AWGN σ = {s['sigma']:g}, seed {s['seed']} "
        "(image i gets seed + i, not clipped; the `edgedenoise eval` protocol, docs/training.md), estimates "
        "clipped and quantised to 8 bits, PSNR/SSIM at peak 255. PSNR of ONNX artifacts is computed with ONNX "
        "Runtime on the CPU. *s/image* is the mean time of the model call alone on those images. Speed: "
        f"`edgedenoise bench` on a seeded random frame at {sizes_txt}, backend {s['backend']}, batch 1, threads "
        f"{s['threads'] or 'default'}, {s['warmup']} warm-up run(s), then up to {s['iters']} timed runs"
        + (
            f" (warm-up and timing each within {s['max_seconds']:g} s per size, keeping at least 1 and 3 runs)"
            if s["max_seconds"]
            else ""
        )
        + "; frames/s = 1000 / median ms. Each artifact and size runs in a fresh process: peak RSS is that "
        "process's resident memory (interpreter and libraries included), sampled every 5 ms. GFLOP/s = 2 x MACs "
        "per pixel x pixels / median time (integer operations for INT8).",
        "",
        "## Quality and speed",
        "",
        f"| method | precision | backend | PSNR (dB) | SSIM | s/image | frames/s {fw}x{fh} | p50 ms {fw}x{fh} "
        f"| GFLOP/s {fw}x{fh} | peak RSS MiB {fw}x{fh} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in res["points"]:
        q = p.get("quality") or {}
        row = speed_at(p, s["frame"])
        lines.append(
            f"| {p['model']} | {p['precision']} | {p['backend']} | {_f(q.get('psnr'), '.3f')} | "
            f"{_f(q.get('ssim'), '.4f')} | {_f(q.get('seconds_per_image'), '.3f')} | {_f(row.frames_per_s, '.3f')} | "
            f"{_f(row.p50_ms, '.0f')} | {_f(row.gflops, '.1f')} | {_f(row.peak_rss_mib, '.0f')} |"
        )
    for b in res["baselines"]:
        fps = baseline_fps(b)
        lines.append(
            f"| {'BM3D' if b['method'] == 'bm3d' else 'NLM (OpenCV)'} | - | {_baseline_lib(b)} | {b['psnr']:.3f} | "
            f"{b['ssim']:.4f} | {b['seconds_per_image']:.3f} | {_f(fps, '.4f')} | "
            f"{_f(1000 / fps if fps else None, '.0f')} | - | - |"
        )
    c = res["ceiling"]
    lines += [
        "",
        f"float32 matmul ceiling: {c['gflops']:.1f} GFLOP/s (numpy {c['n']}x{c['n']}, best of {c['repeats']}, "
        f"BLAS threads: {s['threads'] or 'default'}).",
        "",
        f"![BSD68 PSNR vs frames/s at {fw}x{fh}]({png_name})",
        "",
        "## Model zoo",
        "",
        *render_zoo(res),
        "",
        "## Targets",
        "",
        "Ratios of frames/s. The first two compare rows of one model, always measured in one run (same machine, "
        "same inputs): the original run, or the `--update` run that re-measured the model (above). BM3D was "
        "measured in the original run (an `--update` keeps the baselines); each line of the BM3D comparison says "
        "where and when the model was measured.",
        "",
    ]
    for key, title in (
        ("ort_vs_torch", "ONNX Runtime FP32 / torch eager"),
        ("int8_vs_fp32", "INT8 (CPU) / ONNX Runtime FP32"),
    ):
        tgt = TARGETS[key]
        lines.append(f"- {title}, target >= {tgt:g}x:")
        if not r[key]:
            lines.append("  - not measured (no pair of artifacts in this run)")
        for e in r[key]:
            h, w = e["hw"]
            lines.append(f"  - {e['model']} at {w}x{h}: {e['ratio']:.2f}x ({_mark(e['ratio'] >= tgt)})")
    bm3d = next((b for b in res["baselines"] if b["method"] == "bm3d"), None)
    tgt = TARGETS["vs_bm3d_speed"]
    lines.append(f"- Beat BM3D's PSNR while running >= {tgt:g}x faster than it at {fw}x{fh}:")
    if bm3d is None:
        lines.append("  - not measured (BM3D skipped)")
    else:
        b_cpu = str((bm3d.get("machine") or {}).get("cpu", "?"))
        b_date = str(bm3d.get("measured_utc") or res.get("started_utc") or "")[:10]
        lines.append(
            f"  - BM3D: {bm3d['psnr']:.3f} dB, {_f(baseline_fps(bm3d), '.4f')} frames/s at {fw}x{fh}, measured on "
            f"{b_cpu} on {b_date}; ours (PSNR gain, speed ratio; where and when measured). A speed ratio across two "
            "machines compares the machines as well as the methods; the PSNR gain does not depend on the machine:"
        )
        by_label = {p["label"]: p for p in res["points"]}
        met = []
        for e in r["vs_bm3d"]:
            ok = e["psnr_gain_db"] > 0 and e["speed_ratio"] is not None and e["speed_ratio"] >= tgt
            met += [e["label"]] if ok else []
            p = by_label.get(e["label"])
            if p is None:
                where = "machine not recorded"
            else:
                cpu, date = _measured(res, p)
                if p.get("update") is None:
                    where = f"{cpu}, {date}, the run that measured BM3D"
                elif cpu == b_cpu:
                    where = f"{cpu}, {date}: BM3D's CPU model, another run"
                else:
                    where = f"{cpu}, {date}: **another machine than BM3D's**"
            lines.append(
                f"  - {e['label']}: {e['psnr_gain_db']:+.3f} dB, {_f(e['speed_ratio'], '.0f')}x ({_mark(ok)}; {where})"
            )
        lines.append(f"  - met by: {', '.join(met) if met else 'none'}")
    lines += ["", "## Speed at every size", ""]
    rows = [BenchRow.from_dict(row) for p in res["points"] for row in p["speed"]]
    lines += [markdown_table(rows), ""]
    lines += ["## Baselines", ""]
    for b in res["baselines"]:
        fr = b.get("frame")
        frame_txt = f"; one {fr['width']}x{fr['height']} frame: {fr['median_s']:.2f} s" if fr else ""
        lines.append(
            f"- {b['method']} ({_baseline_lib(b)}): parameters `{json.dumps(b['params'])}`; {b['n_images']} images, "
            f"{b['seconds_per_image']:.3f} s/image{frame_txt}; measured {b['measured_utc']}."
        )
        if b.get("tuning"):
            t = b["tuning"]
            grid = ", ".join(f"{float(k):g}: {v:.2f}" for k, v in t["table"].items())
            lines.append(
                f"  - h = k σ, k tuned on the first {t['n_images']} {t['train_dir']} images (mean PSNR in dB per k): "
                f"{grid}; chosen k = {t['factor']:g}."
            )
    lines += [
        "",
        "BM3D: `bm3d.bm3d(noisy, sigma_psd=sigma/255)` on the unclipped float image (profile `np`, both stages); "
        "NLM: `cv2.fastNlMeansDenoising` on the image clipped and rounded to uint8, templateWindowSize 7 and "
        "searchWindowSize 21 (OpenCV's recommended values), h = k σ with k tuned on Train400 training images, never "
        "on a test set. Frame timing: the first test image resized (bicubic) to the frame size plus AWGN; BM3D one "
        "run, NLM the median of 3. Details and sources: `benchmarks/baselines.py`.",
        "",
        "## Caveats",
        "",
        "- p99 from 10-20 samples is close to the slowest run; the JSON keeps every sample.",
        "- The load average in the machine line was read at the start; other work on the machine slows every "
        "figure, and the ratios above are only comparable within one run.",
        "- Torch eager runs on the CPU with the same thread setting; it is the reference the ONNX Runtime speed-up "
        "is measured against.",
        "",
    ]
    return "\n".join(lines)


def plot_title(res: dict[str, Any]) -> str:
    """The plot's title: the CPU and UTC date that measured its points, each machine once with its dates, and a
    warning when they come from more than one machine (frames/s compare only within one machine)."""
    dates: dict[str, set[str]] = {}
    for p in res["points"]:
        if p.get("quality"):
            cpu, day = _measured(res, p)
            dates.setdefault(cpu, set()).add(day)
    if not dates:
        return "Quality vs speed"
    parts = [f"{cpu}, {', '.join(sorted(days))}" for cpu, days in sorted(dates.items())]
    if len(parts) == 1:
        return f"Quality vs speed — {parts[0]}"
    return f"Quality vs speed — {'; '.join(parts)} (frames/s compare within one machine only)"


def render_plot(res: dict[str, Any], path: Path) -> None:
    """PSNR (y) vs frames/s at the frame size (x, log), one labelled point per model/precision and baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from edgedenoise.runtime.atomic import write_atomic

    s = res["settings"]
    fh, fw = s["frame"]
    style = {"fp32": ("o", "tab:blue"), "int8": ("s", "tab:green"), "fp16": ("D", "tab:purple")}
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    seen: set[str] = set()
    for p in res["points"]:
        q = p.get("quality")
        if not q:
            continue
        row = speed_at(p, s["frame"])
        kind = "torch eager fp32" if p["backend"] == "torch" else f"ONNX Runtime {p['precision']}"
        marker, color = ("x", "tab:red") if p["backend"] == "torch" else style.get(p["precision"], ("o", "gray"))
        ax.scatter(row.frames_per_s, q["psnr"], marker=marker, color=color, s=50, label=None if kind in seen else kind)
        seen.add(kind)
        # Points of one model share a PSNR (FP32 and torch exactly): torch labels go left, INT8 below.
        dx, dy, ha = (
            (-6, 4, "right")
            if p["backend"] == "torch"
            else ((6, -11, "left") if p["precision"] == "int8" else (6, 4, "left"))
        )
        ax.annotate(
            p["label"], (row.frames_per_s, q["psnr"]), textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=8
        )
    for b in res["baselines"]:
        fps = baseline_fps(b)
        if fps is None:
            continue
        name = "BM3D" if b["method"] == "bm3d" else "NLM (OpenCV)"
        ax.scatter(
            fps, b["psnr"], marker="^", color="black", s=60, label="classical" if "classical" not in seen else None
        )
        seen.add("classical")
        ax.annotate(name, (fps, b["psnr"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(  # label 2x and 5x between the decades, not every minor tick
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    )
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"frames/s at {fw}x{fh} (batch 1, {s['backend']}, log scale)")
    ax.set_ylabel(f"{s['data']} PSNR at σ = {s['sigma']:g} (dB)")
    ax.set_title(plot_title(res), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
