#!/usr/bin/env bash
# Feature extraction on the real dataset: reads configs/extract.toml, passes extra flags through.
#   bash scripts/extract_features.sh --device cuda:0 --dtype bf16
#   bash scripts/extract_features.sh --shard 0/2 & bash scripts/extract_features.sh --shard 1/2
# Slurm array (one GPU per task, all writing disjoint samples of one store):
#   #SBATCH --array=0-3 --gres=gpu:1
#   bash scripts/extract_features.sh --shard ${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
[ -x "$BIN/extract" ] || bash scripts/setup.sh
"$BIN/extract" run --config "${EXTRACT_CONFIG:-configs/extract.toml}" "$@"
echo "check the store with: $BIN/extract verify --store <the store path>"
