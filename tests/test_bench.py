import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from media_fixtures import make_clip
from vcgan_cli.bench import GRAY_ROW, GT_ROW, evaluate_quality, find_clips, measure_speed
from vcgan_cli.cli import main
from vcgan_cli.metrics import PSNR_CAP
from vcgan_cli.runtime import load_model


def davis_tree(root, clips=2, frames=5, size=(96, 128)):
    """A DAVIS-layout folder of colour JPEG clips: a tinted texture panning right."""
    rng = np.random.default_rng(0)
    for c in range(clips):
        folder = root / "JPEGImages" / "480p" / f"clip{c}"
        folder.mkdir(parents=True)
        base = cv2.resize(rng.random((20, 40)).astype(np.float32), (size[1] + 40, size[0]), interpolation=cv2.INTER_CUBIC)
        tint = np.array([0.4, 0.7, 1.0]) if c == 0 else np.array([1.0, 0.6, 0.3])
        for t in range(frames):
            rgb = np.clip(base[:, 2 * t : 2 * t + size[1], None] * tint, 0, 1)
            cv2.imwrite(str(folder / f"{t:05d}.png"), (rgb[..., ::-1] * 255).astype(np.uint8))
    return root


def test_finds_davis_clips_and_videos(tmp_path):
    davis_tree(tmp_path / "d")
    assert [c.name for c in find_clips(tmp_path / "d")] == ["clip0", "clip1"]
    (tmp_path / "v").mkdir()
    make_clip(tmp_path / "v" / "a.mp4", frames=3, audio=None, colour=True)
    assert [c.name for c in find_clips(tmp_path / "v")] == ["a"]


def test_predictions_equal_to_ground_truth_score_perfectly(tmp_path):
    data = davis_tree(tmp_path / "gt")
    shutil.copytree(data, tmp_path / "pred")
    report = evaluate_quality(data, predictions=tmp_path / "pred")
    method = report["method"]
    mean = report["rows"][method]["mean"]
    assert mean["psnr"] == PSNR_CAP and mean["ssim"] == pytest.approx(1.0)
    assert mean["warp-error"] == report["rows"][GT_ROW]["mean"]["warp-error"]
    assert report["rows"][GRAY_ROW]["mean"]["colourfulness"] == pytest.approx(0.0, abs=1e-6)
    assert mean["frames"] == 10


def test_model_row_and_speed(tmp_path):
    data = davis_tree(tmp_path / "gt", clips=1, frames=4)
    model = load_model("tiny", device="cpu")
    report = evaluate_quality(data, model=model, size=64)
    row = report["rows"]["tiny"]["clips"]["clip0"]
    assert row["frames"] == 4 and 5 < row["psnr"] < PSNR_CAP and 0 < row["ssim"] < 1
    speed = measure_speed(data, model, sizes=(64,), frames=8, repeats=1, warmup=2)
    s = speed["sizes"][0]
    assert s["frames"] == 4 and s["network_ms"] > 0 and s["end_to_end_fps"] > 0 and s["peak_host_mb"] > 50
    share = s["stage_share"]
    assert set(share) == {"decode", "flow", "network", "encode"}
    assert share["network"] == pytest.approx(s["network_ms"] * s["end_to_end_fps"] / 1000)
    assert speed["parameters"] == 389_804


def test_bench_cli_writes_json_and_csv(tmp_path):
    data = davis_tree(tmp_path / "gt", clips=2, frames=3)
    result = CliRunner().invoke(
        main,
        ["bench", str(data), "--model", "tiny", "--metric", "warp-error", "--metric", "psnr", "--size", "64",
         "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["quality"]["metrics"] == ["psnr", "warp-error"] and "speed" not in report
    assert report["environment"]["model"] == "tiny" and report["environment"]["torch"]
    assert "warp-error" in result.output and "grayscale input" in result.output
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == "method,clip,psnr,warp-error,frames" and len(lines) == 1 + 3 * 3
    bad = CliRunner().invoke(main, ["bench", str(tmp_path / "nothing"), "--model", "tiny"])
    assert bad.exit_code == 1 and bad.output.startswith("error:")


def test_frames_are_ordered_naturally(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (1, 2, 10):
        cv2.imwrite(str(folder / f"frame_{i}.png"), np.zeros((8, 8, 3), np.uint8))
    assert [p.name for p in find_clips(tmp_path)[0].frames] == ["frame_1.png", "frame_2.png", "frame_10.png"]


def test_compare_scores_and_times_a_second_model_in_the_same_run(tmp_path):
    data = davis_tree(tmp_path / "d", clips=1, frames=10)
    result = CliRunner().invoke(main, [
        "bench", str(data), "--model", "tiny", "--compare", "random:tiny-v1", "--metric", "psnr", "--metric",
        "chroma-error", "--metric", "purple", "--metric", "speed", "--speed-frames", "8", "--repeats", "1",
        "--json", str(tmp_path / "r.json"),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    rows = report["quality"]["rows"]
    label = "tiny-v1 (random:tiny-v1)"
    assert set(rows) == {"tiny", label, GRAY_ROW, GT_ROW}
    assert rows[GT_ROW]["mean"]["chroma-error"] == 0.0 and rows[GRAY_ROW]["mean"]["chroma-error"] > 0
    assert rows[label]["mean"]["psnr"] != rows["tiny"]["mean"]["psnr"]
    ratio = report["compare"][label]["network_time_ratio"][0]
    timed = report["speed"]["sizes"][0]["network_ms"] / report["compare"][label]["speed"]["sizes"][0]["network_ms"]
    assert ratio == pytest.approx(timed) and ratio > 0
    assert "network time per frame, tiny / tiny-v1 (random:tiny-v1):" in result.output
    bad = CliRunner().invoke(main, ["bench", str(data), "--predictions", str(data), "--compare", "tiny"])
    assert bad.exit_code != 0 and "--compare needs a model" in bad.output


def test_preview_metric_times_a_sheet_against_a_full_colourise_of_the_same_film(tmp_path):
    film = tmp_path / "film.mp4"
    make_clip(film, frames=30)
    result = CliRunner().invoke(main, [
        "bench", str(film), "--model", "tiny", "--metric", "preview", "--size", "64", "--repeats", "1",
        "--json", str(tmp_path / "r.json"),
    ])
    assert result.exit_code == 0, result.output
    p = json.loads((tmp_path / "r.json").read_text())["preview"]
    assert p["film_frames"] == 30 and p["sheet_frames"] == 12 and "quality" not in json.loads((tmp_path / "r.json").read_text())
    assert p["ratio"] == pytest.approx(p["preview_s"] / p["colorize_s"]) and p["preview_s"] > 0
    assert "preview (12 frames) against colourise (30 frames)" in result.output
    assert not list(tmp_path.glob("*.png")) and sorted(x.name for x in tmp_path.iterdir()) == ["film.mp4", "r.json"]
    bad = CliRunner().invoke(main, ["bench", str(film), "--predictions", str(tmp_path), "--metric", "preview"])
    assert bad.exit_code != 0 and "--metric preview needs a model" in bad.output
