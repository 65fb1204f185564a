"""The one writer of final files (vcgan_cli/files.py), alone and through every command that
writes one: exclusive last step, long names, read-only folders, nothing left behind."""
import errno
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from media_fixtures import make_clip, probe
from vcgan_cli import files
from vcgan_cli.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_atomic_is_exclusive_without_overwrite_and_keeps_the_result(tmp_path):
    target = tmp_path / "out.json"
    files.write_atomic(target, "one", overwrite=False)
    assert target.read_text() == "one"
    with pytest.raises(files.OutputAppearedError) as caught:
        files.write_atomic(target, "two", overwrite=False)
    assert target.read_text() == "one"  # what was there is left alone ...
    assert caught.value.kept == tmp_path / "out.vcgan-1.json" and caught.value.kept.read_text() == "two"  # ... and nothing is lost
    assert "out.vcgan-1.json" in str(caught.value) and "\n" not in str(caught.value)
    files.write_atomic(target, "three", overwrite=True)
    assert target.read_text() == "three"
    assert names(tmp_path) == ["out.json", "out.vcgan-1.json"]  # no temporary left


def test_a_failed_write_leaves_no_temporary_and_never_touches_the_target(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk pulled")
    assert target.read_bytes() == b"old" and names(tmp_path) == ["out.bin"]


def test_file_systems_without_hard_links_still_publish(tmp_path, monkeypatch):
    def no_links(a, b):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "out.txt"
    files.write_atomic(target, "a", overwrite=False)
    assert target.read_text() == "a"
    with pytest.raises(files.OutputAppearedError):
        files.write_atomic(target, "b", overwrite=False)
    assert target.read_text() == "a" and (tmp_path / "out.vcgan-1.txt").read_text() == "b"


def test_temporary_names_fit_name_max_however_long_the_target(tmp_path):
    long = tmp_path / ("é" * 120 + "x" * 6 + ".mp4")  # 250 bytes, legal on ext4
    tmp = files.temp_path(long)
    assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".mp4"
    assert len(tmp.name.encode()) <= files.name_max(tmp_path)
    assert files.temp_path(long) != tmp  # fresh each time: two runs never share one
    files.write_atomic(long, "x", overwrite=False)
    assert long.read_text() == "x"
    too_long = tmp_path / ("y" * 300 + ".png")
    assert "longer than this file system allows" in files.target_problem(too_long)


def test_a_read_only_folder_is_called_read_only(tmp_path, monkeypatch):
    class ReadOnly:
        f_flag = os.ST_RDONLY

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if mode & os.W_OK else real_access(path, mode, **kw))
    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    assert files.target_problem(tmp_path / "out.mp4") == f"folder {tmp_path} is on a read-only file system"
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.full((64, 64), 128, np.uint8))
    result = run("image", src, "-o", tmp_path / "b.png", "--model", "tiny", "--size", "64")
    assert result.exit_code != 0 and "read-only file system" in result.output and "permission" not in result.output


def test_an_output_that_appears_during_colorize_is_left_alone_and_the_film_kept(tmp_path):
    from vcgan_cli.pipeline import colorize_video

    src = tmp_path / "in.mp4"
    make_clip(src, frames=12, audio="aac")
    out = tmp_path / "out.mp4"

    def someone_else_writes(p):  # another program takes the name while we work
        if not out.exists():
            out.write_text("theirs")

    with pytest.raises(files.OutputAppearedError) as caught:
        colorize_video(src, out, model="tiny", size=128, progress=someone_else_writes)
    assert out.read_text() == "theirs"
    kept = tmp_path / "out.vcgan-1.mp4"
    assert caught.value.kept == kept and probe(kept)["frames"] == 12
    assert names(tmp_path) == ["in.mp4", "out.mp4", "out.vcgan-1.mp4"]
    # with --overwrite the run's result replaces it, as asked
    colorize_video(src, out, model="tiny", size=128, overwrite=True, progress=someone_else_writes)
    assert probe(out)["frames"] == 12


def test_a_report_that_appears_during_colorize_is_left_alone(tmp_path, monkeypatch):
    from vcgan_cli import pipeline

    src = tmp_path / "in.mp4"
    make_clip(src, frames=3, audio=None)
    report = tmp_path / "report.json"
    original = pipeline.colorize_video

    def and_then_someone_writes(*a, **kw):  # the command imports it when it runs
        result = original(*a, **kw)
        report.write_text("theirs")
        return result

    monkeypatch.setattr(pipeline, "colorize_video", and_then_someone_writes)
    result = run("colorize", src, "-o", tmp_path / "out.mp4", "--model", "tiny", "-q", "--report", report)
    assert result.exit_code != 0 and "appeared while vcgan was working" in result.output, result.output
    assert report.read_text() == "theirs"
    assert json.loads((tmp_path / "report.vcgan-1.json").read_text())["frames"] == 3


