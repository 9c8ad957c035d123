"""Oracle for shared/tests/clip_parity.rs: loads the tiny CLIP folder that Rust's
`clip::write_tiny` wrote, with transformers 4.57.1 (model and fast + slow tokenizers), and records
tokenizations and outputs.

usage: clip_tiny.py MODEL_DIR OUT_DIR -> OUT_DIR/tokens.json, OUT_DIR/expected.safetensors
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPTextModelWithProjection, CLIPTokenizer, CLIPTokenizerFast

TEXTS = [
    "a normal weld",
    "A photo of a DEFECTIVE weld with porosity.",
    "burn-through, spatter & undercut!!",
    "lack of fusion in the seam 12",
    "weldingz",
    "  excessive   penetration\tof the bead  ",
]


def main():
    mdir, out = sys.argv[1], sys.argv[2]
    fast = CLIPTokenizerFast.from_pretrained(mdir)
    slow = CLIPTokenizer.from_pretrained(mdir)
    model = CLIPTextModelWithProjection.from_pretrained(mdir).eval()
    tokens = {
        "texts": TEXTS,
        "fast": [fast(t)["input_ids"] for t in TEXTS],
        "slow": [slow(t)["input_ids"] for t in TEXTS],
    }
    enc = fast(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        o = model(input_ids=enc["input_ids"], output_hidden_states=True)
    t = {"input_ids": enc["input_ids"], "last_hidden_state": o.last_hidden_state, "text_embeds": o.text_embeds}
    for i, h in enumerate(o.hidden_states):
        t[f"hidden_states.{i}"] = h
    os.makedirs(out, exist_ok=True)
    save_file({k: x.contiguous() for k, x in t.items()}, os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "tokens.json"), "w") as f:
        json.dump(tokens, f, indent=1)


if __name__ == "__main__":
    main()
