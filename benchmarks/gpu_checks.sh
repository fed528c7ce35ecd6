#!/usr/bin/env bash
# The GPU checks in one run (< 10 minutes on one CUDA device): a quick grid of all four networks and
# every strategy on a Dask worker with device="auto", GemNet's peak CUDA memory on the 250-atom 7 A
# batch of 32, and SchNet training throughput (GPU vs CPU). Writes one JSON file (default
# gpu_checks.json, or $1). Fails at once with a clear message when no CUDA device is present.
#   bash benchmarks/gpu_checks.sh [results.json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" benchmarks/gpu_checks.py --out "${1:-gpu_checks.json}"
