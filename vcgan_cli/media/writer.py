"""Writing the colourised film: the output plan (codec, pixel format, colour tags), audio
routes (copy or transcode) and the writer, which puts the file under its name only once whole."""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from ..errors import MediaError, VcganError
from .pixels import MATRIX_TO_SPC, MATRIX_TO_SWS, RANGE_MPEG, SPC_TO_MATRIX, dtype_for_bits, plane_view
from .reader import MediaReader
from .types import AudioPacket, ffmpeg_message, local_path, one_line

from .. import files
from ..codecs import CODECS, CONTAINERS, gpu_encoder_problem

SUPPORTED_CODECS = tuple(CODECS)

#: What a folder given to `vcgan colorize` is searched for.
VIDEO_EXTENSIONS = (
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".mxf", ".dv", ".vob", ".wmv", ".flv", ".ogv", ".3gp",
)

# Audio codecs each container takes as-is (copy); others are transcoded.
_COPY_OK = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "opus", "alac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac"},  # + pcm_*
    "matroska": None,  # anything the muxer accepts
    "webm": {"opus", "vorbis"},
}
_TRANSCODE_TO = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus"}


def _codec_available(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except Exception:
        return False


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _chroma_size(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    if pix_fmt.startswith("yuv420"):
        return -(-width // 2), -(-height // 2)
    if pix_fmt.startswith("yuv422"):
        return -(-width // 2), height
    return width, height


def sane_dts(packet, last_dts: int | None, max_delay: int) -> int | None:
    """libx265 flushing a very short film (two or three frames) at times hands out packets
    whose dts is garbage (-8.8e12), which the muxer refuses ("not yet implemented"): a dts
    missing, after the pts or absurdly far before it is replaced by the nearest valid one.
    Returns the dts to compare the next packet with."""
    pts, dts = packet.pts, packet.dts
    if pts is not None and (dts is None or dts > pts or pts - dts > max_delay):
        packet.dts = pts if last_dts is None else min(pts, last_dts + 1)
    return packet.dts if packet.dts is not None else last_dts


class OutputPlan:
    """Everything decided about an output film before any of it is written: the checked
    path and container, the codec and its settings, the pixel format and the colour tags;
    and how a colourised frame becomes an ``av.VideoFrame`` in that format. One plan serves
    the writer of the final file and the encoder of each saved segment (partial.py), so the
    two cannot encode differently."""

    def __init__(
        self,
        path: str | os.PathLike,
        reader: MediaReader,
        *,
        codec: str = "libx264",
        crf: int | None = None,
        overwrite: bool = False,
        ten_bit: bool | None = None,
        window: tuple[float, float | None] | None = None,
    ):
        self.path = os.fspath(path)
        self.reader = reader
        # an excerpt: (start, end) seconds on the frames' clock; the output starts at 0 there,
        # and the sound is cut to the sample (so it is always re-encoded)
        self.window = window
        self.codec = codec
        info = reader.info
        p = self.path

        # ---- validation: cheap checks first, before anything touches the disk
        if _same_file(p, reader.path):
            raise MediaError(f"output {p} is the input file; choose a different output name")
        if os.path.isdir(p):
            raise MediaError(f"output {p} is a folder; give a file name such as {os.path.join(p, 'out.mp4')}")
        if os.path.exists(p) and not overwrite:
            raise MediaError(f"{p} exists; pass --overwrite to replace it")
        problem = files.target_problem(p)
        if problem:
            raise MediaError(f"cannot write {p}: {problem}; {'create it or ' if 'exist' in problem else ''}choose another output path")
        self.overwrite = bool(overwrite)
        ext = os.path.splitext(p)[1].lower()
        if ext not in CONTAINERS:
            known = ", ".join(sorted(CONTAINERS))
            shown = ext or "(none)"
            raise MediaError(f"unknown output container extension {shown} for {p}; use one of {known}")
        fmt_name, allowed = CONTAINERS[ext]
        self.format = fmt_name
        if codec not in SUPPORTED_CODECS:
            raise MediaError(f"unsupported codec '{codec}'; use one of {', '.join(SUPPORTED_CODECS)}")
        if not _codec_available(codec):
            raise MediaError(f"codec '{codec}' is not available in this FFmpeg build; use libx264")
        if codec not in allowed:
            good = [e for e, (_, cs) in CONTAINERS.items() if codec in cs and e != ".m4v"]
            raise MediaError(
                f"{codec} cannot be written to {ext}; use {' or '.join(good)} "
                f"(or another codec: {', '.join(allowed)})"
            )
        spec = self.spec = CODECS[codec]
        if spec.gpu and (why := gpu_encoder_problem(codec)):
            raise MediaError(f"{codec} needs an NVIDIA GPU and its driver, and none opens here ({why}); use libx264")
        if crf is not None:
            if spec.crf is None:
                raise MediaError(f"--crf does not apply to {codec}; leave it out")
            if not (spec.crf[0] <= int(crf) <= spec.crf[1]):
                raise MediaError(f"--crf {crf} is out of range for {codec}; use {spec.crf[0]}..{spec.crf[1]}")
        self.crf = crf if crf is not None else spec.default_crf

        # ---- pixel format
        width, height = info.width, info.height
        if ten_bit is None:
            ten = info.bit_depth > 8 and spec.keeps_high_bit_depth
        else:
            ten = bool(ten_bit)
        pix_fmt = spec.pixel_format(width, height, ten)
        ten = pix_fmt.endswith("10le")
        supported = {f.name for f in (av.Codec(codec, "w").video_formats or [])}
        if supported and pix_fmt not in supported:
            raise MediaError(f"{codec} in this FFmpeg build cannot write {pix_fmt}; try libx265 or ffv1")
        self.pix_fmt = pix_fmt
        self.bits = 10 if ten else 8
        self.width, self.height = width, height
        self.chroma_w, self.chroma_h = _chroma_size(pix_fmt, width, height)

        # ---- colour tags
        self.matrix = info.matrix
        spc = reader.tags.colorspace if reader.tags.colorspace is not None else MATRIX_TO_SPC[info.matrix]
        if SPC_TO_MATRIX.get(spc) != info.matrix:
            spc = MATRIX_TO_SPC[info.matrix]
        self.colorspace = spc
        self.primaries = reader.tags.primaries or 2
        self.transfer = reader.tags.transfer or 2

        # ---- timing
        self.time_base = info.time_base
        self.rate = info.average_rate or Fraction(25)
        # no encoder holds a picture back more than 16 frames (or a second)
        self.max_delay = max(16 * int(round(1 / (self.rate * self.time_base))), int(1 / self.time_base))
        self.shift = int(round(window[0] / self.time_base)) if window is not None else 0

    def settings(self) -> dict:
        """What makes two encodings of the same frames alike (for a resume's manifest)."""
        return {"codec": self.codec, "crf": self.crf, "pix_fmt": self.pix_fmt, "container": self.format}

    def encoder_options(self) -> dict[str, str]:
        return self.spec.encoder_options(self.crf, self.pix_fmt)

    def configure(self, cc) -> None:
        """Set a video encoder context (a stream's or a standalone one) to this plan."""
        cc.width = self.width
        cc.height = self.height
        cc.pix_fmt = self.pix_fmt
        cc.time_base = self.time_base
        cc.framerate = self.rate
        cc.colorspace = self.colorspace
        cc.color_range = RANGE_MPEG
        cc.color_primaries = self.primaries
        cc.color_trc = self.transfer
        if self.reader.tags.sample_aspect_ratio is not None:  # non-square pixels (DV, DVD, anamorphic)
            cc.sample_aspect_ratio = self.reader.tags.sample_aspect_ratio
        if self.codec == "libx265" and self.format in ("mp4", "mov"):
            cc.codec_tag = "hvc1"

    def ycbcr_frame(self, luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> av.VideoFrame:
        """A frame from normalised luma (same scale as ``Frame.luma``) and chroma offsets in
        [-0.5, 0.5] at any resolution with the frame's aspect."""
        h, w = self.height, self.width
        if luma.shape != (h, w):
            raise ValueError(f"luma must be {h}x{w}, got {luma.shape}")
        bits = self.bits
        s = float(2 ** (bits - 8))
        top = 2 ** bits - 1
        dt = dtype_for_bits(bits)
        frame = av.VideoFrame(w, h, self.pix_fmt)

        y = np.asarray(luma, dtype=np.float32) * np.float32(219 * s) + np.float32(16 * s)
        np.rint(y, out=y)
        np.clip(y, 0, top, out=y)
        plane_view(frame.planes[0], dt)[...] = y.astype(dt)

        cw, ch = self.chroma_w, self.chroma_h
        lo, hi = 16 * s, 240 * s
        for plane, c in ((frame.planes[1], cb), (frame.planes[2], cr)):
            c = np.asarray(c, dtype=np.float32)
            if c.ndim != 2:
                raise ValueError(f"chroma planes must be 2-D, got {c.shape}")
            if c.shape != (ch, cw):
                c = cv2.resize(np.ascontiguousarray(c), (cw, ch), interpolation=cv2.INTER_LINEAR)
            q = c * np.float32(224 * s) + np.float32(128 * s)
            np.rint(q, out=q)
            np.clip(q, lo, hi, out=q)
            plane_view(plane, dt)[...] = q.astype(dt)
        return frame

    def rgb_frame(self, rgb: np.ndarray) -> av.VideoFrame:
        """A frame from float RGB in [0, 1] (any size with the frame's aspect), converted to
        the output YUV format by swscale."""
        rgb = np.asarray(rgb, dtype=np.float32)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"rgb must be HxWx3, got {rgb.shape}")
        h, w = self.height, self.width
        if rgb.shape[:2] != (h, w):
            rgb = cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = np.clip(rgb, 0.0, 1.0)
        if self.bits > 8:
            src = av.VideoFrame.from_ndarray(np.rint(rgb * 65535).astype(np.uint16), format="rgb48le")
        else:
            src = av.VideoFrame.from_ndarray(np.rint(rgb * 255).astype(np.uint8), format="rgb24")
        return src.reformat(
            format=self.pix_fmt,
            dst_colorspace=MATRIX_TO_SWS[self.matrix],
            src_color_range="JPEG",
            dst_color_range="MPEG",
        )

    def stamp(self, frame: av.VideoFrame, pts: int) -> None:
        """Time and colour-tag a frame about to be encoded (``pts`` already shifted)."""
        frame.pts = pts
        frame.time_base = self.time_base
        frame.colorspace = self.colorspace
        frame.color_range = RANGE_MPEG
        frame.color_primaries = self.primaries
        frame.color_trc = self.transfer


@dataclass
class _AudioRoute:
    """How one input audio stream reaches the output: copied, or decoded and encoded again
    (then cut to the sample for an excerpt), with the book-keeping each needs."""

    src: object  # the input stream (a private handle: template for copying, decoder)
    codec: str  # the input's codec
    mode: str  # "copy" or "transcode"
    out: object  # the output stream
    target: str | None = None  # transcode: the encoder
    rate: int | None = None  # transcode: its sample rate
    next_pts: int | None = None  # transcode: where the next untimed frame goes
    src_next: int | None = None  # excerpt: the next input sample expected (contiguity)
    last_dts: int | None = None  # copy: the last dts muxed
    dropped: int = 0  # copy: out-of-order packets left out


class VideoWriter:
    """Encode colourised frames into ``path`` with the reader's timing and audio.

    Everything is written to a hidden temporary file next to ``path``; ``commit()``
    finishes it and renames it into place, ``abort()`` (or leaving the ``with`` block
    with an exception, or without committing) deletes it. Frames come either as pictures
    (:meth:`write_frame`, :meth:`write_rgb`) or already encoded to the same plan
    (:meth:`write_packet`, from the segments of a resumable run).
    """

    def __init__(self, path: str | os.PathLike, reader: MediaReader, *, plan: OutputPlan | None = None, **settings):
        """``settings`` are :class:`OutputPlan`'s (``codec``, ``crf``, ``overwrite``,
        ``ten_bit``, ``window``), unless the ``plan`` is given."""
        self._out = None
        self._tmpl = None
        self._done = False
        self._tmp_path: str | None = None
        self.plan = plan or OutputPlan(path, reader, **settings)
        plan = self.plan
        self.path = plan.path
        self.reader = reader
        self.window = plan.window
        self._shift = plan.shift
        self.codec = plan.codec
        self.crf = plan.crf
        self.pix_fmt = plan.pix_fmt
        self.overwrite = plan.overwrite
        self._format = plan.format
        self._spec = plan.spec
        self.frames_written = 0
        p, codec = self.path, self.codec

        # ---- open the output (temporary file in the same folder) and set up streams
        self._tmp_path = str(files.temp_path(p))
        try:
            self._out = av.open(local_path(self._tmp_path), "w", format=plan.format, options=self._mux_options())
            self._setup_video()
            self._setup_audio()
        except MediaError:
            self.abort()
            raise
        except (av.FFmpegError, ValueError, OSError) as e:
            self.abort()
            raise MediaError(f"cannot set up {codec} output to {p}: {ffmpeg_message(e)}") from None
        except BaseException:
            self.abort()
            raise

    # -- set-up -------------------------------------------------------------------------

    def _mux_options(self) -> dict[str, str]:
        tb = self.reader.info.time_base
        if self._format in ("mp4", "mov"):
            # Edit lists (a non-zero first pts, B-frame delay, AAC priming) are written
            # in the movie timescale (default 1000): use the video track's own
            # timescale so the first pts survives exactly.
            scale = tb.denominator
            while scale < 10000:
                scale *= 2
            return {"movie_timescale": str(scale)} if scale < 2**31 else {}
        # Matroska/WebM would otherwise shift EVERY stream when a copied audio stream
        # starts below zero (AAC/Opus priming), breaking "output pts == input pts".
        return {"avoid_negative_ts": "disabled"}

    def _setup_video(self) -> None:
        plan = self.plan
        vs = self._out.add_stream(self.codec, rate=plan.rate, options=plan.encoder_options())
        vs.width, vs.height, vs.pix_fmt = plan.width, plan.height, plan.pix_fmt
        vs.time_base = plan.time_base
        plan.configure(vs.codec_context)
        self._out.metadata.update(self.reader.tags.container_metadata)
        vs.metadata.update(self.reader.tags.stream_metadata.get(self.reader.tags.video_index, {}))
        self._vs = vs
        self._last_pts: int | None = None
        self._last_dts: int | None = None
        self._max_delay = plan.max_delay

    def _setup_audio(self) -> None:
        self._audio: dict[int, _AudioRoute] = {}
        info = self.reader.info
        if not info.audio:
            return
        # A private input handle: templates for stream copy, decoders for transcoding.
        self._tmpl = av.open(local_path(self.reader.path), "r")
        for a in info.audio:
            src = self._tmpl.streams[a.index]
            if src.codec_context is None or not a.sample_rate:
                continue  # undecodable/unknown audio: dropped (noted in output_info)
            if self._may_copy(a.codec) and self.window is None:
                try:
                    out = self._out.add_stream_from_template(src)
                    self._audio[a.index] = _AudioRoute(src, a.codec, "copy", out)
                    continue
                except (ValueError, av.FFmpegError):
                    pass
            target = _TRANSCODE_TO[self._format]
            if self.window is not None and (a.codec.startswith("pcm_") or a.codec in ("flac", "alac")):
                # an excerpt of lossless sound stays lossless (and sample-exact: no priming)
                target = {"matroska": "flac", "mov": a.codec if a.codec.startswith("pcm_") else "alac"}.get(self._format, target)
            rate = a.sample_rate
            if target == "libopus" and rate not in (48000, 24000, 16000, 12000, 8000):
                rate = 48000
            if target == "aac" and rate > 96000:
                rate = 48000
            out = self._out.add_stream(target, rate=rate)
            ch = max(1, min(a.channels or 2, 8))
            layout = av.AudioLayout(ch).name if ch not in (1, 2) else ("mono" if ch == 1 else "stereo")
            out.layout = layout
            out.codec_context.time_base = Fraction(1, rate)
            out.time_base = Fraction(1, rate)
            out.bit_rate = (96000 if ch <= 2 else 64000) * ch
            self._audio[a.index] = _AudioRoute(src, a.codec, "transcode", out, target=target, rate=rate)
        for idx, entry in self._audio.items():
            entry.out.metadata.update(self.reader.tags.stream_metadata.get(idx, {}))
            try:
                entry.out.disposition = entry.src.disposition
            except Exception:  # pragma: no cover
                pass

    def _may_copy(self, codec: str) -> bool:
        allowed = _COPY_OK[self._format]
        if allowed is None:
            return True
        if self._format == "mov" and codec.startswith("pcm_"):
            return True
        return codec in allowed

    # -- writing -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._done or self._out is None:
            raise MediaError(f"the writer for {self.path} is already closed; start a new one")

    def _check_pts(self, pts: int) -> int:
        pts = int(pts) - self._shift
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: got {pts} after {self._last_pts}")
        self._last_pts = pts
        return pts

    def _encode(self, frame: av.VideoFrame | None) -> None:
        try:
            packets = self._vs.encode(frame)
            for packet in packets:
                self._sane_dts(packet)
            if packets:
                self._out.mux(packets)
        except av.FFmpegError as e:
            raise MediaError(f"encoding {self.path} failed: {ffmpeg_message(e)}") from None
        except OSError as e:
            raise MediaError(f"writing {self.path} failed: {one_line(e)}") from None

    def _sane_dts(self, packet) -> None:
        self._last_dts = sane_dts(packet, self._last_dts, self._max_delay)

    def write_frame(self, pts: int, luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
        """Encode one frame from normalised luma (same scale as ``Frame.luma``) and
        chroma offsets in [-0.5, 0.5] at any resolution with the frame's aspect."""
        self._check_open()
        frame = self.plan.ycbcr_frame(luma, cb, cr)
        self._finish_frame(frame, self._check_pts(pts))

    def write_rgb(self, pts: int, rgb: np.ndarray) -> None:
        """Encode one frame from float RGB in [0, 1] (any size with the frame's aspect),
        converted to the output YUV format by swscale."""
        self._check_open()
        frame = self.plan.rgb_frame(rgb)
        self._finish_frame(frame, self._check_pts(pts))

    def _finish_frame(self, frame: av.VideoFrame, pts: int) -> None:
        self.plan.stamp(frame, pts)
        self._encode(frame)
        self.frames_written += 1

    def write_packet(self, packet: av.Packet) -> None:
        """Mux one frame already encoded to this writer's plan (its pts shifted as
        :meth:`write_frame` would): the stream's encoder, opened with the same settings,
        gives the container the same codec header, and never encodes."""
        self._check_open()
        packet.stream = self._vs
        packet.time_base = self.plan.time_base
        try:
            self._out.mux(packet)
        except av.FFmpegError as e:
            raise MediaError(f"writing {self.path} failed: {ffmpeg_message(e)}") from None
        except OSError as e:
            raise MediaError(f"writing {self.path} failed: {one_line(e)}") from None
        self.frames_written += 1

    def write_audio(self, item: AudioPacket) -> None:
        """Pass one audio packet from the reader through (copy or transcode)."""
        self._check_open()
        entry = self._audio.get(item.stream_index)
        if entry is None:
            return
        packet = item.packet
        try:
            if entry.mode == "copy":
                if packet.dts is None and packet.pts is None:
                    return  # a muxer cannot place it; such packets carry no audio we can time
                if packet.dts is None:
                    packet.dts = packet.pts
                if packet.pts is None:
                    packet.pts = packet.dts
                last = entry.last_dts
                if last is not None and (packet.dts < last or (packet.dts == last and self._format in ("mp4", "mov"))):
                    # Out-of-order timestamps in a damaged input: the muxer would
                    # refuse the whole file, so this one packet is left out.
                    entry.dropped += 1
                    return
                entry.last_dts = packet.dts
                packet.stream = entry.out
                self._out.mux(packet)
            else:
                for frame in entry.src.decode(packet):
                    frame = self._cut(entry, frame) if self.window is not None else frame
                    if frame is not None:
                        self._encode_audio(entry, frame)
        except av.FFmpegError as e:
            raise MediaError(f"writing audio to {self.path} failed: {ffmpeg_message(e)}") from None

    def _cut(self, entry: _AudioRoute, frame):
        """The part of a decoded audio frame inside the window, to the sample, re-timed so
        the window's start is 0 (None if none of it is inside). Samples are counted along
        the stream, not read off each packet's timestamp (Matroska's are rounded to the
        millisecond), so an excerpt holds exactly (end - start) x rate samples."""
        if frame.pts is None or frame.time_base is None:
            return None
        start, end = self.window
        sr = frame.sample_rate
        pos = int(round(float(frame.pts * frame.time_base) * sr))  # this frame's first sample
        expected = entry.src_next
        if expected is not None and abs(pos - expected) <= 2 + sr * float(frame.time_base):
            pos = expected  # contiguous: the timestamp only lost precision
        entry.src_next = pos + frame.samples
        s0 = int(round(start * sr))
        a = max(0, s0 - pos)
        b = frame.samples if end is None else min(frame.samples, int(round(end * sr)) - pos)
        if b <= a:
            return None
        pts = pos + a - s0
        if a == 0 and b == frame.samples:
            frame.pts, frame.time_base = pts, Fraction(1, sr)
            return frame
        data = frame.to_ndarray()
        ch = len(frame.layout.channels)
        part = data[:, a:b] if frame.format.is_planar else data[:, a * ch : b * ch]
        cut = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=frame.format.name, layout=frame.layout.name)
        cut.sample_rate = sr
        cut.pts, cut.time_base = pts, Fraction(1, sr)
        return cut

    def _encode_audio(self, entry: _AudioRoute, frame) -> None:
        out = entry.out
        if frame is not None:
            if frame.pts is None:
                if entry.next_pts is None:
                    entry.next_pts = 0
                frame.pts = entry.next_pts
                frame.time_base = Fraction(1, frame.sample_rate)
            entry.next_pts = frame.pts + int(round(frame.samples / frame.sample_rate / float(frame.time_base)))
        packets = out.encode(frame)
        if packets:
            self._out.mux(packets)

    # -- finishing -----------------------------------------------------------------------

    def commit(self) -> None:
        """Flush the encoders, write the trailer, fsync and move the file into place."""
        self._check_open()
        if self.frames_written == 0:
            self.abort()
            raise MediaError(f"no video frames were written to {self.path}; nothing was saved")
        try:
            self._encode(None)
            for entry in self._audio.values():
                if entry.mode == "transcode":
                    for frame in entry.src.decode(None):
                        frame = self._cut(entry, frame) if self.window is not None else frame
                        if frame is not None:
                            self._encode_audio(entry, frame)
                    self._encode_audio(entry, None)
            self._out.close()
            self._out = None
            files.publish(self._tmp_path, self.path, overwrite=self.overwrite)
            self._tmp_path = None
        except VcganError:
            self.abort()
            raise
        except (av.FFmpegError, OSError) as e:
            self.abort()
            raise MediaError(f"could not finish {self.path}: {ffmpeg_message(e)}") from None
        except BaseException:
            self.abort()
            raise
        self._close_template()
        self._done = True

    def abort(self) -> None:
        """Stop and delete the temporary file; the final path is never touched."""
        self._done = True
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except Exception:
                pass
        self._close_template()
        tmp, self._tmp_path = self._tmp_path, None
        files.discard(tmp)

    def _close_template(self) -> None:
        tmpl, self._tmpl = self._tmpl, None
        if tmpl is not None:
            try:
                tmpl.close()
            except Exception:
                pass

    @property
    def output_info(self) -> str:
        parts = [self._spec.describe(self.crf, self.pix_fmt)]
        copied = [e for e in self._audio.values() if e.mode == "copy"]
        trans = [e for e in self._audio.values() if e.mode == "transcode"]
        dropped = len(self.reader.info.audio) - len(copied) - len(trans)
        if not self.reader.info.audio:
            parts.append("no audio")
        if copied:
            names = ", ".join(sorted({e.codec for e in copied}))
            n = len(copied)
            parts.append(f"{n} audio stream{'s' if n != 1 else ''} copied ({names})")
        if trans:
            names = ", ".join(f"{e.codec}->{e.target.replace('lib', '')}" for e in trans)
            parts.append(f"{len(trans)} transcoded ({names})")
        bad = sum(e.dropped for e in self._audio.values())
        if bad:
            parts.append(f"{bad} out-of-order audio packet{'s' if bad != 1 else ''} skipped")
        if dropped > 0:
            parts.append(f"{dropped} undecodable audio stream{'s' if dropped != 1 else ''} dropped")
        return ", ".join(parts)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self._done:
            self.abort()
        return False

    def __del__(self):  # last-resort cleanup of the temporary file
        try:
            if not self._done:
                self.abort()
        except Exception:
            pass
