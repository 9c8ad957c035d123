#!/usr/bin/env bash
# Converts a Hugging Face model folder's pickled `pytorch_model.bin` (or sharded
# `pytorch_model-*.bin` + `pytorch_model.bin.index.json`) into `model.safetensors` next to it,
# with the same key names, shapes and dtypes. libtorch cannot read the pickled OrderedDict that
# `save_pretrained(safe_serialization=False)` writes; the Rust loader reads the result.
# Usage: scripts/convert_bin.sh MODEL_DIR [--force]
set -euo pipefail
source "$(dirname "$0")/env.sh"
DIR="${1:?usage: convert_bin.sh MODEL_DIR [--force]}"
FORCE="${2:-}"
"$WELD_PYTHON" - "$DIR" "$FORCE" <<'PY'
import json, os, sys
import torch
from safetensors.torch import save_file

d, force = sys.argv[1], sys.argv[2] == "--force"
out = os.path.join(d, "model.safetensors")
if os.path.exists(out) and not force:
    sys.exit(f"{out} exists; pass --force to overwrite")
index = os.path.join(d, "pytorch_model.bin.index.json")
if os.path.exists(index):
    with open(index) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
elif os.path.exists(os.path.join(d, "pytorch_model.bin")):
    files = ["pytorch_model.bin"]
else:
    sys.exit(f"{d}: no pytorch_model.bin or pytorch_model.bin.index.json")
state = {}
for name in files:
    part = torch.load(os.path.join(d, name), map_location="cpu", weights_only=True)
    for k, v in part.items():
        if k in state:
            sys.exit(f"{name}: key {k} appears twice")
        # clone: tied/shared storages cannot be saved as safetensors views
        state[k] = v.detach().clone().contiguous()
save_file(state, out, metadata={"format": "pt"})
n = sum(v.numel() for v in state.values())
print(f"{out}: {len(state)} tensors, {n} values, from {', '.join(files)}")
PY
