"""Measuring for the report: which points (model x precision x backend) to measure, their quality and speed,
the matmul ceiling, the baselines and each model's params and MACs, as the results dict of
``benchmarks/results/results.json`` (format :data:`FORMAT`); and merging an ``--update`` run into it.
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

import baselines  # benchmarks/baselines.py, beside this package on sys.path

from edgedenoise.runtime import artifact  # artifact.weights_dir() looked up at call time: tests point it elsewhere
from edgedenoise.runtime.bench import (
    BenchRow,
    MatmulCeiling,
    machine_info,
    parse_sizes,
    read_onnx_contract,
    resolve_targets,
    shipped_models,
)
from edgedenoise.runtime.contract import MACS_PER_PIXEL_KEY, WEIGHTS_SHA_KEY
from edgedenoise.runtime.errors import ArtifactError, InvalidInputError

from . import ROOT
from .targets import REFERENCE_MODEL, sigma_key

FORMAT = "edgedenoise.results/1"
UPDATE_SETTINGS = ("data", "sigma", "extra_sigmas", "seed", "limit", "sizes", "frame", "backend", "threads")


def log(msg: str) -> None:
    """Progress on stderr, flushed at once (the report's stdout stays clean)."""
    print(msg, file=sys.stderr, flush=True)


def utc_now() -> str:
    """The current time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- what to measure


def list_points(models: Sequence[str] | None, backend: str, with_torch: bool) -> list[dict[str, Any]]:
    """One dict per (model, precision, backend): ``label``, ``model``, ``precision``, ``backend``, ``artifact``."""
    shipped = shipped_models()
    names = list(models) if models else shipped
    missing = [m for m in names if m not in shipped]
    if missing:
        raise SystemExit(f"Error: not shipped: {', '.join(missing)} (shipped: {', '.join(shipped) or 'none'})")
    torch_ok = with_torch and _has_torch()
    points = []
    for name in names:
        for t in resolve_targets(name, None, backend):
            p = t.precision or "fp32"
            points.append(
                {"label": f"{name} {p}", "model": name, "precision": p, "backend": backend, "artifact": str(t.path)}
            )
        weights = artifact.weights_dir() / f"{name}.safetensors"
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


def _torch_version() -> str | None:
    if not _has_torch():
        return None
    import torch

    return str(torch.__version__)


def _card_for(card_path: Path, contract: Any) -> tuple[dict[str, Any] | None, str]:
    """The model card if it describes this ONNX file (same arch; same weights sha256 when both record it),
    else None, with the reason."""
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
    onnx_path = artifact.weights_dir() / f"{name}.onnx"
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
            raise SystemExit(f"Error: {shlex.join(cmd)} failed: {last}")
        rows = json.loads(out.read_text())["rows"]
    if len(rows) != 1:
        raise SystemExit(f"Error: expected one benchmark row for {point['label']} at {size}, got {len(rows)}")
    return rows[0]


def measure_ceiling(n: int, threads: int) -> MatmulCeiling:
    """The float32 matmul ceiling in a fresh process whose BLAS uses ``threads`` threads (0: its default)."""
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
