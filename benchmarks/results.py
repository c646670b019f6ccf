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
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import baselines  # noqa: E402  (benchmarks/ is not a package)

DATA = ROOT.parent / "shared" / "data"
FORMAT = "edgedenoise.results/1"
TARGETS = {"ort_vs_torch": 5.0, "int8_vs_fp32": 2.0, "vs_bm3d_speed": 50.0}
QUICK = {"limit": 2, "sizes": "256x256", "iters": 3, "warmup": 1, "matmul": 1024}
FULL = {"limit": None, "sizes": "512x512,1920x1080", "iters": 10, "warmup": 2, "matmul": 4096}
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
NA = "n/a"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- what to measure


def list_points(models: Sequence[str] | None, backend: str, with_torch: bool) -> list[dict[str, Any]]:
    """One dict per (model, precision, backend): ``label``, ``model``, ``precision``, ``backend``, ``artifact``."""
    from edgedenoise.runtime.artifact import weights_dir
    from edgedenoise.runtime.bench import resolve_targets, shipped_models

    shipped = shipped_models()
    names = list(models) if models else shipped
    missing = [m for m in names if m not in shipped]
    if missing:
        raise SystemExit(f"error: not shipped: {', '.join(missing)} (shipped: {', '.join(shipped) or 'none'})")
    torch_ok = with_torch and _has_torch()
    points = []
    for name in names:
        for t in resolve_targets(name, None, backend):
            p = t.precision or "fp32"
            points.append(
                {"label": f"{name} {p}", "model": name, "precision": p, "backend": backend, "artifact": str(t.path)}
            )
        weights = weights_dir() / f"{name}.safetensors"
        if torch_ok and weights.is_file():
            points.append(
                {
                    "label": f"{name} torch",
                    "model": name,
                    "precision": "fp32",
                    "backend": "torch",
                    "artifact": str(weights),
                }
            )
    return points


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def sigma_key(sigma: float) -> str:
    """The JSON key of a noise level in ``quality_by_sigma``: ``25.0 -> "25"``, ``12.5 -> "12.5"``."""
    return f"{float(sigma):g}"


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


def _card_for(card_path: Path, contract: Any) -> tuple[dict[str, Any] | None, str]:
    """The model card if it describes this ONNX file (same arch; same weights sha256 when both record it),
    else None, with the reason."""
    from edgedenoise.runtime.contract import WEIGHTS_SHA_KEY

    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError:
        return None, f"no model card {card_path.name}"
    except (OSError, ValueError) as exc:
        return None, f"model card {card_path.name} unreadable ({exc})"
    if not isinstance(card, dict) or card.get("arch") != contract.cfg.arch:
        return None, f"model card {card_path.name} is for another architecture"
    card_sha = (card.get("weights") or {}).get("sha256")
    onnx_sha = contract.metadata.get(WEIGHTS_SHA_KEY)
    if card_sha and onnx_sha and card_sha != onnx_sha:
        return None, f"model card {card_path.name} describes other weights than the ONNX file"
    return card, ""


def _onnx_param_count(path: Path) -> tuple[int | None, str]:
    """Sum of the element counts of the floating-point initializers of an ONNX file (its weights and biases;
    integer constants such as shapes are not parameters), or None and why."""
    try:
        import onnx
    except ImportError:
        return None, "unknown: no model card figure and the onnx package is not installed"
    model = onnx.load(str(path), load_external_data=False)
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    return sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type in floats), "onnx-initializers"


