#!/usr/bin/env bash
# The GPU check, ready to run in one call on a GPU box (<= 8 minutes on one H100/H200), or as a
# CPU dry run that scripts/test.sh runs so the check cannot rot:
#   bash scripts/gpu_check.sh                              # cuda:0, real-size random models
#   bash scripts/gpu_check.sh --device cpu --size tiny     # dry run (tiny models, tiny store)
# Options:
#   --device D      cuda:N (default cuda:0) or cpu
#   --size S        real (default: DINOv3 ViT-H+/16 4 registers, V-JEPA 2 ViT-L/16 256 px, AST
#                   base, bf16 random weights) or tiny (tiny widths at the real input geometry)
#   --out FILE      the table (default bench/results_gpu.md; the dry run: target/gpu_check_dry.md)
#   --bin DIR       folder holding `extract` (decoder-free) and `train-head` (default: this
#                   checkout's target/release/nodec/extract and target/release/train-head)
#   --work DIR      scratch folder for models and the synthetic store (default: a temp folder)
#   --peak-tflops X MFU denominator (default 790, bf16 dense)
# It needs no OpenCV and no network: the decoder-free binaries and a libtorch. When the binaries
# do not find libtorch, LD_LIBRARY_PATH is pointed at the lib/ of `python3`'s torch.
# What it measures, into one markdown file:
#   1. each backbone's forward at batch 1..32 welds (welds/s, TFLOP/s, MFU), `extract gpu-bench`;
#   2. the device-side preprocessing of one weld's real-size media from uint8 uploads;
#   3. device-vs-CPU parity of the forwards and the preprocessing on tiny f32 models;
#   4. `train-head` epochs of the full configs/causal_film.toml profile on a synthetic store of
#      real dimensions (4096 video tokens x 1024, 4 x 659 audio tokens x 768, 5 x 201 DINOv3
#      tokens x 1280 of hidden states 20 and 31, 33 pooled hidden states): seconds per epoch and
#      peak device memory (nvidia-smi, sampled every 200 ms).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEVICE=cuda:0
SIZE=real
OUT=""
BIN=""
WORK=""
PEAK=790
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --peak-tflops) PEAK=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$SIZE" in real|tiny) ;; *) echo "gpu_check: --size real|tiny, not $SIZE" >&2; exit 2 ;; esac
if [ -z "$OUT" ]; then
  if [ "$SIZE" = real ] && [ "$DEVICE" != cpu ]; then OUT=bench/results_gpu.md; else OUT=target/gpu_check_dry.md; fi
fi
if [ -n "$BIN" ]; then
  EXTRACT="$BIN/extract"; TRAIN="$BIN/train-head"
else
  EXTRACT="$ROOT/target/release/nodec/extract"; TRAIN="$ROOT/target/release/train-head"
fi
for b in "$EXTRACT" "$TRAIN"; do
  [ -x "$b" ] || { echo "gpu_check: $b is missing: build it with bash scripts/build.sh (or give --bin)" >&2; exit 2; }
