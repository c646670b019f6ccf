#!/usr/bin/env bash
# The first CPU runs of RED30 and RED30_s2 (run from the repo root, venv active); the shipped weights come from
# scripts/gpu_train.sh and configs/cpu/ (each model card names its config).
#
# RED30 runs at normal priority; the two others at nice 10 beside it, on a 2-core machine.
set -e
nohup edgedenoise train configs/rednet30_blind.yaml > runs/rednet30_blind.out 2>&1 &
nohup nice -n 10 edgedenoise train configs/rednet30_s2_blind.yaml > runs/rednet30_s2_blind.out 2>&1 &
# MemNet M4R4 was started the same way and stopped after a few minutes: at ~30 s per step on this shared CPU it
# could not reach a useful level in its 130-minute budget (the shipped MemNet weights come from configs/gpu/):
#   nohup nice -n 10 edgedenoise train configs/memnet_m4r4_blind.yaml > runs/memnet_m4r4_blind.out 2>&1 &
# RED30 was stopped at step 300 (a busier machine than planned) and resumed with a longer budget (145 min)
# and channels-last convolutions, then stopped at step 2000 and resumed with the 128-minute budget now in the config:
#   edgedenoise train configs/rednet30_blind.yaml --resume runs/rednet30_blind/last.pt
