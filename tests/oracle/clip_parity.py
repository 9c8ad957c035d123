"""Oracle for shared/tests/clip_parity.rs: tiny random CLIP text models (transformers 4.57.1),
saved with save_pretrained, and their outputs on a padded batch.

usage: clip_parity.py OUT_DIR
  -> OUT_DIR/<case>/model/ (config.json + model.safetensors), OUT_DIR/<case>/expected.safetensors
     with input_ids, hidden_states.{i}, last_hidden_state, text_embeds; OUT_DIR/cases.json
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection


def batch(vocab, lengths, length, eot, pad_ids, gen, low=3):
    """Rows [bos, random words..., eot, padding...]; word ids in [low, vocab - 2)."""
    rows = []
    for n, pad in zip(lengths, pad_ids):
        words = torch.randint(low, vocab - 2, (n,), generator=gen).tolist()
        row = [vocab - 2] + words + [eot]
        row += [pad] * (length - len(row))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


def text_kwargs(vocab, hidden, layers, heads, inter, max_pos, act, eos, bos):
    return dict(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=max_pos,
        hidden_act=act,
        eos_token_id=eos,
        bos_token_id=bos,
        pad_token_id=1,
    )


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    cases = []

    # 1. CLIPModel (text_config + vision_config), eos_token_id = the real end-of-text id; the
    #    extra vision keys, visual_projection, logit_scale and a legacy position_ids buffer must be
    #    skipped by rule. Pads: end-of-text (as the hub tokenizer) and 0. The real vocabulary size,
    #    so end-of-text is 49407 as in the hub's fixed configs.
    v = 49408
    tc = text_kwargs(v, 48, 3, 4, 80, 24, "quick_gelu", v - 1, v - 2)
    cfg = CLIPConfig(
        text_config=tc,
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20,
                           image_size=16, patch_size=8),
        projection_dim=24,
    )
    model = CLIPModel(cfg).eval()
    ids = batch(v, [5, 11, 2], 16, v - 1, [v - 1, 0, v - 1], gen)
    cases.append(("clip_model_eos", model, ids))

    # 2. CLIPTextModelWithProjection with the legacy eos_token_id = 2: argmax pooling
    v = 200
    tc = text_kwargs(v, 32, 2, 2, 64, 20, "quick_gelu", 2, 0)
    model = CLIPTextModelWithProjection(CLIPTextConfig(projection_dim=12, **tc)).eval()
    ids = batch(v, [3, 12, 17], 20, v - 1, [v - 1, v - 1, 5], gen)
    cases.append(("text_proj_legacy_eos2", model, ids))

    # 3. exact gelu, more heads, full length; eos_token_id = 5 is NOT the largest id, so pooling
    #    at the first eos differs from argmax pooling
    v = 120
    tc = text_kwargs(v, 64, 2, 8, 96, 12, "gelu", 5, v - 2)
    model = CLIPTextModelWithProjection(CLIPTextConfig(projection_dim=64, **tc)).eval()
    ids = batch(v, [10, 4], 12, 5, [5, 0], gen, low=6)
    cases.append(("text_proj_gelu", model, ids))

    meta = []
    for name, model, ids in cases:
        d = os.path.join(out, name)
        mdir = os.path.join(d, "model")
        # perturb the LayerNorms / biases away from their init so they are really tested
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "layer_norm" in n or n.endswith(".bias"):
                    p.add_(0.1 * torch.randn_like(p))
        model.save_pretrained(mdir, safe_serialization=True)
        if name == "clip_model_eos":
            st = os.path.join(mdir, "model.safetensors")
            w = load_file(st)
            w["text_model.embeddings.position_ids"] = torch.arange(24).unsqueeze(0)
            save_file(w, st, metadata={"format": "pt"})
        with torch.no_grad():
            if isinstance(model, CLIPModel):
                o = model.text_model(input_ids=ids, output_hidden_states=True)
                text_embeds = model.text_projection(o.pooler_output)
            else:
                o = model(input_ids=ids, output_hidden_states=True)
                text_embeds = o.text_embeds
        t = {"input_ids": ids, "last_hidden_state": o.last_hidden_state, "text_embeds": text_embeds}
        for i, h in enumerate(o.hidden_states):
            t[f"hidden_states.{i}"] = h
        save_file({k: x.contiguous() for k, x in t.items()}, os.path.join(d, "expected.safetensors"))
        meta.append({"name": name, "num_hidden_states": len(o.hidden_states)})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
