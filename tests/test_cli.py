"""End to end through the real CLI: real clips made with PyAV, the real (tiny, random) network."""
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from media_fixtures import make_clip, probe
from vcgan_cli.cli import main

NTSC = Fraction(30000, 1001)


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    """29.97 fps, odd size, a hard cut at frame 12, an AAC sine track."""
    folder = tmp_path_factory.mktemp("two_shots")
    src = folder / "film.mp4"
    made = make_clip(src, width=161, height=121, rate=NTSC, frames=24, cut_at=12, audio="aac", pix_fmt="yuv444p")
    out = folder / "film_color.mp4"
    report = folder / "report.json"
    result = run("colorize", src, "-o", out, "--model", "tiny", "--size", "128", "--report", report)
    return src, out, made, result, json.loads(report.read_text()) if report.exists() else None


def test_colorize_keeps_frames_timing_sound_and_luma(two_shots):
    src, out, made, result, report = two_shots
    assert result.exit_code == 0, result.output
    a, b = probe(src, with_luma=True), probe(out, with_luma=True)
    assert b["frames"] == a["frames"] == 24
    assert b["pts"] == a["pts"]
    assert b["times"] == pytest.approx(a["times"], abs=1e-6)
    assert (b["width"], b["height"]) == (161, 121)
    assert len(b["audio"]) == 1
    assert b["audio"][0]["duration"] == pytest.approx(a["audio"][0]["duration"], abs=0.03)
    assert b["audio"][0]["duration"] == pytest.approx(24 / float(NTSC), abs=0.05)
    for ya, yb in zip(a["luma"], b["luma"]):
        assert psnr(ya, yb, 255) >= 40
    assert a["chroma"] < 0.005 < b["chroma"]  # gray in, coloured out
    assert report["frames"] == 24


def test_recurrence_restarts_exactly_at_the_cut(two_shots):
    *_, result, report = two_shots
    assert report["shot_starts"] == [0, 12]
    assert "cuts at frames 12" in result.output


def test_raw_mode_and_archival_codec(tmp_path):
    src = tmp_path / "in.mkv"
    make_clip(src, width=96, height=72, frames=6, audio=None)
    out = tmp_path / "master.mov"
    result = run("colorize", src, "-o", out, "--model", "tiny", "--size", "64", "--raw", "--codec", "prores_ks", "-q")
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert info["frames"] == 6 and info["codec"] == "prores" and info["chroma"] > 0.005


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_bad_inputs_exit_non_zero_with_one_line_and_no_output(tmp_path):
    good = tmp_path / "good.mp4"
    make_clip(good, frames=4, audio=None)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    audio_only = tmp_path / "sound.m4a"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        for i in range(5):
            frame.pts = i * 1024
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    whole = tmp_path / "whole.mkv"
    make_clip(whole, frames=4, audio=None)
    data = whole.read_bytes()
    empty = tmp_path / "empty.mkv"  # header and track list intact, cut inside the first Cluster
    empty.write_bytes(data[: data.index(b"\x1f\x43\xb6\x75") + 8])
    whole.unlink()
    cases = {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "folder": (tmp_path, "folder"),
        "text": (text, "not"),
        "audio only": (audio_only, "no video stream"),
        "zero frames": (empty, "frames"),
    }
    for name, (src, words) in cases.items():
        out = tmp_path / f"out-{name.replace(' ', '_')}.mp4"
        before = set(p.name for p in tmp_path.iterdir())
        line = _error_line(run("colorize", src, "-o", out, "--model", "tiny", "--size", "64"))
        assert words in line.lower(), (name, line)
        assert leftovers(tmp_path, before) == [], name


def test_input_is_never_overwritten(tmp_path):
    src = tmp_path / "film.mp4"
    make_clip(src, frames=4, audio=None)
    original = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        line = _error_line(run("colorize", src, "-o", src, "--model", "tiny", *extra))
        assert "input" in line
    (tmp_path / "link.mp4").symlink_to(src)
    _error_line(run("colorize", src, "-o", tmp_path / "link.mp4", "--model", "tiny", "--overwrite"))
    assert src.read_bytes() == original
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"keep me")
    line = _error_line(run("colorize", src, "-o", out, "--model", "tiny"))
    assert "--overwrite" in line and out.read_bytes() == b"keep me"
    assert run("colorize", src, "-o", out, "--model", "tiny", "--size", "64", "--overwrite", "-q").exit_code == 0
    assert probe(out)["frames"] == 4
    assert leftovers(tmp_path, {"film.mp4", "link.mp4", "taken.mp4"}) == []


