"""How fast `vcgan colorize` runs on a lent GPU: end to end at 480p and 1080p, fp16 and bf16,
with libx264 and NVIDIA's h264_nvenc, and the network alone (the bench's speed test,
`vcgan_cli.bench.measure_speed`, which times each stage and the real threaded pipeline).

    python3 tools/device/gpu_speed.py --out $OUT [--model vcgan-lite-v1] [--frames 96]

The device machine has no PyAV: carry its wheel and install it first (tools/device/README.md,
"Speed on the GPU"). Each measurement is appended to $OUT/speed.jsonl as soon as it is made,
so a call cut short still returns what it measured; a summary table ends the output.
`--dry-run` runs the same code on the CPU with the tiny model and small films (the test).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FILMS = {"480p": (854, 480), "1080p": (1920, 1080)}


def make_film(path: Path, width: int, height: int, frames: int, rate: int = 24) -> None:
    """A grayscale film of moving shapes over a textured background, with a sine-wave sound."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.random((height // 8 + 1, width // 8 + 1)).astype(np.float32)
    import cv2

    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "18"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=48000)
        for t in range(frames):
            img = 0.35 + 0.3 * np.roll(texture, 3 * t, axis=1)
            x, y = int(width * (0.2 + 0.6 * t / max(frames - 1, 1))), height // 2
            cv2.circle(img, (x, y), height // 6, 0.9, -1)
            cv2.rectangle(img, (width // 5, height // 5 + t % 40), (width // 3, height // 3 + t % 40), 0.1, -1)
            gray = (np.clip(img, 0, 1) * 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, 2), format="rgb24")
            for p in vs.encode(frame):
                out.mux(p)
        samples = int(48000 * frames / rate)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        for k in range(0, samples, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            for p in aus.encode(af):
                out.mux(p)
        for s in (vs, aus):
            for p in s.encode(None):
                out.mux(p)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=None, help="default: the shipped default model")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", nargs="+", default=["fp16", "bf16"])
    ap.add_argument("--codecs", nargs="+", default=["libx264", "h264_nvenc"])
    ap.add_argument("--films", nargs="+", default=list(FILMS), choices=list(FILMS))
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true", help="the CPU, the tiny model, small films: the test")
    args = ap.parse_args()

    from vcgan_cli.bench import environment, measure_speed
    from vcgan_cli.codecs import CODECS, gpu_encoder_problem
    from vcgan_cli.runtime import load_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "speed.jsonl"
    films = {name: FILMS[name] for name in args.films}
    if args.dry_run:
        args.model, args.device, args.precisions, args.frames, args.repeats = "random:tiny-v1", "cpu", ["fp32"], 8, 1
        films = {name: (w // 16 * 2, h // 16 * 2) for name, (w, h) in films.items()}

    def record(entry: dict) -> None:
        with log.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        print(json.dumps(entry), flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="vcgan-gpu-speed-") as tmp:
        for name, (w, h) in films.items():
            film = Path(tmp) / f"{name}.mp4"
            make_film(film, w, h, args.frames)
            for precision in args.precisions:
                model = load_model(args.model, device=args.device, precision=precision)
                if not rows:
                    record({"environment": environment(model)})
                for codec in args.codecs:
                    why = gpu_encoder_problem(codec) if CODECS[codec].gpu else None
                    if why:
                        record({"film": name, "precision": precision, "codec": codec, "skipped": why})
                        continue
                    t0 = time.perf_counter()
                    try:
                        speed = measure_speed(film, model, frames=args.frames, repeats=args.repeats, codec=codec)
                    except Exception as exc:  # noqa: BLE001 - record it and go on with the next
                        record({"film": name, "precision": precision, "codec": codec, "failed": str(exc)[:300]})
                        continue
                    s = speed["sizes"][0]
                    row = {"film": name, "precision": precision, "codec": codec, "model": model.name,
                           "seconds": round(time.perf_counter() - t0, 1), **s}
                    record(row)
                    rows.append(row)
    print(f"{'film':6} {'prec':5} {'codec':11} {'e2e fps':>8} {'net ms':>7} {'flow ms':>7} {'decode fps':>10} {'encode fps':>10} {'gpu MB':>7}")
    for r in rows:
        print(f"{r['film']:6} {r['precision']:5} {r['codec']:11} {r['end_to_end_fps']:8.1f} {r['network_ms']:7.1f} "
              f"{r['flow_ms']:7.1f} {r['decode_fps']:10.1f} {r['encode_fps']:10.1f} {r['peak_gpu_mb'] or 0:7.0f}")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
