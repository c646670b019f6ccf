#!/usr/bin/env bash
# Train the shipped models on one NVIDIA GPU in one prepared run (an H200 or any CUDA box),
# then evaluate each on BSD68 and Set12 (σ 15/25/50, the `edgedenoise eval` protocol) into a model card.
#
# Prepare here (once):
#   mkdir -p .gpu_data/pruned && cp -r ../shared/data/{Train400,BSD68,Set12} .gpu_data/ \
#     && echo /.gpu_data/ >> .git/info/exclude
#   edgedenoise prune rednet30 --ratio 0.5  -o .gpu_data/pruned/rednet30_p50.safetensors
#   edgedenoise prune rednet30 --ratio 0.75 -o .gpu_data/pruned/rednet30_p75.safetensors
# Run on the GPU machine, with .gpu_data copied into the checkout:  bash scripts/gpu_train.sh  (fits in 10 minutes)
# Every config in configs/gpu/ has a 6.5-minute wall-time budget and anneals its LR over it; all runs share the
# one GPU at once (about 8 minutes in all, cards included). Weights, logs and resolved configs (no optimiser
# state) are packed into $OUT/gpu_*.tgz every 30 s while training, so a run cut short still returns its best
# weights; the cards (JSON) go to $OUT/gpu_cards.tgz.
# Afterwards, here: tar xzf each .tgz -C runs/, copy runs/gpu/cards/*.json beside the weights, export ONNX
# (scripts/ship_weights.sh does all of it for a CPU-evaluated card).
# Local dry run of the whole flow on a CPU: STEPS=2 MODELS="rednet8_slim32_u4" CARD_SETS=Set12 bash scripts/gpu_train.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_out}
mkdir -p "$OUT" runs/gpu
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PY:-python3}
MODELS=${MODELS:-"rednet30 memnet_m6r6 memnet_m4r4 rednet30_s2 rednet30_p50 rednet30_p75 rednet12_slim64_u2 rednet18_slim64_u2 rednet8_slim32_u4 rednet10_slim24_u4"}
SUFFIX=${SUFFIX:-blind}   # configs/gpu/<model>_<SUFFIX>.yaml: blind (first stage) or ft (second)
CARD_SETS=${CARD_SETS:-BSD68,Set12}
start=$(date +%s)
stamp() { echo "[gpu_train +$(( $(date +%s) - start ))s] $*"; }

(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi") | tee "$OUT/gpu.txt"
"$PY" -c "import torch, edgedenoise.train, edgedenoise.evaluate; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  | tee -a "$OUT/gpu.txt" || { echo "import check failed"; exit 1; }
for m in $MODELS; do
  [ -f "configs/gpu/${m}_${SUFFIX}.yaml" ] || { echo "no config configs/gpu/${m}_${SUFFIX}.yaml"; exit 1; }
done

# weights + logs in three archives (each well under the 16 MiB a returned file may have)
groups=("rednet30 rednet30_s2" "memnet_m6r6 memnet_m4r4 rednet30_p50 rednet30_p75")
snapshot() {
  local i=0 g m dirs rest=()
  for m in $MODELS; do
    case " ${groups[*]} " in *" $m "*) ;; *) rest+=("$m") ;; esac
  done
  for g in "${groups[@]}" "${rest[*]}"; do
    i=$((i + 1)); dirs=()
    for m in $g; do [ -d "runs/gpu/${m}_${SUFFIX}" ] && dirs+=("gpu/${m}_${SUFFIX}"); done
    [ ${#dirs[@]} -gt 0 ] || continue
    tar czf "$OUT/gpu_runs$i.tgz.part" --exclude='*.pt' --exclude='*.tmp' -C runs "${dirs[@]}" 2>/dev/null \
      && mv "$OUT/gpu_runs$i.tgz.part" "$OUT/gpu_runs$i.tgz"
  done
}

pids=()
for m in $MODELS; do
  "$PY" -m edgedenoise.cli train "configs/gpu/${m}_${SUFFIX}.yaml" --no-progress ${STEPS:+--steps $STEPS} \
    > "runs/gpu/${m}_${SUFFIX}.out" 2>&1 &
  pids+=($!)
done
stamp "started ${#pids[@]} runs: $MODELS"
alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
n=0
while alive; do
  sleep 10
  n=$((n + 1)); [ $((n % 3)) -eq 0 ] || continue
  snapshot
  stamp "$(for m in $MODELS; do printf '%s:%s ' "$m" "$(tail -n 1 "runs/gpu/${m}_${SUFFIX}/log.csv" 2>/dev/null | cut -d, -f1,4)"; done)"
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=1; echo "training failed: $(echo $MODELS | cut -d' ' -f$((i + 1)))"; }
done
for m in $MODELS; do echo "== $m"; tail -n 4 "runs/gpu/${m}_${SUFFIX}.out"; cp "runs/gpu/${m}_${SUFFIX}.out" "runs/gpu/${m}_${SUFFIX}/train.out" 2>/dev/null; done
snapshot
stamp "training done"

# model cards: test sets evaluated once, after training, on the GPU (float32, TF32 off)
mkdir -p runs/gpu/cards
cpids=()
for m in $MODELS; do
  [ -f "runs/gpu/${m}_${SUFFIX}/best.safetensors" ] || continue
  timeout "${CARD_TIMEOUT:-150}" "$PY" scripts/model_card.py "runs/gpu/${m}_${SUFFIX}/best.safetensors" --name "$m" \
    --run-dir "runs/gpu/${m}_${SUFFIX}" --data-root .gpu_data --data-label ../shared/data --sets "$CARD_SETS" \
    --out-dir "runs/gpu/cards/$m" --command "bash scripts/gpu_train.sh   # configs/gpu/${m}_${SUFFIX}.yaml" \
    --hardware-note "trained and evaluated on one NVIDIA GPU shared by the ${#pids[@]} runs of scripts/gpu_train.sh" \
    > "runs/gpu/cards/$m.out" 2>&1 &
  cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || failed=1; done
tar czf "$OUT/gpu_cards.tgz" --exclude='*.safetensors' -C runs gpu/cards
stamp "cards done"
for m in $MODELS; do
  "$PY" - "$m" <<'EOF' 2>/dev/null || echo "$m: no card"
import json, sys
m = sys.argv[1]
c = json.load(open(f"runs/gpu/cards/{m}/{m}.json"))
t = c["evaluation"]["sets"]
print(m, c["training"]["iterations"], "steps", {k: [r["psnr"] for r in v["results"]] for k, v in t.items()})
EOF
done
ls -la "$OUT"
exit $failed
