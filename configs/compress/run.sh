#!/usr/bin/env bash
# The exact commands that produced the shipped pruned and compressed variants (repo root, venv active).
# Four single-thread chains run side by side on the 2-core development CPU, each with a wall-time budget.
set -e
mkdir -p runs
# Pruned: RED30 -> 32 / 16 channels per layer (L2-magnitude importance, multiples of 8), then fine-tuned.
( edgedenoise prune rednet30 --ratio 0.5 -o runs/rednet30_p50/pruned.safetensors &&
  edgedenoise train configs/compress/rednet30_p50_ft.yaml --no-progress ) > runs/rednet30_p50.out 2>&1 &
( edgedenoise prune rednet30 --ratio 0.75 -o runs/rednet30_p75/pruned.safetensors &&
  edgedenoise train configs/compress/rednet30_p75_ft.yaml --no-progress ) > runs/rednet30_p75.out 2>&1 &
# Compressed: slim students, trained from scratch on clean targets, then distilled from the shipped RED30.
for s in rednet12_slim64_u2 rednet12_slim64_u4; do
  ( edgedenoise train configs/compress/${s}_stage1.yaml --no-progress &&
    edgedenoise distill rednet30 $s --config configs/compress/${s}_distill.yaml --weight 0.5 --no-progress
  ) > runs/$s.out 2>&1 &
done
wait
