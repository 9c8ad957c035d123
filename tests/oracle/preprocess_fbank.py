"""Oracle for shared/tests/preprocess_fbank.rs: torchaudio.compliance.kaldi.fbank (as
ASTFeatureExtractor calls it) and ASTFeatureExtractor itself, on random and tonal audio.

usage: preprocess_fbank.py OUT_DIR  -> OUT_DIR/fbank.safetensors, OUT_DIR/meta.json
"""
import json
import os
import sys

import numpy as np
import torch
import torchaudio.compliance.kaldi as ta_kaldi
from safetensors.torch import save_file
from transformers import ASTFeatureExtractor

SR = 16000


def wave(kind, n, rng):
    t = np.arange(n) / SR
    if kind == "noise":
        x = rng.uniform(-0.5, 0.5, n)
    elif kind == "gauss_quiet":
        x = rng.normal(0.0, 1e-3, n)
    elif kind == "tone":
        x = 0.4 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 1320.0 * t + 0.3)
    elif kind == "chirp_noise":
        f = 100.0 + 3000.0 * t / max(t[-1], 1e-9)
        x = 0.5 * np.sin(2 * np.pi * np.cumsum(f) / SR) + rng.normal(0.0, 0.01, n)
    elif kind == "silence":
        x = np.zeros(n)
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    # (kind, samples, max_length for ASTFeatureExtractor)
    cases = [
        ("noise", 399, 1024),  # shorter than one frame: torchaudio refuses it
        ("noise", 400, 1024),  # exactly one frame
        ("tone", 16000, 1024),  # 1 s: 98 frames + padding rows
        ("noise", 16077, 50),  # 98 frames truncated to 50 rows
        ("chirp_noise", 164080, 1024),  # 10.24 s: exactly 1024 frames
        ("tone", 192000, 1024),  # 12 s: truncated
        ("gauss_quiet", 8000, 64),  # low level: values near the eps floor
        ("silence", 1000, 8),  # all frames at ln(eps)
    ]
    tensors, meta = {}, []
    for i, (kind, n, max_len) in enumerate(cases):
        x = wave(kind, n, rng)
        name = f"wav{i}"
        tensors[name + ".input"] = torch.from_numpy(x)
        entry = {"name": name, "kind": kind, "samples": n, "max_length": max_len}
        try:
            fb = ta_kaldi.fbank(
                torch.from_numpy(x).unsqueeze(0), sample_frequency=SR, window_type="hanning", num_mel_bins=128
            )
            tensors[name + ".fbank"] = fb.contiguous()
            # the same computation in float64: shows torchaudio's own float32 rounding
            fb64 = ta_kaldi.fbank(
                torch.from_numpy(x).double().unsqueeze(0), sample_frequency=SR, window_type="hanning", num_mel_bins=128
            )
            tensors[name + ".fbank64"] = fb64.contiguous()
            entry["frames"] = fb.shape[0]
        except AssertionError as e:
            entry["torchaudio_error"] = str(e)
        try:
            fe = ASTFeatureExtractor(max_length=max_len)
            iv = fe(x, sampling_rate=SR, return_tensors="np")["input_values"][0]
            tensors[name + ".ast"] = torch.from_numpy(np.ascontiguousarray(iv, dtype=np.float32))
        except AssertionError as e:
            entry["ast_error"] = str(e)
        meta.append(entry)
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "fbank.safetensors"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
