#!/usr/bin/env bash
# Ship the noise-level-conditioned models from their CPU runs (configs/cpu/<name>.yaml): FP32 ONNX and CPU INT8
# ONNX (export gate at its default 0.1 dB budget), then the model card scored through the FP32 ONNX (BSD68 and Set12
# at σ 15/25/50, standard protocol and 8-bit clipped files told the true and the estimated σ), then the side-by-side
# speed run of the real-time model and the speed reference at 1920x1080. Repo root, venv at .venv.
# MODELS picks the models (default: both); STEP=speed runs only the speed comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
models=${MODELS:-"unet3_f32_u4_nl rednet18_slim64_u2_nl"}
if [ "${STEP:-all}" != speed ]; then
  for name in $models; do
    run=runs/cpu/$name
    tmp=$(mktemp -d)
    .venv/bin/edgedenoise export --model "$run/best.safetensors" --int8 --flavour cpu -o "$tmp" --no-progress
    .venv/bin/python scripts/model_card.py "$run/best.safetensors" --name "$name" --run-dir "$run" \
      --data-root ../shared/data --data-label ../shared/data --threads 2 --eval-model "$tmp/$name.onnx" \
      --command "edgedenoise train configs/cpu/$name.yaml" --config-file "configs/cpu/$name.yaml" \
      --note "Trained on a 2-core CPU within the config's wall-time budget; noise recipe of the conditioned models (σ 0-75, 5 % clean, half of the inputs clipped and rounded to 8 bits)."
    mv "$tmp/$name.onnx" "edgedenoise/weights/$name.onnx"
    mv "$tmp/$name.int8.cpu.onnx" "edgedenoise/weights/$name.int8.cpu.onnx"
    rm -rf "$tmp"
    chmod 644 "edgedenoise/weights/$name".*
  done
fi
# the real-time model and the speed reference one after the other in one run, 2 threads, 1920x1080 gray
.venv/bin/edgedenoise bench benchmarks/reference/rednet8_slim32_u4.int8.cpu.onnx unet3_f32_u4_nl.int8.cpu \
  --size 1920x1080 --threads 2 --iters 20 --json benchmarks/results/realtime_vs_reference.json
