#!/usr/bin/env bash
# Benchmark (not a test): samples/s of `extract run` against a straightforward Python pipeline
# doing the same work (bench/extract_ref.py: cv2 + soundfile/torchaudio + transformers + zarr),
# side by side in one run, on synthetic data with the tiny random backbones.
#   bash scripts/bench_extract.sh [SAMPLES] [DEVICE]
# Writes bench/results_extract.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
N="${1:-48}"
DEVICE="${2:-cpu}"
[ -x "$BIN/extract" ] || bash scripts/setup.sh --test
W="$ROOT/target/bench_extract"
rm -rf "$W"; mkdir -p "$W"
"$BIN/extract" synth --out "$W/synth" --samples "$N" --seed 11 >/dev/null
"$BIN/extract" init-models --out "$W/models" --size tiny >/dev/null
sed -e "s|data/demo/synth|$W/synth|g; s|data/demo/models|$W/models|g; s|data/demo/store.zarr|$W/ours.zarr|; s|^device = .*|device = \"$DEVICE\"|" \
  configs/extract_demo.toml > "$W/extract.toml"
t0=$(date +%s.%N)
"$BIN/extract" run --config "$W/extract.toml" 2>"$W/ours.log"
t1=$(date +%s.%N)
"$WELD_PYTHON" bench/extract_ref.py --config "$W/extract.toml" --out "$W/python.zarr" > "$W/python.log" 2>&1
t2=$(date +%s.%N)
python3 - "$N" "$t0" "$t1" "$t2" "$DEVICE" <<'PY' | tee bench/results_extract.md
import sys, platform, os
n, t0, t1, t2, dev = int(sys.argv[1]), *map(float, sys.argv[2:5]), sys.argv[5]
ours, py = t1 - t0, t2 - t1
print(f"| pipeline ({n} synthetic samples, tiny backbones, {dev}, {os.cpu_count()} cores) | wall s | samples/s |")
print("|---|---:|---:|")
print(f"| weld-cache `extract run` | {ours:.2f} | {n/ours:.2f} |")
print(f"| Python reference (bench/extract_ref.py) | {py:.2f} | {n/py:.2f} |")
print(f"\nratio (ours / Python, samples/s): **{py/ours:.2f}x**  (both include model loading and writing the store)")
PY
