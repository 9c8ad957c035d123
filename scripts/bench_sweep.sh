#!/usr/bin/env bash
# The demo sweep on the cache against the same sweep done the seed's way (issue 8), in one run:
#  - cache: `train-head sweep` over configs/sweeps/demo.toml (3 trials x 2 seeds, demo.toml) on a
#    demo-scale synthetic feature store (100 / 40 / 40 samples, what the demo extract writes),
#    plus the one-off extraction of the same data through the tiny backbones;
#  - seed's way: one run with the tiny backbones recomputed every epoch for every TRAIN and VAL
#    batch and the same head in PyTorch (bench/sweep_seed_way.py), times the sweep's run count.
# Both sides leave decoding and preprocessing out (the seed's way would pay them every epoch),
# so the ratio is a lower bound; real ViT-L/H backbones cost far more than these tiny ones.
# Writes bench/results_sweep.md.   Usage: scripts/bench_sweep.sh [JOBS]   (default 1)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
JOBS="${1:-1}"
GRID=configs/sweeps/demo.toml
CONFIG=configs/demo.toml
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
[ -x "$BIN/train-head" ] || bash scripts/build.sh
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$BIN/train-head" synth-store --out "$TMP/store" >/dev/null
t0=$(date +%s.%N)
"$BIN/train-head" sweep --store "$TMP/store" --grid "$GRID" --out "$TMP/sweep" --jobs "$JOBS" --threads 1 > "$TMP/sweep.log" 2>&1 || { tail -20 "$TMP/sweep.log"; exit 1; }
t1=$(date +%s.%N)
RUNS=$(python3 -c "import json; p = json.load(open('$TMP/sweep/plan.json')); print(len(p['trials']) * p['seeds'])")
EPOCHS=$(python3 -c "import tomllib; print(tomllib.load(open('$CONFIG', 'rb'))['train']['epochs'])")
SEED=$("$WELD_PYTHON" bench/sweep_seed_way.py "$TMP" "$CONFIG" "$EPOCHS" "$BIN/train-head" 2>"$TMP/seed.err" | tail -1) || { cat "$TMP/seed.err"; exit 1; }
python3 - "$t0" "$t1" "$RUNS" "$EPOCHS" "$JOBS" "$SEED" <<'PY' | tee bench/results_sweep.md
import json, sys, datetime
t0, t1, runs, epochs, jobs = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
seed = json.loads(sys.argv[6])
sweep = t1 - t0
cache = seed["extract_once_s"] + sweep
seed_way = runs * seed["run_s"]
print(f"## Demo sweep: {runs} runs x {epochs} epochs (configs/sweeps/demo.toml, demo.toml), 2-core CPU, {datetime.date.today()}")
print()
print("| way | wall s | seed's way / this |")
print("|---|---|---|")
print(f"| seed's way: backbones recomputed every epoch ({runs} x {seed['run_s']:.1f} s per run; backbones {seed['backbone_s']:.1f} s of each) | {seed_way:.1f} | 1.00 |")
print(f"| cache: extract once ({seed['extract_once_s']:.1f} s) + `train-head sweep --jobs {jobs}` ({sweep:.1f} s) | {cache:.1f} | {seed_way / cache:.2f} |")
print()
print("Tiny random backbones (hidden 64) and no decoding on either side: a lower bound. The seed's way's")
print("cost grows with every run and epoch; the cache's extraction is paid once for the whole sweep.")
PY
