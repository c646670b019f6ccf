"""Reading the results dict back and checking the targets: speed ratios within one run, the model zoo table's
rows, the light-model (FFDNet-cost) and frames/s targets, and the real-time class against the speed reference.
Every figure comes from the dict (or, for the real-time class, from :data:`REALTIME_JSON`); nothing measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgedenoise.runtime.bench import BenchRow, read_json

from . import ROOT

TARGETS = {"ort_vs_torch": 5.0, "int8_vs_fp32": 2.0, "vs_bm3d_speed": 50.0}
# Model zoo: PSNR columns (σ on the 0-255 scale), the speed columns' sizes (H, W), the reference model of the MAC
# budget and the targets: the FFDNet-cost class (<= 15 % of RED30's MACs; FFDNet reaches 29.19 dB at BSD68 σ 25,
# Zhang et al., IEEE TIP 2018, Table 1, with about 12 %) and the real-time class (1920x1080 INT8 on the CPU).
ZOO_SIGMAS = (15.0, 25.0, 50.0)
ZOO_MS_HW = (512, 512)
ZOO_FPS_HW = (1080, 1920)
REFERENCE_MODEL = "rednet30"
LIGHT_TARGET = {"max_macs_fraction": 0.15, "min_psnr_db": 28.95, "goal_psnr_db": 29.19, "sigma": 25.0}
FPS_TARGET = {"min_fps": 10.0}  # INT8 artifacts at ZOO_FPS_HW
# The real-time class is timed side by side with a fixed speed reference (the retired blind student that first ran
# 1920x1080 at 10 frames/s INT8 on a 2-core CPU): `edgedenoise bench` of both in one run writes this JSON, since
# absolute frames/s differ several-fold between the machines a report may be generated on.
SPEED_REFERENCE = ROOT / "benchmarks" / "reference" / "rednet8_slim32_u4.int8.cpu.onnx"
REALTIME_JSON = ROOT / "benchmarks" / "results" / "realtime_vs_reference.json"
REALTIME_MIN_PSNR = 27.4  # OpenCV NLM at BSD68 σ 25 (26.91 dB in docs/results.md) + 0.5 dB


def sigma_key(sigma: float) -> str:
    """The JSON key of a noise level in ``quality_by_sigma``: ``25.0 -> "25"``, ``12.5 -> "12.5"``."""
    return f"{float(sigma):g}"


def speed_at(point: dict[str, Any], hw: Sequence[int]) -> Any:
    """The point's :class:`~edgedenoise.runtime.bench.BenchRow` at ``(H, W)`` (a list ``[H, W]`` or a tuple), or
    None when the point was not timed at that size."""
    for row in point["speed"]:
        if [row["height"], row["width"]] == list(hw):
            return BenchRow.from_dict(row)
    return None


def baseline_fps(b: dict[str, Any]) -> float | None:
    """Frames/s of a baseline on its one timed frame (``1 / frame["median_s"]``), or None if it timed none."""
    fr = b.get("frame")
    return 1.0 / fr["median_s"] if fr else None


def ratios(res: dict[str, Any]) -> dict[str, Any]:
    """The target ratios of this run, per model and size, plus the BM3D comparison at the frame size."""
    sizes = res["settings"]["sizes"]
    frame = res["settings"]["frame"]
    by = {(p["model"], p["backend"] == "torch", p["precision"]): p for p in res["points"]}
    models = list(dict.fromkeys(p["model"] for p in res["points"]))
    ort_torch, int8_fp32 = [], []
    for m in models:
        fp32, torch_p, int8 = by.get((m, False, "fp32")), by.get((m, True, "fp32")), by.get((m, False, "int8"))
        for hw in sizes:
            if fp32 and torch_p:
                a, b = speed_at(fp32, hw), speed_at(torch_p, hw)
                ort_torch.append({"model": m, "hw": hw, "ratio": a.frames_per_s / b.frames_per_s})
            if fp32 and int8:
                a, b = speed_at(int8, hw), speed_at(fp32, hw)
                int8_fp32.append({"model": m, "hw": hw, "ratio": a.frames_per_s / b.frames_per_s})
    bm3d = next((b for b in res["baselines"] if b["method"] == "bm3d"), None)
    vs_bm3d = []
    if bm3d is not None:
        for p in res["points"]:
            if p["backend"] == "torch" or not p.get("quality"):
                continue
            row = speed_at(p, frame)
            fps_b = baseline_fps(bm3d)
            vs_bm3d.append(
                {
                    "label": p["label"],
                    "psnr_gain_db": p["quality"]["psnr"] - bm3d["psnr"],
                    "speed_ratio": row.frames_per_s / fps_b if fps_b else None,
                }
            )
    return {"ort_vs_torch": ort_torch, "int8_vs_fp32": int8_fp32, "vs_bm3d": vs_bm3d}


def psnr_at(point: dict[str, Any], sigma: float, main_sigma: float) -> float | None:
    """The point's PSNR (dB) at ``sigma``: from ``quality_by_sigma``, else from ``quality`` when ``sigma`` is the
    run's main σ (JSON written before ``quality_by_sigma`` existed); None if not measured."""
    q = (point.get("quality_by_sigma") or {}).get(sigma_key(sigma))
    if q is None and float(sigma) == float(main_sigma):
        q = point.get("quality")
    return float(q["psnr"]) if q else None


