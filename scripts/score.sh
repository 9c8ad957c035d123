#!/usr/bin/env bash
# Scores fresh recordings with a finished run: which of today's welds are bad?
#   bash scripts/score.sh NEW_DATA_DIR RUN [--out-dir DIR] [extract run flags ...]
# 1. extract run --data-root NEW_DATA_DIR --like TRAINING_STORE: the run's own training store is
#    the template (every backbone, layer and preprocessing choice copied; model folders whose
#    weights differ are refused). NEW_DATA_DIR/manifest.csv is used when present (labels
#    optional); otherwise the sample folders are discovered and stored UNLABELLED.
# 2. train-head score: one row per weld (key, score, decision at the run's VAL threshold,
#    reason, score parts); a weld whose recordings are broken is `unreadable` with the reason.
# Output: DIR/store.zarr and DIR/scores.csv (DIR defaults to RUN/scored-<name of NEW_DATA_DIR>).
# Rerunning resumes the extraction. Further flags go to `extract run` (e.g. --device cuda:0,
# --config configs/extract.toml for the device/batch/worker defaults, --dinov3 DIR when the
# training store's model folder has moved); --device also sets where the head scores.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [ $# -lt 2 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
NEW=$1
RUN=$2
shift 2
OUT=""
DEVICE=cpu
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out-dir) OUT=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
[ -d "$NEW" ] || { echo "score.sh: $NEW: no such folder (the new recordings)" >&2; exit 2; }
[ -f "$RUN/run.json" ] || { echo "score.sh: $RUN: not a finished run (no run.json)" >&2; exit 2; }
OUT="${OUT:-$RUN/scored-$(basename "$NEW")}"
for b in extract train-head; do
  [ -x "$BIN/$b" ] || { echo "score.sh: $BIN/$b missing; run bash scripts/setup.sh" >&2; exit 2; }
done
CONFIG=()
case " ${EXTRA[*]:-} " in
  *" --config "*) ;;
  *) CONFIG=(--config "$ROOT/configs/extract.toml") ;;
esac
TRAIN_STORE=$("$BIN/train-head" train-store --run "$RUN")
mkdir -p "$OUT"
echo "[score] 1/2 extract $NEW like $TRAIN_STORE -> $OUT/store.zarr"
"$BIN/extract" run "${CONFIG[@]}" --data-root "$NEW" --like "$TRAIN_STORE" --out "$OUT/store.zarr" \
  --device "$DEVICE" ${EXTRA[@]+"${EXTRA[@]}"}
echo "[score] 2/2 score with $RUN -> $OUT/scores.csv"
"$BIN/train-head" score --run "$RUN" --store "$OUT/store.zarr" --out "$OUT/scores.csv" --device "$DEVICE"
