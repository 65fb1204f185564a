"""How far the OpenVINO backend's colours are from PyTorch fp32 on real frames.

    python3 tools/speed/backend_check.py DAVIS_ROOT [--model vcgan-lite] [--clips 6] [--frames 4]

For a few frames of each clip (each as a shot's first frame, at the model's working size),
prints the mean and largest |difference| of the output's chroma (Cb, Cr, in 1/255 units)
between PyTorch fp32 and OpenVINO fp32 and bf16, and each backend's median network time.
"""
import argparse
import statistics
import time

import numpy as np

from vcgan_cli.clips import find_clips, read_clip
from vcgan_cli.colour import rgb_to_gray, rgb_to_ycbcr
from vcgan_cli.runtime import load_model, resize, working_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--model", default=None)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--frames", type=int, default=4)
    args = ap.parse_args()
    ref = load_model(args.model, backend="torch")
    others = {"openvino fp32": load_model(args.model, backend="openvino"),
              "openvino bf16": load_model(args.model, backend="openvino", precision="bf16")}
    diffs = {k: [] for k in others}
    peaks = {k: 0.0 for k in others}
    times = {k: [] for k in ["torch", *others]}
    for clip in find_clips(args.data)[: args.clips]:
        for rgb in read_clip(clip, args.frames):
            gray = rgb_to_gray(rgb)
            g = np.clip(resize(gray, *working_size(*gray.shape, ref.config.train_size)), 0, 1)
            t = time.perf_counter()
            a = ref(g, g)
            times["torch"].append(time.perf_counter() - t)
            _, cb_a, cr_a = rgb_to_ycbcr(a, "bt601")
            for name, m in others.items():
                m(g, g)  # the first call of a size converts and compiles
                t = time.perf_counter()
                b = m(g, g)
                times[name].append(time.perf_counter() - t)
                _, cb_b, cr_b = rgb_to_ycbcr(b, "bt601")
                d = np.concatenate([np.abs(cb_a - cb_b).ravel(), np.abs(cr_a - cr_b).ravel()]) * 255
                diffs[name].append(float(d.mean()))
                peaks[name] = max(peaks[name], float(d.max()))
    n = len(times["torch"])
    print(f"{n} frames, model {ref.name}")
    base = statistics.median(times["torch"])
    print(f"torch fp32: {base * 1000:.0f} ms a frame")
    for name in others:
        med = statistics.median(times[name])
        print(f"{name}: {med * 1000:.0f} ms a frame ({base / med:.2f}x), chroma difference mean "
              f"{statistics.mean(diffs[name]):.3f}/255, largest {peaks[name]:.2f}/255")


if __name__ == "__main__":
    main()
