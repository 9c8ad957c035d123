#!/usr/bin/env bash
# Checks the layering on the built files, not on `cargo check`: train-head and the decoder-free
# extract hold no OpenCV or libjpeg (no NEEDED entry) and no symphonia code, every binary links
# libtorch_cuda (not dropped by --as-needed) and starts without LD_LIBRARY_PATH.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
fail() { echo "check_artifacts: $*"; exit 1; }
for b in "$BIN/extract" "$BIN/train-head" "$BIN/nodec/extract"; do
  [ -x "$b" ] || fail "$b missing: run bash scripts/build.sh"
  readelf -d "$b" | grep -q 'NEEDED.*libtorch_cuda.so' || fail "$b: libtorch_cuda.so not linked"
  env -u LD_LIBRARY_PATH "$b" doctor | grep -q '^libtorch 2.11.0' || fail "$b doctor failed"
done
readelf -d "$BIN/extract" | grep -q 'NEEDED.*libopencv' || fail "$BIN/extract: no OpenCV (is it the decoder-free build?)"
readelf -d "$BIN/extract" | grep -q 'NEEDED.*libjpeg' || fail "$BIN/extract: no libjpeg (the direct JPEG path is not linked)"
for b in "$BIN/train-head" "$BIN/nodec/extract"; do
  if readelf -d "$b" | grep -q 'NEEDED.*opencv'; then fail "$b links OpenCV: $(readelf -d "$b" | grep -o 'libopencv[^]]*' | head -3 | tr '\n' ' ')"; fi
  if readelf -d "$b" | grep -q 'NEEDED.*libjpeg'; then fail "$b links libjpeg"; fi
  if grep -qa symphonia "$b"; then fail "$b contains symphonia code"; fi
  echo "check_artifacts: $(basename "$(dirname "$b")")/$(basename "$b"): no OpenCV, no libjpeg, no symphonia"
done
"$BIN/nodec/extract" --help | grep -q 'init-models' || fail "decoder-free extract lacks init-models"
if "$BIN/nodec/extract" --help | grep -qE '^  (run|check-data|synth) '; then fail "decoder-free extract lists decoder commands"; fi
echo "check_artifacts: ok"
