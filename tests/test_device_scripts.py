"""The GPU scripts (tools/device/gpu_stage1.py, gpu_speed.py) dry-run on the CPU with the tiny model,
so it works the first time it meets a GPU."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from vcgan_cli.colour import rgb_to_gray_tensor
from vcgan_cli.weights import load_weights

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "device" / "gpu_stage1.py"


def _photos(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        base = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (200 + 10 * i, 150), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"p{i}.jpg"), (base * 255).astype(np.uint8))
    return folder


def test_gpu_batches_are_crops_of_the_photos_with_their_gray():
    spec = importlib.util.spec_from_file_location("gpu_stage1", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    photos = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    photos[1] = 0  # never drawn: weight 0
    batches = mod.GpuBatches(photos, torch.tensor([0.5, 0.0, 0.5]), size=32, batch=64, seed=0)
    b = next(batches)
    assert b["rgb"].shape == (64, 3, 32, 32) and b["gray"].shape == (64, 1, 32, 32)
    assert float(b["rgb"].min()) >= -1 and float(b["rgb"].max()) <= 1
    assert torch.allclose(b["gray"], rgb_to_gray_tensor(b["rgb"]), atol=1e-6)
    assert float(b["rgb"].flatten(1).std(1).min()) > 0.05  # photo 1 (all black) was never drawn
    assert not torch.equal(next(batches)["rgb"], b["rgb"])


def test_gpu_stage1_script_dry_runs_on_the_cpu(tmp_path):
    data = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(data), "--out", str(out), "--model", "tiny-v1", "--batch", "4",
         "--time-limit", "2", "--export-every", "0.5", "--log-every", "2", "--device", "cpu", "--no-pretrained"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 photos on cpu" in proc.stdout
    exported = sorted(out.glob("step-*"))
    assert len(exported) >= 2  # one as it goes, one at the end
    model = load_weights(str(exported[-1]))
    assert model.config.name == "tiny-v1"
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log and all(e["photos_per_s"] > 0 and np.isfinite(e["l1"]) for e in log)


def test_gpu_speed_script_dry_runs_on_the_cpu(tmp_path):
    """tools/device/gpu_speed.py makes its films, runs the bench's speed test for each film,
    precision and codec, and records each result as it is made; an encoder that cannot open
    here (NVENC without an NVIDIA GPU) is recorded as skipped, with the reason."""
    from vcgan_cli.codecs import gpu_encoder_problem

    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "device" / "gpu_speed.py"), "--out", str(out), "--dry-run",
         "--films", "480p", "--codecs", "libx264", "h264_nvenc"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entries = [json.loads(line) for line in (out / "speed.jsonl").read_text().splitlines()]
    assert "environment" in entries[0]
    rows = [e for e in entries[1:] if "end_to_end_fps" in e]
    assert [r["codec"] for r in rows][:1] == ["libx264"]
    x264 = rows[0]
    assert x264["frames"] == 8 and x264["input_size"] == [60, 106] and x264["end_to_end_fps"] > 0 and x264["network_ms"] > 0
    nvenc = [e for e in entries if e.get("codec") == "h264_nvenc"]
    assert len(nvenc) == 1 and (("skipped" in nvenc[0]) == bool(gpu_encoder_problem("h264_nvenc")))
    assert "e2e fps" in proc.stdout  # the summary table
