"""Wall time of one Causal-FiLM experiment with the feature cache against recomputing the tiny
backbones every epoch as the seed did (scripts/bench_train.sh, part 2).

Inputs: synthetic already-preprocessed tensors per sample (V-JEPA 2 clip [8, 3, 64, 64], 4 AST
fbank windows [128, 128], 5 DINOv3 views [3, 224, 224], sensors [128, 6]; defects shift the
views), so decoding and preprocessing are left out of both sides (the recompute side would pay
them every epoch: the ratio is a lower bound). Backbones: the shapes of `extract init-models`
(hidden 64, 4 layers; random weights built here with transformers).

- cache: every sample through the backbones once, features written as a zarr v3 group in the
  store's schema (one sample per chunk, uncompressed), then `train-head train` on it.
- recompute: per epoch every TRAIN batch and every VAL batch runs the backbones (no grad) and then
  the head (tests/oracle/heads_ref.py classes, torch AdamW), TEST once at the end, as the seed's
  loop did. Its backbone seconds are reported separately, so the cache's own effect (same Python
  head on both sides) is printed too.

Usage: recompute_backbones.py TMP CONFIG EPOCHS TRAIN_HEAD_BIN   (prints a markdown table)
"""
import json
import os
import subprocess
import sys
import time
import tomllib
import warnings

import numpy as np
import torch
import zarr
from transformers import ASTConfig, ASTModel, DINOv3ViTConfig, DINOv3ViTModel, VJEPA2Config, VJEPA2Model
from zarr.codecs import BytesCodec

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "oracle"))
from heads_ref import Wrapper, anomaly_score, loss_terms  # noqa: E402
from train_ref import lr_at, noise  # noqa: E402

N_TRAIN, N_VAL, N_TEST = 100, 40, 40
TOKEN_LAYERS = (2, 3)


def models():
    torch.manual_seed(0)
    vj = VJEPA2Model(VJEPA2Config(patch_size=16, crop_size=64, frames_per_clip=16, tubelet_size=2, hidden_size=64,
                                  num_attention_heads=2, num_hidden_layers=4, pred_hidden_size=32,
                                  pred_num_attention_heads=2, pred_num_hidden_layers=1, pred_num_mask_tokens=2))
    ast = ASTModel(ASTConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
                             patch_size=16, frequency_stride=14, time_stride=14, max_length=128, num_mel_bins=128))
    dino = DINOv3ViTModel(DINOv3ViTConfig(patch_size=16, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                                          num_attention_heads=4, hidden_act="silu", rope_theta=100.0, image_size=224,
                                          key_bias=False, use_gated_mlp=True, num_register_tokens=4))
    return [m.eval() for m in (vj, ast, dino)]


