"""Python reference of `extract run` for the benchmark (scripts/bench_extract.sh): the same work
(decode with cv2/soundfile, resample with torchaudio, HF processors, transformers forwards, pooled
DINOv3 statistics, zarr v3 writes) written the straightforward way a Python user would.
Never used by the product or the tests."""
import argparse, csv, glob, json, os, time, tomllib
import numpy as np
import cv2
import soundfile as sf
import torch, torchaudio
import zarr
from transformers import (AutoModel, ASTFeatureExtractor, DINOv3ViTImageProcessorFast,
                          VJEPA2VideoProcessor, CLIPTextModelWithProjection, AutoTokenizer)

SENSORS = ["Pressure", "CO2 Weld Flow", "Feed", "Primary Weld Current", "Wire Consumed",
           "Secondary Weld Voltage"]


def video_frames(path, n):
    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    idx = np.linspace(0, total - 1, n).round().astype(int)
    out = []
    for i in idx:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, f = cap.read()
        if not ok:
            raise RuntimeError(f"{path}: cannot read frame {i}")
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    return np.stack(out)


def audio_16k(path):
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.mean(1))
    if sr != 16000:
        wav = torchaudio.functional.resample(wav, sr, 16000)
    return wav.numpy()


def sensors(path, steps):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in SENSORS] for r in rows], dtype=np.float64)
    src = np.linspace(0, 1, len(x))
    dst = np.linspace(0, 1, steps)
    return np.stack([np.interp(dst, src, x[:, c]) for c in range(6)], 1).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    cfg = tomllib.load(open(a.config, "rb"))
    torch.set_grad_enabled(False)
    root, man = cfg["data"]["root"], cfg["data"]["manifest"]
    with open(man, newline="") as f:
        recs = list(csv.DictReader(f))
    if a.limit:
        recs = recs[: a.limit]
    m = cfg["models"]
    vj = AutoModel.from_pretrained(m["vjepa"]).eval()
    ast = AutoModel.from_pretrained(m["ast"]).eval()
    dino = AutoModel.from_pretrained(m["dinov3"]).eval()
    clip = CLIPTextModelWithProjection.from_pretrained(m["clip"]).eval()
    tok = AutoTokenizer.from_pretrained(m["clip"])
    vproc = VJEPA2VideoProcessor(size={"shortest_edge": cfg["video"]["short_side"]},
                                 crop_size={"height": cfg["video"]["crop"], "width": cfg["video"]["crop"]})
    iproc = DINOv3ViTImageProcessorFast(size={"height": cfg["image"]["size"], "width": cfg["image"]["size"]})
    fe = ASTFeatureExtractor(num_mel_bins=ast.config.num_mel_bins, max_length=ast.config.max_length)
    win = (ast.config.max_length - 1) * 160 + 400
    W = cfg["audio"]["windows"]
    g = zarr.open_group(a.out, mode="w")
    n = len(recs)
    arrays = {}

    def put(name, i, x):
        x = np.asarray(x, dtype=np.float32)
        if name not in arrays:
            dt = "float32" if name in ("sensor/raw", "audio/window_start_s") else "float16"
            arrays[name] = g.create_array(name, shape=(n,) + x.shape, chunks=(1,) + x.shape,
                                          dtype=dt, compressors=None)
        arrays[name][i] = x

    stage = {k: 0.0 for k in ("sensor", "text", "image", "audio", "video")}
    # CPU seconds (process clock: every thread) of decode + preprocess per stage, forwards excluded
    prep = {k: 0.0 for k in ("sensor", "image", "audio", "video")}
    t0 = time.time()
    emb = clip(**tok([cfg["text"]["prompt"]], return_tensors="pt")).text_embeds[0]
    g.attrs["text"] = emb.tolist()
    stage["text"] += time.time() - t0
    for i, r in enumerate(recs):
        t = time.time()
        d = os.path.join(root, r["SUBDIRS"])
        sid = os.path.basename(r["SUBDIRS"])
        c = time.process_time()
        put("sensor/raw", i, sensors(glob.glob(os.path.join(d, "*.csv"))[0], cfg["sensor"]["steps"]))
        prep["sensor"] += time.process_time() - c
        t, stage["sensor"] = time.time(), stage["sensor"] + time.time() - t
        c = time.process_time()
        imgs = sorted(glob.glob(os.path.join(d, "images", "*")))
        ims = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in imgs]
        px = iproc(images=ims, return_tensors="pt").pixel_values
        prep["image"] += time.process_time() - c
        hs = dino(pixel_values=px, output_hidden_states=True).hidden_states
        pooled = torch.stack([torch.stack([h.float().mean(1), h.float().amax(1)], 1) for h in hs], 0)
        put("image/pooled", i, pooled)
        for l in cfg["image"]["layers"]:
            put(f"image/tokens_L{l}", i, hs[l])
        t, stage["image"] = time.time(), stage["image"] + time.time() - t
        c = time.process_time()
        wav = audio_16k(os.path.join(d, sid + ".flac"))
        span = max(len(wav) - win, 0)
        starts = [round(span * k / (W - 1)) if W > 1 else 0 for k in range(W)]
        feats = fe([wav[s:s + win] for s in starts], sampling_rate=16000, return_tensors="pt").input_values
        prep["audio"] += time.process_time() - c
        put("audio/tokens", i, ast(input_values=feats).last_hidden_state)
        put("audio/window_start_s", i, np.array(starts) / 16000.0)
        t, stage["audio"] = time.time(), stage["audio"] + time.time() - t
        c = time.process_time()
        fr = video_frames(os.path.join(d, sid + ".avi"), cfg["video"]["frames"])
        pv = vproc(videos=[list(fr)], return_tensors="pt").pixel_values_videos
        prep["video"] += time.process_time() - c
        put("video/tokens", i, vj.get_vision_features(pv)[0])
        stage["video"] += time.time() - t
    dt = time.time() - t0
    print(f"python reference: {n} samples in {dt:.2f} s = {n / dt:.3f} samples/s")
    # Machine-readable line for scripts/bench_extract.sh: loop seconds and per-stage seconds.
    print("BENCH " + json.dumps({"loop_seconds": dt, "stages": stage, "prep_cpu": prep,
                                 "samples": n, "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
