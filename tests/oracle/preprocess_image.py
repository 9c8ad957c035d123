"""Oracle for shared/tests/preprocess_image.rs: random uint8 images and clips pushed through
DINOv3ViTImageProcessorFast and VJEPA2VideoProcessor (transformers 4.57.1, torchvision 0.26).

usage: preprocess_image.py OUT_DIR  -> OUT_DIR/image.safetensors, OUT_DIR/meta.json
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import DINOv3ViTImageProcessorFast, VJEPA2VideoProcessor


def smooth_image(rng, h, w, gray=False):
    """Random but spatially correlated image (noise + gradients), so resizes are meaningful."""
    yy, xx = np.mgrid[0:h, 0:w]
    c = 1 if gray else 3
    base = rng.integers(0, 256, size=(h, w, c)).astype(np.float64)
    grad = 127.5 + 127.5 * np.sin(yy[..., None] / (3.0 + rng.random() * 5) + xx[..., None] / 7.0 + rng.random(c))
    img = np.clip(0.5 * base + 0.5 * grad, 0, 255).round().astype(np.uint8)
    if gray:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(1234)
    tensors, meta = {}, {"images": [], "videos": []}

    # (h, w, out_h, out_w, gray)
    image_cases = [
        (480, 640, 224, 224, False),  # downsample, non-square input
        (37, 53, 224, 224, False),  # upsample
        (300, 200, 64, 96, False),  # non-square output
        (120, 90, 112, 112, True),  # gray replicated to RGB
        (224, 224, 224, 224, False),  # same size: no resize
    ]
    for i, (h, w, oh, ow, gray) in enumerate(image_cases):
        img = smooth_image(rng, h, w, gray)
        proc = DINOv3ViTImageProcessorFast(size={"height": oh, "width": ow})
        pix = proc(images=torch.from_numpy(img).permute(2, 0, 1), return_tensors="pt")["pixel_values"][0]
        assert pix.shape == (3, oh, ow), pix.shape
        name = f"img{i}"
        tensors[name + ".input"] = torch.from_numpy(img)
        tensors[name + ".output"] = pix.float().contiguous()
        meta["images"].append({"name": name, "h": h, "w": w, "out_h": oh, "out_w": ow, "gray": gray})

    # (t, h, w, crop, short or None (= the processor's int(crop * 256 / 224)), gray)
    video_cases = [
        (2, 240, 320, 256, None, False),  # V-JEPA 2 defaults: short 292, crop 256
        (3, 48, 80, 64, None, False),  # upsample, odd T
        (2, 200, 130, 96, None, True),  # portrait, gray
        (1, 50, 60, 64, 40, False),  # short side below crop: zero padding
    ]
    for i, (t, h, w, crop, short, gray) in enumerate(video_cases):
        clip = np.stack([smooth_image(rng, h, w, gray) for _ in range(t)])
        proc = VJEPA2VideoProcessor(crop_size=crop)
        kwargs = {}
        if short is not None:
            kwargs["size"] = {"shortest_edge": short}
        else:
            short = proc.size["shortest_edge"]
        video = torch.from_numpy(clip).permute(0, 3, 1, 2).contiguous()  # T, C, H, W
        pix = proc(videos=[video], return_tensors="pt", **kwargs)["pixel_values_videos"][0]
        assert pix.shape == (t, 3, crop, crop), pix.shape
        name = f"vid{i}"
        tensors[name + ".input"] = torch.from_numpy(clip)
        tensors[name + ".output"] = pix.float().contiguous()
        meta["videos"].append({"name": name, "t": t, "h": h, "w": w, "short": short, "crop": crop, "gray": gray})

    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "image.safetensors"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
