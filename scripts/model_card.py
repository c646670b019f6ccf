#!/usr/bin/env python
"""Ship trained weights: copy them to ``edgedenoise/weights/<name>.safetensors`` and write the JSON model card.

The card records what a user needs to trust and reproduce the weights: the architecture and its ModelCfg, the
training config (the run folder's ``config.resolved.yaml``), the exact command that produced them (its line
in ``configs/train.sh``), iterations, wall time, the hardware, a summary of the validation curve from the
run's ``log.csv``, and the PSNR/SSIM table on the test sets (BSD68 and Set12 at σ = 15, 25, 50 by default)
measured by :func:`edgedenoise.evaluate.evaluate`, with the ``edgedenoise eval`` command that reproduces each
row. Test sets are only evaluated here, never used to select weights (the trainer validates on held-out
training images).

Usage (from the repository root, after a run has finished)::

    python scripts/model_card.py runs/rednet30_blind/best.safetensors --name rednet30

Both files are written to temporary names and renamed at the end, so an interrupted run leaves the shipped
files as they were.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from edgedenoise.runtime.errors import ArtifactError, ConfigError, EdgeDenoiseError  # noqa: E402


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(path: str | Path) -> Path:
    """A path from a config or a command line, relative to the repository root unless absolute."""
    p = Path(path)
    return (p if p.is_absolute() else ROOT / p).resolve()


def find_train_commands(train_script: Path, out_dir: str) -> tuple[list[str], str | None]:
    """Lines of ``train_script`` that run ``edgedenoise train`` into ``out_dir``, and their config file.

    A line matches when its ``--out-dir`` option, or else its config's ``out_dir``, is ``out_dir``.

    Raises:
        ConfigError: the script is missing or no line trains into ``out_dir``.
    """
    import yaml

    if not train_script.is_file():
        raise ConfigError(f"train script {str(train_script)!r} does not exist; pass --command or --train-script")
    want = _resolve(out_dir)
    lines, config_file = [], None
    for raw in train_script.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or "edgedenoise" not in line:
            continue
        tokens = shlex.split(line, comments=True)
        if "train" not in tokens:
            continue
        rest = tokens[tokens.index("train") + 1 :]
        cfg_path = next((t for t in rest if not t.startswith("-")), None)
        if cfg_path is None:
            continue
        target = rest[rest.index("--out-dir") + 1] if "--out-dir" in rest[:-1] else None
        if target is None:
            cfg_file = _resolve(cfg_path)
            if not cfg_file.is_file():
                continue
            target = (yaml.safe_load(cfg_file.read_text()) or {}).get("out_dir")
        if target is not None and _resolve(target) == want:
            lines.append(line)
            config_file = cfg_path
    if not lines:
        raise ConfigError(
            f"no `edgedenoise train` line in {train_script} writes to {out_dir!r}; "
            "add the command there (or pass --command)"
        )
    return lines, config_file


def read_log(log_csv: Path) -> list[dict[str, str]]:
    """Rows of a trainer ``log.csv`` (``step, loss, lr, val_psnr, wall_s``).

    Raises:
        ArtifactError: the file is missing or has no rows.
    """
    if not log_csv.is_file():
        raise ArtifactError(f"{log_csv} does not exist; give the run folder with --run-dir")
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ArtifactError(f"{log_csv} has no rows")
    return rows


def validation_summary(
    rows: list[dict[str, str]], max_points: int = 25, weights_step: int | None = None
) -> dict[str, Any]:
    """Summary of the validation PSNR curve: first, best, last, a thinned curve, and the late gain.

    The log rounds PSNR to 3 decimals, so several points can tie for the best; the one at ``weights_step``
    (the step the shipped weights were saved at, which the trainer picked on the unrounded value) is then
    the best, otherwise the first of them. ``gain_last_quarter_db`` is the best validation PSNR in the last
    quarter of the steps minus the best before it: a rough indicator of what more training would still buy
    (near 0: converged).
    """
    pts = [(int(r["step"]), float(r["val_psnr"]), float(r["wall_s"])) for r in rows if r.get("val_psnr")]
    if not pts:
        return {"points": 0}
    top = max(p[1] for p in pts)
    best = next((p for p in pts if p[0] == weights_step and p[1] == top), None) or next(p for p in pts if p[1] == top)
    stride = max(1, -(-len(pts) // max_points))
    curve = pts[::stride] + ([pts[-1]] if (len(pts) - 1) % stride else [])
    last_step = pts[-1][0]
    early = [p[1] for p in pts if p[0] <= 0.75 * last_step]
    late = [p[1] for p in pts if p[0] > 0.75 * last_step]
    gain = max(late) - max(early) if early and late else None
    return {
        "points": len(pts),
        "first": {"step": pts[0][0], "psnr": pts[0][1]},
        "best": {"step": best[0], "psnr": best[1], "wall_s": best[2]},
        "last": {"step": pts[-1][0], "psnr": pts[-1][1], "wall_s": pts[-1][2]},
        "gain_last_quarter_db": None if gain is None else round(gain, 4),
        "curve": [{"step": s, "psnr": p} for s, p, _ in curve],
    }


def hardware(threads_cfg: int) -> dict[str, Any]:
    """This machine: CPU model (``/proc/cpuinfo``), logical CPUs, torch version and threads, CUDA device."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads_cfg or torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def build_card(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """Evaluate the weights and assemble the card; returns ``(card, weights_path)``."""
    import torch
    import yaml
    from safetensors import safe_open

    from edgedenoise.evaluate import SEED_SCHEME, evaluate
    from edgedenoise.models import count_macs_per_pixel, count_params, load_weights, model_cfg, resolve_name
    from edgedenoise.train.trainer import git_revision

    weights = Path(args.weights)
    model = load_weights(weights)
    cfg = model_cfg(model)
    if resolve_name(args.name) != cfg.arch:
        raise ConfigError(f"--name {args.name!r} does not match the weights' architecture {cfg.arch!r}; use {cfg.arch}")
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata() or {}
    run_dir = Path(args.run_dir) if args.run_dir else weights.parent
    resolved = run_dir / "config.resolved.yaml"
    if not resolved.is_file():
        raise ArtifactError(f"{resolved} does not exist; give the run folder with --run-dir")
    train_cfg = yaml.safe_load(resolved.read_text())
    rows = read_log(run_dir / "log.csv")
    if args.command:
        commands, config_file = [args.command], None
    else:
        commands, config_file = find_train_commands(_resolve(args.train_script), train_cfg["out_dir"])
    train_rev = None
    best_pt = run_dir / "best.pt"
    if best_pt.is_file():
        train_rev = torch.load(best_pt, map_location="cpu", weights_only=True).get("git_rev")

    sigmas = [float(s) for s in args.sigmas.split(",")]
    sigma_arg = ",".join(f"{s:g}" for s in sigmas)
    sets: dict[str, Any] = {}
    scored = args.eval_model or weights  # an exported FP32 ONNX computes the same (to 1e-5) in a fraction of the time
    for name in args.sets.split(","):
        folder = Path(args.data_root) / name
        res = evaluate(scored, folder, sigmas, seed=args.seed, threads=args.threads or None, progress=True)
        command = (
            f"edgedenoise eval {args.name} --data {Path(args.data_label or args.data_root) / name} "
            f"--sigma {sigma_arg} --seed {args.seed}"
        )
        sets[name] = {
            "n_images": len(res.results[0].images),
            "results": [{"sigma": r.sigma, "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5)} for r in res.results],
            "command": command,
        }
        if cfg.noise_level_input:  # the same images as 8-bit noisy files, told the true σ and the estimated one
            for key, how in (("results_8bit", "true"), ("results_8bit_auto", "auto")):
                r8 = evaluate(
                    scored, folder, sigmas, seed=args.seed, threads=args.threads or None, clip8=True, model_sigma=how
                )
                sets[name][key] = [
                    {"sigma": r.sigma, "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5)} for r in r8.results
                ]
                sets[name][key.replace("results", "command")] = f"{command} --clip8 --model-sigma {how}"
    last = rows[-1]
    card = {
        "name": resolve_name(args.name),
        "arch": cfg.arch,
        "cfg": json.loads(cfg.to_json()),
        "overrides": json.loads(meta.get("overrides", "{}")),
        "params": count_params(model),
        "macs_per_pixel": count_macs_per_pixel(model, size=32 * cfg.size_multiple),
        "weights": {
            "file": f"{resolve_name(args.name)}.safetensors",
            "sha256": sha256_file(weights),
            "source": str(weights),
            "step": int(meta["step"]) if "step" in meta else None,
            "val_psnr": float(meta["val_psnr"]) if "val_psnr" in meta else None,
        },
        "training": {
            "commands": commands,
            "config_file": config_file,
            "config": train_cfg,
            "iterations": int(last["step"]),
            "best_step": int(meta["step"]) if "step" in meta else None,
            "wall_time_s": float(last["wall_s"]),
            "git_rev": train_rev,
            "validation": validation_summary(rows, weights_step=int(meta["step"]) if "step" in meta else None),
            "note": args.note,
        },
        "hardware": dict(hardware(int(train_cfg.get("threads") or 0)), note=args.hardware_note),
        "evaluation": {
            "protocol": SEED_SCHEME + "; output clipped to [0, 1] and quantised to 8 bits; PSNR/SSIM peak 255; "
            "mean over images"
            + (
                "; a noise-level-conditioned model is told the true σ (results) or, on the noisy images clipped "
                "and rounded to 8 bits, the true σ (results_8bit) and the estimated one (results_8bit_auto)"
                if cfg.noise_level_input
                else ""
            ),
            "scored_with": "ONNX Runtime, FP32 " + Path(args.eval_model).name if args.eval_model else "torch eager",
            "seed": args.seed,
            "ensemble": False,
            # torch float32 (TF32 off on CUDA, see evaluate.TorchPredictor): CPU and GPU agree to float precision
            "device": f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu",
            "sets": sets,
        },
        "card": {"written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "git_rev": git_revision()},
    }
    return card, weights


def stage_summary(card: dict, config_file: str | None) -> dict:
    """The training facts of one stage's card, for ``training.stages``."""
    t = card["training"]
    return {
        "config_file": config_file,
        "config": t["config"],
        "iterations": t["iterations"],
        "best_step": t["best_step"],
        "wall_time_s": t["wall_time_s"],
        "validation": t["validation"],
        "git_rev": t["git_rev"],
        "hardware": card.get("hardware"),
        "test_psnr_at_end_of_stage": {
            k: [r["psnr"] for r in v["results"]] for k, v in card["evaluation"]["sets"].items()
        },
    }