def model_info(name: str) -> dict[str, Any]:
    """Size and cost of a shipped model: ``{"arch", "params", "params_source", "macs_per_pixel", "macs_source"}``.

    Both figures come from the model card ``edgedenoise/weights/<name>.json`` (``params``, ``macs_per_pixel``,
    counted on the torch model by ``scripts/model_card.py``) when it has them and describes the ONNX file's
    weights; otherwise params are the summed floating-point initializer sizes of ``<name>.onnx`` (after export
    re-parameterisation, so they can differ slightly from the torch count) and MACs per pixel the ONNX metadata
    ``edgedenoise.macs_per_pixel`` (Conv MACs of the exported graph). A figure neither source has is None, and
    its ``*_source`` says why.

    Raises:
        ArtifactError: ``<name>.onnx`` missing, unloadable or without the edgedenoise contract.
    """
    from edgedenoise.runtime.artifact import weights_dir
    from edgedenoise.runtime.bench import read_onnx_contract
    from edgedenoise.runtime.contract import MACS_PER_PIXEL_KEY
    from edgedenoise.runtime.errors import ArtifactError

    onnx_path = weights_dir() / f"{name}.onnx"
    if not onnx_path.is_file():
        raise ArtifactError(f"{onnx_path} not found: {name} is not shipped; pass a shipped model")
    contract = read_onnx_contract(onnx_path)
    card, why = _card_for(onnx_path.with_suffix(".json"), contract)
    info: dict[str, Any] = {"arch": contract.cfg.arch}
    if card is not None and isinstance(card.get("params"), int) and card["params"] > 0:
        info["params"], info["params_source"] = card["params"], "model-card"
    else:
        info["params"], info["params_source"] = _onnx_param_count(onnx_path)
    macs = card.get("macs_per_pixel") if card is not None else None
    if isinstance(macs, (int, float)) and math.isfinite(macs) and macs > 0:
        info["macs_per_pixel"], info["macs_source"] = float(macs), "model-card"
    else:
        try:
            value = float(contract.metadata.get(MACS_PER_PIXEL_KEY, "nan"))
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and value > 0
        info["macs_per_pixel"] = value if ok else None
        card_why = why or "the model card has no macs_per_pixel"
        info["macs_source"] = (
            "onnx-metadata" if ok else f"unknown: {card_why} and {onnx_path.name} has no {MACS_PER_PIXEL_KEY}"
        )
    if why:
        info["card_note"] = why
    return info


