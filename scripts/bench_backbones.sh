#!/usr/bin/env bash
# Times our tch forward (`extract forward --bench`) against transformers 4.57.1 on the same random
# weights and inputs, on this machine's CPU, and prints a table with the ratio. A benchmark, not a
# test. The models are ViT-S-sized versions of the three backbones (real ViT-H/L weights are
# not available offline and too slow for a 2-core CPU); timings exclude loading.
# Usage: scripts/bench_backbones.sh [REPEATS] [DEVICE]   (DEVICE: cpu (default) or cuda:N)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
REPEAT="${1:-3}"
DEVICE="${2:-cpu}"
cargo build --release -q -p extract
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$WELD_PYTHON" - "$TMP" <<'PY'
import os, sys
import torch
from safetensors.torch import save_file
from transformers import ASTConfig, ASTModel, DINOv3ViTConfig, DINOv3ViTModel, VJEPA2Config, VJEPA2Model
out = sys.argv[1]
torch.manual_seed(0)
small = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6)
models = {
    "dinov3": (DINOv3ViTModel(DINOv3ViTConfig(**small, intermediate_size=1536, use_gated_mlp=True,
               hidden_act="silu", num_register_tokens=4)), "pixel_values", (2, 3, 224, 224)),
    "vjepa2": (VJEPA2Model(VJEPA2Config(**small, crop_size=128, frames_per_clip=8,
               pred_num_hidden_layers=1)), "pixel_values_videos", (2, 8, 3, 128, 128)),
    "ast": (ASTModel(ASTConfig(**small, intermediate_size=1536, frequency_stride=14,
            time_stride=14)), "input_values", (2, 1024, 128)),
}
for name, (m, key, shape) in models.items():
    m.save_pretrained(os.path.join(out, name))
    save_file({key: torch.randn(shape)}, os.path.join(out, f"{name}_in.safetensors"))
PY
printf "%-8s %-14s %12s %12s %8s\n" model input transformers ours ratio
for name in dinov3 vjepa2 ast; do
  py=$("$WELD_PYTHON" tests/oracle/backbones_hf_forward.py --time "$REPEAT" "$TMP/$name" \
        "$TMP/${name}_in.safetensors" "$TMP/${name}_ref.safetensors" 2>/dev/null | awk '/^TIME/{print $3}')
  rs=$("$BIN/extract" forward --model-dir "$TMP/$name" --input "$TMP/${name}_in.safetensors" \
        --output "$TMP/${name}_ours.safetensors" --device "$DEVICE" --bench "$REPEAT" | awk '/^TIME/{print $2}')
  shape=$("$WELD_PYTHON" -c "from safetensors import safe_open; f=safe_open('$TMP/${name}_in.safetensors','pt'); print('x'.join(map(str,f.get_slice(list(f.keys())[0]).get_shape())))")
  ratio=$(awk -v a="$rs" -v b="$py" 'BEGIN{printf "%.2f", a/b}')
  printf "%-8s %-14s %11.4fs %11.4fs %8s\n" "$name" "$shape" "$py" "$rs" "$ratio"
done
echo "ratio = ours / transformers (f32, batch 2, $REPEAT timed forwards each; transformers on CPU, ours on $DEVICE)"
