"""Score a training run's checkpoints on the dev set: the learning curves that choose a design.

    python3 tools/curves/score.py RUN_DIR --dev /work/dev [--every-min 15] [--threads 1]

For each checkpoint ``RUN_DIR/checkpoints/step-N.pt`` not scored yet (its moving average of
the weights where the run kept one), colourise the dev clips as `vcgan colorize` would
(working size 256, the recurrence) and append to ``RUN_DIR/dev.jsonl``: the training time at
that step (CPU-minutes of the run's one process, from log.jsonl), PSNR, colourfulness, chroma
error, cast and purple share, with the grayscale input's and the truth's rows beside them.
"""
import argparse
import dataclasses
import json
from pathlib import Path

import torch

from vcgan_cli.bench import GRAY_ROW, GT_ROW, evaluate_quality
from vcgan_cli.models import build_generator
from vcgan_cli.models.config import GATE_BLENDS, GATE_GUESSES
from vcgan_cli.runtime import Colorizer
from vcgan_cli.train.trainer import load_checkpoint, run_architecture
from vcgan_cli.weights import LoadedWeights

METRICS = ("psnr", "colourfulness", "chroma-error", "cast", "purple", "warp-error", "cdc")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, nargs="*", help="only these steps")
    ap.add_argument("--raw", action="store_true", help="score the raw weights, not their moving average (early in a run the average still holds much of the initial weights)")
    ap.add_argument("--anneal-t", type=float, help="decode a classification head at this temperature (a decode setting, "
                    "chosen on dev); scores go to dev-tT.jsonl")
    ap.add_argument("--gate-cap", type=float, help="a gated model's chroma_gate_cap (the most it holds of the placeholder "
                    "where no key frame is carried; a setting of the model, chosen on dev); scores go to dev-capC....jsonl")
    ap.add_argument("--gate-blend", choices=GATE_BLENDS, help="a gated model's chroma_gate_blend "
                    "(how the held and the guessed chroma mix; an inference setting, chosen on dev); scores to dev-...-B.jsonl")
    ap.add_argument("--gate-guess", choices=GATE_GUESSES, help="a gated model's chroma_gate_guess (what its own guess is made from)")
    ap.add_argument("--recurrence", choices=("gray", "colour"), default="gray", help="the recurrence to score (scores of colour go to dev-colour.jsonl)")
    ap.add_argument("--references", choices=("first",), help="each clip's true first frame as its key frame (scores to dev-...-refs.jsonl)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    # training seconds at each step; a resumed run (or a fork copied from another run's folder)
    # restarts elapsed_s at 0, so it continues from the time at the step it resumed from
    elapsed, last, offset = {}, -1.0, 0.0
    for line in (run / "log.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["elapsed_s"] < last:
            before = [k for k in elapsed if k < e["step"]]
            offset = elapsed[max(before)] if before else 0.0
            elapsed = {k: v for k, v in elapsed.items() if k < e["step"]}
        last = e["elapsed_s"]
        elapsed[e["step"]] = offset + e["elapsed_s"]
    out = run / ("dev-raw.jsonl" if args.raw else "dev.jsonl")
    if args.anneal_t is not None:
        out = out.with_name(out.stem + f"-t{args.anneal_t:g}.jsonl")
    if args.gate_cap is not None:
        out = out.with_name(out.stem + f"-cap{args.gate_cap:g}.jsonl")
    if args.gate_blend is not None:
        out = out.with_name(out.stem + f"-{args.gate_blend}.jsonl")
    if args.gate_guess is not None:
        out = out.with_name(out.stem + f"-guess{args.gate_guess}.jsonl")
    if args.recurrence != "gray":
        out = out.with_name(out.stem + f"-{args.recurrence}.jsonl")
    if args.references:
        out = out.with_name(out.stem + "-refs.jsonl")
    done = {json.loads(l)["step"] for l in out.read_text().splitlines()} if out.exists() else set()
    for ckpt in sorted((run / "checkpoints").glob("step-*.pt")):
        step = int(ckpt.stem.split("-")[1])
        if step in done or (args.steps and step not in args.steps):
            continue
        state = load_checkpoint(ckpt)
        cfg = state["config"]
        arch = run_architecture(cfg)
        if args.anneal_t is not None:
            arch = dataclasses.replace(arch, anneal_t=args.anneal_t)
        if args.gate_cap is not None:
            arch = dataclasses.replace(arch, chroma_gate_cap=args.gate_cap)
        if args.gate_blend is not None:
            arch = dataclasses.replace(arch, chroma_gate_blend=args.gate_blend)
        if args.gate_guess is not None:
            arch = dataclasses.replace(arch, chroma_gate_guess=args.gate_guess)
        g = build_generator(arch)
        g.load_state_dict(state["generator"] if args.raw else (state.get("generator_ema") or state["generator"]))
        g.eval()
        model = Colorizer(LoadedWeights(g.config, g, str(ckpt), True), torch.device("cpu"), torch.float32)
        r = evaluate_quality(args.dev, model=model, metrics=METRICS, size=256, recurrence=args.recurrence,
                             references=args.references)
        rows = r["rows"]
        entry = {"step": step, "cpu_min": round(elapsed.get(step, float("nan")) / 60, 1),
                 "model": rows[r["method"]]["mean"], "gray": rows[GRAY_ROW]["mean"], "truth": rows[GT_ROW]["mean"]}
        with open(out, "a") as f:
            f.write(json.dumps(entry) + "\n")
        m = entry["model"]
        print(f"step {step} ({entry['cpu_min']} min): psnr {m['psnr']:.2f} (gray {entry['gray']['psnr']:.2f}) "
              f"colourful {m['colourfulness']:.1f} (truth {entry['truth']['colourfulness']:.1f}) "
              f"chroma-err {m['chroma-error']:.2f} (gray {entry['gray']['chroma-error']:.2f}) cast {m['cast']:.2f} "
              f"purple {m['purple']:.2f} (truth {entry['truth']['purple']:.2f}) warp {m['warp-error']:.5f} "
              f"cdc {m['cdc']:.5f} (truth {entry['truth']['cdc']:.5f})"
              + (f" psnr by quarter {m['psnr-first-quarter']:.2f}/{m['psnr-middle']:.2f}/{m['psnr-last-quarter']:.2f}"
                 if args.references else ""), flush=True)


if __name__ == "__main__":
    main()