def test_broken_stream_is_coloured_up_to_the_break(tmp_path):
    src = tmp_path / "whole.mkv"
    make_clip(src, width=128, height=96, frames=40, audio=None, codec="libx264")
    cut = tmp_path / "broken.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    out = tmp_path / "out.mkv"
    result = run("colorize", cut, "-o", out, "--model", "tiny", "--size", "64")
    assert result.exit_code == 0, result.output
    frames = probe(out)["frames"]
    assert 5 < frames < 40
    assert frames == probe(cut)["frames"]
    assert "warning:" in result.output and f"frame {frames - 1}" in result.output


def test_colour_input_is_accepted_with_a_warning(tmp_path):
    src = tmp_path / "colour.mp4"
    make_clip(src, frames=4, colour=True, audio=None)
    result = run("colorize", src, "-o", tmp_path / "o.mp4", "--model", "tiny", "--size", "64")
    assert result.exit_code == 0, result.output
    assert "warning: the input looks like a colour film" in result.output


def test_a_crash_mid_film_leaves_nothing_behind(tmp_path, monkeypatch):
    from vcgan_cli import pipeline
    from vcgan_cli.runtime import Colorizer

    src = tmp_path / "film.mp4"
    make_clip(src, frames=12, audio="aac")
    calls = {"n": 0}
    real = Colorizer.__call__

    def failing(self, gray, placeholder):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(self, gray, placeholder)

    monkeypatch.setattr(Colorizer, "__call__", failing)
    with pytest.raises(KeyboardInterrupt):
        pipeline.colorize_video(src, tmp_path / "out.mp4", model="tiny", size=64)
    assert leftovers(tmp_path, {"film.mp4"}) == []
    calls["n"] = 0
    line = _error_line(run("colorize", src, "-o", tmp_path / "out.mp4", "--model", "tiny", "--size", "64", "-q"))
    assert "interrupted" in line
    assert leftovers(tmp_path, {"film.mp4"}) == []


def test_image_mode_keeps_size_depth_and_luminance(tmp_path):
    rng = np.random.default_rng(0)
    gray8 = cv2.resize(rng.integers(0, 256, (20, 30), dtype=np.uint8), (301, 199))
    cv2.imwrite(str(tmp_path / "a.png"), gray8)
    gray16 = (cv2.resize(rng.random((20, 30)).astype(np.float32), (150, 100)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "b.tif"), gray16)
    colour = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.jpg"), colour)
    out = tmp_path / "coloured"
    result = run("image", tmp_path, "-o", out, "--model", "tiny", "--size", "64")
    assert result.exit_code == 0, result.output
    assert "c.jpg looks like a colour photo" in result.output
    a = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (199, 301, 3) and a.dtype == np.uint8
    y = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)
    assert psnr(y, gray8, 255) >= 40
    b = cv2.imread(str(out / "b.tif"), cv2.IMREAD_UNCHANGED)
    assert b.shape == (100, 150, 3) and b.dtype == np.uint16
    yb = b[..., 2] * 0.299 + b[..., 1] * 0.587 + b[..., 0] * 0.114
    assert psnr(yb, gray16, 65535) >= 40
    assert np.abs(b[..., 2].astype(int) - b[..., 0]).mean() > 100  # coloured, not gray
    # single file, default name beside it; existing output needs --overwrite
    assert run("image", tmp_path / "a.png", "--model", "tiny", "--size", "64", "-q").exit_code == 0
    assert (tmp_path / "a_color.png").exists()
    assert "--overwrite" in _error_line(run("image", tmp_path / "a.png", "--model", "tiny", "-q"))
    assert "input itself" in _error_line(run("image", tmp_path / "a.png", "-o", tmp_path / "a.png", "--model", "tiny"))


def test_the_console_script_reports_missing_weights_in_one_line(tmp_path):
    src = tmp_path / "film.mp4"
    make_clip(src, frames=2, audio=None)
    exe = Path(sys.executable).with_name("vcgan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vcgan_cli"]
    # the paper's full model has no shipped weights
    proc = subprocess.run(
        [*cmd, "colorize", str(src), "-o", str(tmp_path / "o.mp4"), "--model", "vcgan"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--model tiny" in lines[0]
    assert not (tmp_path / "o.mp4").exists()


def test_names_with_brackets_and_usage_errors_stay_one_line(tmp_path):
    odd = tmp_path / "[restored] film.mp4"
    line = _error_line(run("colorize", odd, "-o", tmp_path / "o.mp4", "--model", "tiny"))
    assert "[restored] film.mp4" in line
    exe = Path(sys.executable).with_name("vcgan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vcgan_cli"]
    proc = subprocess.run([*cmd, "colorize", "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: No such option '--bogus'")


def test_image_folder_skips_its_own_outputs(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 50), 128, np.uint8))
    assert run("image", tmp_path, "--model", "tiny", "--size", "64", "-q").exit_code == 0
    assert (tmp_path / "a_color.png").exists()
    again = run("image", tmp_path, "--model", "tiny", "--size", "64", "-q", "--overwrite")
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "a_color_color.png").exists()


