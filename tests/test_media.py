"""Tests for vcgan_cli.media: real small clips written and read back with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from media_fixtures import (
    corrupt_packet,
    make_audio_only,
    make_clip,
    make_video_without_frames,
    probe,
    psnr,
    truncate_file,
)
from vcgan_cli.errors import DamagedMediaError, MediaError
from vcgan_cli.media import AudioPacket, Frame, MediaReader, VideoInfo, VideoWriter

AAC_FRAME_S = 1024 / 48000


# ----------------------------------------------------------------------------- helpers


def transcode(src, dst, *, mode="planes", chroma=None, **writer_kw):
    """Reader -> writer with the reader's own luma and neutral (or given) chroma."""
    reader = MediaReader(src)
    frames = []
    with VideoWriter(dst, reader, **writer_kw) as w:
        for item in reader.demux():
            if isinstance(item, Frame):
                frames.append(item)
                h, wd = item.luma.shape
                if mode == "planes":
                    # chroma at a smaller working resolution with the frame's aspect
                    ch, cw = max(1, h // 4), max(1, wd // 4)
                    cb = np.full((ch, cw), chroma[0] if chroma else 0.0, np.float32)
                    cr = np.full((ch, cw), chroma[1] if chroma else 0.0, np.float32)
                    w.write_frame(item.pts, item.luma, cb, cr)
                else:
                    g = np.clip(item.luma, 0, 1)[::2, ::2, None]
                    w.write_rgb(item.pts, np.repeat(g, 3, axis=2))
            else:
                assert isinstance(item, AudioPacket)
                w.write_audio(item)
        w.commit()
    return reader, w, frames


def normalised_y(raw: np.ndarray, bits: int, full: bool) -> np.ndarray:
    y = raw.astype(np.float64)
    if full:
        return y / (2**bits - 1)
    s = 2 ** (bits - 8)
    return (y - 16 * s) / (219 * s)


def luma_psnr(src_probe, dst_probe, src_bits, dst_bits, src_full=False):
    worst = float("inf")
    for a, b in zip(src_probe["luma"], dst_probe["luma"]):
        worst = min(worst, psnr(normalised_y(a, src_bits, src_full), normalised_y(b, dst_bits, False), 1.0))
    return worst


def assert_one_line_media_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, repr(msg)
    for n in needles:
        assert n.lower() in msg.lower(), msg


def leftovers(folder, keep):
    return sorted(set(os.listdir(folder)) - set(keep))


# ------------------------------------------------------------------------ round trips


def test_roundtrip_mp4_keeps_frames_pts_luma_and_copies_aac(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    made = make_clip(src, frames=40, cut_at=20)
    reader, w, frames = transcode(src, dst)

    info = reader.info
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.rotation) == (160, 120, 0)
    assert info.bit_depth == 8 and not info.full_range and info.matrix == "bt601"
    assert info.audio and info.audio[0].codec == "aac" and info.audio[0].channels == 2
    assert [f.index for f in frames] == list(range(40))
    assert all(f.luma.dtype == np.float32 and f.luma.shape == (120, 160) for f in frames)
    assert reader.warnings == []

    pi, po = probe(src, with_luma=True), probe(dst, with_luma=True)
    assert po["frames"] == pi["frames"] == made["frames"] == w.frames_written
    assert po["pts"] == pi["pts"] == [f.pts for f in frames]
    assert po["time_base"] == pi["time_base"]
    assert luma_psnr(pi, po, 8, 8) >= 40
    assert po["chroma"] < 0.01  # neutral chroma in, gray out
    assert po["pix_fmt"] == "yuv420p" and po["rotation"] == 0

    assert len(po["audio"]) == 1 and po["audio"][0]["codec"] == "aac"
    assert abs(po["audio"][0]["duration"] - pi["audio"][0]["duration"]) <= AAC_FRAME_S + 1e-6
    assert abs(po["audio"][0]["start"] - pi["audio"][0]["start"]) <= 1e-3
    assert "copied (aac)" in w.output_info and "libx264 yuv420p crf 18" in w.output_info
    assert not any(n.startswith(".") for n in os.listdir(tmp_path))


def test_reader_luma_is_exact_normalisation_of_decoded_y(tmp_path):
    src = tmp_path / "in.mkv"
    make_clip(src, frames=6, audio=None)
    reader = MediaReader(src)
    frames = [f for f in reader.demux() if isinstance(f, Frame)]
    pi = probe(src, with_luma=True)
    for f, raw in zip(frames, pi["luma"]):
        back = np.rint(f.luma * 219 + 16)
        assert np.array_equal(back, raw.astype(np.float64))
        assert abs(f.time - f.pts * float(reader.info.time_base)) < 1e-9
    # 30 fps content in a 1/1000 matroska time base
    assert reader.info.time_base == Fraction(1, 1000)
    assert reader.info.average_rate is not None and abs(float(reader.info.average_rate) - 29.97) < 0.1


@pytest.mark.parametrize("codec", ["libx265", "ffv1"])
def test_roundtrip_10bit(tmp_path, codec):
    src, dst = tmp_path / "in10.mkv", tmp_path / "out10.mkv"
    make_clip(src, frames=12, codec="libx265", pix_fmt="yuv420p10le")
    reader, w, _ = transcode(src, dst, codec=codec)
    assert reader.info.bit_depth == 10 and reader.info.pix_fmt == "yuv420p10le"
    pi, po = probe(src, with_luma=True), probe(dst, with_luma=True)
    assert po["pix_fmt"] == "yuv420p10le"
    assert po["pts"] == pi["pts"]
    if codec == "ffv1":  # lossless: the decoded source luma is reproduced bit-exactly
        assert all(np.array_equal(a, b) for a, b in zip(pi["luma"], po["luma"]))
    else:
        assert luma_psnr(pi, po, 10, 10) >= 40
    assert po["audio"][0]["codec"] == "aac"


def test_ten_bit_override_and_x264_stays_8bit_by_default(tmp_path):
    src = tmp_path / "in10.mkv"
    make_clip(src, frames=4, codec="libx265", pix_fmt="yuv420p10le", audio=None)
    reader = MediaReader(src)
    w = VideoWriter(tmp_path / "a.mkv", reader)  # libx264: 8-bit unless asked
    assert w.pix_fmt == "yuv420p"
    w.abort()
    w = VideoWriter(tmp_path / "b.mkv", reader, codec="libx265", ten_bit=False)
    assert w.pix_fmt == "yuv420p"
    w.abort()
    w = VideoWriter(tmp_path / "c.mkv", reader, codec="prores_ks")
    assert w.pix_fmt == "yuv422p10le" and "profile hq" in w.output_info
    w.abort()
    assert leftovers(tmp_path, ["in10.mkv"]) == []


@pytest.mark.parametrize("codec, pix_fmt", [("libx264", "yuv444p"), ("ffv1", "yuv420p")])
def test_roundtrip_odd_size_keeps_exact_size(tmp_path, codec, pix_fmt):
    src, dst = tmp_path / "odd.mp4", tmp_path / "odd_out.mkv"
    make_clip(src, width=321, height=241, frames=8, pix_fmt="yuv444p")
    reader, w, frames = transcode(src, dst, codec=codec)
    assert (reader.info.width, reader.info.height) == (321, 241)
    assert frames[0].luma.shape == (241, 321)
    pi, po = probe(src, with_luma=True), probe(dst, with_luma=True)
    assert (po["width"], po["height"]) == (321, 241)
    assert po["pix_fmt"] == pix_fmt == w.pix_fmt
    assert po["frames"] == pi["frames"]
    assert luma_psnr(pi, po, 8, 8) >= 40


def test_pcm_audio_is_transcoded_for_mp4(tmp_path):
    src, dst = tmp_path / "in.mov", tmp_path / "out.mp4"
    make_clip(src, frames=20, audio="pcm_s16le")
    _, w, _ = transcode(src, dst)
    pi, po = probe(src), probe(dst)
    assert pi["audio"][0]["codec"] == "pcm_s16le"
    assert po["audio"][0]["codec"] == "aac"
    assert abs(po["audio"][0]["duration"] - pi["audio"][0]["duration"]) <= AAC_FRAME_S + 1e-6
    assert "1 transcoded (pcm_s16le->aac)" in w.output_info
    assert po["pts"] == pi["pts"]


def test_several_audio_streams_copied_or_transcoded(tmp_path):
    src, dst = tmp_path / "multi.mkv", tmp_path / "multi.mp4"
    make_clip(src, frames=15, audio=["aac", "pcm_s16le", "opus"])
    reader, w, _ = transcode(src, dst)
    assert [a.codec for a in reader.info.audio] == ["aac", "pcm_s16le", "opus"]
    po = probe(dst)
    assert [a["codec"] for a in po["audio"]] == ["aac", "aac", "opus"]
    for a, b in zip(probe(src)["audio"], po["audio"]):
        assert abs(a["duration"] - b["duration"]) <= 960 / 48000 + AAC_FRAME_S
    assert "2 audio streams copied (aac, opus)" in w.output_info
    assert "1 transcoded (pcm_s16le->aac)" in w.output_info


@pytest.mark.parametrize(
    "name, kw",
    [
        ("in.mkv", {}),
        ("in.mov", {"audio": "pcm_s16le"}),
        ("in.avi", {"codec": "mpeg4", "audio": "pcm_s16le"}),
        ("in.webm", {"codec": "libvpx-vp9", "audio": "opus"}),
    ],
)
def test_input_containers(tmp_path, name, kw):
    src, dst = tmp_path / name, tmp_path / "out.mkv"
    make_clip(src, frames=15, **kw)
    reader, _, frames = transcode(src, dst)
    assert len(frames) == 15
    pi, po = probe(src, with_luma=True), probe(dst, with_luma=True)
    assert po["frames"] == pi["frames"] == 15
    # matroska stores milliseconds: times agree to the rounding of its time base
    assert np.allclose(po["times"], pi["times"], atol=0.0006)
    assert luma_psnr(pi, po, 8, 8) >= 38
    assert len(po["audio"]) == 1
    assert abs(po["audio"][0]["duration"] - pi["audio"][0]["duration"]) <= AAC_FRAME_S + 1e-6


@pytest.mark.parametrize("out_name", ["vfr_out.mkv", "vfr_out.mp4"])
def test_variable_frame_rate_is_preserved(tmp_path, out_name):
    src, dst = tmp_path / "vfr.mkv", tmp_path / out_name
    made = make_clip(src, frames=24, vfr=True)
    _, w, frames = transcode(src, dst)
    assert [f.pts for f in frames] == made["pts"]
    po = probe(dst)
    assert po["frames"] == 24
    assert np.allclose(po["times"], made["times"], atol=1e-9)
    steps = np.diff(po["times"])
    assert steps.max() > 2.5 * steps.min()  # really irregular


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_nonzero_start_keeps_timestamps_and_audio_offset(tmp_path, ext):
    src, dst = tmp_path / f"late.{ext}", tmp_path / f"late_out.{ext}"
    made = make_clip(src, frames=15, rate=25, time_base=Fraction(1, 1000), start_pts=500)
    reader, _, frames = transcode(src, dst)
    assert abs(frames[0].time - 0.5) < 1e-9  # (mp4 keeps 1/1000 as 1/16000)
    pi, po = probe(src), probe(dst)
    assert np.allclose(po["times"], made["times"], atol=1e-9)
    assert np.allclose(pi["times"], made["times"], atol=1e-9)
    # the audio keeps its place relative to the picture (within its priming frame)
    assert abs(po["audio"][0]["start"] - pi["audio"][0]["start"]) <= AAC_FRAME_S + 1e-3


def test_rotation_metadata_is_applied(tmp_path):
    src, dst = tmp_path / "phone.mp4", tmp_path / "upright.mp4"
    make_clip(src, frames=6, rotation=90)
    reader, _, frames = transcode(src, dst)
    info = reader.info
    assert info.rotation == 90
    assert (info.width, info.height) == (120, 160)
    lum = frames[0].luma
    assert lum.shape == (160, 120) and lum.flags["C_CONTIGUOUS"]
    # frame 0 has the bright 30x30 square at rows 30..59, columns 0..29 of the coded
    # picture; turned 90 degrees clockwise it sits at rows 0..29, columns 60..89.
    assert lum[2:28, 62:88].mean() > 0.85
    assert lum[2:28, 2:28].mean() < 0.6
    po = probe(dst)
    assert (po["width"], po["height"]) == (120, 160)
    assert po["rotation"] == 0  # no rotation tag on the upright output
    assert po["frames"] == 6


@pytest.mark.parametrize("ext, rotation", [("mkv", 0), ("mp4", 90)])
def test_non_square_pixels_are_kept(tmp_path, ext, rotation):
    src, dst = tmp_path / f"dvd.{ext}", tmp_path / f"dvd_out.{ext}"
    make_clip(src, width=176, height=120, frames=3, audio=None, rotation=rotation,
              sample_aspect_ratio=Fraction(32, 27))
    transcode(src, dst)
    want = Fraction(32, 27) if rotation == 0 else Fraction(27, 32)
    assert probe(dst)["sample_aspect_ratio"] == want


@pytest.mark.parametrize(
    "kw, full",
    [
        ({"pix_fmt": "yuvj420p"}, True),
        ({"codec": "ffv1", "pix_fmt": "gray", "audio": None}, True),
        ({"codec": "ffv1", "pix_fmt": "gray10le", "audio": None}, True),
        ({"codec": "ffv1", "pix_fmt": "bgr0", "audio": None}, True),
        ({"codec": "png", "pix_fmt": "rgb24", "audio": None}, True),
    ],
)
def test_full_range_gray_and_rgb_sources(tmp_path, kw, full):
    ext = {"libx264": "mp4", "png": "mov"}.get(kw.get("codec", "libx264"), "mkv")
    src, dst = tmp_path / f"src.{ext}", tmp_path / "out.mp4"
    made = make_clip(src, frames=5, **kw)
    reader, w, frames = transcode(src, dst)
    assert reader.info.full_range is full
    assert reader.info.bit_depth == (10 if kw["pix_fmt"] == "gray10le" else 8)
    for f, want in zip(frames, made["luma"]):
        # luma matches the intended content to quantisation (+ lossy coding for yuvj)
        tol = 0.02 if kw.get("codec", "libx264") == "libx264" else 0.006
        assert np.abs(f.luma - want).mean() < tol
        assert f.chroma < 0.01
    po = probe(dst, with_luma=True)
    assert po["frames"] == 5 and po["pix_fmt"] == "yuv420p"
    got = normalised_y(po["luma"][0], 8, False)
    assert psnr(got, frames[0].luma, 1.0) >= 38


@pytest.mark.parametrize(
    "pix_fmt, bits, full",
    [
        ("yuyv422", 8, False),
        ("nv12", 8, False),
        ("yuv420p10be", 10, False),
        ("yuv422p10le", 10, False),
        ("gray16be", 16, True),
        ("ya8", 8, True),
        ("rgb48le", 16, True),
        ("gbrp10le", 10, True),
    ],
)
def test_unusual_pixel_formats(tmp_path, pix_fmt, bits, full):
    src = tmp_path / f"raw_{pix_fmt}.nut"
    made = make_clip(src, frames=2, width=64, height=48, codec="rawvideo", pix_fmt=pix_fmt, audio=None)
    reader = MediaReader(src)
    assert reader.info.pix_fmt == pix_fmt
    assert (reader.info.bit_depth, reader.info.full_range) == (bits, full)
    frames = [f for f in reader.demux() if isinstance(f, Frame)]
    assert len(frames) == 2
    for f, want in zip(frames, made["luma"]):
        assert f.luma.shape == (48, 64)
        assert np.abs(f.luma - want).max() < 0.004
        assert f.chroma < 0.005


def test_chroma_measure_gray_vs_colour(tmp_path):
    gray, colour = tmp_path / "gray.mp4", tmp_path / "colour.mp4"
    make_clip(gray, frames=3, audio=None)
    make_clip(colour, frames=3, audio=None, colour=True)
    g = [f.chroma for f in MediaReader(gray).demux() if isinstance(f, Frame)]
    c = [f.chroma for f in MediaReader(colour).demux() if isinstance(f, Frame)]
    assert max(g) < 0.01
    assert 0.08 < min(c) < 0.4


def test_write_frame_chroma_quantisation_and_colour_tags(tmp_path):
    src, dst = tmp_path / "hd.mkv", tmp_path / "tinted.mkv"
    make_clip(src, frames=4, audio=None, colorspace=1, color_range=1)  # tagged bt709
    reader, w, _ = transcode(src, dst, codec="ffv1", chroma=(0.25, -0.125))
    assert reader.info.matrix == "bt709"
    import av

    with av.open(str(dst)) as c:
        fr = next(c.decode(video=0))
        assert fr.colorspace == 1 and fr.color_range == 1
        u = fr.planes[1]
        cb = np.frombuffer(u, np.uint8).reshape(u.height, u.line_size)[:, : u.width]
        v = fr.planes[2]
        cr = np.frombuffer(v, np.uint8).reshape(v.height, v.line_size)[:, : v.width]
    assert np.all(cb == 128 + 56) and np.all(cr == 128 - 28)


def test_write_rgb_mode(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "rgb.mp4"
    make_clip(src, frames=8)
    reader, w, frames = transcode(src, dst, mode="rgb")
    pi, po = probe(src, with_luma=True), probe(dst, with_luma=True)
    assert po["frames"] == 8 and po["pts"] == pi["pts"]
    assert po["chroma"] < 0.02
    assert luma_psnr(pi, po, 8, 8) >= 28  # half-resolution RGB scaled back up
    assert po["audio"][0]["codec"] == "aac"


def test_demux_is_lazy_and_interleaved(tmp_path):
    src = tmp_path / "in.mkv"
    make_clip(src, frames=30)
    reader = MediaReader(src)
    it = reader.demux()
    kinds = []
    for item in it:
        kinds.append("v" if isinstance(item, Frame) else "a")
        if len(kinds) == 12:
            break
    it.close()  # stopping early is fine and closes the file
    assert "a" in kinds and "v" in kinds
    # a fresh pass starts from the beginning again
    again = [f for f in reader.demux() if isinstance(f, Frame)]
    assert len(again) == 30 and again[0].index == 0


# -------------------------------------------------------------------------- damage


def test_truncated_mkv_reads_up_to_the_break_with_a_warning(tmp_path):
    full, cut = tmp_path / "full.mkv", tmp_path / "cut.mkv"
    make_clip(full, frames=60, audio=None)
    truncate_file(full, cut, 0.5)
    reader = MediaReader(cut)
    frames = [f for f in reader.demux() if isinstance(f, Frame)]
    assert 5 <= len(frames) < 60
    assert len(reader.warnings) == 1
    msg = reader.warnings[0]
    assert "\n" not in msg and str(len(frames) - 1) in msg and "colourised up to there" in msg
    # and it can still be written out
    _, w, _ = transcode(cut, tmp_path / "cut_out.mkv")
    assert probe(tmp_path / "cut_out.mkv")["frames"] == len(frames)


def test_a_damaged_stretch_is_stood_in_for_frame_for_frame_with_a_warning(tmp_path):
    """Noise over an eighth of an all-intra mkv (clusters and pictures): the demuxer finds its
    way again, and every picture lost in between is the previous good one, at its own time."""
    src, bad = tmp_path / "ok.mkv", tmp_path / "bad.mkv"
    make_clip(src, frames=40, codec="ffv1", audio=None, codec_options={"slicecrc": "1"})
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(7)
    mid = len(data) // 2
    data[mid: mid + len(data) // 8] = rng.integers(0, 256, len(data) // 8, dtype=np.uint8).tobytes()
    bad.write_bytes(bytes(data))
    reader = MediaReader(bad)
    items = list(reader.demux())  # no exception
    frames = [f for f in items if isinstance(f, Frame)]
    good = [f for f in MediaReader(src).demux() if isinstance(f, Frame)]
    assert [f.pts for f in frames] == [f.pts for f in good] and [f.index for f in frames] == list(range(40))
    damaged = [f.index for f in frames if f.damaged]
    assert damaged and damaged == reader.damaged_frames and damaged == list(range(damaged[0], damaged[-1] + 1))
    first = damaged[0]
    assert all(f.luma is frames[first - 1].luma for f in frames if f.damaged)  # the last good picture
    assert len(reader.warnings) == 1 and "\n" not in reader.warnings[0]
    assert reader.warnings[0].startswith(f"{len(damaged)} damaged frames could not be decoded")
    assert f"frames {first} (" in reader.warnings[0] and "timing and sound stay" in reader.warnings[0]
    with pytest.raises(DamagedMediaError, match="--strict"):
        list(MediaReader(bad, strict=True).demux())


def test_one_corrupt_packet_costs_one_stand_in_not_the_rest_of_the_film(tmp_path):
    """The hostile test's case 7: frame 30 of 100 in an all-intra ffv1 file."""
    src, bad = tmp_path / "ok.mkv", tmp_path / "bad.mkv"
    make_clip(src, frames=100, codec="ffv1", audio="aac", codec_options={"slicecrc": "1", "g": "1"})
    corrupt_packet(src, bad, 30)
    reader = MediaReader(bad)
    frames = [f for f in reader.demux() if isinstance(f, Frame)]
    good = [f for f in MediaReader(src).demux() if isinstance(f, Frame)]
    assert [f.pts for f in frames] == [f.pts for f in good]
    assert reader.damaged_frames == [30] and frames[30].luma is frames[29].luma
    assert np.array_equal(frames[31].luma, good[31].luma)  # what follows is the film itself
    assert "frame 30 (1.00 s)" in reader.warnings[0]


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])
def test_avi_with_b_frames_gives_increasing_pts(tmp_path, codec):
    src = tmp_path / "bframes.avi"
    make_clip(src, frames=20, codec=codec, audio="pcm_s16le", codec_options={"bf": "2"})
    reader = MediaReader(src)
    frames = [f for f in reader.demux() if isinstance(f, Frame)]
    assert len(frames) == 20
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert pts[-1] - pts[0] <= 21  # one frame per time-base tick, give or take the B delay
    _, w, _ = transcode(src, tmp_path / "bframes.mkv")
    assert probe(tmp_path / "bframes.mkv")["frames"] == 20


# ---------------------------------------------------------------------------- errors


def test_reader_errors_are_one_line_media_errors(tmp_path):
    with pytest.raises(MediaError) as e:
        MediaReader(tmp_path / "nope.mp4")
    assert_one_line_media_error(e, "no such file")

    with pytest.raises(MediaError) as e:
        MediaReader(tmp_path)
    assert_one_line_media_error(e, "folder")

    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a film\n" * 20)
    with pytest.raises(MediaError) as e:
        MediaReader(fake)
    assert_one_line_media_error(e, "not a media file")

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError) as e:
        MediaReader(empty)
    assert_one_line_media_error(e, "empty")

    song = tmp_path / "song.mp4"
    make_audio_only(song)
    with pytest.raises(MediaError) as e:
        MediaReader(song)
    assert_one_line_media_error(e, "no video stream")

    hollow = tmp_path / "hollow.mkv"
    make_video_without_frames(hollow)
    with pytest.raises(MediaError) as e:
        MediaReader(hollow)
    assert_one_line_media_error(e, "no decodable video frames")


