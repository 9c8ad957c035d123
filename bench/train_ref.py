"""PyTorch reference training loop for the Causal-FiLM benchmark (scripts/bench_train.sh).

The model classes are tests/oracle/heads_ref.py's (parameter-for-parameter the Rust head); the loop
mirrors train-head's: AdamW (torch.optim.AdamW, same lr schedule per epoch), training-time feature
noise (dropout then element mask on the raw video/audio features), global-norm gradient clipping,
ramped EMA, and each epoch VAL scored with the raw and the EMA weights. The store is read with
zarr once into memory (as `train-head --resident` does). Prints one `EPOCH i SECONDS s` line per
epoch and `MEAN_EPOCH_S x` (epochs after the first).

Usage: train_ref.py STORE CONFIG.toml EPOCHS
"""
import copy
import json
import math
import os
import sys
import time
import tomllib
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import zarr

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "oracle"))
from heads_ref import Wrapper, anomaly_score, loss_terms  # noqa: E402


def load_split(group, samples, split, cfg):
    rows = [i for i, s in enumerate(samples) if s["split"] == split]
    m = cfg["model"]

    def arr(name):
        return torch.from_numpy(np.asarray(group[name].get_orthogonal_selection((rows,))).astype(np.float32))

    video = arr("video/tokens")
    audio = arr("audio/tokens")
    audio = audio.reshape(audio.shape[0], -1, audio.shape[-1])
    sensor = arr("sensor/raw")
    pooled_sel = [(b["layer"], 0 if b["pool"] == "mean" else 1) for b in m["result"]["branches"] if b["pool"] != "gem"]
    if pooled_sel:
        allp = arr("image/pooled")  # [N, L+1, V, 2, D]
        pooled = torch.stack([allp[:, l, :, s] for l, s in pooled_sel], dim=1)
    else:
        pooled = torch.zeros(len(rows), 0, m["n_views"], 1)
    tokens = [arr(f"image/tokens_L{b['layer']}") for b in m["result"]["branches"] if b["pool"] == "gem"]
    classes = [samples[i]["class_code"] for i in rows]
    return {"video": video, "audio": audio, "sensor": sensor, "image_pooled": pooled, "image_tokens": tokens}, classes


def take(d, idx):
    return {
        "video": d["video"][idx],
        "audio": d["audio"][idx],
        "sensor": d["sensor"][idx],
        "image_pooled": d["image_pooled"][idx],
        "image_tokens": [t[idx] for t in d["image_tokens"]],
    }


def noise(x, m):
    x = F.dropout(x, m["feature_dropout"], True)
    if m["feature_mask"] > 0:
        keep = (torch.rand_like(x) > m["feature_mask"]).to(x.dtype)
        x = x * keep / (1.0 - m["feature_mask"])
    return x


def lr_at(t, epoch):
    if epoch < t["warmup_epochs"]:
        return t["warmup_start_lr"] + (t["lr"] - t["warmup_start_lr"]) * epoch / t["warmup_epochs"]
    span = max(1, t["epochs"] - 1 - t["warmup_epochs"])
    p = (epoch - t["warmup_epochs"]) / span
    return t["min_lr"] + 0.5 * (t["lr"] - t["min_lr"]) * (1 + math.cos(math.pi * p))


def auroc(scores, classes):
    pos = [s for s, c in zip(scores, classes) if c != 0]
    neg = [s for s, c in zip(scores, classes) if c == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / max(1, len(pos) * len(neg))


def score_split(net, d, n, bs):
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, n, bs):
            idx = torch.arange(i, min(n, i + bs))
            zr, zp = net.model(take(d, idx))
            out.extend(anomaly_score(CFG, zr, zp).tolist())
    return out


def main():
    global CFG
    store, cfg_path, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(cfg_path, "rb") as f:
        CFG = tomllib.load(f)
    t = CFG["train"]
    t["epochs"] = epochs
    m = CFG["model"]
    warnings.filterwarnings("ignore")
    group = zarr.open_group(store, mode="r")
    samples = group.attrs["samples"]
    text = torch.tensor(group["text/embed"][...], dtype=torch.float32)
    train, _ = load_split(group, samples, "TRAIN", CFG)
    val, val_cls = load_split(group, samples, "VAL", CFG)
    n_train, n_val = train["video"].shape[0], val["video"].shape[0]
    torch.manual_seed(t["seed"])
    net = Wrapper(CFG)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weight_decay"])
    ema = copy.deepcopy(net)
    n_ema = 0
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(t, epoch)
        perm = torch.randperm(n_train)
        net.train()
        for s in range(0, n_train, t["batch_size"]):
            b = take(train, perm[s : s + t["batch_size"]])
            b["video"], b["audio"] = noise(b["video"], m), noise(b["audio"], m)
            zr, zp = net.model(b)
            terms = loss_terms(CFG, zr, zp, net.clip_head, text)
            opt.zero_grad()
            terms["total"].backward()
            torch.nn.utils.clip_grad_norm_(params, t["grad_clip"])
            opt.step()
            decay = min(t["ema_max_decay"], (1 + n_ema) / (10 + n_ema))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), net.parameters()):
                    pe.lerp_(p, 1 - decay)
            n_ema += 1
        raw = auroc(score_split(net, val, n_val, t["eval_batch_size"]), val_cls)
        ema_auc = auroc(score_split(ema, val, n_val, t["eval_batch_size"]), val_cls)
        dt = time.perf_counter() - t0
        times.append(dt)
        print(f"EPOCH {epoch} SECONDS {dt:.3f} loss {terms['total'].item():.4f} val raw {raw:.4f} ema {ema_auc:.4f}")
    tail = times[1:] or times
    print(f"MEAN_EPOCH_S {sum(tail) / len(tail):.4f}")


if __name__ == "__main__":
    main()
