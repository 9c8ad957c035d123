#!/usr/bin/env bash
# The whole job on an embedded default, on CPU: synthetic weld data + tiny random backbones ->
# extract (feature cache) -> verify -> train-head (Causal-FiLM, demo profile) -> metrics table.
#   bash scripts/demo.sh [SAMPLES]
# Everything lands under data/demo/ (dataset, models, store) and runs/demo/ (the training run).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
N="${1:-320}"
t0=$(date +%s)
bash scripts/setup.sh
echo "[demo] 1/5 synthetic dataset: $N welds -> data/demo/synth"
rm -rf data/demo runs/demo
"$BIN/extract" synth --out data/demo/synth --samples "$N" --seed 0
echo "[demo] 2/5 tiny random backbones -> data/demo/models"
"$BIN/extract" init-models --out data/demo/models --size tiny
echo "[demo] 3/5 extract: frozen backbones -> data/demo/store.zarr"
"$BIN/extract" run --config configs/extract_demo.toml
echo "[demo] 4/5 verify the store"
"$BIN/extract" verify --store data/demo/store.zarr
echo "[demo] 5/5 train-head: Causal-FiLM (configs/demo.toml) -> runs/demo"
"$BIN/train-head" train --store data/demo/store.zarr --config configs/demo.toml --out runs/demo
echo
echo "[demo] done in $(( $(date +%s) - t0 )) s. Metrics: runs/demo/metrics.json, plots: runs/demo/plots/"