def make_inputs():
    g = torch.Generator().manual_seed(1)
    n = N_TRAIN + N_VAL + N_TEST
    split = ["TRAIN"] * N_TRAIN + ["VAL"] * N_VAL + ["TEST"] * N_TEST
    cls = [0] * N_TRAIN + [1 + i % 3 if i < N_VAL // 2 else 0 for i in range(N_VAL)] + \
          [1 + i % 3 if i < N_TEST // 2 else 0 for i in range(N_TEST)]
    video = torch.randn(n, 8, 3, 64, 64, generator=g).half()
    audio = torch.randn(n, 4, 128, 128, generator=g).half()
    images = torch.randn(n, 5, 3, 224, 224, generator=g)
    for i, c in enumerate(cls):
        if c:
            images[i] += 0.5 * c
    sensor = torch.randn(n, 128, 6, generator=g) + 10.0
    samples = [{"key": f"{s}/{i:05}", "id": f"{i:05}", "class_code": c, "class_name": "good" if c == 0 else f"defect_{c}",
                "split": s, "session": "s0"} for i, (s, c) in enumerate(zip(split, cls))]
    return {"video": video, "audio": audio, "images": images.half(), "sensor": sensor}, samples


def backbone_features(ms, x, idx):
    """-> head batch dict (f32) for samples idx: video [B,64,64], audio [B,332,64], pooled, tokens."""
    vj, ast, dino = ms
    with torch.no_grad():
        v = vj(pixel_values_videos=x["video"][idx].float()).last_hidden_state  # [B, 64, 64]
        b = len(idx)
        a = ast(input_values=x["audio"][idx].float().reshape(b * 4, 128, 128)).last_hidden_state
        a = a.reshape(b, 4, a.shape[1], a.shape[2])  # [B, 4, 83, 64]
        hs = dino(pixel_values=x["images"][idx].float().reshape(b * 5, 3, 224, 224), output_hidden_states=True).hidden_states
        hs = torch.stack([h.reshape(b, 5, h.shape[1], h.shape[2]) for h in hs], dim=1)  # [B, 5 layers, 5 views, 201, 64]
        pooled = torch.stack([hs.mean(dim=3), hs.amax(dim=3)], dim=3)  # [B, L+1, V, 2, D]
    return v, a, pooled, hs


def head_batch(cfg, v, a, pooled, hs, sensor):
    sel = [(br["layer"], 0 if br["pool"] == "mean" else 1) for br in cfg["model"]["result"]["branches"] if br["pool"] != "gem"]
    return {
        "video": v, "audio": a.reshape(a.shape[0], -1, a.shape[-1]), "sensor": sensor,
        "image_pooled": torch.stack([pooled[:, l, :, s] for l, s in sel], dim=1),
        "image_tokens": [hs[:, br["layer"]] for br in cfg["model"]["result"]["branches"] if br["pool"] == "gem"],
    }


def create(g, name, shape, dtype):
    return g.create_array(name, shape=shape, chunks=(1,) + tuple(shape[1:]), dtype=dtype, compressors=None,
                          serializer=BytesCodec(endian="little"), fill_value=0,
                          chunk_key_encoding={"name": "default", "separator": "/"}, config={"write_empty_chunks": True})


def cache_experiment(tmp, cfg_path, epochs, bin_, ms, x, samples, text):
    t0 = time.perf_counter()
    store = os.path.join(tmp, "cache_store")
    g = zarr.open_group(store, mode="w", attributes={"samples": samples})
    n = len(samples)
    arrs = {
        "video/tokens": create(g, "video/tokens", (n, 64, 64), "float16"),
        "audio/tokens": create(g, "audio/tokens", (n, 4, 83, 64), "float16"),
        "image/pooled": create(g, "image/pooled", (n, 5, 5, 2, 64), "float16"),
        "sensor/raw": create(g, "sensor/raw", (n, 128, 6), "float32"),
    }
    for l in TOKEN_LAYERS:
        arrs[f"image/tokens_L{l}"] = create(g, f"image/tokens_L{l}", (n, 5, 201, 64), "float16")
    for s in range(0, n, 16):
        idx = torch.arange(s, min(n, s + 16))
        v, a, pooled, hs = backbone_features(ms, x, idx)
        sl = slice(s, s + len(idx))
        arrs["video/tokens"][sl] = v.half().numpy()
        arrs["audio/tokens"][sl] = a.half().numpy()
        arrs["image/pooled"][sl] = pooled.half().numpy()
        arrs["sensor/raw"][sl] = x["sensor"][idx].numpy()
        for l in TOKEN_LAYERS:
            arrs[f"image/tokens_L{l}"][sl] = hs[:, l].half().numpy()
    emb = g.create_array("text/embed", shape=(len(text),), chunks=(len(text),), dtype="float32",
                         compressors=None, serializer=BytesCodec(endian="little"),
                         dimension_names=["feature"], attributes={"prompt": "a normal weld"})
    emb[...] = text.numpy().astype("float32")
    t_extract = time.perf_counter() - t0
    t1 = time.perf_counter()
    subprocess.run([bin_, "train", "--store", store, "--config", cfg_path, "--out", os.path.join(tmp, "cache_run"),
                    "--set", f"train.epochs={epochs}", "--set", "train.patience=1000"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return t_extract, time.perf_counter() - t1


def recompute_experiment(cfg, epochs, ms, x, samples, text):
    t = dict(cfg["train"], epochs=epochs)
    m = cfg["model"]
    rows = {s: [i for i, r in enumerate(samples) if r["split"] == s] for s in ("TRAIN", "VAL", "TEST")}
    torch.manual_seed(t["seed"])
    net = Wrapper(cfg)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weight_decay"])
    t_bb = 0.0
    t0 = time.perf_counter()

    def feats(idx):
        nonlocal t_bb
        tb = time.perf_counter()
        out = head_batch(cfg, *backbone_features(ms, x, idx), x["sensor"][idx])
        t_bb += time.perf_counter() - tb
        return out

    def score(split):
        net.eval()
        r = rows[split]
        with torch.no_grad():
            for s in range(0, len(r), t["eval_batch_size"]):
                zr, zp = net.model(feats(torch.tensor(r[s:s + t["eval_batch_size"]])))
                anomaly_score(cfg, zr, zp)

    for epoch in range(epochs):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(t, epoch)
        r = torch.tensor(rows["TRAIN"])[torch.randperm(len(rows["TRAIN"]))]
        net.train()
        for s in range(0, len(r), t["batch_size"]):
            b = feats(r[s:s + t["batch_size"]])
            b["video"], b["audio"] = noise(b["video"], m), noise(b["audio"], m)
            zr, zp = net.model(b)
            loss = loss_terms(cfg, zr, zp, net.clip_head, text)["total"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, t["grad_clip"])
            opt.step()
        score("VAL")
    score("TEST")
    return time.perf_counter() - t0, t_bb


def main():
    tmp, cfg_path, epochs, bin_ = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    warnings.filterwarnings("ignore")
    with open(cfg_path, "rb") as f:
        cfg = tomllib.load(f)
    ms = models()
    x, samples = make_inputs()
    text = torch.randn(cfg["model"]["clip_head"]["text_dim"], generator=torch.Generator().manual_seed(2))
    t_ext, t_train = cache_experiment(tmp, cfg_path, epochs, bin_, ms, x, samples, text)
    t_rec, t_bb = recompute_experiment(cfg, epochs, ms, x, samples, text)
    cache = t_ext + t_train
    same_head = t_ext + (t_rec - t_bb)
    print(f"## One experiment, {epochs} epochs, {N_TRAIN}/{N_VAL}/{N_TEST} samples, tiny backbones ({os.path.basename(cfg_path)})")
    print()
    print("| experiment | wall s | recompute / this |")
    print("|---|---|---|")
    print(f"| recompute backbones every epoch (Python head; backbones {t_bb:.1f} s of it) | {t_rec:.1f} | 1.00 |")
    print(f"| cache: extract once ({t_ext:.1f} s) + train-head ({t_train:.1f} s) | {cache:.1f} | {t_rec / cache:.2f} |")
    print(f"| cache, same Python head: extract once + head time of the recompute run | {same_head:.1f} | {t_rec / same_head:.2f} |")
    per_epoch_bb = t_bb / epochs
    print()
    print(f"Backbones cost {per_epoch_bb:.1f} s per recomputed epoch against {t_ext:.1f} s once; at the default "
          f"profile's 100 epochs the backbones alone would take {100 * per_epoch_bb:.0f} s.")


if __name__ == "__main__":
    main()
