"""Synthetic media for the tests: small real clips written with PyAV, and a probe.

Importable helper only (no test functions).  ``make_clip`` writes a short clip with
moving grayscale shapes (optionally a scene cut, colour, rotation metadata, variable
frame rate and one or more sine-wave audio tracks); ``probe`` decodes a file back and
reports what is in it, so tests can compare input and output.
"""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction
from typing import Any, Sequence

import av
import numpy as np

__all__ = ["make_clip", "make_audio_only", "make_video_without_frames", "probe", "psnr",
           "truncate_file", "EXT_FORMATS"]

EXT_FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".nut": "nut",
}

# PyAV decoders want these sample formats for our sine generator; encoders get the
# frames through PyAV's own resampler, so one planar-float source fits every codec.
_AUDIO_CODEC_NAMES = {"opus": "libopus", "mp3": "libmp3lame"}

# Variable-frame-rate pattern, in milliseconds (time base 1/1000).
_VFR_STEPS_MS = (33, 33, 50, 17, 100, 33, 42, 25)


def _bit_depth(pix_fmt: str) -> int:
    return av.VideoFormat(pix_fmt).components[0].bits


def _scene(width: int, height: int, i: int, frames: int, cut_at: int | None) -> np.ndarray:
    """Float luma in [0, 1] for frame ``i``: a bright square moving right over a textured
    gradient; after ``cut_at`` a darker, differently textured background with a circle
    moving left."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if cut_at is None or i < cut_at:
        bg = 0.25 + 0.35 * xx / max(width - 1, 1) + 0.05 * np.sin(yy / 3.0) * np.cos(xx / 5.0)
        size = max(4, min(width, height) // 4)
        x0 = int((width - size) * (i % max(frames, 1)) / max(frames - 1, 1))
        y0 = (height - size) // 3
        bg[y0:y0 + size, x0:x0 + size] = 0.9
    else:
        j = i - cut_at
        n = max(frames - cut_at - 1, 1)
        bg = 0.12 + 0.08 * ((xx // 8 + yy // 8) % 2) + 0.10 * yy / max(height - 1, 1)
        r = max(3, min(width, height) // 6)
        cx = width - r - (width - 2 * r) * j / n
        cy = 2 * height / 3
        bg[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 0.75
    return np.clip(bg, 0.0, 1.0)


def _colour_rgb(luma: np.ndarray, i: int) -> np.ndarray:
    """Saturated colour content with roughly the given luma structure."""
    h, w = luma.shape
    rgb = np.empty((h, w, 3), np.float32)
    rgb[..., 0] = luma
    rgb[..., 1] = luma * 0.35
    rgb[..., 2] = 1.0 - luma
    rgb[: h // 2, : w // 2] = (0.9, 0.1, 0.1)          # red block
    rgb[h // 2:, w // 2:] = (0.1, 0.2, 0.9)            # blue block
    return np.clip(rgb, 0, 1)


def _fill_plane(plane, values: np.ndarray) -> None:
    dtype = values.dtype
    item = dtype.itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    ls = plane.line_size // item
    buf[: plane.height * ls].reshape(plane.height, ls)[:, : plane.width] = values


def _gray_frame(luma: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """Build a frame whose Y plane is exactly ``luma`` quantised (limited range for YUV,
    full range for yuvj/gray); chroma neutral."""
    h, w = luma.shape
    fmt = av.VideoFormat(pix_fmt)
    bits = _bit_depth(pix_fmt)
    s = 2 ** (bits - 8)
    dtype = np.uint8 if bits <= 8 else np.dtype("<u2")
    if fmt.is_rgb or pix_fmt.startswith(("pal", "bgr", "rgb", "gbr", "argb", "abgr")):
        rgb = (np.repeat(luma[..., None], 3, axis=2) * 255 + 0.5).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        return frame if pix_fmt == "rgb24" else frame.reformat(format=pix_fmt)
    direct = re.match(r"^(yuvj?|yuva|gray)(4\d\dp)?(\d+le)?$", pix_fmt)
    if not direct:
        # packed / big-endian / semi-planar layouts: draw planar, let swscale repack
        gray = pix_fmt.startswith(("gray", "ya"))
        base = ("gray" if gray else "yuv444p") + ("16le" if bits > 8 else "")
        frame = _gray_frame(luma, base)
        rng = "JPEG" if gray else "MPEG"
        out = frame.reformat(format=pix_fmt, src_color_range=rng, dst_color_range=rng)
        out.color_range = 2 if gray else 1
        return out
    frame = av.VideoFrame(w, h, pix_fmt)
    full = pix_fmt.startswith(("yuvj", "gray"))
    if full:
        y = np.rint(luma * (2 ** bits - 1))
    else:
        y = np.rint(luma * 219 * s + 16 * s)
    _fill_plane(frame.planes[0], y.astype(dtype))
    for p in frame.planes[1:]:
        _fill_plane(p, np.full((p.height, p.width), 128 * s, dtype))
    frame.color_range = 2 if full else 1
    return frame


def make_clip(
    path: str | os.PathLike,
    *,
    width: int = 160,
    height: int = 120,
    rate: Fraction = Fraction(30000, 1001),
    frames: int = 30,
    cut_at: int | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: str | Sequence[str] | None = "aac",
    audio_seconds: float | None = None,
    sample_rate: int = 48000,
    channels: int = 2,
    colour: bool = False,
    rotation: int = 0,
    vfr: bool = False,
    start_pts: int = 0,
    time_base: Fraction | None = None,
    container_format: str | None = None,
    container_options: dict[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
    colorspace: int | None = None,
    color_range: int | None = None,
    sample_aspect_ratio: Fraction | None = None,
) -> dict[str, Any]:
    """Write a small real clip and return what was written.

    ``rotation`` is the clockwise rotation a player applies for display (ffmpeg's
    convention); it is stored as a display matrix (mp4/mov).  ``vfr`` writes irregular
    timestamps (time base 1/1000).  ``audio`` is a codec name, a sequence of names (one
    stream each) or None; each track is a sine (440 Hz, 660 Hz, ...).  ``start_pts`` is
    added to every video pts (audio starts at the same instant).  Odd sizes need a
    codec/pix_fmt that allows them (libx264 wants ``pix_fmt="yuv444p"``; ffv1 is fine).

    Returns a dict with ``path``, ``width``, ``height`` (coded size), ``pts`` (list, in
    ``time_base``), ``time_base``, ``times`` (seconds), ``frames``, ``pix_fmt``,
    ``duration`` (seconds, video), ``audio`` (list of dicts: codec, sample_rate, samples,
    seconds) and ``luma`` (list of float arrays in [0,1], the intended content).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    fmt = container_format or EXT_FORMATS.get(ext)
    if vfr:
        tb = Fraction(1, 1000)
        pts, t = [], start_pts
        for i in range(frames):
            pts.append(t)
            t += _VFR_STEPS_MS[i % len(_VFR_STEPS_MS)]
        last_step = _VFR_STEPS_MS[(frames - 1) % len(_VFR_STEPS_MS)]
    else:
        tb = time_base or (1 / Fraction(rate))
        step = (1 / Fraction(rate)) / tb
        if step.denominator != 1:
            raise ValueError("time_base must divide the frame duration")
        step = int(step)
        pts = [start_pts + i * step for i in range(frames)]
        last_step = step
    times = [float(p * tb) for p in pts]
    video_seconds = float((pts[-1] - pts[0] + last_step) * tb)

    copts = dict(container_options or {})
    if fmt in ("mp4", "mov") and "movie_timescale" not in copts:
        # mov writes edit lists (non-zero start, B-frame delay) in the movie
        # timescale (default 1000); match the track's so start times stay exact.
        scale = tb.denominator
        while scale < 10000:
            scale *= 2
        copts["movie_timescale"] = str(scale)
    out = av.open(path, "w", format=fmt, options=copts)
    try:
        opts = {"preset": "ultrafast"} if codec in ("libx264", "libx265") else {}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        if codec_options:
            opts.update(codec_options)
        vs = out.add_stream(codec, rate=Fraction(rate), options=opts)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        if colorspace is not None:
            vs.codec_context.colorspace = colorspace
        if color_range is not None:
            vs.codec_context.color_range = color_range
        if sample_aspect_ratio is not None:
            vs.codec_context.sample_aspect_ratio = Fraction(sample_aspect_ratio)
        if rotation:
            vs.set_display_rotation(-rotation)

        names = [] if audio is None else [audio] if isinstance(audio, str) else list(audio)
        a_seconds = video_seconds if audio_seconds is None else audio_seconds
        a_streams = []
        for n in names:
            cname = _AUDIO_CODEC_NAMES.get(n, n)
            a_rate = sample_rate
            if cname == "libopus" and a_rate not in (48000, 24000, 16000, 12000, 8000):
                a_rate = 48000
            ast = out.add_stream(cname, rate=a_rate)
            ast.layout = "stereo" if channels == 2 else "mono"
            ast.codec_context.time_base = Fraction(1, a_rate)
            a_streams.append(ast)

        lumas = []
        for i in range(frames):
            luma = _scene(width, height, i, frames, cut_at)
            lumas.append(luma)
            if colour:
                rgb = (_colour_rgb(luma, i) * 255 + 0.5).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                if pix_fmt != "rgb24":
                    frame = frame.reformat(format=pix_fmt, dst_colorspace="ITU601",
                                           dst_color_range="MPEG")
            else:
                frame = _gray_frame(luma, pix_fmt)
            frame.pts = pts[i]
            frame.time_base = tb
            out.mux(vs.encode(frame))

        audio_meta = []
        start_s = float(pts[0] * tb)
        for k, ast in enumerate(a_streams):
            a_rate = ast.codec_context.sample_rate
            total = int(round(a_seconds * a_rate))
            freq = 440.0 * (1 + 0.5 * k)
            chunk = 1024
            first = int(round(start_s * a_rate))
            for off in range(0, total, chunk):
                n = min(chunk, total - off)
                tt = (np.arange(off, off + n) / a_rate).astype(np.float64)
                wave = (0.3 * np.sin(2 * math.pi * freq * tt)).astype(np.float32)
                data = np.repeat(wave[None, :], channels, axis=0)
                af = av.AudioFrame.from_ndarray(
                    data, format="fltp", layout="stereo" if channels == 2 else "mono")
                af.sample_rate = a_rate
                af.pts = first + off
                af.time_base = Fraction(1, a_rate)
                out.mux(ast.encode(af))
            out.mux(ast.encode(None))
            audio_meta.append({"codec": ast.codec_context.name, "sample_rate": a_rate,
                               "samples": total, "seconds": total / a_rate})
        out.mux(vs.encode(None))
    finally:
        out.close()

    return {
        "path": path,
        "width": width,
        "height": height,
        "pts": pts,
        "time_base": tb,
        "times": times,
        "frames": frames,
        "pix_fmt": pix_fmt,
        "duration": video_seconds,
        "rotation": rotation,
        "audio": audio_meta,
        "luma": lumas,
    }


