"""Parity fixtures for the Rust ViT backbones (DINOv3, V-JEPA 2, AST), written at test time.

Usage: backbones_make.py OUTDIR [--only NAME[,NAME...]]

Builds tiny random models with transformers 4.57.1 (every parameter perturbed, so no bias, norm or
token is trivially 0/1), saves each with `save_pretrained` (some sharded, some from a task model
with its key prefix and head), draws random inputs and records every hidden state. Writes
OUTDIR/cases.json and, per case, OUTDIR/NAME/{model/, input.safetensors, ref.safetensors}.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    ASTConfig,
    ASTForAudioClassification,
    ASTModel,
    DINOv3ViTConfig,
    DINOv3ViTModel,
    VJEPA2Config,
    VJEPA2ForVideoClassification,
    VJEPA2Model,
)

assert transformers.__version__ == "4.57.1", transformers.__version__


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            near_one = ("norm" in name and name.endswith("weight") and p.ndim == 1) or name.endswith(
                "lambda1"
            )
            p.copy_(1.0 + 0.1 * noise if near_one else 0.05 * noise)


def dinov3(**kw):
    base = dict(
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        hidden_act="silu",
        use_gated_mlp=True,
        num_register_tokens=4,
        key_bias=False,
    )
    base.update(kw)
    return DINOv3ViTConfig(**base)


def vjepa2(**kw):
    base = dict(
        hidden_size=64,
        num_attention_heads=2,
        num_hidden_layers=3,
        mlp_ratio=2.0,
        crop_size=32,
        patch_size=8,
        tubelet_size=2,
        frames_per_clip=8,
        pred_hidden_size=32,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        pred_num_mask_tokens=2,
        num_pooler_layers=1,
    )
    base.update(kw)
    return VJEPA2Config(**base)


def ast(**kw):
    base = dict(
        hidden_size=64,
        num_attention_heads=4,
        num_hidden_layers=3,
        intermediate_size=128,
        patch_size=16,
        frequency_stride=6,
        time_stride=10,
        max_length=100,
        num_mel_bins=40,
    )
    base.update(kw)
    return ASTConfig(**base)


# name: (model class, config, input name, input shape, encoder getter, save kwargs)
CASES = {
    "dinov3_gated_r4_nonsquare": (
        DINOv3ViTModel, dinov3(), "pixel_values", (2, 3, 48, 80), None, {}),
    "dinov3_plain_r0_keybias": (
        DINOv3ViTModel,
        dinov3(num_register_tokens=0, use_gated_mlp=False, hidden_act="gelu", key_bias=True,
               patch_size=8, image_size=32, layer_norm_eps=1e-6, rope_theta=50.0),
        "pixel_values", (2, 3, 32, 40), None, {}),
    "dinov3_r2_sharded": (
        DINOv3ViTModel,
        dinov3(num_register_tokens=2, num_attention_heads=2, query_bias=False, mlp_bias=False),
        "pixel_values", (3, 3, 32, 32), None, {"max_shard_size": "60KB"}),
    "vjepa2_t5": (
        VJEPA2Model, vjepa2(), "pixel_values_videos", (2, 5, 3, 32, 32), None, {}),
    "vjepa2_t1_videocls": (
        VJEPA2ForVideoClassification, vjepa2(num_attention_heads=4, num_labels=3),
        "pixel_values_videos", (2, 1, 3, 32, 32), "vjepa2", {}),
    "vjepa2_t4_noqkvbias_sharded": (
        VJEPA2Model, vjepa2(qkv_bias=False, layer_norm_eps=1e-5), "pixel_values_videos",
        (2, 4, 3, 32, 32), None, {"max_shard_size": "60KB"}),
    "ast_strides_6_10": (
        ASTModel, ast(), "input_values", (2, 100, 40), None, {}),
    "ast_audiocls_sharded": (
        ASTForAudioClassification,
        ast(frequency_stride=14, time_stride=14, max_length=64, num_mel_bins=48, num_labels=5),
        "input_values", (2, 64, 48), "audio_spectrogram_transformer", {"max_shard_size": "80KB"}),
    # head_dim 64 and the real token geometry (RoPE: 16 DINOv3 frequencies; V-JEPA 2 segments of
    # 20 channels + 4 pass-through on a 16x16 grid; AST 1024x128 with strides 14 -> 659 tokens)
    "dinov3_headdim64": (
        DINOv3ViTModel, dinov3(hidden_size=128, num_attention_heads=2, num_hidden_layers=2),
        "pixel_values", (2, 3, 224, 224), None, {}),
    "vjepa2_headdim64_crop256": (
        VJEPA2Model, vjepa2(hidden_size=128, num_attention_heads=2, num_hidden_layers=2,
                            crop_size=256, patch_size=16),
        "pixel_values_videos", (2, 2, 3, 256, 256), None, {}),
    "ast_real_geometry": (
        ASTModel, ast(num_hidden_layers=2, frequency_stride=14, time_stride=14, max_length=1024,
                      num_mel_bins=128, layer_norm_eps=1e-12),
        "input_values", (2, 1024, 128), None, {}),
    # pickled pytorch_model.bin, as the AST hub checkpoint ships: the Rust test converts it first
    "ast_audiocls_bin": (
        ASTForAudioClassification, ast(num_labels=2, layer_norm_eps=1e-12),
        "input_values", (2, 100, 40), "audio_spectrogram_transformer", {"safe_serialization": False}),
}


def run(model, name, attr, x):
    enc = getattr(model, attr) if attr else model
    kwargs = {"skip_predictor": True} if isinstance(enc, VJEPA2Model) else {}
    with torch.no_grad():
        out = enc(**{name: x}, output_hidden_states=True, **kwargs)
    hs = out.hidden_states
    assert torch.equal(hs[-1], out.last_hidden_state), "4.57 ties the last hidden state"
    return hs, out.last_hidden_state


def main():
    outdir = sys.argv[1]
    only = None
    if len(sys.argv) > 3 and sys.argv[2] == "--only":
        only = set(sys.argv[3].split(","))
    torch.manual_seed(0)
    cases = []
    for i, (case, (cls, cfg, in_name, shape, attr, save_kw)) in enumerate(CASES.items()):
        if only is not None and case not in only:
            continue
        torch.manual_seed(100 + i)
        model = cls(cfg).eval()
        perturb(model, 1000 + i)
        d = os.path.join(outdir, case)
        model.save_pretrained(os.path.join(d, "model"), **save_kw)
        g = torch.Generator().manual_seed(2000 + i)
        x = torch.randn(shape, generator=g)
        hs, last = run(model, in_name, attr, x)
        save_file({in_name: x.contiguous()}, os.path.join(d, "input.safetensors"))
        ref = {f"hidden_states.{j}": h.clone().contiguous() for j, h in enumerate(hs)}
        ref["last_hidden_state"] = last.clone().contiguous()
        # the saved folder loaded by transformers in bf16 the usual way (`dtype=torch.bfloat16`;
        # unlike `.to(bf16)` this keeps DINOv3's non-persistent f32 `inv_freq`), stored as f32
        m16 = cls.from_pretrained(os.path.join(d, "model"), dtype=torch.bfloat16).eval()
        hs16, _ = run(m16, in_name, attr, x.to(torch.bfloat16))
        for j, h in enumerate(hs16):
            ref[f"bf16.hidden_states.{j}"] = h.float().contiguous()
        save_file(ref, os.path.join(d, "ref.safetensors"))
        cases.append(
            {
                "name": case,
                "model_dir": os.path.join(d, "model"),
                "input": os.path.join(d, "input.safetensors"),
                "input_name": in_name,
                "ref": os.path.join(d, "ref.safetensors"),
                "num_hidden": len(hs),
                "files": sorted(os.listdir(os.path.join(d, "model"))),
                "needs_conversion": save_kw.get("safe_serialization") is False,
            }
        )
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
