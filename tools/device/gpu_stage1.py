"""Stage 1 on a lent GPU, with the data on the GPU: the photos decoded once into one uint8
tensor there, and every batch (random scaled crops, flips, gray conversion) made there too.

    python3 tools/device/gpu_stage1.py --data .gpu/images --out $OUT --time-limit 420 \\
        [--model vcgan-lite-v1 | --init MODEL_DIR] [--batch 256] [--lr auto] [--export-every 60]

The loss, the optimiser, the moving average and the checkpoint format are the trainer's own
(:class:`vcgan_cli.train.trainer.Trainer`, ``train_step(..., sync=False)``): this script only
replaces the CPU data loader, which at ~1.3 ms a photo on one core cannot feed a batch of 256
on an H200. Nothing waits on the GPU within a step: the loss terms are summed on the device
and read once per ``--log-every`` steps. Every ``--export-every`` seconds (and at the end)
the moving average of the weights is exported into ``$OUT/step-N/`` (fp16 config.json +
model.safetensors, ~10 MB for vcgan-lite v1: one returned file each), so a call cut off still
returns what it made; ``$OUT/log.jsonl`` holds the losses and photos per second.

The learning rate scales with the square root of the batch from the CPU recipe's 2e-4 at 16
(``--lr auto``: 8e-4 at 256). A test runs this script on the CPU with the tiny model.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vcgan_cli.colour import GRAY_WEIGHTS  # noqa: E402
from vcgan_cli.train.trainer import TrainConfig, Trainer  # noqa: E402
from vcgan_cli.weights import save_weights  # noqa: E402


def load_photos(dataset, side: int, limit: int | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Every photo (or the first ``limit``) resized to a short side of ``side`` and centre
    cropped square, as one (N, 3, side, side) uint8 tensor on ``device``, and each photo's
    drawing weight (its collection's share under the run's group power, split among its photos)."""
    import cv2

    n = len(dataset.files) if limit is None else min(limit, len(dataset.files))
    out = torch.empty((n, 3, side, side), dtype=torch.uint8)
    kept = np.zeros(n, dtype=bool)
    for k in range(n):
        img = dataset.load(k)
        if img is None or min(img.shape[:2]) < 2:
            continue
        h, w = img.shape[:2]
        s = side / min(h, w)
        img = cv2.resize(img, (max(side, round(w * s)), max(side, round(h * s))), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        out[k] = torch.from_numpy(np.ascontiguousarray(img[y : y + side, x : x + side].transpose(2, 0, 1)))
        kept[k] = True
    weight = np.zeros(n)
    for (_, members), p in zip(dataset.groups, dataset.group_p):
        members = members[members < n]
        if len(members):
            weight[members] = p / len(members)
    weight = weight * kept
    return out[torch.from_numpy(kept)].to(device), torch.from_numpy(weight[kept] / weight[kept].sum()).float().to(device)


class GpuBatches:
    """Random crops of ``size`` from the uint8 photo tensor, all on its device: a scale in
    [size/side, 1] of the photo, a random place, a horizontal flip half the time (one
    ``grid_sample``), then BT.601 gray. Yields the trainer's batch dict, in [-1, 1]."""

    def __init__(self, photos: torch.Tensor, weights: torch.Tensor, size: int, batch: int, seed: int):
        self.photos, self.weights, self.size, self.batch = photos, weights, size, batch
        self.gen = torch.Generator(device=photos.device).manual_seed(seed)
        self.gray_w = torch.tensor(GRAY_WEIGHTS, device=photos.device).view(1, 3, 1, 1)
        self.min_scale = size / photos.shape[-1]

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        dev, b = self.photos.device, self.batch
        idx = torch.multinomial(self.weights, b, replacement=True, generator=self.gen)
        u = torch.rand(b, 4, device=dev, generator=self.gen)
        scale = self.min_scale + (1 - self.min_scale) * u[:, 0]  # share of the photo's side
        cx, cy = (1 - scale) * (2 * u[:, 1] - 1), (1 - scale) * (2 * u[:, 2] - 1)
        flip = torch.where(u[:, 3] < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = scale * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = scale, cy
        grid = F.affine_grid(theta, (b, 3, self.size, self.size), align_corners=False)
        rgb = F.grid_sample(self.photos[idx].float() / 255.0, grid, mode="bilinear", align_corners=False)
        rgb = rgb.clamp(0, 1) * 2 - 1
        gray = (rgb * self.gray_w).sum(1, keepdim=True)
        return {"rgb": rgb, "gray": gray}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="vcgan-lite-v1")
    ap.add_argument("--init", default=None)
    ap.add_argument("--config", default=None, help="JSON of TrainConfig settings (loss weights ...)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--side", type=int, default=144, help="short side the photos are stored at")
    ap.add_argument("--lr", default="auto")
    ap.add_argument("--ema-decay", type=float, default=0.998)
    ap.add_argument("--time-limit", type=float, default=420.0, help="seconds of training")
    ap.add_argument("--export-every", type=float, default=60.0, help="seconds")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--max-photos", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-pretrained", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lr = 2e-4 * math.sqrt(args.batch / 16) if args.lr == "auto" else float(args.lr)
    settings = json.loads(Path(args.config).read_text()) if args.config else {}
    settings.update(
        stage=1, model=args.model, data=list(args.data), init=args.init, out=str(out / "run"), size=args.size,
        batch_size=args.batch, steps=10**9, lr_g=lr, lr_halve_every=10**9, ema_decay=args.ema_decay, workers=0,
        perceptual=settings.get("perceptual", "none"), group_power=settings.get("group_power", 0.5),
        checkpoint_every=10**9, val_every=10**9, device=args.device, pretrained=not args.no_pretrained,
    )
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    t0 = time.perf_counter()
    say = lambda m: print(f"[{time.perf_counter() - t0:6.1f}s] {m}", flush=True)
    trainer = Trainer(TrainConfig(**settings), on_message=say)
    photos, weights = load_photos(trainer.dataset, args.side, args.max_photos, trainer.device)
    say(f"{len(photos):,} photos on {trainer.device} ({photos.numel() / 2**20:.0f} MiB uint8); batch {args.batch}, lr {lr:.2e}")
    batches = GpuBatches(photos, weights, args.size, args.batch, seed=trainer.config.seed)
    log = open(out / "log.jsonl", "a")
    sums: dict[str, torch.Tensor] = {}
    started = last_export = last_log = time.perf_counter()
    logged_step = trainer.step

    def export() -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        folder = out / f"step-{trainer.step:06d}"
        save_weights(trainer.model, folder)  # fp16, atomic
        say(f"exported {folder.name}")

    while True:
        losses = trainer.train_step(next(batches), sync=False)
        for k, v in losses.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        now = time.perf_counter()
        done = now - started >= args.time_limit
        if trainer.step % args.log_every == 0 or done:
            n = trainer.step - logged_step
            entry = {"step": trainer.step, "elapsed_s": round(now - started, 2),
                     "photos_per_s": round(n * args.batch / max(now - last_log, 1e-9), 1),
                     **{k: float(v) / max(n, 1) for k, v in sums.items()}}  # the one sync per log interval
            log.write(json.dumps(entry) + "\n")
            log.flush()
            say(f"step {trainer.step}: {entry['photos_per_s']:.0f} photos/s, l1 {entry.get('l1', float('nan')):.4f}")
            sums, last_log, logged_step = {}, time.perf_counter(), trainer.step
        if done or now - last_export >= args.export_every:
            export()
            last_export = time.perf_counter()
        if done:
            break
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
