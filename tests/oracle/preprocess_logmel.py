"""Oracle for shared/tests/preprocess_fbank.rs (logmel test): torchaudio.transforms.MelSpectrogram
(power 2, center=True, reflect padding, HTK mel scale, no filter normalisation) followed by
ln(mel + log_offset), on tiny synthetic clips; each clip is first cropped to its first
`clip_samples` samples or padded at the end with zeros, as `preprocess::logmel::fit_clip` does.

usage: preprocess_logmel.py OUT_DIR  -> OUT_DIR/logmel.safetensors, OUT_DIR/meta.json
"""
import json
import os
import sys

import numpy as np
import torch
import torchaudio
from safetensors.torch import save_file

SR = 16000


def wave(kind, n, rng):
    t = np.arange(n) / SR
    if kind == "tone_noise":
        x = 0.4 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 3100.0 * t + 0.3)
        x = x + rng.normal(0.0, 0.01, n)
    elif kind == "chirp":
        f = 100.0 + 6000.0 * t / max(t[-1], 1e-9)
        x = 0.5 * np.sin(2 * np.pi * np.cumsum(f) / SR)
    elif kind == "noise":
        x = rng.uniform(-0.5, 0.5, n)
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(11)
    # (kind, source samples, clip_samples, n_fft, hop, n_mels, f_min, f_max, log_offset)
    cases = [
        ("tone_noise", 8000, 8000, 1024, 320, 64, 0.0, 8000.0, 1e-6),  # the shipped parameters
        ("chirp", 5000, 8000, 1024, 320, 64, 0.0, 8000.0, 1e-6),  # padded with silence
        ("noise", 12345, 8000, 1024, 320, 64, 0.0, 8000.0, 1e-6),  # cropped
        ("chirp", 1000, 1000, 64, 16, 8, 50.0, 4000.0, 1e-3),  # other parameters
        ("noise", 700, 999, 256, 100, 40, 20.0, 7600.0, 1e-10),  # odd lengths, tiny offset
    ]
    tensors, meta = {}, []
    for i, (kind, n, clip, n_fft, hop, n_mels, f_min, f_max, off) in enumerate(cases):
        x = torch.from_numpy(wave(kind, n, rng))
        name = f"clip{i}"
        tensors[name + ".input"] = x
        fitted = x[:clip]
        if fitted.numel() < clip:
            fitted = torch.nn.functional.pad(fitted, (0, clip - fitted.numel()))
        def make():
            return torchaudio.transforms.MelSpectrogram(
                sample_rate=SR, n_fft=n_fft, win_length=n_fft, hop_length=hop, f_min=f_min,
                f_max=f_max, n_mels=n_mels, power=2.0, center=True, pad_mode="reflect", norm=None,
                mel_scale="htk",
            )

        mel32 = make()(fitted)  # [n_mels, T]
        # the same transform built in float64 (window and mel filters too: a float32 window
        # leaks ~1e-7 of the frame's amplitude into every bin, which dominates quiet bins)
        torch.set_default_dtype(torch.float64)
        tf64 = make()
        torch.set_default_dtype(torch.float32)
        mel64 = tf64(fitted.double())
        tensors[name + ".logmel"] = torch.log(mel32 + off).T.contiguous()
        tensors[name + ".logmel64"] = torch.log(mel64 + off).T.contiguous()
        meta.append({
            "name": name, "kind": kind, "samples": n, "clip_samples": clip, "n_fft": n_fft,
            "hop": hop, "n_mels": n_mels, "f_min": f_min, "f_max": f_max, "log_offset": off,
            "frames": int(mel32.shape[1]),
        })
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "logmel.safetensors"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
