"""PyTorch reference of the Causal-FiLM head (plain torch, no mamba_ssm: the Mamba mixer runs
mamba_ssm's slow path with the selective-scan reference math, the ProcessEncoder is torch's own
nn.TransformerDecoder). Parameter names equal the Rust VarStore's, so the weights Rust saved
load with strict=True.

Usage: heads_ref.py DIR NAME [NAME ...]
For each NAME it reads DIR/config_NAME.json (the Rust CausalFilmConfig as JSON),
DIR/weights_NAME.safetensors (model.* and clip_head.*) and DIR/batch_NAME.safetensors, runs
forward + loss + backward in eval mode (dropout off) in f32 on CPU and writes
DIR/ref_NAME.safetensors: z_result, z_pred, score, loss.{total,cos,rec,gram,clip} and
grad.<parameter> for every parameter that requires grad.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

SENSOR_STD_FLOOR = 1e-6


def act(name):
    return {"relu": nn.ReLU(), "silu": nn.SiLU(), "gelu": nn.GELU()}[name]


def selective_scan_ref(u, delta, A, B, C, D, z, delta_bias):
    """u, delta, z: (b, d, l); A: (d, n); B, C: (b, n, l); D, delta_bias: (d,)."""
    delta = F.softplus(delta + delta_bias[..., None])
    b, d, l = u.shape
    delta_a = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    delta_b_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    x = A.new_zeros((b, d, A.shape[1]))
    ys = []
    for i in range(l):
        x = delta_a[:, :, i] * x + delta_b_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[:, None]
    return out * F.silu(z)


class MambaRef(nn.Module):
    """mamba_ssm.Mamba's parameters, forward as its non-fused path."""

    def __init__(self, d_model, m):
        super().__init__()
        self.d_inner = m["expand"] * d_model
        self.d_state, self.dt_rank = m["d_state"], m["dt_rank"]
        di = self.d_inner
        self.in_proj = nn.Linear(d_model, 2 * di, bias=False)
        self.conv1d = nn.Conv1d(di, di, m["d_conv"], groups=di, padding=m["d_conv"] - 1, bias=True)
        self.x_proj = nn.Linear(di, self.dt_rank + 2 * self.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, di, bias=True)
        self.A_log = nn.Parameter(torch.zeros(di, self.d_state))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d_model, bias=False)

    def forward(self, hidden):
        b, l, _ = hidden.shape
        xz = (self.in_proj.weight @ hidden.reshape(b * l, -1).t()).reshape(-1, b, l).permute(1, 0, 2)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :l])
        x_dbl = self.x_proj(x.permute(0, 2, 1).reshape(b * l, -1))
        dt, bm, cm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (self.dt_proj.weight @ dt.t()).reshape(-1, b, l).permute(1, 0, 2)
        bm = bm.reshape(b, l, -1).permute(0, 2, 1)
        cm = cm.reshape(b, l, -1).permute(0, 2, 1)
        a = -torch.exp(self.A_log.float())
        y = selective_scan_ref(x, dt, a, bm, cm, self.D.float(), z, self.dt_proj.bias.float())
        return self.out_proj(y.permute(0, 2, 1))


class MambaBlock(nn.Module):
    def __init__(self, h, m):
        super().__init__()
        self.norm = nn.LayerNorm(h)
        self.mamba = MambaRef(h, m)

    def forward(self, x):
        return x + self.mamba(self.norm(x))


