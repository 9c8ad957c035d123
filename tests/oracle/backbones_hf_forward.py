"""Runs transformers 4.57.1 on model folders and writes every hidden state (the reference for
folders we did not create with transformers, e.g. `extract init-models` output).

Usage: backbones_hf_forward.py [--time N] MODEL_DIR INPUT.safetensors OUT.safetensors [...]
(triples). The input tensor is the one named as transformers names it. Asserts that loading left
no parameter missing. With --time N, also prints the mean seconds of N forwards (after one warm-up)
as `TIME <model_dir> <seconds>`.
"""
import sys
import time

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModel, VJEPA2Model

assert transformers.__version__ == "4.57.1", transformers.__version__

INPUTS = ["pixel_values", "pixel_values_videos", "input_values"]


def main():
    args = sys.argv[1:]
    repeat = 0
    if args and args[0] == "--time":
        repeat = int(args[1])
        args = args[2:]
    assert len(args) % 3 == 0, "expected MODEL_DIR INPUT OUT triples"
    for i in range(0, len(args), 3):
        model_dir, inp, out = args[i : i + 3]
        model, info = AutoModel.from_pretrained(model_dir, output_loading_info=True)
        assert not info["missing_keys"], f"{model_dir}: missing {info['missing_keys']}"
        assert not info["mismatched_keys"], f"{model_dir}: mismatched {info['mismatched_keys']}"
        model.eval()
        tensors = load_file(inp)
        name = next(n for n in INPUTS if n in tensors)
        kwargs = {"skip_predictor": True} if isinstance(model, VJEPA2Model) else {}
        with torch.no_grad():
            res = model(**{name: tensors[name]}, output_hidden_states=True, **kwargs)
            if repeat:
                model(**{name: tensors[name]}, **kwargs)
                t0 = time.perf_counter()
                for _ in range(repeat):
                    model(**{name: tensors[name]}, **kwargs)
                print(f"TIME {model_dir} {(time.perf_counter() - t0) / repeat:.6f}", flush=True)
        ref = {f"hidden_states.{j}": h.clone().contiguous() for j, h in enumerate(res.hidden_states)}
        ref["last_hidden_state"] = res.last_hidden_state.clone().contiguous()
        save_file(ref, out)
        print(f"{model_dir}: {type(model).__name__}, unexpected keys {len(info['unexpected_keys'])}")


if __name__ == "__main__":
    main()