def test_250_character_output_names_work_for_films_and_photos(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=3, audio=None)
    out = tmp_path / ("f" * 246 + ".mp4")
    result = run("colorize", src, "-o", out, "--model", "tiny", "-q")
    assert result.exit_code == 0, result.output
    assert probe(out)["frames"] == 3
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((64, 80), 100, np.uint8))
    dst = tmp_path / ("g" * 246 + ".png")
    result = run("image", photo, "-o", dst, "--model", "tiny", "--size", "64", "-q")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(dst)).shape == (64, 80, 3)
    assert sorted(n[:1] for n in names(tmp_path)) == ["f", "g", "i", "p"]  # no temporaries


def test_names_too_long_are_refused_before_any_work_naming_the_output(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=3, audio=None)
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((64, 64), 100, np.uint8))
    for args, out in ((("colorize", src), tmp_path / ("f" * 300 + ".mp4")), (("image", photo), tmp_path / ("g" * 300 + ".png"))):
        result = run(*args, "-o", out, "--model", "tiny", "--size", "128")
        assert result.exit_code != 0 and out.name[:20] in result.output and "longer than this file system allows" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert names(tmp_path) == ["in.mp4", "p.png"]


def test_image_write_errors_name_the_output_not_the_input(tmp_path, monkeypatch):
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((64, 64), 100, np.uint8))
    dst = tmp_path / "out.png"

    def disk_full(target, data, *, overwrite):
        raise OSError(errno.ENOSPC, "No space left on device", str(files.temp_path(target)))

    monkeypatch.setattr(files, "write_atomic", disk_full)
    result = run("image", photo, "-o", dst, "--model", "tiny", "--size", "64")
    assert result.exit_code != 0 and str(dst) in result.output and "no space left" in result.output
    assert "p.png:" not in result.output.replace(str(dst), "")


def test_libjpeg_chatter_becomes_one_warning_and_quiet_means_quiet_of_it(tmp_path, capfd):
    img = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    data = bytearray(cv2.imencode(".jpg", cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))[1].tobytes())
    data[len(data) // 2 : len(data) // 2 + 40] = b"\0" * 40
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(bytes(data))
    result = run("image", bad, "-o", tmp_path / "out.jpg", "--model", "tiny", "--size", "64", "-q")
    native = capfd.readouterr()
    assert result.exit_code == 0, result.output
    assert "Corrupt JPEG data" not in native.err + native.out  # nothing past vcgan's own output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning") and "Corrupt JPEG data" in lines[0] and "bad.jpg" in lines[0]


def test_a_working_size_the_machine_cannot_hold_is_refused_before_any_work(tmp_path, monkeypatch):
    """The hostile test's case 5 (--size 4096 on a small clip passed 6 GB): an estimate of the
    network's memory at that size, traced on the meta device, against what is free."""
    from vcgan_cli import memory
    from vcgan_cli.models import VARIANTS

    small, large = memory.traced_peak(VARIANTS["tiny"], 512, 512), memory.traced_peak(VARIANTS["tiny"], 1024, 1024)
    assert 3.5 < large / small < 4.5  # activations grow with the pixels
    assert memory.traced_peak(VARIANTS["vcgan-lite"], 1024, 1024) > 3 * memory.traced_peak(VARIANTS["vcgan-lite-v1"], 1024, 1024)
    src = tmp_path / "in.mp4"
    make_clip(src, frames=3, audio=None)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 256 * 2**20)
    result = run("colorize", src, "-o", tmp_path / "out.mp4", "--model", "tiny", "--size", "2048")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--size 2048: the network would need about" in result.output and "use --size" in result.output
    suggested = int(result.output.split("use --size ")[1].split()[0])
    assert 16 <= suggested < 2048
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((64, 64), 100, np.uint8))
    result = run("image", photo, "-o", tmp_path / "q.png", "--model", "tiny", "--size", "2048")
    assert result.exit_code != 0 and "the network would need about" in result.output
    assert names(tmp_path) == ["in.mp4", "p.png"]
    assert run("colorize", src, "-o", tmp_path / "out.mp4", "--model", "tiny", "--size", "128", "-q").exit_code == 0