class SensorModulator(nn.Module):
    def __init__(self, m):
        super().__init__()
        c, h = m["sensor_channels"], m["sensor_hidden"]
        self.embedding = nn.Linear(c, h)
        self.layers = nn.ModuleList([MambaBlock(h, m["mamba"]) for _ in range(m["mamba"]["layers"])])
        self.norm = nn.LayerNorm(h)
        self.head = nn.Linear(h, 2 * m["d_model"])
        self.mode = m["sensor_norm"]
        if self.mode == "train":
            self.register_buffer("stat_mean", torch.zeros(c))
            self.register_buffer("stat_std", torch.ones(c))

    def forward(self, s):
        if self.mode == "train":
            s = (s - self.stat_mean) / self.stat_std
        else:
            mean = s.mean(dim=1, keepdim=True)
            std = s.std(dim=1, unbiased=False, keepdim=True)
            std = torch.where(std >= SENSOR_STD_FLOOR, std, torch.ones_like(std))
            s = (s - mean) / std
        x = self.embedding(s)
        for blk in self.layers:
            x = blk(x)
        x = self.norm(x)[:, -1, :]
        gamma, beta = torch.chunk(self.head(x), 2, dim=1)
        return (gamma + 1.0).unsqueeze(1), beta.unsqueeze(1)


class ProcessEncoder(nn.Module):
    def __init__(self, d, p):
        super().__init__()
        layer = nn.TransformerDecoderLayer(
            d_model=d, nhead=p["heads"], dim_feedforward=p["ff"], dropout=p["dropout"], batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=p["layers"])
        self.norm = nn.LayerNorm(d)

    def forward(self, video, audio):
        return self.norm(self.decoder(tgt=video, memory=audio).mean(dim=1))


class Branch(nn.Module):
    def __init__(self, dim, spec):
        super().__init__()
        self.pool = spec["pool"]
        if self.pool == "gem":
            self.p = nn.Parameter(torch.ones(1) * spec["p0"])
        self.norm = nn.LayerNorm(dim)


class ResultEncoder(nn.Module):
    def __init__(self, m):
        super().__init__()
        r, dim = m["result"], m["image_dim"]
        self.eps = r["gem_eps"]
        self.branches = nn.ModuleList([Branch(dim, b) for b in r["branches"]])
        c = dim * len(r["branches"])
        g = c // r["gate_reduction"]
        self.gate = nn.Sequential(nn.Linear(c, g), nn.SiLU(), nn.Linear(g, c), nn.Sigmoid())
        self.proj = nn.Sequential(
            nn.Linear(c, r["hidden"]), nn.LayerNorm(r["hidden"]), nn.SiLU(), nn.Linear(r["hidden"], m["d_model"])
        )

    def forward(self, pooled, tokens):
        parts, ip, it = [], 0, 0
        for br in self.branches:
            if br.pool == "gem":
                p = br.p.clamp(min=1.0)
                x = tokens[it].float().clamp(min=self.eps).pow(p).mean(dim=2).pow(1.0 / p)
                it += 1
            else:
                x = pooled[:, ip]
                ip += 1
            parts.append(br.norm(x))
        x = torch.cat(parts, dim=-1)
        x = x * self.gate(x)
        return self.proj(x).max(dim=1)[0]


class CausalFilm(nn.Module):
    def __init__(self, m):
        super().__init__()
        d, h = m["d_model"], m["proj_hidden"]
        self.sensor = SensorModulator(m)
        self.video_proj = nn.Sequential(nn.Linear(m["video_dim"], h), nn.LayerNorm(h), nn.GELU(), nn.Linear(h, d))
        self.audio_proj = nn.Sequential(nn.Linear(m["audio_dim"], h), nn.LayerNorm(h), nn.GELU(), nn.Linear(h, d))
        self.process = ProcessEncoder(d, m["process"])
        self.result = ResultEncoder(m)
        dec = m["decoder"]
        self.decoder = nn.Module()
        self.decoder.net = nn.Sequential(
            nn.Linear(d, d), nn.LayerNorm(d), act(dec["act"]), nn.Dropout(dec["dropout"]), nn.Linear(d, d)
        )

    def forward(self, b):
        # Eval mode only: the training-time feature noise is not part of the parity check.
        gamma, beta = self.sensor(b["sensor"])
        video = self.video_proj(b["video"]) * gamma + beta
        audio = self.audio_proj(b["audio"]) * gamma + beta
        z_pred = self.decoder.net(self.process(video, audio))
        z_result = self.result(b["image_pooled"], b["image_tokens"])
        return z_result, z_pred


