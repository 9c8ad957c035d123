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
echo "[test] cargo test"
cargo test --release --workspace --no-fail-fast -- --test-threads=2