def add_previous_stages(card: dict[str, Any], previous: dict[str, Any], config_file: str | None) -> None:
    """Record ``card`` as the last stage after the stage(s) of ``previous`` (the card of the weights it was
    warm-started from) under ``training.stages``, with the totals and both sets of commands, in place."""
    prev_t = previous["training"]
    stages = list(prev_t.get("stages") or [stage_summary(previous, prev_t.get("config_file"))])
    stages.append(stage_summary(card, config_file))
    t = card["training"]
    t["stages"] = stages
    t["iterations_total"] = sum(st["iterations"] for st in stages)
    t["wall_time_s_total"] = round(sum(st["wall_time_s"] for st in stages), 1)
    t["commands"] = list(prev_t.get("commands") or []) + list(t["commands"])


def write_card(card: dict[str, Any], weights: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<name>.safetensors`` (a byte copy of ``weights``) and ``<name>.json`` atomically into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dst_w, dst_j = out_dir / card["weights"]["file"], out_dir / f"{card['name']}.json"
    same = dst_w.exists() and dst_w.resolve() == weights.resolve()
    tmps = []
    try:
        if not same:
            fd, tmp_w = tempfile.mkstemp(prefix=f".{dst_w.name}.", dir=out_dir)
            os.close(fd)
            tmps.append(tmp_w)
            shutil.copyfile(weights, tmp_w)
            if sha256_file(Path(tmp_w)) != card["weights"]["sha256"]:
                raise ArtifactError(f"copy of {weights} does not match its sha256; the source changed while copying")
        fd, tmp_j = tempfile.mkstemp(prefix=f".{dst_j.name}.", dir=out_dir)
        with os.fdopen(fd, "w") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        tmps.append(tmp_j)
        if not same:
            os.replace(tmps[0], dst_w)
        os.replace(tmp_j, dst_j)
    finally:
        for t in tmps:
            Path(t).unlink(missing_ok=True)
    return dst_w, dst_j


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("weights", help="trained .safetensors (e.g. runs/rednet30_blind/best.safetensors)")
    p.add_argument("--name", required=True, help="registered model name the weights ship as (e.g. rednet30)")
    p.add_argument("--run-dir", help="run folder with config.resolved.yaml and log.csv (default: the weights' folder)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding the test sets")
    p.add_argument(
        "--data-label", help="the data root as the card's eval commands name it (default: --data-root)"
    )
    p.add_argument("--sets", default="BSD68,Set12", help="test sets to evaluate (comma-separated)")
    p.add_argument("--sigmas", default="15,25,50", help="AWGN σ values, 0-255 scale")
    p.add_argument("--seed", type=int, default=0, help="noise seed (image i uses seed + i)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for evaluation (0: torch default)")
    p.add_argument("--out-dir", default=str(ROOT / "edgedenoise" / "weights"), help="where the shipped files go")
    p.add_argument("--train-script", default="configs/train.sh", help="file holding the training commands")
    p.add_argument("--command", help="the training command, if it is not in --train-script")
    p.add_argument("--note", help="free text for the card (e.g. why training stopped)")
    p.add_argument("--hardware-note", help="free text about the hardware (e.g. if training ran elsewhere)")
    p.add_argument(
        "--previous-card",
        help="card of the weights this run was warm-started from (init_weights): its stage(s) go first under "
        "training.stages (read before anything is written, so it may be the card being replaced)",
    )
    p.add_argument("--config-file", help="the run's YAML config, recorded in the card and its stage")
    p.add_argument(
        "--eval-model",
        help="score the test sets through this FP32 ONNX exported from the weights (same figures, faster) "
        "instead of torch eager",
    )
    args = p.parse_args(argv)
    try:
        previous = json.loads(Path(args.previous_card).read_text()) if args.previous_card else None
        card, weights = build_card(args)
        if args.config_file:
            card["training"]["config_file"] = args.config_file
        if previous is not None:
            add_previous_stages(card, previous, card["training"]["config_file"])
        dst_w, dst_j = write_card(card, weights, Path(args.out_dir))
    except EdgeDenoiseError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for name, s in card["evaluation"]["sets"].items():
        row = "  ".join(f"σ{r['sigma']:g} {r['psnr']:.2f} dB / {r['ssim']:.4f}" for r in s["results"])
        print(f"{name:8s} {row}")
    print(f"wrote {dst_w} and {dst_j}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
