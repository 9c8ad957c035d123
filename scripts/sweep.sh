#!/usr/bin/env bash
# A layer-ablation (or any) sweep on a feature store: `train-head sweep` with every flag passed
# through, e.g.
#   bash scripts/sweep.sh --store data/intel_store.zarr --grid configs/sweeps/dino_layers.toml \
#     --out runs/sweep-dino --seeds 3 --jobs 2 --devices cuda:0,cuda:1
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -x "$BIN/train-head" ] || bash scripts/build.sh
exec "$BIN/train-head" sweep "$@"
