"""Score training checkpoints on the held-out dev clips and keep the chosen ones in $OUT.

    python3 tools/device/choose.py --dev .gpu/dev --out $OUT --floor 25.15 RUN/checkpoints/step-*.pt

Each candidate (a checkpoint's moving average of the weights, or a model folder) is scored
with the bench's own metrics. A candidate is *eligible* when its dev PSNR is at least
--floor and its warp error at most --warp-factor times the ground truth's. After every
candidate, OUT/best.part0+1 holds the most colourful eligible one so far, OUT/colour.part0+1
the most colourful of all, and OUT/scores.json every score: a call that runs out of time
still returns what it had chosen. The fp16 model.safetensors is split in two parts because a
device call returns files of at most 16 MiB; `cat best.part0 best.part1 > model.safetensors`
and the config.json in scores.json rebuild the model folder.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vcgan_cli.bench import GRAY_ROW, GT_ROW, evaluate_quality
from vcgan_cli.models import Generator, build_generator
from vcgan_cli.runtime import Colorizer
from vcgan_cli.train.trainer import load_generator_state
from vcgan_cli.weights import LoadedWeights, load_weights, save_weights

METRICS = ("psnr", "ssim", "warp-error", "colourfulness")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("candidates", nargs="+", help="checkpoints (.pt) or model folders")
    ap.add_argument("--dev", required=True, help="dev clips (DAVIS layout)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--floor", type=float, required=True, help="lowest eligible dev PSNR")
    ap.add_argument("--warp-factor", type=float, default=1.2)
    ap.add_argument("--model", default="./weights/vcgan-lite", help="the architecture's model folder (for .pt files)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = load_weights(args.model).config
    t0 = time.time()

    report = {"rule": {"floor": args.floor, "warp_cap": None}, "gray": None, "truth": None,
              "candidates": {}, "best": None, "colour": None}

    def write_report() -> None:
        tmp = out / ".scores.json.tmp"
        tmp.write_text(json.dumps(report, indent=2))
        os.replace(tmp, out / "scores.json")

    def keep(tag: str, name: str, g: Generator) -> None:
        folder = Path(f"/tmp/choose-{tag}")
        sha = save_weights(g, folder)
        data = (folder / "model.safetensors").read_bytes()
        half = len(data) // 2 + 1
        for k, part in enumerate((data[:half], data[half:])):
            tmp = out / f".{tag}.part{k}.tmp"
            tmp.write_bytes(part)
            os.replace(tmp, out / f"{tag}.part{k}")
        report[tag] = {"name": name, "sha256": sha, "config": json.loads((folder / "config.json").read_text())}
        write_report()  # the parts and their SHA-256 on record together

    for src in args.candidates:
        g = build_generator(config)
        g.load_state_dict(load_generator_state(src))  # a checkpoint's moving average, or a model
        g = g.to(device).eval()
        model = Colorizer(LoadedWeights(g.config, g, src, True), device, torch.float32)
        scored = evaluate_quality(args.dev, model=model, metrics=METRICS, size=256)  # the bench's own scoring
        if report["truth"] is None:  # the reference rows are the same for every candidate
            report["gray"], report["truth"] = scored["rows"][GRAY_ROW]["mean"], scored["rows"][GT_ROW]["mean"]
            report["rule"]["warp_cap"] = args.warp_factor * report["truth"]["warp-error"]
        m = scored["rows"][scored["method"]]["mean"]
        finite = all(np.isfinite(m[k]) for k in ("psnr", "warp-error", "colourfulness"))
        m["eligible"] = finite and m["psnr"] >= args.floor and m["warp-error"] <= report["rule"]["warp_cap"]
        report["candidates"][src] = m
        print(f"[{time.time() - t0:5.1f}s] {src}: colourfulness {m['colourfulness']:.2f} psnr {m['psnr']:.3f} "
              f"ssim {m['ssim']:.4f} warp {m['warp-error']:.6f}{' eligible' if m['eligible'] else ''}", flush=True)
        g = g.cpu()
        best = report["best"] and report["candidates"][report["best"]["name"]]
        if m["eligible"] and (not best or m["colourfulness"] > best["colourfulness"]):
            keep("best", src, g)
        top = report["colour"] and report["candidates"][report["colour"]["name"]]
        if finite and (not top or m["colourfulness"] > top["colourfulness"]):
            keep("colour", src, g)
        write_report()
    print(f"best eligible: {report['best'] and report['best']['name']}; most colourful: {report['colour'] and report['colour']['name']}")


if __name__ == "__main__":
    sys.exit(main())
