"""The seed's way of running one sweep trial: the tiny backbones recomputed inside every epoch
for every TRAIN and VAL batch, then the same Causal-FiLM head in PyTorch (the reference classes
of tests/oracle/heads_ref.py), as bench/recompute_backbones.py measures it. One run is timed
(every run of a sweep has the same size); scripts/bench_sweep.sh multiplies by the number of
runs. Prints one JSON line: {"run_s", "backbone_s", "extract_once_s"}.

Usage: sweep_seed_way.py TMP CONFIG EPOCHS TRAIN_HEAD_BIN
"""
import json
import os
import sys
import tomllib
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from recompute_backbones import cache_experiment, make_inputs, models, recompute_experiment  # noqa: E402
import torch  # noqa: E402


def main():
    tmp, cfg_path, epochs, bin_ = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    warnings.filterwarnings("ignore")
    with open(cfg_path, "rb") as f:
        cfg = tomllib.load(f)
    ms = models()
    x, samples = make_inputs()
    text = torch.randn(cfg["model"]["clip_head"]["text_dim"], generator=torch.Generator().manual_seed(2))
    t_ext, _ = cache_experiment(tmp, cfg_path, 2, bin_, ms, x, samples, text)
    t_rec, t_bb = recompute_experiment(cfg, epochs, ms, x, samples, text)
    print(json.dumps({"run_s": t_rec, "backbone_s": t_bb, "extract_once_s": t_ext}))


if __name__ == "__main__":
    main()
