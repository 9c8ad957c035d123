#!/usr/bin/env bash
# Idempotent set-up: Debian packages (opencv, libjpeg, clang), the project venv (torch 2.11.0 from PyPI, whose libtorch the
# Rust crates link), optionally the test oracle's Python packages, then a release build.
#   bash scripts/setup.sh          # product only
#   bash scripts/setup.sh --test   # plus transformers/torchaudio/zarr/... for the parity tests
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
WITH_TEST=0
for a in "$@"; do [ "$a" = "--test" ] && WITH_TEST=1; done

# The Debian packages and the venv's torch are independent downloads: fetched side by side.
# The test oracle's packages install in the background while the Rust build runs (the build
# needs only torch); the script waits for them and fails if they failed.
apt_install() {
  local need_apt=()
  # libjpeg-dev: jpeglib.h for the direct JPEG path (libjpeg-turbo, the library opencv decodes with)
  for p in libopencv-dev libjpeg-dev clang libclang-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[setup] installing Debian packages: ${need_apt[*]}"
    local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
}

PY="${PYTHON:-python3}"
pip_q() { "$VIRTUAL_ENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
venv_torch() {
  if [ ! -x "$VIRTUAL_ENV/bin/python" ]; then
    echo "[setup] creating $VIRTUAL_ENV"
    "$PY" -m venv "$VIRTUAL_ENV"
  fi
  if ! "$VIRTUAL_ENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.11.0') else 1)" 2>/dev/null; then
    echo "[setup] installing torch==2.11.0 (about 5 GB with its CUDA libraries)"
    pip_q torch==2.11.0
  fi
}
oracle_packages() {
  if ! "$VIRTUAL_ENV/bin/python" -c "import transformers, torchaudio, torchvision, zarr, xarray, safetensors, numpy, sklearn, cv2, soundfile, tensorboard" 2>/dev/null; then
    echo "[setup] installing the test oracle's packages"
    pip_q torch==2.11.0 transformers==4.57.1 torchaudio==2.11.0 safetensors numpy zarr xarray scikit-learn \
      torchvision==0.26.0 opencv-python-headless soundfile tensorboard==2.21.0
  fi
  # The real CLIP vocabulary for the tokenizer parity test (read from the open_clip wheel, which
  # is downloaded but never installed: installing it would change torch).
  bash tests/oracle/clip_vocab.sh >/dev/null
}

apt_install &
APT=$!
venv_torch
wait "$APT" || { echo "[setup] installing the Debian packages failed" >&2; exit 1; }

ORACLE=""
ORACLE_LOG="$ROOT/target/setup_oracle.log"
if [ "$WITH_TEST" = 1 ]; then
  mkdir -p "$ROOT/target"
  oracle_packages > "$ORACLE_LOG" 2>&1 &
  ORACLE=$!
  # a failed build stops the background install too
  trap '[ -n "$ORACLE" ] && kill "$ORACLE" 2>/dev/null || true' EXIT
fi

echo "[setup] building the binaries (scripts/build.sh)"
bash scripts/build.sh
if [ -n "$ORACLE" ]; then
  if ! wait "$ORACLE"; then
    cat "$ORACLE_LOG" >&2
    echo "[setup] installing the test oracle's packages failed (log above: $ORACLE_LOG)" >&2
    exit 1
  fi
  cat "$ORACLE_LOG"
  ORACLE=""
fi
echo "[setup] done: binaries in $BIN"
