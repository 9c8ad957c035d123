"""Error of the reduced-size JPEG decode (`image.jpeg_reduce`, libjpeg DCT scaling) against the
exact path (full decode + DINOv3ViTImageProcessorFast), on the JPEGs of a data folder.
usage: jpeg_reduce_error.py DATA_ROOT SIZE   (prints one Markdown paragraph)"""
import glob, os, sys
import cv2
import numpy as np
import torch
from transformers import DINOv3ViTImageProcessorFast

root, size = sys.argv[1], int(sys.argv[2])
proc = DINOv3ViTImageProcessorFast(size={"height": size, "width": size})
std = torch.tensor(proc.image_std).view(3, 1, 1)
errs, maxes = [], []
files = sorted(glob.glob(os.path.join(root, "**", "images", "*.jpg"), recursive=True))[:40]
for p in files:
    full = cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = full.shape[:2]
    f = next((f for f in (8, 4, 2) if -(-h // f) >= size and -(-w // f) >= size), 1)
    flag = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2, 1: cv2.IMREAD_COLOR}[f]
    red = cv2.cvtColor(cv2.imread(p, flag), cv2.COLOR_BGR2RGB)
    a = proc(images=[full], return_tensors="pt").pixel_values[0]
    b = proc(images=[red], return_tensors="pt").pixel_values[0]
    d = ((a - b).abs() * std) * 255.0  # grey levels
    errs.append(d.mean().item())
    maxes.append(d.max().item())
print(f"Reduced-size JPEG decode error (`image.jpeg_reduce`, factor {f} for {w}x{h} -> {size}), "
      f"measured on {len(files)} of the benchmark's JPEGs against the exact path (full decode + "
      f"DINOv3 processor), in grey levels of the [0, 255] input: mean |error| "
      f"{np.mean(errs):.2f}, 99th percentile of the per-image maximum {np.percentile(maxes, 99):.1f}, "
      f"max {np.max(maxes):.1f} (bench/jpeg_reduce_error.py).")
