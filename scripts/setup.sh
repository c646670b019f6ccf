#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with edgedenoise and everything to train, export,
# run and test it. Idempotent. CPU build of torch: `torch==2.13.0` (a bare `torch` may pull a multi-GB CUDA
# build). tensorrt-stubs is installed without dependencies: it declares the real `tensorrt` wheel, which
# downloads its libraries from a host these machines cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[train,export,dev]"
.venv/bin/python -m pip install -q --no-deps "tensorrt-stubs>=10"
.venv/bin/python scripts/trt_typings.py  # a mypy-readable copy of the stubs in .typings/ (see the script)
