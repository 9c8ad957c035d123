"""NumPy reference of the `knn` head (PatchCore-style memory bank): reads the DINOv3 token array
of one hidden state from the synthetic store with zarr (f16 -> f32 as the Rust feeder), drops
the first SKIP tokens of every view, stacks the TRAIN patch tokens in store order (sample, view,
token), selects a greedy k-center coreset of floor(RATIO * M) rows starting from row 0 (float32,
exact euclidean distances, first maximum on ties), and scores every sample as the maximum over
its patches of the distance to the nearest coreset row (float64).

Usage: knn_numpy.py STORE LAYER SKIP RATIO OUT.json
"""
import json
import sys

import numpy as np
import zarr

store, layer, skip, ratio, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
g = zarr.open_group(store, mode="r")
samples = g.attrs["samples"]
tokens = np.asarray(g[f"image/tokens_L{layer}"][:], dtype=np.float32)[:, :, skip:, :]
n, v, p, d = tokens.shape
train = np.array([s["split"] == "TRAIN" for s in samples])
bank = tokens[train].reshape(-1, d)
m = bank.shape[0]
k = max(1, min(m, int(np.floor(ratio * m))))

taken = [0]
min_d = ((bank - bank[0]) ** 2).sum(axis=1, dtype=np.float32)
while len(taken) < k:
    j = int(np.argmax(min_d))
    taken.append(j)
    min_d = np.minimum(min_d, ((bank - bank[j]) ** 2).sum(axis=1, dtype=np.float32))

core = bank[taken].astype(np.float64)
x = tokens.reshape(n, v * p, d).astype(np.float64)
scores = []
for i in range(n):
    diff = x[i][:, None, :] - core[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=2)).min(axis=1)
    scores.append(float(dist.max()))
json.dump({"keys": [s["key"] for s in samples], "scores": scores, "coreset": taken}, open(out, "w"))
