"""Interrupted films resume to the same film: signals, the library's StopRequest, refusals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from media_fixtures import make_clip, probe
from vcgan_cli.errors import Interrupted
from vcgan_cli.partial import Partial, PartialError, partial_dir
from vcgan_cli.pipeline import StopRequest, colorize_video
from vcgan_cli.runtime import load_model

SIZE = 64


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", device="cpu")


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A clip with a cut and a sine track, and its uninterrupted colourisation (ffv1)."""
    folder = tmp_path_factory.mktemp("resume")
    src = folder / "in.mp4"
    make_clip(src, frames=300, cut_at=120, width=96, height=64)
    whole = folder / "whole.mkv"
    colorize_video(src, whole, model=load_model("tiny", device="cpu"), size=SIZE, codec="ffv1")
    return src, whole


def _pictures(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [b"".join(bytes(p) for p in f.planes) for f in c.decode(video=0)]


def _same_film(a: Path, b: Path) -> None:
    pa, pb = probe(a), probe(b)
    assert pb["frames"] == pa["frames"]
    assert pb["pts"] == pa["pts"]
    assert len(pb["audio"]) == len(pa["audio"]) == 1
    one_frame = 1024 / pa["audio"][0]["sample_rate"]
    assert abs(pb["audio"][0]["duration"] - pa["audio"][0]["duration"]) <= one_frame
    assert _pictures(a) == _pictures(b)  # bit for bit


@pytest.mark.parametrize("every", [0.0, 3600.0], ids=["segment-per-frame", "one-segment-at-the-stop"])
def test_a_stopped_run_resumes_to_the_same_film(film, tiny, tmp_path, every):
    src, whole = film
    out = tmp_path / "out.mkv"
    stop = StopRequest()

    def progress(p):
        if p.frames_done == 77:  # mid-shot: the recurrence's state is saved, not only the frames
            assert stop.request(signal.SIGTERM)

    with pytest.raises(Interrupted) as caught:
        colorize_video(src, out, model=tiny, size=SIZE, codec="ffv1", progress=progress, stop=stop, segment_seconds=every)
    assert caught.value.exit_code == 143 and not out.exists()
    assert caught.value.frames_done >= 77
    manifest = json.loads((partial_dir(out) / "manifest.json").read_text())
    assert sum(s["frames"] for s in manifest["segments"]) == caught.value.frames_done
    assert not stop.request(signal.SIGTERM)  # no run listens any more

    seen = []
    result = colorize_video(src, out, model=tiny, size=SIZE, codec="ffv1", resume=True, segment_seconds=every,
                            progress=lambda p: seen.append(p.frames_resumed))
    assert result.resumed_from == caught.value.frames_done and set(seen) == {result.resumed_from}
    assert result.frames == 300 and result.shot_starts == [0, 120]
    assert not partial_dir(out).exists()
    _same_film(whole, out)


def _run_cli(args, **kw):
    env = dict(os.environ, VCGAN_SEGMENT_SECONDS="0.2", VCGAN_BACKEND="torch", HF_HUB_OFFLINE="1")
    # SIGHUP at its default in the child, as a terminal's child has it, even when the suite
    # runs under nohup (which hands children SIGHUP ignored, and the CLI honours that)
    kw.setdefault("preexec_fn", lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    return subprocess.Popen([sys.executable, "-m", "vcgan_cli", *args], env=env, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_stops_at_a_frame_keeps_the_work_and_resume_finishes_it(film, tmp_path, sig):
    src, whole = film
    out = tmp_path / "out.mkv"
    args = ["colorize", str(src), "-o", str(out), "--codec", "ffv1", "--model", "tiny", "--size", str(SIZE), "-q"]
    proc = _run_cli(args)
    manifest = partial_dir(out) / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if manifest.exists() and json.loads(manifest.read_text())["segments"]:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr
    assert not out.exists() and partial_dir(out).is_dir()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert any(line.startswith("stopped by") and "kept in" in line for line in lines), stderr
    hint = next(line for line in lines if line.startswith("resume with:"))
    assert hint.endswith("--resume") and str(out) in hint

    done = subprocess.run([sys.executable, "-m", "vcgan_cli", *args, "--resume"], capture_output=True, text=True,
                          env=dict(os.environ, VCGAN_BACKEND="torch", HF_HUB_OFFLINE="1"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert not partial_dir(out).exists()
    _same_film(whole, out)


def _stopped_run(src, out, tiny, at=40, **kw):
    stop = StopRequest()

    def progress(p):
        if p.frames_done == at:
            stop.request(signal.SIGINT)

    with pytest.raises(Interrupted) as caught:
        colorize_video(src, out, model=tiny, size=SIZE, codec="ffv1", progress=progress, stop=stop, **kw)
    assert caught.value.exit_code == 130
    return caught.value


def test_saved_work_is_never_reused_with_other_settings_or_deleted(film, tiny, tmp_path):
    src, _ = film
    out = tmp_path / "out.mkv"
    _stopped_run(src, out, tiny)
    folder = partial_dir(out)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(PartialError, match=r"holds an unfinished run .*\(4[01] frames in 1 segment.*--resume"):
        colorize_video(src, out, model=tiny, size=SIZE, codec="ffv1")
    with pytest.raises(PartialError, match=r"cannot resume .*size 96 \(was 64\)"):
        colorize_video(src, out, model=tiny, size=96, codec="ffv1", resume=True)
    with pytest.raises(PartialError, match=r"another model"):
        colorize_video(src, out, model=load_model("random:tiny-v1", device="cpu"), size=SIZE, codec="ffv1", resume=True)
    with pytest.raises(PartialError, match=r"codec libx264 \(was ffv1\)"):
        colorize_video(src, tmp_path / "out.mkv", model=tiny, size=SIZE, codec="libx264", resume=True)
    other = tmp_path / "other.mp4"
    make_clip(other, frames=300, cut_at=100, width=96, height=64)
    os.replace(other, src.with_name("changed.mp4"))
    with pytest.raises(PartialError, match=r"input file is not the one"):
        colorize_video(src.with_name("changed.mp4"), out, model=tiny, size=SIZE, codec="ffv1", resume=True)
    assert sorted(p.name for p in folder.iterdir()) == before and not out.exists()
    held = Partial.load(folder)
    held.lock()  # as another vcgan still writing into it
    with pytest.raises(PartialError, match=r"another vcgan is colourising into"):
        colorize_video(src, out, model=tiny, size=SIZE, codec="ffv1", resume=True)
    held.release()
    assert sorted(p.name for p in folder.iterdir()) == before


def test_the_cli_refuses_a_resume_with_another_size_in_one_line(film, tiny, tmp_path):
    src, _ = film
    out = tmp_path / "out.mkv"
    _stopped_run(src, out, tiny)
    r = subprocess.run([sys.executable, "-m", "vcgan_cli", "colorize", str(src), "-o", str(out), "--codec", "ffv1",
                        "--model", "tiny", "--size", "96", "--resume"], capture_output=True, text=True,
                       env=dict(os.environ, VCGAN_BACKEND="torch", HF_HUB_OFFLINE="1"), timeout=300)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "size 96 (was 64)" in lines[0], r.stderr
    assert partial_dir(out).is_dir() and not out.exists()


def test_what_a_crash_leaves_is_tidied_and_a_lost_segment_is_named(film, tiny, tmp_path):
    src, whole = film
    out = tmp_path / "out.mkv"
    _stopped_run(src, out, tiny, segment_seconds=0.0)
    folder = partial_dir(out)
    (folder / ".seg-00099.vpk.vcgan-tmp").write_bytes(b"half a segment")  # as a crash mid-write leaves it
    colorize_video(src, out, model=tiny, size=SIZE, codec="ffv1", resume=True, segment_seconds=0.0)
    _same_film(whole, out)

    out2 = tmp_path / "out2.mkv"
    _stopped_run(src, out2, tiny, segment_seconds=0.0)
    (partial_dir(out2) / "seg-00002.vpk").unlink()
    with pytest.raises(PartialError, match=r"seg-00002.vpk is missing or damaged; remove .* to start over"):
        colorize_video(src, out2, model=tiny, size=SIZE, codec="ffv1", resume=True)


def test_an_excerpt_resumes_with_its_sound_cut_to_the_sample(film, tiny, tmp_path):
    src, _ = film
    whole, out = tmp_path / "whole.mkv", tmp_path / "out.mkv"
    kw = dict(model=tiny, size=SIZE, codec="ffv1", start="1.5", end="7.25")
    colorize_video(src, whole, **kw)
    stop = StopRequest()
    with pytest.raises(Interrupted):
        colorize_video(src, out, stop=stop, progress=lambda p: p.frames_done == 50 and stop.request(signal.SIGHUP), **kw)
    colorize_video(src, out, resume=True, **kw)
    _same_film(whole, out)
    got = probe(out)
    assert got["frames"] == sum(1.5 <= k * 1001 / 30000 < 7.25 for k in range(300))
    assert got["audio"][0]["duration"] == pytest.approx(7.25 - 1.5, abs=1024 / 48000)  # AAC: whole frames


def test_a_batch_resume_skips_the_films_already_done(film, tmp_path):
    src, _ = film
    films = tmp_path / "films"
    films.mkdir()
    for name in ("a", "b"):
        make_clip(films / f"{name}.mp4", frames=20, width=96, height=64)
    out = tmp_path / "out"
    env = dict(os.environ, VCGAN_BACKEND="torch", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "vcgan_cli", "colorize", str(films), "-o", str(out), "--model", "tiny", "--size", str(SIZE)]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    stamp = (out / "a_color.mp4").stat().st_mtime_ns
    (out / "b_color.mp4").unlink()
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (out / "a_color.mp4").stat().st_mtime_ns == stamp and probe(out / "b_color.mp4")["frames"] == 20
    assert "done before" in again.stderr
