#!/usr/bin/env bash
# Trains Causal-FiLM on a feature store: reads configs/causal_film.toml, passes extra flags through.
#   bash scripts/train_head.sh --store data/intel_store.zarr --out runs/cf1 --device cuda:0
#   bash scripts/train_head.sh --store S --out R --config configs/v5_text.toml --set train.lr=1e-5
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -x "$BIN/train-head" ] || bash scripts/setup.sh
has_config=0
for a in "$@"; do [ "$a" = "--config" ] && has_config=1; done
if [ "$has_config" = 1 ]; then
  exec "$BIN/train-head" train "$@"
fi
exec "$BIN/train-head" train --config configs/causal_film.toml "$@"