def _write_sine(out, ast, seconds: float, freq: float = 440.0) -> int:
    a_rate = ast.codec_context.sample_rate
    total = int(round(seconds * a_rate))
    for off in range(0, total, 1024):
        n = min(1024, total - off)
        tt = np.arange(off, off + n) / a_rate
        wave = (0.3 * np.sin(2 * math.pi * freq * tt)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.repeat(wave[None, :], 2, axis=0), format="fltp",
                                        layout="stereo")
        af.sample_rate = a_rate
        af.pts = off
        af.time_base = Fraction(1, a_rate)
        out.mux(ast.encode(af))
    out.mux(ast.encode(None))
    return total


def make_audio_only(path: str | os.PathLike, *, codec: str = "aac", seconds: float = 0.5) -> dict:
    """An audio-only file (no video stream at all), e.g. ``song.mp4``."""
    path = os.fspath(path)
    fmt = EXT_FORMATS.get(os.path.splitext(path)[1].lower())
    out = av.open(path, "w", format=fmt)
    try:
        ast = out.add_stream(_AUDIO_CODEC_NAMES.get(codec, codec), rate=48000)
        ast.layout = "stereo"
        samples = _write_sine(out, ast, seconds)
    finally:
        out.close()
    return {"path": path, "samples": samples}


