#!/usr/bin/env bash
# Every test: set-up (idempotent), formatting and lint gates, then the Rust test suite, which
# calls the Python oracle under tests/ to generate its parity fixtures at test time.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh --test
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
echo "[test] train-head builds without decoders or backbones"
cargo check --release -p train-head
echo "[test] binaries link libtorch_cuda (not dropped by --as-needed) and run without LD_LIBRARY_PATH"
for b in extract train-head; do
  readelf -d "$BIN/$b" | grep -q 'NEEDED.*libtorch_cuda.so' || { echo "$b: libtorch_cuda.so not linked"; exit 1; }
  env -u LD_LIBRARY_PATH "$BIN/$b" doctor | grep -q '^libtorch 2.11.0' || { echo "$b doctor failed"; exit 1; }
done
echo "[test] cargo test"
cargo test --release --workspace --no-fail-fast -- --test-threads=2
echo "[test] demo end to end at small scale (synth -> init-models -> extract -> verify -> train-head)"
bash scripts/demo.sh 160 > target/demo_test.log 2>&1 || { tail -40 target/demo_test.log; exit 1; }
"$WELD_PYTHON" - <<'PY'
import json
m = json.load(open("runs/demo/metrics.json"))
a = m["test"]["auroc"]
print(f"demo TEST I-AUROC {a:.4f}")
assert a > 0.7, f"demo TEST I-AUROC {a} is not well above chance"
PY
echo "demo: 1 passed, 0 failed"