done
if ! "$EXTRACT" doctor >/dev/null 2>&1; then
  TORCH_LIB=$(python3 -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null) \
    || { echo "gpu_check: $EXTRACT does not start and python3 has no torch to take libtorch from" >&2; exit 2; }
  export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "$EXTRACT" doctor >/dev/null || { echo "gpu_check: $EXTRACT does not start with LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >&2; exit 2; }
fi
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK" "$(dirname "$OUT")"
TMP_OUT="$OUT.tmp"
t0=$SECONDS
log() { echo "[gpu_check $(( SECONDS - t0 )) s] $*" >&2; }

# 1-3: models, then gpu-bench
if [ "$SIZE" = real ]; then
  log "real-size random models (bf16) -> $WORK/models"
  "$EXTRACT" init-models --out "$WORK/models" --size real --dtype bf16 >/dev/null
  BENCH=(--dtype bf16 --batches 1,2,4,8,16,32 --repeat 5)
else
  log "tiny models at the real input geometry -> $WORK/models"
  "$EXTRACT" init-models --out "$WORK/models" --size tiny --geometry real >/dev/null
  BENCH=(--dtype f32 --batches 1,2 --repeat 1)
fi
"$EXTRACT" init-models --out "$WORK/parity" --size tiny >/dev/null
log "gpu-bench on $DEVICE"
"$EXTRACT" gpu-bench --models "$WORK/models" --device "$DEVICE" "${BENCH[@]}" \
  --peak-tflops "$PEAK" --parity-models "$WORK/parity" > "$WORK/bench.md"

# 4: train-head on a synthetic store of real dimensions (the dry run: real widths, few tokens)
# sizes: TRAIN VAL TEST video-tokens audio-tokens-per-window image-tokens-per-view
if [ "$SIZE" = real ]; then
  read -r NT NV NE TV TA TI <<< "64 16 16 4096 659 201"
  EPOCHS=3
else
  read -r NT NV NE TV TA TI <<< "16 8 8 32 11 21"
  EPOCHS=1
fi
log "synthetic store of real widths -> $WORK/store"
"$TRAIN" synth-store --out "$WORK/store" --n-train "$NT" --n-val "$NV" --n-test "$NE" \
  --video-tokens "$TV" --audio-tokens "$TA" --image-tokens "$TI" --video-dim 1024 --audio-dim 768 \
  --image-dim 1280 --layers 32 --token-layers 20,31 --text-dim 512 >/dev/null
MEM_LOG="$WORK/mem.csv"
SAMPLER=""
if [ "$DEVICE" != cpu ] && command -v nvidia-smi >/dev/null; then
  idx=${DEVICE#cuda}; idx=${idx#:}; idx=${idx:-0}
  nvidia-smi -i "$idx" --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$MEM_LOG" 2>/dev/null &
  SAMPLER=$!
fi
# bf16 autocast on CUDA (train.autocast is refused on the CPU)
AUTOCAST=off
[ "$DEVICE" != cpu ] && AUTOCAST=bf16
log "train-head: configs/causal_film.toml, $EPOCHS epoch(s) on $DEVICE, autocast $AUTOCAST"
"$TRAIN" train --store "$WORK/store" --config configs/causal_film.toml --device "$DEVICE" \
  --out "$WORK/run" --set "train.epochs=$EPOCHS" --set train.patience=100 \
  --set "train.autocast=\"$AUTOCAST\"" > "$WORK/train.log" 2>&1 \
  || { [ -n "$SAMPLER" ] && kill "$SAMPLER"; tail -20 "$WORK/train.log" >&2; echo "gpu_check: train-head failed" >&2; exit 1; }
if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; fi
PEAK_MEM="n/a (no nvidia-smi on $DEVICE)"
if [ -s "$MEM_LOG" ]; then
  PEAK_MEM="$(sort -n "$MEM_LOG" | tail -1) MiB (nvidia-smi, whole device)"
fi
EPOCH_S=$(awk -F, 'NR > 1 { printf "%s%.2f", (NR > 2 ? ", " : ""), $NF }' "$WORK/run/history.csv")
PARAMS=$(awk '$1 == "trainable" { print $2; exit }' "$WORK/train.log")

{
  echo "# GPU check: device side of extract and train-head"
  echo
  echo "Produced by \`bash scripts/gpu_check.sh --device $DEVICE --size $SIZE\` on $(date -u +%Y-%m-%d),"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), device: $("$EXTRACT" doctor | tr '\n' ' ' | cut -c1-200)."
  if [ "$SIZE" = tiny ] || [ "$DEVICE" = cpu ]; then
    echo
    echo "**A dry run**: tiny models and a tiny store on $DEVICE; the numbers mean nothing."
  fi
  echo
  cat "$WORK/bench.md"
  echo "## train-head: configs/causal_film.toml (full profile) on a synthetic store of real widths"
  echo
  echo "| store (TRAIN/VAL/TEST) | tokens per weld | trainable | autocast | epochs | seconds per epoch | peak memory |"
  echo "|---|---|---|---|---:|---|---|"
  echo "| $NT/$NV/$NE | video $TV x 1024, audio 4 x $TA x 768, image 5 x $TI x 1280 (L20, L31) | $PARAMS | $AUTOCAST | $EPOCHS | $EPOCH_S | $PEAK_MEM |"
  echo
  echo "Seconds per epoch from the run's history.csv (TRAIN steps, batch 32, + VAL scoring in f32;"
  echo "the first epoch includes CUDA/cuDNN warm-up). Attention through SDPA."
  echo
  echo "Whole check: $(( SECONDS - t0 )) s."
} > "$TMP_OUT"
mv -f "$TMP_OUT" "$OUT"
log "done: $OUT"
cat "$OUT"
