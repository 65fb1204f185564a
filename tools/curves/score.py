"""Score a training run's checkpoints on the dev set: the learning curves that choose a design.

    python3 tools/curves/score.py RUN_DIR --dev /work/dev [--every-min 15] [--threads 1]

For each checkpoint ``RUN_DIR/checkpoints/step-N.pt`` not scored yet (its moving average of
the weights where the run kept one), colourise the dev clips as `vcgan colorize` would
(working size 256, the recurrence) and append to ``RUN_DIR/dev.jsonl``: the training time at
that step (CPU-minutes of the run's one process, from log.jsonl), PSNR, colourfulness, chroma
error, cast and purple share, with the grayscale input's and the truth's rows beside them.
"""
import argparse
import json
from pathlib import Path

import torch

from vcgan_cli.bench import GRAY_ROW, GT_ROW, evaluate_quality
from vcgan_cli.models import build_generator
from vcgan_cli.runtime import Colorizer
from vcgan_cli.train.trainer import architecture
from vcgan_cli.weights import LoadedWeights

METRICS = ("psnr", "colourfulness", "chroma-error", "cast", "purple", "warp-error")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, nargs="*", help="only these steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    elapsed = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        e = json.loads(line)
        elapsed[e["step"]] = e["elapsed_s"]
    out = run / "dev.jsonl"
    done = {json.loads(l)["step"] for l in out.read_text().splitlines()} if out.exists() else set()
    for ckpt in sorted((run / "checkpoints").glob("step-*.pt")):
        step = int(ckpt.stem.split("-")[1])
        if step in done or (args.steps and step not in args.steps):
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        cfg = state["config"]
        g = build_generator(architecture(cfg["model"], cfg.get("skip_fusion", False)))
        g.load_state_dict(state.get("generator_ema") or state["generator"])
        g.eval()
        model = Colorizer(LoadedWeights(g.config, g, str(ckpt), True), torch.device("cpu"), torch.float32)
        r = evaluate_quality(args.dev, model=model, metrics=METRICS, size=256)
        rows = r["rows"]
        entry = {"step": step, "cpu_min": round(elapsed.get(step, float("nan")) / 60, 1),
                 "model": rows[r["method"]]["mean"], "gray": rows[GRAY_ROW]["mean"], "truth": rows[GT_ROW]["mean"]}
        with open(out, "a") as f:
            f.write(json.dumps(entry) + "\n")
        m = entry["model"]
        print(f"step {step} ({entry['cpu_min']} min): psnr {m['psnr']:.2f} (gray {entry['gray']['psnr']:.2f}) "
              f"colourful {m['colourfulness']:.1f} (truth {entry['truth']['colourfulness']:.1f}) "
              f"chroma-err {m['chroma-error']:.2f} (gray {entry['gray']['chroma-error']:.2f}) cast {m['cast']:.2f} "
              f"purple {m['purple']:.2f} (truth {entry['truth']['purple']:.2f}) warp {m['warp-error']:.5f}", flush=True)


if __name__ == "__main__":
    main()
