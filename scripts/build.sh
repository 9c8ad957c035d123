#!/usr/bin/env bash
# Builds the shipped binaries, each in a cargo invocation of its own so that the library's
# features never unify across them (a workspace build would link OpenCV into train-head):
#   target/release/train-head      the library without decoders (store only; it shares the
#                                  decoder-free extract's build of the library)
#   target/release/extract         everything (decoders, backbones, pipeline)
#   target/release/nodec/extract   decoder-free extract (doctor, inspect, forward, init-models):
#                                  needs only libtorch; the build that travels to a GPU box
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
echo "[build] decoder-free extract"
cargo build --release -p extract --no-default-features
mkdir -p "$BIN/nodec"
cp -f "$BIN/extract" "$BIN/nodec/extract.tmp" && mv -f "$BIN/nodec/extract.tmp" "$BIN/nodec/extract"
echo "[build] train-head"
cargo build --release -p train-head
echo "[build] extract"
cargo build --release -p extract