def models_info(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`model_info` of each name, plus the MAC budget's reference model (:data:`REFERENCE_MODEL`) when it
    ships."""
    from edgedenoise.runtime.bench import shipped_models

    wanted = list(dict.fromkeys([*names, *([REFERENCE_MODEL] if REFERENCE_MODEL in shipped_models() else [])]))
    return {n: model_info(n) for n in wanted}


# ---------------------------------------------------------------- measuring


def measure_quality(point: dict[str, Any], data: Path, sigma: float, limit: int | None, threads: int) -> dict[str, Any]:
    """PSNR/SSIM on ``data`` at ``sigma`` (``edgedenoise eval`` protocol) and mean seconds per model call."""
    from edgedenoise.evaluate import OrtPredictor, TorchPredictor

    if point["backend"] == "torch":
        from edgedenoise.models import load_pretrained

        inner: Any = TorchPredictor(load_pretrained(point["model"]), "cpu")
    else:
        inner = OrtPredictor(point["artifact"], threads or None)
    res = baselines.score(inner, data, sigma, seed=0, limit=limit, threads=threads)
    res.pop("images")
    return res


def measure_speed(point: dict[str, Any], size: str, args: argparse.Namespace) -> dict[str, Any]:
    """One ``edgedenoise bench`` run in a fresh process; returns its row as a dict (BenchRow.to_dict)."""
    with tempfile.TemporaryDirectory(prefix="edgedenoise-results-") as tmp:
        out = Path(tmp) / "bench.json"
        target = point["model"] if point["backend"] == "torch" else point["artifact"]
        cmd = [
            sys.executable,
            "-m",
            "edgedenoise",
            "bench",
            target,
            "--backend",
            point["backend"],
            "--size",
            size,
            "--warmup",
            str(args.warmup),
            "--iters",
            str(args.iters),
            "--threads",
            str(args.threads),
            "--matmul",
            "0",
            "--json",
            str(out),
        ]
        if args.max_seconds:
            cmd += ["--max-seconds", str(args.max_seconds)]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SystemExit(f"error: {shlex.join(cmd)} failed: {last}")
        rows = json.loads(out.read_text())["rows"]
    if len(rows) != 1:
        raise SystemExit(f"error: expected one benchmark row for {point['label']} at {size}, got {len(rows)}")
    return rows[0]


def measure_ceiling(n: int, threads: int) -> Any:
    """The float32 matmul ceiling in a fresh process whose BLAS uses ``threads`` threads (0: its default)."""
    from edgedenoise.runtime.bench import MatmulCeiling

    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    code = (
        f"import json; from edgedenoise.runtime.bench import matmul_ceiling as m; c = m({int(n)}); "
        "print(json.dumps([c.n, c.repeats, c.best_s]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT), check=True
    )
    c_n, c_rep, c_best = json.loads(out.stdout.strip().splitlines()[-1])
    return MatmulCeiling(c_n, c_rep, c_best)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Everything: points with quality and speed, the matmul ceiling, the baselines, the machine."""
    from edgedenoise.runtime.bench import BenchRow, machine_info, parse_sizes

    data = args.data
    sizes = parse_sizes(args.sizes)
    methods = [m for m in baselines.METHODS if not (m == "bm3d" and args.skip_bm3d)]
    for m in methods:  # a missing package fails now, not after the models were measured
        baselines.require(m)
    frame_hw = max(sizes, key=lambda hw: hw[0] * hw[1])
    machine = machine_info(torch=_torch_version())
    started = utc_now()
    points = list_points(args.models, args.backend, not args.skip_torch)
    log(f"{len(points)} points: {', '.join(p['label'] for p in points)}")
    models = models_info(list(dict.fromkeys(p["model"] for p in points)))  # fails now, not after an hour
    for p in points:
        if p["backend"] == "torch" and args.skip_torch_eval:
            p["quality"] = None
        else:
            log(f"quality: {p['label']} on {data.name} ...")
            p["quality"] = measure_quality(p, data, args.sigma, args.limit, args.threads)
        if p["backend"] != "torch":
            p["quality_by_sigma"] = {sigma_key(args.sigma): p["quality"]}
            for sig in args.extra_sigmas:
                if sigma_key(sig) not in p["quality_by_sigma"]:
                    log(f"quality: {p['label']} on {data.name} at sigma {sig:g} ...")
                    p["quality_by_sigma"][sigma_key(sig)] = measure_quality(p, data, sig, args.limit, args.threads)
        p["speed"] = []
        for h, w in sizes:
            log(f"speed: {p['label']} at {w}x{h} ...")
            row = measure_speed(p, f"{w}x{h}", args)
            p["speed"].append(row)
            r = BenchRow.from_dict(row)
            log(f"  p50 {r.p50_ms:.1f} ms, {r.frames_per_s:.3f} frames/s, peak RSS {r.peak_rss_mib or 0:.0f} MiB")
    log(f"matmul ceiling ({args.matmul}x{args.matmul}) ...")
    ceiling = measure_ceiling(args.matmul, args.threads)
    base = baselines.run_baselines(
        methods,
        data_dir=data,
        train_dir=args.train,
        sigma=args.sigma,
        limit=args.limit,
        frame_hw=frame_hw,
        cache=args.out_dir / "benchmarks" / "results" / "baselines.json",
        refresh=args.refresh_baselines,
        log=log,
    )
    return {
        "format": FORMAT,
        "command": shlex.join([Path(sys.executable).name, "benchmarks/results.py", *sys.argv[1:]]),
        "started_utc": started,
        "finished_utc": utc_now(),
        "machine": machine,
        "settings": {
            "data": data.name,
            "sigma": args.sigma,
            "extra_sigmas": list(args.extra_sigmas),
            "seed": 0,
            "limit": args.limit,
            "sizes": [[h, w] for h, w in sizes],
            "frame": list(frame_hw),
            "backend": args.backend,
            "threads": args.threads,
            "warmup": args.warmup,
            "iters": args.iters,
            "max_seconds": args.max_seconds,
        },
        "ceiling": {"n": ceiling.n, "repeats": ceiling.repeats, "best_s": ceiling.best_s, "gflops": ceiling.gflops},
        "points": points,
        "models": models,
        "baselines": [{k: v for k, v in b.items() if k != "images"} for b in base],
    }


UPDATE_SETTINGS = ("data", "sigma", "extra_sigmas", "seed", "limit", "sizes", "frame", "backend", "threads")


def merge_update(old: dict[str, Any], new: dict[str, Any], shipped: Sequence[str] | None = None) -> dict[str, Any]:
    """``old`` with the points and model facts of ``new``'s models replaced by ``new``'s (``--update``).

    ``shipped``: the models that ship now; points and facts of any other (a retired model) are dropped, and the
    update lists them under ``retired``.

    Points keep ``old``'s order (a model new to the JSON goes last). The update run is appended to
    ``updates`` with its command, times, machine and matmul ceiling; every replaced point gets
    ``"update": <index in updates>``. The baselines and the original run's header stay as they were.

    Raises:
        InvalidInputError: a protocol setting differs between the two runs (the figures would not compare).
    """
    from edgedenoise.runtime.errors import InvalidInputError

    differ = [k for k in UPDATE_SETTINGS if old["settings"].get(k) != new["settings"].get(k)]
    if differ:
        raise InvalidInputError(
            "--update: settings differ from the results JSON's ("
            + ", ".join(f"{k}: {old['settings'].get(k)!r} vs {new['settings'].get(k)!r}" for k in differ)
            + "); pass the same options or re-measure everything"
        )
    out = dict(old)
    updates = list(old.get("updates", []))
    idx = len(updates)
    updated = list(dict.fromkeys(p["model"] for p in new["points"]))
    keep = set(shipped) | set(updated) if shipped is not None else None
    retired = sorted({p["model"] for p in old["points"]} - keep) if keep is not None else []
    updates.append(
        {
            "command": new["command"],
            "started_utc": new["started_utc"],
            "finished_utc": new["finished_utc"],
            "machine": new["machine"],
            "ceiling": new["ceiling"],
            "models": updated,
            **({"retired": retired} if retired else {}),
        }
    )
    fresh = {(p["model"], p["precision"], p["backend"]): dict(p, update=idx) for p in new["points"]}
    points = []
    for p in old["points"]:
        if p["model"] in retired:
            continue
        if p["model"] in updated:
            key = (p["model"], p["precision"], p["backend"])
            if key in fresh:
                points.append(fresh.pop(key))
            # an artifact of an updated model that no longer ships is dropped
        else:
            points.append(p)
    points += list(fresh.values())
    out["points"] = points
    out["models"] = {k: v for k, v in {**old.get("models", {}), **new["models"]}.items() if k not in retired}
    out["updates"] = updates
    return out


def _torch_version() -> str | None:
    if not _has_torch():
        return None
    import torch

    return str(torch.__version__)


# ---------------------------------------------------------------- reading results


def speed_at(point: dict[str, Any], hw: Sequence[int]) -> Any:
    """The point's BenchRow at ``(H, W)``, or None."""
    from edgedenoise.runtime.bench import BenchRow

    for row in point["speed"]:
        if [row["height"], row["width"]] == list(hw):
            return BenchRow.from_dict(row)
    return None


def baseline_fps(b: dict[str, Any]) -> float | None:
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
    """The real-time class against the speed reference, from :data:`REALTIME_JSON` (one ``edgedenoise bench`` run
    of the reference and the real-time models, side by side); no line when that file is absent."""
    from edgedenoise.runtime.bench import read_json

    if not REALTIME_JSON.is_file():
        return []
    report = read_json(REALTIME_JSON)
    ref = next((r for r in report.rows if Path(r.artifact).name == SPEED_REFERENCE.name), None)
    if ref is None:
        return []
    psnr = {r["model"]: r["psnr"]["fp32"].get(sigma_key(sigma)) for r in rows}
    parts = []
    for r in report.rows:
        if r is ref:
            continue
        q = psnr.get(r.model)
        quality = f", {q:.2f} dB FP32" if q is not None else ""
        ok = r.frames_per_s >= ref.frames_per_s and (q is None or q >= REALTIME_MIN_PSNR)
        parts.append(
            f"{r.model} {r.precision.upper()} {r.frames_per_s:.2f} frames/s ({r.frames_per_s / ref.frames_per_s:.2f}x"
            f"{quality}){'' if ok else ' (**not met**)'}"
        )
    return [
        f"- Real-time class, at least as fast as the speed reference ({SPEED_REFERENCE.name}: "
        f"{ref.frames_per_s:.2f} frames/s) at {ref.width}x{ref.height}, timed side by side in one "
        f"`edgedenoise bench` run (`{REALTIME_JSON.relative_to(ROOT)}`, {ref.iters} runs each), at >= "
        f"{REALTIME_MIN_PSNR:.1f} dB on {data} σ = {sigma:g}: " + ("; ".join(parts) or "no model timed") + ".",
    ]


def render_models_md(res: dict[str, Any]) -> str:
    """``docs/models.md``: a generated page with the machine/date line and :func:`render_zoo`."""
    from edgedenoise.runtime.bench import describe_machine

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


def _update_lines(res: dict[str, Any]) -> list[str]:
    """One paragraph per ``--update`` run: which models' rows it replaced, when, and on what machine."""
    from edgedenoise.runtime.bench import describe_machine

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
    from edgedenoise.runtime.bench import BenchRow, describe_machine, markdown_table

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
        "Ratios of frames/s in this run (same machine, same inputs):",
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
        lines.append(
            f"  - BM3D: {bm3d['psnr']:.3f} dB, {_f(baseline_fps(bm3d), '.4f')} frames/s at {fw}x{fh}; ours (PSNR gain, "
            "speed ratio):"
        )
        met = []
        for e in r["vs_bm3d"]:
            ok = e["psnr_gain_db"] > 0 and e["speed_ratio"] is not None and e["speed_ratio"] >= tgt
            met += [e["label"]] if ok else []
            lines.append(f"  - {e['label']}: {e['psnr_gain_db']:+.3f} dB, {_f(e['speed_ratio'], '.0f')}x ({_mark(ok)})")
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
    ax.set_title(f"Quality vs speed — {res['machine'].get('cpu', '?')}, {res['finished_utc'][:10]}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
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
                print(f"error: {exc}", file=sys.stderr)
                return 1
            log("the results JSON has no params/MACs: read them from the shipped model cards/ONNX files")
    else:
        for d in (args.data, args.train):
            if not d.is_dir():
                print(
                    f"error: {d} not found; put the benchmark sets in ../shared/data beside the checkout",
                    file=sys.stderr,
                )
                return 1
        old_res = None
        if args.update:
            if not json_path.is_file():
                print(f"error: --update needs an existing {json_path}; run without --update first", file=sys.stderr)
                return 1
            old_res = json.loads(json_path.read_text())
        try:
            res = measure(args)
            if old_res is not None:
                res = merge_update(old_res, res, shipped_models())
        except EdgeDenoiseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        write_atomic(json_path, json.dumps(res, indent=2) + "\n")
    render_plot(res, png)
    write_atomic(doc, render_markdown(res, png.name))
    write_atomic(zoo, render_models_md(res))
    log(f"wrote {', '.join(str(f) for f in ([] if args.report_only else [json_path]) + [doc, png, zoo])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
