#!/usr/bin/env bash
# Benchmark (not a test): `extract run` against a straightforward Python pipeline doing the same
# work (bench/extract_ref.py: cv2 + soundfile/torchaudio + transformers + zarr), side by side in
# one run, on synthetic data with the tiny random backbones, for each sample count given.
#   bash scripts/bench_extract.sh [SAMPLES[,SAMPLES...]] [DEVICE]      (default: 96,192 cpu)
# Two ratios per sample count:
#   end-to-end wall: both processes timed from start to exit (imports, model loading included);
#   steady state: our summed stage seconds (report in STORE/reports/extract/zarr.json; model loading excluded)
#     against the Python loop seconds (its `BENCH` line; model loading excluded).
# Writes bench/results_extract_demo.md (and keeps logs under target/bench_extract/); the real-size
# run writes bench/results_extract.md.
# To compare two builds: EXTRACT_BIN=/path/to/old/extract BENCH_CONFIG=old_demo.toml OUT=old.md.
# Real media size (issue 11): bash scripts/bench_extract.sh --geometry real [SAMPLES] [DEVICE]
#   runs scripts/bench_extract_real.sh (default 16 samples; writes the same results file).
set -euo pipefail
if [ "${1:-}" = "--geometry" ]; then
  case "${2:-}" in
    real) shift 2; exec bash "$(dirname "$0")/bench_extract_real.sh" "$@" ;;
    demo) shift 2 ;;
    *) echo "--geometry demo|real" >&2; exit 2 ;;
  esac
fi
source "$(dirname "$0")/env.sh"
cd "$ROOT"
NS="${1:-96,192}"
DEVICE="${2:-cpu}"
EXTRACT="${EXTRACT_BIN:-$BIN/extract}"
CONFIG="${BENCH_CONFIG:-configs/extract_demo.toml}"
OUT="${OUT:-bench/results_extract_demo.md}"
[ -x "$EXTRACT" ] || bash scripts/setup.sh --test
W="$ROOT/target/bench_extract"
rm -rf "$W"; mkdir -p "$W"
"$EXTRACT" init-models --out "$W/models" --size tiny >/dev/null
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for N in ${NS//,/ }; do
  R="$W/n$N"; mkdir -p "$R"
  "$EXTRACT" synth --out "$R/synth" --samples "$N" --seed 11 >/dev/null
  sed -e "s|data/demo/synth|$R/synth|g; s|data/demo/models|$W/models|g; s|data/demo/store.zarr|$R/ours.zarr|; s|^device = .*|device = \"$DEVICE\"|" \
    "$CONFIG" > "$R/extract.toml"
  t0=$(date +%s.%N)
  "$EXTRACT" run --config "$R/extract.toml" 2>"$R/ours.log"
  t1=$(date +%s.%N)
  "$WELD_PYTHON" bench/extract_ref.py --config "$R/extract.toml" --out "$R/python.zarr" > "$R/python.log" 2>&1
  t2=$(date +%s.%N)
  echo "$N $t0 $t1 $t2" >> "$W/walls.txt"
done
python3 - "$W" "$DEVICE" "$LOAD0" "${BENCH_LABEL:-commit $(git rev-parse --short HEAD)}" <<'PY' | tee "$OUT"
import json, os, re, sys
w, dev, load0, label = sys.argv[1:5]
rows = []
for line in open(os.path.join(w, "walls.txt")):
    n, t0, t1, t2 = line.split()
    n, t0, t1, t2 = int(n), float(t0), float(t1), float(t2)
    rep = json.load(open(os.path.join(w, f"n{n}", "ours.zarr", "reports", "extract", "zarr.json")))["attributes"]["report"]
    py = None
    for l in open(os.path.join(w, f"n{n}", "python.log")):
        if l.startswith("BENCH "):
            py = json.loads(l[6:])
    if py is None:
        sys.exit(f"no BENCH line in {w}/n{n}/python.log")
    ours_stages = {s["stage"]: s for s in rep["stages"]}
    rows.append((n, t1 - t0, t2 - t1, sum(s["seconds"] for s in rep["stages"]), py, ours_stages))
load1 = open("/proc/loadavg").read().split()[:3]
print(f"# extract benchmark: weld-cache `extract run` vs Python reference (bench/extract_ref.py)\n")
print(f"Synthetic data, tiny random backbones, device {dev}, {os.cpu_count()} cores "
      f"(load average {load0} before, {' '.join(load1)} after), {label}. "
      "Produced by `scripts/bench_extract.sh`.\n")
print("## End-to-end wall (process start to exit: imports, model loading, store writing)\n")
print("| samples | ours s | Python s | ours samples/s | Python samples/s | ratio |")
print("|---:|---:|---:|---:|---:|---:|")
for n, ow, pw, _, _, _ in rows:
    print(f"| {n} | {ow:.2f} | {pw:.2f} | {n/ow:.2f} | {n/pw:.2f} | **{pw/ow:.2f}x** |")
print("\n## Steady state (model loading excluded: our summed stage seconds vs the Python loop)\n")
print("| samples | ours s | Python s | ours ms/sample | Python ms/sample | ratio |")
print("|---:|---:|---:|---:|---:|---:|")
for n, _, _, os_, py, _ in rows:
    ps = py["loop_seconds"]
    print(f"| {n} | {os_:.2f} | {ps:.2f} | {1e3*os_/n:.1f} | {1e3*ps/n:.1f} | **{ps/os_:.2f}x** |")
n, _, _, _, py, st = rows[-1]
print(f"\n## Per stage ({n} samples, seconds)\n")
print("Ours: stage wall, then decode+preprocess summed over the worker threads, device step, "
      "waiting for decoded batches, and the writer thread (chunks, syncs, markers) -- these overlap.\n")
print("| stage | ours wall | ours decode | ours device | ours wait | ours write | Python | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for k in ("sensor", "text", "image", "audio", "video"):
    s, p = st.get(k), py["stages"].get(k, 0.0)
    if s is None:
        continue
    r = f"{p/s['seconds']:.2f}x" if s["seconds"] > 0 else "-"
    f = lambda key: f"{s[key]:.2f}" if key in s else "-"
    print(f"| {k} | {s['seconds']:.2f} | {f('prepare_seconds')} | {f('compute_seconds')} "
          f"| {f('wait_seconds')} | {f('write_seconds')} | {p:.2f} | {r} |")
print("\nNotes: our store fsyncs every chunk and marker before a sample counts as done "
      "(crash safety); the Python reference writes zarr chunks without any fsync. "
      "The Python loop processes one sample at a time (batch 1, 5 images per DINOv3 forward); "
      "ours runs fixed batch groups with decode workers overlapping the forwards.")
PY
