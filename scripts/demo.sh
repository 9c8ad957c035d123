#!/usr/bin/env bash
# The whole job on an embedded default, on CPU: synthetic weld data + tiny random backbones ->
# extract (feature cache) -> verify -> train-head (Causal-FiLM, demo profile) -> metrics table
# -> a small layer-ablation sweep on the same cache (3 trials x 2 seeds) -> its leaderboard.
#   bash scripts/demo.sh [SAMPLES]
# Everything lands under data/demo/ (dataset, models, store), runs/demo/ (the training run) and
# runs/demo-sweep/ (the sweep: plan.json, one run per trial and seed, leaderboard.{csv,md,png}).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
N="${1:-320}"
t0=$(date +%s)
bash scripts/setup.sh
echo "[demo] 1/6 synthetic dataset: $N welds -> data/demo/synth"
rm -rf data/demo runs/demo runs/demo-sweep
"$BIN/extract" synth --out data/demo/synth --samples "$N" --seed 0
echo "[demo] 2/6 tiny random backbones -> data/demo/models"
"$BIN/extract" init-models --out data/demo/models --size tiny
echo "[demo] 3/6 extract: frozen backbones -> data/demo/store.zarr"
"$BIN/extract" run --config configs/extract_demo.toml
echo "[demo] 4/6 verify the store"
"$BIN/extract" verify --store data/demo/store.zarr
echo "[demo] 5/6 train-head: Causal-FiLM (configs/demo.toml) -> runs/demo"
"$BIN/train-head" train --store data/demo/store.zarr --config configs/demo.toml --out runs/demo
echo "[demo] 6/6 sweep on the cache: configs/sweeps/demo.toml (3 result-branch sets x 2 seeds) -> runs/demo-sweep"
"$BIN/train-head" sweep --store data/demo/store.zarr --grid configs/sweeps/demo.toml --out runs/demo-sweep \
  --jobs 2 --threads 1
echo
echo "[demo] done in $(( $(date +%s) - t0 )) s. Metrics: runs/demo/metrics.json, plots: runs/demo/plots/,"
echo "       sweep leaderboard: runs/demo-sweep/leaderboard.md (.csv, .png)"