def make_video_without_frames(path: str | os.PathLike, *, seconds: float = 0.5) -> dict:
    """A matroska file that declares an FFV1 video stream but holds no video packet
    (only audio): "has a video stream, zero decodable frames"."""
    path = os.fspath(path)
    out = av.open(path, "w", format="matroska")
    try:
        vs = out.add_stream("ffv1", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        ast = out.add_stream("aac", rate=48000)
        ast.layout = "stereo"
        samples = _write_sine(out, ast, seconds)
    finally:
        out.close()
    return {"path": path, "samples": samples}


def _plane_array(plane, dtype) -> np.ndarray:
    item = np.dtype(dtype).itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    ls = plane.line_size // item
    return buf[: plane.height * ls].reshape(plane.height, ls)[:, : plane.width]


def probe(path: str | os.PathLike, *, with_luma: bool = False) -> dict[str, Any]:
    """Decode ``path`` completely and describe it.

    Video: ``pts`` (list), ``times`` (seconds), ``time_base``, ``width``, ``height``
    (coded size), ``frames``, ``pix_fmt``, ``codec``, ``rotation`` (clockwise display
    rotation from the display matrix), ``chroma`` (mean |C - neutral| / (224 s), averaged
    over frames and both chroma planes; 0 for gray), ``colorspace``/``color_range``
    (ints from the first frame), ``sample_aspect_ratio`` (None if square/unset),
    ``luma`` (list of raw Y planes as uint8/uint16, only with
    ``with_luma=True``).  ``audio``: list of dicts per audio stream with ``codec``,
    ``sample_rate``, ``channels``, ``samples`` (decoded, per channel), ``duration``
    (samples / sample_rate) and ``start`` (seconds of the first decoded frame).
    """
    c = av.open(os.fspath(path))
    try:
        vs = next((s for s in c.streams.video), None)
        info: dict[str, Any] = {"pts": [], "times": [], "luma": [] if with_luma else None,
                                "audio": [], "container": c.format.name}
        audio_acc = {}
        for s in c.streams.audio:
            audio_acc[s.index] = {"codec": s.codec_context.name,
                                  "sample_rate": s.codec_context.sample_rate,
                                  "channels": s.codec_context.channels,
                                  "samples": 0, "start": None}
        streams = ([vs] if vs is not None else []) + list(c.streams.audio)
        chroma = []
        first = None
        for packet in c.demux(streams):
            for fr in packet.decode():
                if packet.stream.type == "audio":
                    acc = audio_acc[packet.stream.index]
                    if acc["start"] is None and fr.pts is not None:
                        acc["start"] = float(fr.pts * fr.time_base)
                    acc["samples"] += fr.samples
                    continue
                if first is None:
                    first = fr
                pts = fr.pts if fr.pts is not None else fr.dts
                info["pts"].append(pts)
                info["times"].append(None if pts is None else float(pts * vs.time_base))
                name = fr.format.name
                if name.startswith(("yuv", "yuvj", "gray")) and not name.endswith("be"):
                    bits = fr.format.components[0].bits
                    dt = np.uint8 if bits <= 8 else np.dtype("<u2")
                    if with_luma:
                        info["luma"].append(_plane_array(fr.planes[0], dt).copy())
                    if len(fr.planes) >= 3:
                        s = 2 ** (bits - 8)
                        dev = [np.abs(_plane_array(p, dt).astype(np.float32) - 128 * s).mean()
                               for p in fr.planes[1:3]]
                        chroma.append(float(np.mean(dev)) / (224 * s))
                    else:
                        chroma.append(0.0)
                elif with_luma:
                    info["luma"].append(fr.to_ndarray(format="gray"))
        if vs is not None:
            info.update(
                time_base=vs.time_base,
                width=vs.codec_context.width,
                height=vs.codec_context.height,
                frames=len(info["pts"]),
                pix_fmt=first.format.name if first is not None else vs.codec_context.pix_fmt,
                codec=vs.codec_context.name,
                sample_aspect_ratio=vs.sample_aspect_ratio,
                rotation=(-first.rotation) % 360 if first is not None else 0,
                chroma=float(np.mean(chroma)) if chroma else 0.0,
                colorspace=first.colorspace if first is not None else None,
                color_range=first.color_range if first is not None else None,
            )
        else:
            info.update(frames=0)
        for idx in sorted(audio_acc):
            a = audio_acc[idx]
            a["duration"] = a["samples"] / a["sample_rate"] if a["sample_rate"] else 0.0
            info["audio"].append(a)
        return info
    finally:
        c.close()


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB between two same-shaped arrays with the given peak value."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return 10 * math.log10(peak * peak / mse)


def truncate_file(src: str | os.PathLike, dst: str | os.PathLike, fraction: float = 0.5) -> int:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst``; returns the byte count."""
    with open(src, "rb") as f:
        data = f.read()
    n = int(len(data) * fraction)
    with open(dst, "wb") as f:
        f.write(data[:n])
    return n


def corrupt_packet(src: str | os.PathLike, dst: str | os.PathLike, index: int, seed: int = 1) -> None:
    """Copy ``src`` to ``dst`` stream for stream, with the ``index``-th video packet's payload
    (after its first third) replaced by noise: one picture that cannot be decoded, the
    container intact."""
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        n = 0
        for packet in inp.demux():
            if packet.size == 0:
                continue
            target = streams[packet.stream.index]
            if packet.stream.type == "video":
                if n == index:
                    data = bytearray(bytes(packet))
                    cut = len(data) // 3
                    data[cut:] = rng.integers(0, 256, len(data) - cut, dtype=np.uint8).tobytes()
                    bad = av.Packet(bytes(data))
                    bad.pts, bad.dts, bad.time_base, bad.duration = packet.pts, packet.dts, packet.time_base, packet.duration
                    bad.is_keyframe = packet.is_keyframe
                    packet = bad
                n += 1
            packet.stream = target
            out.mux(packet)