def test_report_never_replaces_the_input_the_output_or_a_folder(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=3, audio=None)
    before = src.read_bytes()
    out = tmp_path / "out.mp4"
    for target, message in ((src, "inputs or outputs"), (out, "inputs or outputs"), (tmp_path, "is a folder")):
        result = run("colorize", src, "-o", out, "--model", "tiny", "-q", "--report", target, "--overwrite")
        assert result.exit_code != 0 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert src.read_bytes() == before
    assert leftovers(tmp_path, set()) == ["in.mp4"]  # nothing written, no temporary left
    old = tmp_path / "old.json"
    old.write_text("keep")
    result = run("colorize", src, "-o", out, "--model", "tiny", "-q", "--report", old)
    assert result.exit_code != 0 and "--overwrite" in result.output and old.read_text() == "keep"
    assert run("colorize", src, "-o", out, "--model", "tiny", "-q", "--report", old, "--overwrite").exit_code == 0
    assert json.loads(old.read_text())["frames"] == 3


def test_bench_results_never_land_in_the_data_they_score(tmp_path):
    folder = tmp_path / "data" / "JPEGImages" / "480p" / "clip1"
    folder.mkdir(parents=True)
    frame = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(folder / "00000.jpg"), frame)
    before = (folder / "00000.jpg").read_bytes()
    data = tmp_path / "data"
    for opt in ("--json", "--csv"):
        result = run("bench", data, "--model", "tiny", "--metric", "psnr", opt, folder / "00000.jpg")
        assert result.exit_code != 0 and "which this run reads" in result.output, result.output
    assert (folder / "00000.jpg").read_bytes() == before
    result = run("bench", data, "--model", "tiny", "--metric", "psnr", "--json", tmp_path / "r", "--csv", tmp_path / "r")
    assert result.exit_code != 0 and "the same file" in result.output


def test_a_corrupt_packet_mid_film_keeps_every_frame_and_the_sound_or_stops_with_strict(tmp_path):
    from media_fixtures import corrupt_packet

    src, bad = tmp_path / "ok.mkv", tmp_path / "bad.mkv"
    make_clip(src, frames=100, codec="ffv1", audio="aac", codec_options={"slicecrc": "1", "g": "1"})
    corrupt_packet(src, bad, 30)
    out, report = tmp_path / "out.mkv", tmp_path / "r.json"
    result = run("colorize", bad, "-o", out, "--model", "tiny", "--size", "128", "-q", "--report", report)
    assert result.exit_code == 0, result.output
    assert "frame 30 (1.00 s)" in result.output and "replaced by the previous good one" in result.output
    a, b = probe(src), probe(out)
    assert b["frames"] == 100 and b["pts"] == a["pts"]
    assert b["audio"][0]["duration"] == pytest.approx(a["audio"][0]["duration"], abs=0.03)
    saved = json.loads(report.read_text())
    assert saved["damaged_frames"] == [30] and saved["frames"] == 100
    result = run("colorize", bad, "-o", tmp_path / "strict.mkv", "--model", "tiny", "--size", "128", "-q", "--strict")
    assert result.exit_code == 3 and "--strict" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mkv", "ok.mkv", "out.mkv", "r.json"]


