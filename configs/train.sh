#!/usr/bin/env bash
# The exact commands that produced the shipped weights (run from the repo root, venv active).
# RED30 runs at normal priority; the two others at nice 10 beside it, on a 2-core machine.
set -e
nohup edgedenoise train configs/rednet30_blind.yaml > runs/rednet30_blind.out 2>&1 &
nohup nice -n 10 edgedenoise train configs/rednet30_s2_blind.yaml > runs/rednet30_s2_blind.out 2>&1 &
nohup nice -n 10 edgedenoise train configs/memnet_m4r4_blind.yaml > runs/memnet_m4r4_blind.out 2>&1 &
