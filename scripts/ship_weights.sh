#!/usr/bin/env bash
# Ship a trained model: weights + model card (BSD68 and Set12 at σ 15/25/50, measured by `eval`), the FP32
# ONNX and the CPU-flavour INT8 ONNX beside them, so the torch-free runtime and `edgedenoise bench` resolve the
# name (edgedenoise/weights/<name>.onnx, <name>.int8.cpu.onnx).
# Usage: bash scripts/ship_weights.sh NAME RUN_DIR [NOTE] [model_card.py options...]   (repo root, venv at .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; run=$2; note=${3:-}; shift $(( $# < 3 ? $# : 3 ))
.venv/bin/python scripts/model_card.py "$run/best.safetensors" --name "$name" --run-dir "$run" ${note:+--note "$note"} "$@"
tmp=$(mktemp -d)
.venv/bin/edgedenoise export --model "edgedenoise/weights/$name.safetensors" --int8 --flavour cpu -o "$tmp" --no-progress
mv "$tmp/$name.onnx" "edgedenoise/weights/$name.onnx"
mv "$tmp/$name.int8.cpu.onnx" "edgedenoise/weights/$name.int8.cpu.onnx"
rm -rf "$tmp"
chmod 644 "edgedenoise/weights/$name".*
ls -la "edgedenoise/weights/$name".*