def test_a_batch_of_three_with_one_broken_writes_the_two_and_exits_1(tmp_path):
    reels = tmp_path / "reels"
    reels.mkdir()
    make_clip(tmp_path / "a.mp4", frames=5, audio="aac")
    make_clip(reels / "b.mkv", frames=4, audio=None, codec="ffv1")
    (reels / "c.mp4").write_bytes(b"not a film at all")
    (reels / "old_color.mp4").write_bytes(b"an earlier output: not an input")
    out = tmp_path / "out"
    report = tmp_path / "batch.json"
    result = run("colorize", tmp_path / "a.mp4", reels, "-o", out, "--model", "tiny", "--size", "128", "--report", report)
    assert result.exit_code == 1, result.output
    errors = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert len(errors) == 2 and "c.mp4" in errors[0] and errors[1] == "error: 1 of 3 films failed"
    assert sorted(p.name for p in out.iterdir()) == ["a_color.mp4", "b_color.mp4"]
    assert probe(out / "a_color.mp4")["frames"] == 5 and probe(out / "b_color.mp4")["frames"] == 4
    assert "2 of 3 films colourised" in result.output
    films = json.loads(report.read_text())["films"]
    assert [f["input"].rsplit("/", 1)[1] for f in films] == ["a.mp4", "b.mkv", "c.mp4"]
    assert films[0]["frames"] == 5 and "error" in films[2]
    # again without --overwrite: every output exists, each one refused, nothing replaced
    before = (out / "a_color.mp4").read_bytes()
    again = run("colorize", tmp_path / "a.mp4", reels / "b.mkv", "-o", out, "--model", "tiny", "-q")
    assert again.exit_code == 1 and again.output.count("--overwrite") == 2
    assert (out / "a_color.mp4").read_bytes() == before


def test_a_batch_whose_films_would_share_an_output_name_is_refused_up_front(tmp_path):
    (tmp_path / "x").mkdir()
    make_clip(tmp_path / "a.mp4", frames=3, audio=None)
    make_clip(tmp_path / "x" / "a.mkv", frames=3, audio=None)
    result = run("colorize", tmp_path / "a.mp4", tmp_path / "x" / "a.mkv", "-o", tmp_path / "out", "--model", "tiny")
    assert result.exit_code == 1 and "would both be written to" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_preview_spreads_frames_over_the_film_and_finds_its_cut(two_shots, tmp_path):
    src = two_shots[0]  # 24 frames at 29.97 fps, a cut at frame 12
    sheet = tmp_path / "sheet.png"
    result = run("preview", src, "-o", sheet, "--model", "tiny", "--size", "128", "--frames", "6")
    assert result.exit_code == 0, result.output
    assert "6 of 24 frames, 2 shot(s) (cuts at 0.40 s)" in result.output
    img = cv2.imread(str(sheet))
    assert img.shape[1] == 2 * (2 * 320 + 8) + 3 * 8 and img.shape[0] > 3 * (320 * 121 // 161)
    # tiles: gray on the left of each pair, coloured on the right
    tile = img[100:200, 8 : 8 + 320].astype(int)
    coloured = img[100:200, 8 + 328 : 8 + 648].astype(int)
    assert np.abs(tile[..., 0] - tile[..., 2]).max() <= 1 and np.abs(coloured[..., 0] - coloured[..., 2]).mean() > 2
    again = run("preview", src, "-o", sheet, "--model", "tiny", "--size", "128")
    assert again.exit_code == 1 and "--overwrite" in again.output
    bad = run("preview", src, "-o", tmp_path / "sheet.mp4", "--model", "tiny")
    assert bad.exit_code == 1 and "is an image" in bad.output


def _pcm(path):
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1, 2) for f in c.decode(c.streams.audio[0])])