def zoo_sigmas(res: dict[str, Any]) -> list[float]:
    """The PSNR columns of the zoo table: :data:`ZOO_SIGMAS` plus whatever σ this run measured."""
    s = res["settings"]
    return sorted({*ZOO_SIGMAS, float(s["sigma"]), *(float(v) for v in s.get("extra_sigmas", []))})


def zoo_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per model with an ONNX point in ``res``, in the run's order.

    Keys: ``model``, ``params`` (int), ``macs_per_pixel`` (float), ``macs_pct`` (percent of
    :data:`REFERENCE_MODEL`'s MACs per pixel), ``psnr`` (``{"fp32"|"int8": {sigma_key: dB}}``), ``ms`` (p50 ms at
    :data:`ZOO_MS_HW` per precision) and ``fps`` (frames/s at :data:`ZOO_FPS_HW` per precision); each figure None
    where the run (or its JSON) lacks it. Torch eager points are left out: the zoo is about the ONNX artifacts.
    """
    s = res["settings"]
    infos = res.get("models") or {}
    ref = (infos.get(REFERENCE_MODEL) or {}).get("macs_per_pixel")
    sigmas = zoo_sigmas(res)
    rows = []
    for m in dict.fromkeys(p["model"] for p in res["points"] if p["backend"] != "torch"):
        pts = {p["precision"]: p for p in res["points"] if p["model"] == m and p["backend"] != "torch"}
        info = infos.get(m) or {}
        macs = info.get("macs_per_pixel")
        row: dict[str, Any] = {
            "model": m,
            "params": info.get("params"),
            "macs_per_pixel": macs,
            "macs_pct": 100.0 * macs / ref if macs and ref else None,
            "psnr": {},
            "ms": {},
            "fps": {},
        }
        for prec in ("fp32", "int8"):
            pt = pts.get(prec)
            row["psnr"][prec] = {sigma_key(sg): psnr_at(pt, sg, s["sigma"]) if pt else None for sg in sigmas}
            ms_row = speed_at(pt, ZOO_MS_HW) if pt else None
            fps_row = speed_at(pt, ZOO_FPS_HW) if pt else None
            row["ms"][prec] = ms_row.p50_ms if ms_row else None
            row["fps"][prec] = fps_row.frames_per_s if fps_row else None
        rows.append(row)
    return rows


def zoo_targets(rows: Sequence[dict[str, Any]], reference_macs: float | None) -> dict[str, dict[str, Any]]:
    """The FFDNet-cost and frames/s targets checked on :func:`zoo_rows`.

    ``light``: a model with MACs per pixel <= ``LIGHT_TARGET["max_macs_fraction"]`` x ``reference_macs`` (the
    reference's own) and FP32 BSD68 PSNR >= ``LIGHT_TARGET["min_psnr_db"]`` at ``LIGHT_TARGET["sigma"]``.
    ``fps``: models whose INT8 artifact runs a :data:`ZOO_FPS_HW` frame at >= ``FPS_TARGET["min_fps"]`` frames/s.

    Returns ``{"light": {...}, "fps": {...}}``, each with ``status`` (``"met"``, ``"not met"`` or
    ``"not measured"``), ``met`` (the model names that meet it), ``best`` (``(model, value)`` of the best
    measured candidate, or None) and ``text`` (one sentence for the docs).
    """
    frac, floor, sig = LIGHT_TARGET["max_macs_fraction"], LIGHT_TARGET["min_psnr_db"], LIGHT_TARGET["sigma"]
    light: dict[str, Any] = {"met": [], "best": None}
    if not reference_macs:
        light.update(status="not measured", text=f"not measured: {REFERENCE_MODEL}'s MACs per pixel are unknown")
    else:
        small = [r for r in rows if r["macs_per_pixel"] and r["macs_per_pixel"] <= frac * reference_macs]
        scored = [
            (r, r["psnr"]["fp32"][sigma_key(sig)]) for r in small if r["psnr"]["fp32"][sigma_key(sig)] is not None
        ]
        light["met"] = [r["model"] for r, v in scored if v >= floor]
        if scored:
            best, best_v = max(scored, key=lambda e: e[1])
            light["best"] = (best["model"], best_v)
        if light["met"]:
            parts = [f"{r['model']} ({v:.3f} dB, {r['macs_pct']:.1f} %)" for r, v in scored if v >= floor]
            light.update(status="met", text="met by " + ", ".join(parts))
        elif scored:
            light.update(
                status="not met",
                text=f"none: best is {best['model']} at {best_v:.3f} dB ({best['macs_pct']:.1f} % of the MACs)",
            )
        elif small:
            light.update(
                status="not measured",
                text=f"not measured: no FP32 PSNR at σ = {sig:g} for " + ", ".join(r["model"] for r in small),
            )
        else:
            known = [r for r in rows if r["macs_pct"] is not None]
            lightest = min(known, key=lambda r: r["macs_pct"], default=None)
            tail = f" (lightest: {lightest['model']} at {lightest['macs_pct']:.1f} %)" if lightest else ""
            light.update(status="not met", text=f"none: no model has <= {100 * frac:g} % of the MACs{tail}")
    need = FPS_TARGET["min_fps"]
    timed = [(r["model"], r["fps"]["int8"]) for r in rows if r["fps"]["int8"] is not None]
    fps: dict[str, Any] = {
        "met": [m for m, v in timed if v >= need],
        "best": max(timed, key=lambda e: e[1], default=None),
    }
    if fps["met"]:
        fps.update(status="met", text="met by " + ", ".join(f"{m} ({v:.2f} frames/s)" for m, v in timed if v >= need))
    elif timed:
        fps.update(status="not met", text=f"none: best is {fps['best'][0]} at {fps['best'][1]:.2f} frames/s")
    else:
        h, w = ZOO_FPS_HW
        fps.update(status="not measured", text=f"not measured: no INT8 artifact timed at {w}x{h}")
    return {"light": light, "fps": fps}


def realtime_target(rows: Sequence[dict[str, Any]], sigma: float) -> dict[str, Any] | None:
    """The real-time class against the speed reference, from :data:`REALTIME_JSON` (one ``edgedenoise bench`` run
    of the reference and the real-time models, side by side).

    A model meets it when it runs at least as many frames/s as :data:`SPEED_REFERENCE` in that run and its FP32
    PSNR at ``sigma`` in :func:`zoo_rows`'s ``rows`` (when there) is >= :data:`REALTIME_MIN_PSNR` dB.

    Returns:
        ``{"reference": BenchRow, "entries": [{"row": BenchRow, "psnr": dB or None, "met": bool}, ...]}`` (the
        other rows of that run, in order), or None when the file or the reference's row is absent.

    Raises:
        ArtifactError: the file is not a benchmark JSON.
    """
    if not REALTIME_JSON.is_file():
        return None
    report = read_json(REALTIME_JSON)
    ref = next((r for r in report.rows if Path(r.artifact).name == SPEED_REFERENCE.name), None)
    if ref is None:
        return None
    psnr = {r["model"]: r["psnr"]["fp32"].get(sigma_key(sigma)) for r in rows}
    entries = []
    for r in report.rows:
        if r is ref:
            continue
        q = psnr.get(r.model)
        met = r.frames_per_s >= ref.frames_per_s and (q is None or q >= REALTIME_MIN_PSNR)
        entries.append({"row": r, "psnr": q, "met": met})
    return {"reference": ref, "entries": entries}
