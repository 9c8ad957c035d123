"""scikit-learn reference of the `gaussian` head: reads the synthetic store with zarr, pools the
same features (DINOv3 pooled mean of one hidden state averaged over views; video tokens averaged
over tokens; f16 -> f32, as the Rust feeder), fits `sklearn.covariance.LedoitWolf` on TRAIN and
writes the squared Mahalanobis distance of every sample.

Usage: gaussian_sklearn.py STORE LAYER OUT.json
"""
import json
import sys

import numpy as np
import zarr
from sklearn.covariance import LedoitWolf

store, layer, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
g = zarr.open_group(store, mode="r")
samples = g.attrs["samples"]
pooled = np.asarray(g["image/pooled"][:], dtype=np.float32)[:, layer, :, 0, :].mean(axis=1)
video = np.asarray(g["video/tokens"][:], dtype=np.float32).mean(axis=1)
x = np.concatenate([pooled, video], axis=1).astype(np.float64)
train = np.array([s["split"] == "TRAIN" for s in samples])
lw = LedoitWolf().fit(x[train])
json.dump(
    {
        "keys": [s["key"] for s in samples],
        "scores": lw.mahalanobis(x).tolist(),
        "shrinkage": float(lw.shrinkage_),
        "location": lw.location_.tolist(),
    },
    open(out, "w"),
)