def test_an_excerpt_has_the_frames_of_its_range_and_its_sound_to_the_sample(tmp_path):
    """--start 1.5 --end 3.25 of a 30 fps film with a tone: frames 45..97 (53), and exactly
    1.75 s of sound (84000 samples at 48 kHz), the very samples of that stretch."""
    src = tmp_path / "tone.mkv"
    make_clip(src, frames=150, rate=Fraction(30), audio="pcm_s16le", codec="ffv1")
    out = tmp_path / "part.mkv"
    result = run("colorize", src, "-o", out, "--codec", "ffv1", "--model", "tiny", "--size", "128", "-q",
                 "--start", "1.5", "--end", "3.25")
    assert result.exit_code == 0, result.output
    a, b = probe(src, with_luma=True), probe(out, with_luma=True)
    assert b["frames"] == 53 and b["times"][0] == 0.0
    assert b["times"] == pytest.approx([t - 1.5 for t in a["times"][45:98]], abs=1e-3)
    assert all(psnr(x, y, 255) >= 40 for x, y in zip(a["luma"][45:98], b["luma"]))
    assert b["audio"][0]["samples"] == 84000 and b["audio"][0]["codec"] == "flac"  # lossless stays lossless
    whole, part = _pcm(src), _pcm(out)
    assert np.array_equal(part, whole[72000:156000])  # in sync to the sample
    # the same excerpt by frame numbers; an mp4 with AAC says its exact length in its header
    mp4 = tmp_path / "part.mp4"
    result = run("colorize", src, "-o", mp4, "--model", "tiny", "--size", "128", "-q", "--start", "f45", "--end", "f98")
    assert result.exit_code == 0, result.output
    assert probe(mp4)["frames"] == 53
    with av.open(str(mp4)) as c:
        s = c.streams.audio[0]
        # to the sample, within one tick of the movie timescale its edit list is written in
        assert float(s.duration * s.time_base) == pytest.approx(53 / 30, abs=1e-4)
    for args, words in ((("--start", "3", "--end", "2"), "must come after"), (("--start", "1:75"), "HH:MM:SS"),
                        (("--start", "9"), "past the end")):
        bad = run("colorize", src, "-o", tmp_path / "x.mp4", "--model", "tiny", *args)
        assert bad.exit_code == 1 and words in bad.output and len(bad.output.strip().splitlines()) == 1, bad.output


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_colorize_like_ctrl_c(tmp_path, signame):
    import os
    import signal
    import time

    src = tmp_path / "in.mp4"
    make_clip(src, frames=400, audio="aac")
    out = tmp_path / "out.mp4"
    exe = Path(sys.executable).with_name("vcgan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vcgan_cli"]
    proc = subprocess.Popen([*cmd, "colorize", str(src), "-o", str(out), "--model", "tiny", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            # a suite run under nohup hands its children SIGHUP ignored, which the
                            # CLI honours; this test wants the default a terminal's child has
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        for _ in range(600):  # until the work in progress has frames in it
            seg = tmp_path / "out.mp4.partial"
            if proc.poll() is not None or (seg.is_dir() and any(p.stat().st_size > 2000 for p in seg.iterdir())):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(getattr(signal, signame))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + getattr(signal, signame), err
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"stopped by {signame} after ") and "kept in" in lines[0], err
    assert lines[1:] == [f"resume with: vcgan colorize {src} -o {out} --model tiny -q --resume"], err
    # no temporary file and nothing under the output name; the work so far kept for --resume
    assert leftovers(tmp_path, {"in.mp4", "out.mp4.partial"}) == []
    assert (tmp_path / "out.mp4.partial" / "manifest.json").is_file()


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_a_still_image_given_to_colorize_points_to_vcgan_image(tmp_path, ext):
    still = tmp_path / f"photo{ext}"
    cv2.imwrite(str(still), (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8))
    renamed = tmp_path / "photo.mp4"
    renamed.write_bytes(still.read_bytes())  # a photo renamed to look like a film
    for src in (still, renamed):
        result = run("colorize", src, "-o", tmp_path / "o.mp4", "--model", "tiny", "-q")
        assert result.exit_code == 1 and "still image" in result.output and "vcgan image" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_a_large_photo_is_converted_in_strips_with_little_memory_per_pixel(tmp_path):
    """Peak numpy memory of `colorize_image` per photo pixel (tracemalloc sees numpy's and
    OpenCV's arrays): about 80 bytes before strips, ~20 now (the decoded photo, its luma, two
    scaled-up chroma planes and the output)."""
    import tracemalloc

    from vcgan_cli.pipeline import colorize_image

    h, w = 1600, 2400
    small = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "scan.png"), cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))
    model = "tiny"
    colorize_image(tmp_path / "scan.png", tmp_path / "warm.png", model=model)  # imports, caches
    tracemalloc.start()
    try:
        colorize_image(tmp_path / "scan.png", tmp_path / "out.png", model=model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / (h * w) < 32, f"{peak / (h * w):.1f} bytes a pixel"
    assert cv2.imread(str(tmp_path / "out.png")).shape == (h, w, 3)


def test_models_lists_the_shipped_weights_by_their_own_config_then_the_architectures():
    """`vcgan models`: each shipped model's size is read from its own config.json (the default,
    v1.3, is the gated design, not the architecture of the same name), then the trainable ones."""
    from vcgan_cli.models import count_parameters
    from vcgan_cli.weights import DEFAULT_MODEL, load_weights

    r = CliRunner().invoke(main, ["models"], terminal_width=400)
    assert r.exit_code == 0, r.output
    shipped, archs = r.output.split("Architectures")
    size = count_parameters(load_weights(DEFAULT_MODEL).generator) / 1e6
    assert f"{DEFAULT_MODEL} (default): {size:5.2f} M params" in shipped and "v1.3" in shipped
    assert "vcgan-lite-v1gk" in archs and "tiny" in archs
