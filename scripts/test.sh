#!/usr/bin/env bash
# Every test: set-up (idempotent), formatting and lint gates, then the Rust test suite, which
# calls the Python oracle under tests/ to generate its parity fixtures at test time.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
T0=$SECONDS
LAST=$SECONDS
# phase NAME: prints how long the previous phase took (the suite must stay well inside CI's time)
phase() { echo "[test] $(( SECONDS - LAST )) s; next: $1 (at $(( SECONDS - T0 )) s)"; LAST=$SECONDS; }
bash scripts/setup.sh --test
phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
phase "artifacts"
echo "[test] the shipped binaries: train-head and the decoder-free extract hold no OpenCV/symphonia"
bash scripts/check_artifacts.sh
phase "gpu_check dry run"
echo "[test] scripts/gpu_check.sh --device cpu --size tiny (the GPU check's CPU dry run, decoder-free binaries)"
bash scripts/gpu_check.sh --device cpu --size tiny > target/gpu_check_dry.log 2>&1 \
  || { tail -30 target/gpu_check_dry.log; exit 1; }
grep -q "^| dinov3 | .* | 2 | " target/gpu_check_dry.md && grep -q "^| V-JEPA 2 preprocessing |" target/gpu_check_dry.md \
  && grep -q "18,527,809 | off | 1 |" target/gpu_check_dry.md \
  || { cat target/gpu_check_dry.md; echo "[test] the dry run's table lacks a row" >&2; exit 1; }
echo "[test] cargo test (one package at a time: a workspace build would unify the features)"
phase "cargo test -p weld-cache"
cargo test --release -p weld-cache --features extract --no-fail-fast -- --test-threads=2
phase "cargo test -p extract"
cargo test --release -p extract --no-fail-fast -- --test-threads=2
phase "cargo test -p train-head"
cargo test --release -p train-head --no-fail-fast -- --test-threads=2
phase "demo"
echo "[test] demo end to end at small scale (synth -> init-models -> extract -> verify -> train-head -> sweep)"
bash scripts/demo.sh 160 > target/demo_test.log 2>&1 || { tail -40 target/demo_test.log; exit 1; }
"$WELD_PYTHON" - <<'PY'
import json
m = json.load(open("runs/demo/metrics.json"))
a = m["test"]["auroc"]
print(f"demo TEST I-AUROC {a:.4f}")
assert a > 0.7, f"demo TEST I-AUROC {a} is not well above chance"
rows = open("runs/demo-sweep/leaderboard.csv").read().splitlines()[1:]
assert len(rows) == 3, f"demo sweep leaderboard has {len(rows)} trials, expected 3"
print(f"demo sweep: {len(rows)} trials x 2 seeds, best VAL I-AUROC {float(rows[0].split(',')[4]):.4f}")
import csv
table = list(csv.DictReader(open("runs/demo-compare.csv")))
heads = {r["head"] for r in table}
want = {"causal-film", "video-ae", "late-fusion", "mlp-ae", "concat-mlp", "gaussian", "knn", "ae",
        "paper-audio-ae", "paper-video-ae", "supcon"}
assert len(table) == 15 and heads == want, f"demo comparison table: {len(table)} rows, heads {sorted(heads)}"
print(f"demo comparison: {len(table)} runs of {len(heads)} heads")
PY
echo "[test] the shipped binaries again (demo.sh rebuilt them through setup.sh after cargo test relinked them)"
bash scripts/check_artifacts.sh
phase "end"
echo "[test] total $(( SECONDS - T0 )) s"
echo "demo: 1 passed, 0 failed"
