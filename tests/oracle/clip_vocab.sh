#!/usr/bin/env bash
# Builds the real CLIP tokenizer (vocab.json, merges.txt, tokenizer.json) for the tokenizer parity
# test, from the BPE merges file shipped inside the open_clip_torch wheel. The wheel is downloaded
# with --no-deps and read as a zip: it is never installed (installing it would upgrade torch).
# Idempotent; everything is cached under <repo>/.venv/cache/. Prints the tokenizer folder.
#   bash tests/oracle/clip_vocab.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${WELD_PYTHON:-$ROOT/.venv/bin/python}"
CACHE="$ROOT/.venv/cache"
WHEELS="$CACHE/open_clip_wheel"
OUT="$CACHE/clip_tokenizer"
if [ -f "$OUT/tokenizer.json" ] && [ -f "$OUT/vocab.json" ] && [ -f "$OUT/merges.txt" ]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/open_clip_torch-3.3.0-*.whl >/dev/null 2>&1; then
  "$PY" -m pip download -q --disable-pip-version-check --no-deps open_clip_torch==3.3.0 -d "$WHEELS" >&2
fi
WHEEL="$(ls "$WHEELS"/open_clip_torch-3.3.0-*.whl | head -n 1)"
"$PY" "$ROOT/tests/oracle/clip_vocab.py" "$WHEEL" "$OUT" >&2
echo "$OUT"
