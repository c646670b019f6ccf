#!/usr/bin/env bash
# Ship a trained model: weights + model card (BSD68 and Set12 at σ 15/25/50, measured by `eval`), and the
# FP32 ONNX beside them so the torch-free runtime resolves the name (edgedenoise/weights/<name>.onnx).
# Usage: bash scripts/ship_weights.sh NAME RUN_DIR [NOTE]     (repo root, venv at .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; run=$2; note=${3:-}
.venv/bin/python scripts/model_card.py "$run/best.safetensors" --name "$name" --run-dir "$run" ${note:+--note "$note"}
tmp=$(mktemp -d)
.venv/bin/edgedenoise export --model "edgedenoise/weights/$name.safetensors" -o "$tmp" --no-progress
mv "$tmp/$name.onnx" "edgedenoise/weights/$name.onnx"
rm -rf "$tmp"
ls -la "edgedenoise/weights/$name".*