def test_writer_validation_errors(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=3, audio=None)
    reader = MediaReader(src)

    cases = [
        (dict(path=src), "is the input file"),
        (dict(path=src, overwrite=True), "is the input file"),
        (dict(path=tmp_path / "." / "in.mp4", overwrite=True), "is the input file"),
        (dict(path=tmp_path / "missing" / "out.mp4"), "does not exist"),
        (dict(path=tmp_path / "out.xyz"), "unknown output container"),
        (dict(path=tmp_path / "out"), "unknown output container"),
        (dict(path=tmp_path / "out.mp4", codec="ffv1"), ".mkv"),
        (dict(path=tmp_path / "out.mp4", codec="prores_ks"), ".mov"),
        (dict(path=tmp_path / "out.webm", codec="libx264"), "cannot be written"),
        (dict(path=tmp_path / "out.mp4", codec="mpeg2video"), "unsupported codec"),
        (dict(path=tmp_path / "out.mkv", codec="ffv1", crf=10), "crf"),
        (dict(path=tmp_path / "out.mp4", crf=99), "out of range"),
        (dict(path=tmp_path), "folder"),
    ]
    for kw, needle in cases:
        path = kw.pop("path")
        with pytest.raises(MediaError) as e:
            VideoWriter(path, reader, **kw)
        assert_one_line_media_error(e, needle)

    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"precious")
    with pytest.raises(MediaError) as e:
        VideoWriter(existing, reader)
    assert_one_line_media_error(e, "exists; pass --overwrite to replace it")
    assert existing.read_bytes() == b"precious"

    # with overwrite it is replaced, but only on commit
    with VideoWriter(existing, reader, overwrite=True) as w:
        for f in reader.demux():
            w.write_frame(f.pts, f.luma, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
        assert existing.read_bytes() == b"precious"
        w.commit()
    assert probe(existing)["frames"] == 3
    assert leftovers(tmp_path, ["in.mp4", "exists.mp4"]) == []


def _write_some(w, reader, n=3):
    for i, f in enumerate(f for f in reader.demux() if isinstance(f, Frame)):
        if i == n:
            break
        z = np.zeros((4, 4), np.float32)
        w.write_frame(f.pts, f.luma, z, z)


def test_abort_and_exceptions_leave_no_files(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=10)
    reader = MediaReader(src)
    keep = ["in.mp4"]

    w = VideoWriter(tmp_path / "a.mp4", reader)
    _write_some(w, reader)
    w.abort()
    w.abort()  # idempotent
    assert leftovers(tmp_path, keep) == []

    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "b.mkv", reader) as w:
            _write_some(w, reader)
            raise RuntimeError("boom")
    assert leftovers(tmp_path, keep) == []

    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "c.mp4", reader) as w:
            _write_some(w, reader)
            raise KeyboardInterrupt
    assert leftovers(tmp_path, keep) == []

    # leaving the block without commit() discards too
    with VideoWriter(tmp_path / "d.mp4", reader) as w:
        _write_some(w, reader)
    assert leftovers(tmp_path, keep) == []

    # committing nothing is an error and leaves nothing
    w = VideoWriter(tmp_path / "e.mp4", reader)
    with pytest.raises(MediaError) as e:
        w.commit()
    assert_one_line_media_error(e, "no video frames")
    assert leftovers(tmp_path, keep) == []

    # while writing, only a hidden temporary file exists (never the final name)
    w = VideoWriter(tmp_path / "f.mp4", reader)
    _write_some(w, reader, n=10)
    w._out.mux(w._vs.encode(None))  # push packets out so the file exists on disk
    names = leftovers(tmp_path, keep)
    assert "f.mp4" not in names and all(n.startswith(".f.mp4") and n.endswith(".mp4") for n in names)
    w.abort()
    assert leftovers(tmp_path, keep) == []


