"""Oracle for shared/tests/train_optim.rs: torch.optim.AdamW + clip_grad_norm_ on given grads.

Usage: python train_adamw.py OUT_DIR
Writes OUT_DIR/adamw.safetensors with init.<p>, grad.<k>.<p>, lr (per step, f64), and after
each step k: param.<k>.<p>, norm.<k> (total grad norm before clipping); finally exp_avg.<p>,
exp_avg_sq.<p>. Steps alternate large gradients (clipping active) and small ones.
"""
import sys

import torch
from safetensors.torch import save_file

STEPS = 6
SHAPES = {"a": (4, 3), "b": (3,), "c": (2, 2, 2)}


def main():
    out = sys.argv[1]
    torch.manual_seed(7)
    params = {k: torch.randn(s, dtype=torch.float32) for k, s in SHAPES.items()}
    tensors = {f"init.{k}": v.clone() for k, v in params.items()}
    plist = [torch.nn.Parameter(params[k].clone()) for k in SHAPES]
    opt = torch.optim.AdamW(plist, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                            foreach=False)
    lrs = [1e-3 * (1 + k) for k in range(STEPS)]
    for k in range(STEPS):
        scale = 3.0 if k % 2 == 0 else 0.01
        for name, p in zip(SHAPES, plist):
            g = torch.randn(SHAPES[name]) * scale
            tensors[f"grad.{k}.{name}"] = g.clone()
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(plist, 0.5)
        tensors[f"norm.{k}"] = norm.detach().reshape(1).clone()
        opt.param_groups[0]["lr"] = lrs[k]
        opt.step()
        for name, p in zip(SHAPES, plist):
            tensors[f"param.{k}.{name}"] = p.detach().clone()
    for name, p in zip(SHAPES, plist):
        st = opt.state[p]
        tensors[f"exp_avg.{name}"] = st["exp_avg"].clone()
        tensors[f"exp_avg_sq.{name}"] = st["exp_avg_sq"].clone()
    tensors["lr"] = torch.tensor(lrs, dtype=torch.float64)
    save_file(tensors, f"{out}/adamw.safetensors")


if __name__ == "__main__":
    main()
