#!/usr/bin/env python
"""Ship the weights and model cards that ``scripts/gpu_train.sh`` produced on a GPU machine.

The device returns, per model, the run folder (``runs/gpu/<model>_<suffix>``: best.safetensors, log.csv,
config.resolved.yaml) and the card written there by ``scripts/model_card.py`` (BSD68 and Set12 measured on the
GPU in float32 with TF32 off). This script checks that each card's sha256 matches the returned weights, records the
commit the run was launched from (the device's copy of the repository reports the landed commit plus local
changes), and for a two-stage model (``<model>_ft``, warm-started from the first stage's best weights) adds the
first stage's config, iterations, wall time, validation curve and test figures under ``training.stages``. Weights
and card are then written to ``edgedenoise/weights`` with the same atomic writer as ``model_card.py``.

Usage (repo root)::

    python scripts/gpu_cards.py rednet30 memnet_m6r6 ... --git-rev REV1 --git-rev-ft REV2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from model_card import sha256_file, stage_summary, write_card  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--runs", default="runs/gpu", help="where the device's archives were unpacked")
    p.add_argument("--git-rev", required=True, help="commit the first-stage run (configs/gpu/*_blind.yaml) ran from")
    p.add_argument("--git-rev-ft", help="commit the second-stage run (configs/gpu/*_ft.yaml) ran from")
    p.add_argument("--out-dir", default=str(ROOT / "edgedenoise" / "weights"))
    p.add_argument("--note", action="append", default=[], metavar="MODEL=TEXT", help="training.note of a card")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    notes = dict(n.split("=", 1) for n in args.note)
    for m in args.models:
        ft = (runs / f"{m}_ft").is_dir()
        card = json.loads((runs / "cards" / m / f"{m}.json").read_text())
        run = runs / f"{m}_{'ft' if ft else 'blind'}"
        weights = run / "best.safetensors"
        if sha256_file(weights) != card["weights"]["sha256"]:
            print(f"{m}: {weights} does not match the card's sha256; unpack the same run's archives", file=sys.stderr)
            return 1
        rev = args.git_rev_ft if ft else args.git_rev
        card["training"]["git_rev"] = rev
        card["card"]["git_rev"] = rev
        card["card"]["device_git_rev"] = "the device's copy: " + str(card["card"].get("git_rev"))
        if ft:
            first = json.loads((runs / "cards_stage1" / m / f"{m}.json").read_text())
            first["training"]["git_rev"] = args.git_rev
            card["training"]["stages"] = [
                stage_summary(first, f"configs/gpu/{m}_blind.yaml"),
                stage_summary(card, f"configs/gpu/{m}_ft.yaml"),
            ]
            card["training"]["iterations_total"] = first["training"]["iterations"] + card["training"]["iterations"]
            card["training"]["wall_time_s_total"] = round(
                first["training"]["wall_time_s"] + card["training"]["wall_time_s"], 1
            )
            card["training"]["commands"] = [
                "bash scripts/gpu_train.sh   # stage 1: configs/gpu/*_blind.yaml, ten runs sharing the GPU",
                f'SUFFIX=ft MODELS="{m} ..." bash scripts/gpu_train.sh   # stage 2: configs/gpu/{m}_ft.yaml',
            ]
        card["weights"]["source"] = str(weights)
        if m in notes:
            card["training"]["note"] = notes[m]
        w, j = write_card(card, weights, Path(args.out_dir))
        sets = card["evaluation"]["sets"]
        print(m, "->", w.name, j.name, {k: [r["psnr"] for r in v["results"]] for k, v in sets.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