def test_every_codec_the_cli_offers_is_one_the_writer_takes_and_back(tmp_path):
    """One codec table (vcgan_cli/codecs.py) behind both: the --codec choices are exactly the
    writer's codecs, each writes to its default extension, and --crf follows each codec's
    own range (VP9's 63 was refused by the CLI's 0..51 before)."""
    import click

    from vcgan_cli.cli import colorize
    from vcgan_cli.codecs import CODECS
    from vcgan_cli.media import SUPPORTED_CODECS

    option = {p.name: p for p in colorize.params}
    assert list(option["codec"].type.choices) == list(SUPPORTED_CODECS) == list(CODECS)
    src = tmp_path / "in.mp4"
    make_clip(src, frames=2, audio=None)  # two frames: libx265's flush failed on those at times
    from vcgan_cli.codecs import gpu_encoder_problem

    for name, codec in CODECS.items():
        out = tmp_path / f"out-{name}{codec.extension}"
        if codec.gpu and gpu_encoder_problem(name):  # NVENC on a machine without an NVIDIA GPU
            with MediaReader(src) as reader, pytest.raises(MediaError, match=f"^{name} needs an NVIDIA GPU.*use libx264$"):
                VideoWriter(out, reader, codec=name)
            assert not out.exists() and not list(tmp_path.glob(".*"))
            continue
        with MediaReader(src) as reader, VideoWriter(out, reader, codec=name) as w:
            for f in reader.demux():
                if isinstance(f, Frame):
                    w.write_frame(f.pts, f.luma, np.zeros_like(f.luma), np.zeros_like(f.luma))
            w.commit()
        assert probe(out)["frames"] == 2 and w.output_info.startswith(name)
        if codec.crf:
            lo, hi = codec.crf
            assert option["crf"].type.min <= lo and option["crf"].type.max >= hi
            with MediaReader(src) as reader:
                VideoWriter(tmp_path / f"c{codec.extension}", reader, codec=name, crf=hi).abort()
                with pytest.raises(MediaError, match=f"use {lo}..{hi}"):
                    VideoWriter(tmp_path / f"c{codec.extension}", reader, codec=name, crf=hi + 1)
        else:
            with MediaReader(src) as reader, pytest.raises(MediaError, match="does not apply"):
                VideoWriter(tmp_path / f"c{codec.extension}", reader, codec=name, crf=10)
    assert isinstance(option["crf"].type, click.IntRange) and option["crf"].type.max == 63