class Wrapper(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        m = cfg["model"]
        c = m["clip_head"]
        self.model = CausalFilm(m)
        self.clip_head = nn.Sequential(
            nn.Linear(m["d_model"], c["hidden"]),
            nn.LayerNorm(c["hidden"]),
            nn.GELU(),
            nn.Dropout(c["dropout"]),
            nn.Linear(c["hidden"], c["text_dim"]),
        )
        if not c["trainable"]:
            for p in self.clip_head.parameters():
                p.requires_grad_(False)


def topk_count(d, frac):
    return max(1, int(d * frac))


def gram(z):
    return torch.bmm(z.unsqueeze(2), z.unsqueeze(1)) / z.shape[1]


def loss_terms(cfg, z_result, z_pred, clip_head, text):
    lc = cfg["loss"]
    cos = 1.0 - F.cosine_similarity(z_result, z_pred, dim=-1).mean()
    rec_cfg = lc["rec"]
    if rec_cfg["kind"] == "smooth_l1_topk":
        e = F.smooth_l1_loss(z_result, z_pred, beta=rec_cfg["beta"], reduction="none")
        rec = torch.topk(e, topk_count(e.shape[1], rec_cfg["topk"]), dim=1)[0].mean()
    else:
        rec = (z_result - z_pred).abs().mean()
    g = F.mse_loss(gram(z_pred), gram(z_result))
    proj = F.normalize(clip_head(z_pred), p=2, dim=-1)
    t = F.normalize(text, p=2, dim=-1).unsqueeze(0).expand(proj.shape[0], -1)
    clip = 1.0 - F.cosine_similarity(proj, t, dim=1).mean()
    total = lc["cos_weight"] * cos + rec_cfg["weight"] * rec + lc["gram_weight"] * g + lc["clip_weight"] * clip
    return {"total": total, "cos": cos, "rec": rec, "gram": g, "clip": clip}


def anomaly_score(cfg, z_result, z_pred):
    s = cfg["loss"]["score"]
    dist = 1.0 - F.cosine_similarity(z_result, z_pred, dim=1)
    err = (z_result - z_pred).abs()
    top = torch.topk(err, topk_count(err.shape[1], s["topk"]), dim=1)[0].mean(dim=1)
    return dist + s["weight"] * top


def run(d, name):
    with open(f"{d}/config_{name}.json") as f:
        cfg = json.load(f)
    net = Wrapper(cfg)
    net.load_state_dict(load_file(f"{d}/weights_{name}.safetensors"), strict=True)
    net.eval()
    raw = load_file(f"{d}/batch_{name}.safetensors")
    n_tok = sum(1 for k in raw if k.startswith("image_tokens."))
    batch = {k: raw[k] for k in ("video", "audio", "sensor", "image_pooled")}
    batch["image_tokens"] = [raw[f"image_tokens.{i}"] for i in range(n_tok)]
    z_result, z_pred = net.model(batch)
    terms = loss_terms(cfg, z_result, z_pred, net.clip_head, raw["text_embed"])
    terms["total"].backward()
    out = {"z_result": z_result.detach(), "z_pred": z_pred.detach()}
    with torch.no_grad():
        out["score"] = anomaly_score(cfg, z_result, z_pred)
    for k, v in terms.items():
        out[f"loss.{k}"] = v.detach().reshape(1)
    for pname, p in net.named_parameters():
        if p.requires_grad:
            if p.grad is None:
                raise SystemExit(f"{name}: no gradient reached {pname}")
            out[f"grad.{pname}"] = p.grad.contiguous()
    save_file(out, f"{d}/ref_{name}.safetensors")
    print(f"{name}: loss {terms['total'].item():.6f}, {sum(1 for k in out if k.startswith('grad.'))} grads")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    d = sys.argv[1]
    for name in sys.argv[2:]:
        run(d, name)


if __name__ == "__main__":
    main()
