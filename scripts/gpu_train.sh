#!/usr/bin/env bash
# Train the shipped models on one NVIDIA GPU in one prepared run (the `device` tool's H200, or any CUDA box).
#
# Prepare here (once):   mkdir -p .gpu_data && cp -r ../shared/data/Train400 .gpu_data/ \
#                          && echo /.gpu_data/ >> .git/info/exclude
# Run on the device:     run(command="bash scripts/gpu_train.sh", carry=[".gpu_data"], timeout_s=600)
# It trains the models below concurrently on the one GPU (each config has a 9-minute wall-time budget and
# anneals over it), then packs weights, logs and resolved configs into $OUT/gpu_runs.tgz (no optimiser state).
# Afterwards, here: tar xzf <files_at>/gpu_runs.tgz -C runs/ and run scripts/model_card.py on each best.safetensors.
set -uo pipefail
OUT=${OUT:-runs/gpu_out}
mkdir -p "$OUT" runs/gpu
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
MODELS=${MODELS:-"rednet30 rednet30_s2 memnet_m6r6"}
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
pids=()
for m in $MODELS; do
  python3 -m edgedenoise.cli train "configs/gpu/${m}_blind.yaml" --no-progress > "runs/gpu/${m}_blind.out" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "a training process failed (pid $p)"; done
for m in $MODELS; do tail -n 3 "runs/gpu/${m}_blind.out"; done
tar czf "$OUT/gpu_runs.tgz" --exclude='*.pt' -C runs gpu
ls -la "$OUT"