@pytest.mark.parametrize("kw", [{}, {"pix_fmt": "yuvj420p"}, {"rotation": 90},
                                {"codec": "libx265", "pix_fmt": "yuv420p10le"}, {"codec": "ffv1", "pix_fmt": "gray"}])
def test_a_lazy_pass_gives_the_same_frames_and_small_pictures_without_converting(tmp_path, kw):
    """demux(lazy=True): the same frames, times and luma as an eager pass, converted only when
    read; Frame.small (what a preview's cut search reads) is the luma area-averaged to that size
    within half a code value, upright, for limited and full range, 8 and 10 bits, a rotation."""
    from vcgan_cli.media.types import shrink

    src = tmp_path / ("in.mkv" if kw.get("codec") == "ffv1" else "in.mp4")
    make_clip(src, frames=8, audio=None, **kw)
    with MediaReader(src) as reader:
        eager = [f for f in reader.demux() if isinstance(f, Frame)]
        lazy = [f for f in reader.demux(lazy=True) if isinstance(f, Frame)]
        assert [(f.index, f.pts, f.time) for f in lazy] == [(f.index, f.pts, f.time) for f in eager]
        h, w = eager[0].luma.shape
        sh, sw = max(2, h // 4), max(2, w // 4)
        for e, f in zip(eager, lazy):
            assert f._luma is None  # nothing converted yet
            small = f.small(sh, sw)
            assert small.shape == (sh, sw) and small.dtype == np.float32 and f._luma is None
            bits = 10 if "10" in kw.get("pix_fmt", "") else 8
            full = kw.get("pix_fmt", "").startswith(("yuvj", "gray"))
            code = 1 / (2 ** bits - 1) if full else 1 / (219 * 2 ** (bits - 8))  # one code value in luma units
            assert np.abs(small - shrink(e.luma, sh, sw)).max() <= 0.5 * code + 1e-5
            assert np.array_equal(f.luma, e.luma) and f.chroma == e.chroma  # converted on reading
            assert np.array_equal(f.small(sh, sw), shrink(e.luma, sh, sw))  # then from the luma itself
