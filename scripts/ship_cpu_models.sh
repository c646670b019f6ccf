#!/usr/bin/env bash
# The exact commands of the CPU-only quantization-aware release of 2026-11-30 (repo root, venv at .venv):
#  1. cards + weights of the quantization-aware fine-tuned real-time students (configs/cpu/*_qat.yaml), each card
#     carrying its earlier stage(s) from the card it replaces (--previous-card);
#  2. FP32 + CPU-flavour INT8 ONNX of every slim student, re-exported because the export now folds the
#     pixel-unshuffle into the first Conv and keeps the last DepthToSpace float (docs/compression.md, "Speed").
# STEP=export runs only step 2 for the models in MODELS (default: all slim students).
set -euo pipefail
cd "$(dirname "$0")/.."
models=${MODELS:-"rednet8_slim32_u4 rednet6_slim32_u4 rednet12_slim64_u4 rednet12_slim64_u2 rednet18_slim64_u2"}
qat_note="quantization-aware fine-tuning (edgedenoise/compress/qat.py, first Conv float) on a 2-core CPU, checkpoint selected by simulated-INT8 validation PSNR; the weights are shaped for INT8 (FP32 figures below are of these weights)."
card() {  # name, note, [previous card]
  local name=$1 note=$2 prev=${3:-}
  local args=(runs/cpu/${name}_qat/best.safetensors --name "$name" --run-dir "runs/cpu/${name}_qat"
    --data-root ../shared/data --data-label ../shared/data --threads 1
    --command "edgedenoise train configs/cpu/${name}_qat.yaml" --config-file "configs/cpu/${name}_qat.yaml" --note "$note")
  if [ -n "$prev" ]; then args+=(--previous-card "$prev"); fi
  .venv/bin/python scripts/model_card.py "${args[@]}"
}
if [ "${STEP:-all}" != export ]; then
  for name in $models; do
    case $name in
      rednet8_slim32_u4)
        # the card it replaces (GPU run, stage 1) is read before anything is written
        prev=$(mktemp); git show 7426ae3:edgedenoise/weights/rednet8_slim32_u4.json > "$prev"
        card rednet8_slim32_u4 "Stage 2 of 2: 25 min of $qat_note" "$prev"; rm -f "$prev" ;;
      rednet6_slim32_u4)
        .venv/bin/python scripts/make_rednet6_init.py >/dev/null   # the init the config names (sha256-checked source)
        card rednet6_slim32_u4 "rednet8_slim32_u4's GPU-trained weights without the innermost two body layers (scripts/make_rednet6_init.py), then 35 min of $qat_note" ;;
    esac
  done
fi
for name in $models; do
  case $name in
    # the fastest real-time variant: at the default 0.1 dB the gate keeps its last Conv float (first drop 0.107 dB),
    # which costs 13 ms of ~80 per 1080p frame; shipped all-INT8 (but the first Conv) at a stated 0.15 dB budget
    rednet6_slim32_u4) budget=(--int8-budget-db 0.15) ;;
    *) budget=() ;;
  esac
  tmp=$(mktemp -d)
  .venv/bin/edgedenoise export --model "edgedenoise/weights/$name.safetensors" --int8 --flavour cpu "${budget[@]}" -o "$tmp" --no-progress
  mv "$tmp/$name.onnx" "edgedenoise/weights/$name.onnx"
  mv "$tmp/$name.int8.cpu.onnx" "edgedenoise/weights/$name.int8.cpu.onnx"
  rm -rf "$tmp"
  chmod 644 "edgedenoise/weights/$name".*
done
ls -la edgedenoise/weights
