"""Video I/O: read a film's luma frame by frame, write the colourised film back.

The reader makes ONE pass over the input in demux order and yields decoded video
frames (as normalised luma) interleaved with the raw audio packets, so memory stays
flat however long the film is.  The writer encodes frames built directly from Y/Cb/Cr
planes (no RGB round trip), copies (or, where the container cannot take the codec,
transcodes) the audio, keeps every video timestamp exactly, and only ever puts a file
under the final name once it is complete (temporary file + ``os.replace``).

Nothing here prints or imports a UI library; every user-facing failure is a
:class:`~vcgan_cli.errors.MediaError` with a one-line message.
"""

from __future__ import annotations

import heapq
import os
import re
import weakref
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import cv2
import numpy as np

from . import files
from .codecs import CODECS, CONTAINERS
from .errors import DamagedMediaError, MediaError, VcganError

__all__ = [
    "AudioStreamInfo",
    "VideoInfo",
    "Frame",
    "AudioPacket",
    "MediaReader",
    "VideoWriter",
    "OutputPlan",
    "SUPPORTED_CODECS",
    "CONTAINERS",
]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    channels: int
    sample_rate: int
    duration: float | None


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    rotation: int
    time_base: Fraction
    average_rate: Fraction | None
    frame_count: int | None
    duration: float | None
    codec: str
    pix_fmt: str
    bit_depth: int
    matrix: str
    full_range: bool
    audio: tuple[AudioStreamInfo, ...]
    #: The first frame's time (s) on the frames' clock (:attr:`Frame.time`); 0 for most files.
    start_time: float = 0.0


@dataclass(frozen=True)
class SourceTags:
    """What a writer carries over from the source besides pictures and sound: the colour
    tags as stored (FFmpeg's enum values), the pixel aspect ratio and the metadata kept."""

    colorspace: int | None  # None: not stored, or not one vcgan knows
    primaries: int
    transfer: int
    sample_aspect_ratio: Fraction | None  # None: square pixels
    container_metadata: dict
    stream_metadata: dict  # stream index -> its kept tags
    video_index: int


@dataclass
class Frame:
    index: int
    pts: int
    time: float
    luma: np.ndarray
    chroma: float
    #: True for a stand-in: the picture at this timestamp could not be decoded, so this is
    #: the previous good picture (or, at the very start, the first good one) again.
    damaged: bool = False


@dataclass
class AudioPacket:
    stream_index: int
    packet: av.Packet


# ------------------------------------------------------------------ small helpers

# AVColorSpace -> our matrix names.
_SPC_TO_MATRIX = {1: "bt709", 4: "bt601", 5: "bt601", 6: "bt601", 7: "bt709", 9: "bt2020", 10: "bt2020"}
_MATRIX_TO_SPC = {"bt601": 6, "bt709": 1, "bt2020": 9}
_MATRIX_TO_SWS = {"bt601": "ITU601", "bt709": "ITU709", "bt2020": "BT2020"}
_RANGE_MPEG, _RANGE_JPEG = 1, 2

# Pixel formats whose plane 0 is the luma at full size, LSB-aligned, little-endian.
_DIRECT_YUV = re.compile(r"^(yuv|yuvj|yuva)(420|422|444|440|411|410)p(\d+le)?$")
_DIRECT_NV = re.compile(r"^nv(12|21|16|24|42)$")
_DIRECT_GRAY = re.compile(r"^gray(\d+le)?$")


def _one_line(text: object) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= 300 else s[:297] + "..."


def _ffmpeg_message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno:
        return files.os_error_text(err)
    msg = getattr(err, "strerror", None) or str(err)
    return _one_line(msg)


def _local(path: str) -> str:
    """Force FFmpeg's file protocol, so a name like ``take:2.mp4`` is not a URL."""
    return "file:" + os.path.abspath(path)


def _dtype_for_bits(bits: int) -> np.dtype:
    return np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")


def _plane_view(plane, dtype: np.dtype) -> np.ndarray:
    """A (height, width) view of a frame plane (no copy; writable for new frames)."""
    item = dtype.itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    stride = plane.line_size // item
    return buf[: plane.height * stride].reshape(plane.height, stride)[:, : plane.width]


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    try:
        from av.sidedata.sidedata import Type

        sd = frame.side_data.get(Type.DISPLAYMATRIX)
        if sd is None:
            return None
        m = np.frombuffer(bytes(sd), dtype="<i4")
        return m if m.size == 9 else None
    except Exception:  # pragma: no cover - side data API differs
        return None


def _orientation(frame: av.VideoFrame) -> tuple[int, str]:
    """(clockwise rotation 0/90/180/270, numpy operation) that shows ``frame`` upright.

    Mirrors ffmpeg's autorotate: ``theta = -av_display_rotation_get(matrix)`` (PyAV's
    ``frame.rotation`` is ``av_display_rotation_get``), then a transpose / flip chosen
    from the matrix signs, so mirrored phone videos come out right too.
    """
    m = _display_matrix(frame)
    if m is None:
        return 0, "none"
    try:
        ccw = float(frame.rotation)
    except Exception:  # pragma: no cover
        return 0, "none"
    theta = int(round((-ccw) / 90.0)) % 4 * 90
    if theta == 90:
        return 90, ("transpose" if m[3] > 0 else "cw")
    if theta == 270:
        return 270, ("antitranspose" if m[3] < 0 else "ccw")
    if theta == 180:
        h, v = m[0] < 0, m[4] < 0
        return 180, ("rot180" if (h and v) else "hflip" if h else "vflip" if v else "none")
    return 0, ("vflip" if m[4] < 0 else "none")


def _orient(a: np.ndarray, op: str) -> np.ndarray:
    if op == "none":
        return a
    if op == "cw":
        a = np.rot90(a, -1)
    elif op == "ccw":
        a = np.rot90(a, 1)
    elif op == "rot180":
        a = a[::-1, ::-1]
    elif op == "transpose":
        a = a.T
    elif op == "antitranspose":
        a = a[::-1, ::-1].T
    elif op == "hflip":
        a = a[:, ::-1]
    elif op == "vflip":
        a = a[::-1]
    return np.ascontiguousarray(a)


@dataclass(frozen=True)
class _LumaPlan:
    """How to get Y out of a decoded frame of some pixel format."""

    convert_to: str | None     # reformat target, or None to read planes directly
    bits: int                  # bit depth of the Y samples we read
    full_range: bool
    chroma: str                # 'planar' | 'interleaved' | 'none'


def _luma_plan(fmt: av.VideoFormat, color_range: int) -> _LumaPlan:
    name = fmt.name
    bits = fmt.components[0].bits if fmt.components else 8
    if _DIRECT_GRAY.match(name):
        return _LumaPlan(None, bits, True, "none")
    if name.startswith(("gray", "ya")):  # big-endian / float gray, gray+alpha
        return _LumaPlan("gray" if bits <= 8 else "gray16le", 8 if bits <= 8 else 16, True, "none")
    full = name.startswith("yuvj") or color_range == _RANGE_JPEG
    if _DIRECT_YUV.match(name):
        return _LumaPlan(None, bits, full, "planar")
    if _DIRECT_NV.match(name):
        return _LumaPlan(None, bits, full, "interleaved")
    is_rgb = fmt.is_rgb or name.startswith(("pal", "rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr"))
    target_bits = 8 if bits <= 8 else bits
    if target_bits == 8:
        target = "yuv444p"
    elif target_bits in (9, 10, 12, 14, 16):
        target = f"yuv444p{target_bits}le"
    else:
        target, target_bits = "yuv444p16le", 16
    if is_rgb:
        return _LumaPlan(target, target_bits, True, "planar")
    # Other YUV layouts (packed 4:2:2, p010, big-endian ...): same range, planar copy.
    return _LumaPlan(target, target_bits, full, "planar")


def _resolve_matrix(colorspace: int | None, height: int) -> str:
    m = _SPC_TO_MATRIX.get(colorspace or 2)
    if m is None:
        m = "bt601" if height < 720 else "bt709"
    return m


def _container_duration(container) -> float | None:
    d = container.duration
    return None if d is None else d / 1_000_000.0


def _stream_duration(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _audio_channels(stream) -> int:
    cc = stream.codec_context
    try:
        return int(cc.layout.nb_channels)
    except Exception:
        return int(getattr(cc, "channels", 0) or 0)


_CONTAINER_TAGS = ("title", "artist", "album", "date", "year", "comment", "description",
                   "copyright", "genre", "creation_time")
_STREAM_TAGS = ("language", "title")


def _keep_metadata(meta, keys) -> dict[str, str]:
    """The descriptive tags worth carrying over (no encoder/brand/handler noise)."""
    try:
        items = list(dict(meta or {}).items())
    except Exception:  # pragma: no cover - undecodable tags
        return {}
    out = {}
    for k, v in items:
        k = str(k).lower()
        if k in keys and v and not (k == "language" and v == "und"):
            out[k] = str(v)
    return out


def _is_attached_pic(stream) -> bool:
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except Exception:
        return False


# --------------------------------------------------------------------------- reader


class _PassState:
    """Book-keeping for one demux pass."""

    __slots__ = ("index", "last_pts", "last_step", "audio_end", "last_luma", "last_chroma", "sent", "errors",
                 "_faulty_pts", "_faulty_dts", "_seen_pts", "_seen_dts")

    def __init__(self, step: int):
        self.index = 0
        self.last_luma: np.ndarray | None = None  # the last good picture, for stand-ins
        self.last_chroma = 0.0
        self.sent: list[int] = []  # heap: timestamps of video packets sent, not yet seen come out
        self.errors = 0  # decode errors in this pass (after any junk before the first picture)
        self.last_pts: int | None = None
        self.last_step = step
        self.audio_end: float | None = None
        self._faulty_pts = self._faulty_dts = 0
        self._seen_pts: int | None = None
        self._seen_dts: int | None = None

    def best_effort(self, pts: int | None, dts: int | None) -> int | None:
        """libavcodec's ``guess_correct_pts`` (what ``best_effort_timestamp`` holds,
        which PyAV does not expose): trust the frame pts unless it has gone backwards
        more often than the packet dts, as with B-frames in AVI."""
        if dts is not None:
            self._faulty_dts += self._seen_dts is not None and dts <= self._seen_dts
            self._seen_dts = dts
        elif pts is not None:
            self._seen_dts = pts
        if pts is not None:
            self._faulty_pts += self._seen_pts is not None and pts <= self._seen_pts
            self._seen_pts = pts
        elif dts is not None:
            self._seen_pts = dts
        if pts is not None and (self._faulty_pts <= self._faulty_dts or dts is None):
            return pts
        return dts


class MediaReader:
    """Open a video and read its luma frames and audio packets in one pass.

    ``info`` describes the video (display size after rotation, timing, colour);
    ``warnings`` collects one-line notes such as a damaged stream.  ``demux()`` may be
    called more than once; each call is an independent pass over the file.
    """

    _PROBE_PACKETS = 4000
    _LEADING_ERRORS = 50  # undecodable packets tolerated before the first picture
    _RUN_OF_ERRORS = 250  # undecodable pictures in a row after which the rest is given up

    def __init__(self, path: str | os.PathLike, *, strict: bool = False):
        self.path = os.fspath(path)
        self.strict = strict
        self.warnings: list[str] = []
        #: Indices of the frames of the last pass that are stand-ins for undecodable ones.
        self.damaged_frames: list[int] = []
        self.damaged_times: list[float] = []
        self._passes: weakref.WeakSet = weakref.WeakSet()
        p = self.path
        if not os.path.exists(p):
            raise MediaError(f"no such file: {p}; check the path")
        if os.path.isdir(p):
            raise MediaError(f"{p} is a folder, not a video file; pass a video file")
        if not os.access(p, os.R_OK):
            raise MediaError(f"cannot read {p} (permission denied); check its permissions")
        if os.path.getsize(p) == 0:
            raise MediaError(f"{p} is empty (0 bytes); pass a real video file")

        container = self._open()
        try:
            self._init_from(container)
        finally:
            container.close()

    # -- opening and probing ------------------------------------------------------

    def _open(self):
        try:
            return av.open(_local(self.path), "r")
        except av.FFmpegError as e:
            raise MediaError(
                f"{self.path} is not a media file FFmpeg can read ({_ffmpeg_message(e)}); "
                "check that it is a video"
            ) from None
        except OSError as e:
            raise MediaError(f"cannot open {self.path}: {_one_line(e)}") from None

    def _init_from(self, container) -> None:
        p = self.path
        fmt = container.format.name or ""
        if fmt == "image2" or fmt.endswith("_pipe"):  # FFmpeg's still-image demuxers (jpeg_pipe, png_pipe, ...)
            raise MediaError(f"{p} is a still image ({fmt.removesuffix('_pipe')}), not a film; colourise it with `vcgan image`")
        videos = [s for s in container.streams.video if not _is_attached_pic(s)]
        if not videos:
            raise MediaError(f"{p} has no video stream; pass a video file, not an audio file")
        vs = next((s for s in videos if s.codec_context is not None), None)
        if vs is None:
            name = videos[0].name or "unknown"
            raise MediaError(
                f"{p}: video codec '{name}' cannot be decoded by this FFmpeg build; "
                "convert the file first (e.g. to H.264)"
            )
        self._vindex = vs.index
        self._aindices = tuple(s.index for s in container.streams.audio)

        first, err = self._first_frame(container, vs)
        if first is None:
            if err is not None:
                raise MediaError(
                    f"{p} has no decodable video frames ({err}); the file is damaged or "
                    "uses an unsupported codec"
                )
            raise MediaError(f"{p} has no decodable video frames; the file is empty or damaged")

        cc = vs.codec_context
        fmt = first.format
        colorspace = first.colorspace if first.colorspace not in (None, 2) else cc.colorspace
        color_range = first.color_range or cc.color_range
        self._plan = _luma_plan(fmt, color_range)
        coded_w, coded_h = first.width, first.height
        self._coded = (coded_w, coded_h)
        rotation, self._orient_op = _orientation(first)
        if self._orient_op in ("cw", "ccw", "transpose", "antitranspose"):
            width, height = coded_h, coded_w
        else:
            width, height = coded_w, coded_h
        matrix = _resolve_matrix(colorspace, coded_h)
        self._colorspace_raw = colorspace if colorspace in _SPC_TO_MATRIX else None
        self._color_primaries = first.color_primaries if first.color_primaries not in (None, 2) else cc.color_primaries
        self._color_trc = first.color_trc if first.color_trc not in (None, 2) else cc.color_trc

        tb = vs.time_base or Fraction(1, 90000)
        avg = vs.average_rate or vs.guessed_rate or None
        if avg is not None and (avg <= 0 or avg > 1000):
            avg = None
        duration = _stream_duration(vs) or _container_duration(container)
        frame_count = vs.frames or None
        if frame_count is None and duration and avg:
            frame_count = max(1, int(round(duration * float(avg))))

        audio = []
        for a in container.streams.audio:
            acc = a.codec_context
            audio.append(
                AudioStreamInfo(
                    index=a.index,
                    codec=(acc.name if acc is not None else (a.name or "unknown")),
                    channels=_audio_channels(a) if acc is not None else 0,
                    sample_rate=int(acc.sample_rate or 0) if acc is not None else 0,
                    duration=_stream_duration(a),
                )
            )
        self._container_metadata = _keep_metadata(container.metadata, _CONTAINER_TAGS)
        self._stream_metadata = {
            s.index: _keep_metadata(s.metadata, _STREAM_TAGS) for s in [vs, *container.streams.audio]
        }
        sar = None
        try:
            sar = vs.sample_aspect_ratio
        except Exception:  # pragma: no cover
            pass
        if sar is not None and (sar <= 0 or sar == 1):
            sar = None
        if sar is not None and self._orient_op in ("cw", "ccw", "transpose", "antitranspose"):
            sar = 1 / sar  # pixels turn with the picture
        self._sar = Fraction(sar) if sar is not None else None
        self._start_time = vs.start_time
        self._declared_video_duration = _stream_duration(vs)
        self._declared_duration = _container_duration(container)
        self.tags = SourceTags(
            colorspace=self._colorspace_raw, primaries=self._color_primaries, transfer=self._color_trc,
            sample_aspect_ratio=self._sar, container_metadata=self._container_metadata,
            stream_metadata=self._stream_metadata, video_index=self._vindex,
        )
        self.info = VideoInfo(
            path=p,
            width=width,
            height=height,
            rotation=rotation,
            time_base=Fraction(tb),
            average_rate=Fraction(avg) if avg else None,
            frame_count=frame_count,
            duration=duration,
            codec=cc.name,
            pix_fmt=fmt.name,
            bit_depth=self._plan.bits,
            matrix=matrix,
            full_range=self._plan.full_range,
            audio=tuple(audio),
            start_time=float((vs.start_time or 0) * tb),
        )

    def _first_frame(self, container, vs):
        """Decode up to the first video frame; returns (frame, error message)."""
        n = errors = 0
        try:
            for packet in container.demux(vs):
                n += 1
                if packet.size == 0:
                    continue  # flush marker; drained below
                try:
                    frames = packet.decode()
                except av.FFmpegError as e:
                    errors += 1  # a capture may start with a few undecodable packets
                    if errors > self._LEADING_ERRORS:
                        return None, _ffmpeg_message(e)
                    continue
                if frames:
                    return frames[0], None
                if n > self._PROBE_PACKETS:
                    return None, f"no picture in the first {self._PROBE_PACKETS} packets"
            frames = vs.decode(None)
            if frames:
                return frames[0], None
        except av.FFmpegError as e:
            return None, _ffmpeg_message(e)
        return None, None

    # -- per-frame conversion -------------------------------------------------------

    def _convert(self, fr: av.VideoFrame) -> tuple[np.ndarray, float]:
        plan = self._plan
        if (fr.width, fr.height) != self._coded:
            # Mid-stream size change (rare): scale back to the size we announced.
            rng = "JPEG" if plan.full_range else "MPEG"
            fr = fr.reformat(width=self._coded[0], height=self._coded[1],
                             src_color_range=rng, dst_color_range=rng)
        fmt = fr.format
        if fmt.name != self.info.pix_fmt:
            # Mid-stream format change (rare): re-plan for this frame.
            plan = _luma_plan(fmt, fr.color_range)
        if plan.convert_to is not None:
            rng = "JPEG" if plan.full_range else "MPEG"
            sws = _MATRIX_TO_SWS[self.info.matrix]
            if fmt.is_rgb or fmt.name.startswith(("pal", "rgb", "bgr", "gbr")):
                fr = fr.reformat(format=plan.convert_to, dst_colorspace=sws,
                                 src_color_range="JPEG", dst_color_range="JPEG")
            else:
                fr = fr.reformat(format=plan.convert_to, src_colorspace=sws, dst_colorspace=sws,
                                 src_color_range=rng, dst_color_range=rng)
        bits = plan.bits
        dt = _dtype_for_bits(bits)
        s = float(2 ** (bits - 8))
        y = _plane_view(fr.planes[0], dt).astype(np.float32)
        if plan.full_range:
            luma = y * np.float32(1.0 / (2 ** bits - 1))
        else:
            luma = (y - np.float32(16 * s)) / np.float32(219 * s)

        chroma = 0.0
        if plan.chroma != "none" and len(fr.planes) >= 2:
            planes = [1, 2] if plan.chroma == "planar" else [1]
            scale = (2 ** bits - 1) if plan.full_range else 224 * s
            devs = []
            for i in planes:
                if i >= len(fr.planes):
                    continue
                c = _plane_view(fr.planes[i], dt)[::2, ::2]
                devs.append(float(np.abs(c.astype(np.float32) - np.float32(128 * s)).mean()))
            if devs:
                chroma = float(np.mean(devs)) / float(scale)

        return _orient(luma, self._orient_op), chroma

    # -- the one pass -----------------------------------------------------------------

    def demux(self, seek: float | None = None) -> Iterator[Frame | AudioPacket]:
        """One pass over the file: decoded video frames (presentation order) and the
        audio packets of every audio stream, interleaved in demux order.

        Each call opens the file afresh; the pass holds only the frame being decoded
        (memory stays flat).  Abandoning the iterator is fine; ``close()`` (or leaving
        the reader's ``with`` block) ends any pass still open. ``seek`` (seconds, on the
        frames' own clock: :attr:`Frame.time`) starts the pass at the last keyframe at or
        before that time instead of the beginning; frame indices then count from there.
        """
        gen = self._demux(seek)
        self._passes.add(gen)
        return gen

    def _open_at(self, seek: float | None):
        """The file opened afresh, at the last video keyframe at or before ``seek`` (seconds
        on the frames' clock) where given and the file can seek, else at its start."""
        container = self._open()
        tb = self.info.time_base
        if seek is not None and seek > float((self._start_time or 0) * tb):
            try:
                container.seek(int(seek / tb), stream=container.streams[self._vindex], backward=True, any_frame=False)
            except av.FFmpegError:
                container.close()  # not seekable (a pipe, some damaged files): from the start
                container = self._open()
        return container

    def audio_packets(self, seek: float | None = None, until: float | None = None) -> Iterator[AudioPacket]:
        """A pass over the audio streams alone (no picture is decoded), from where a
        :meth:`demux` with the same ``seek`` starts, up to the first packet at or after
        ``until`` seconds."""
        if not self._aindices:
            return
        container = self._open_at(seek)
        try:
            for packet in container.demux([container.streams[i] for i in self._aindices]):
                if packet.size == 0:
                    continue
                if until is not None and packet.pts is not None and packet.time_base is not None:
                    if float(packet.pts * packet.time_base) >= until:
                        break
                yield AudioPacket(packet.stream.index, packet)
        except av.FFmpegError:
            return  # damaged data: the sound ends here (the picture pass reports the damage)
        finally:
            container.close()

    def _demux(self, seek: float | None = None) -> Iterator[Frame | AudioPacket]:
        container = self._open_at(seek)
        try:
            vs = container.streams[self._vindex]
            try:
                vs.thread_type = "AUTO"
            except Exception:  # pragma: no cover
                pass
            streams = [vs] + [container.streams[i] for i in self._aindices]
            tb = self.info.time_base
            step = 1
            if self.info.average_rate:
                step = max(1, int(round(1 / (self.info.average_rate * tb))))
            st = _PassState(step)
            damage: str | None = None
            bad: str | None = None  # what the decoder said about the first undecodable picture
            leading_errors = in_a_row = 0
            self.damaged_frames, self.damaged_times = [], []
            packets = container.demux(streams)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.FFmpegError as e:
                    damage = _ffmpeg_message(e)
                    break
                if packet.size == 0:
                    # PyAV's end-of-stream flush markers (in PyAV 18 their stream_index
                    # is always 0, whatever stream they flush); we drain once below.
                    continue
                if packet.stream.index != self._vindex:
                    if packet.pts is not None and packet.time_base is not None:
                        end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                        st.audio_end = end if st.audio_end is None else max(st.audio_end, end)
                    yield AudioPacket(packet.stream.index, packet)
                    continue
                if packet.pts is not None:
                    heapq.heappush(st.sent, int(packet.pts))
                try:
                    decoded = vs.decode(packet)
                except av.FFmpegError as e:
                    what = _ffmpeg_message(e)
                    at = f"{float(packet.pts * tb):.2f} s" if packet.pts is not None else f"after frame {st.index - 1}"
                    if self.strict:
                        raise DamagedMediaError(f"{self.path}: a picture near {at} cannot be decoded ({what}); stopped (--strict)") from None
                    if st.index == 0 and not st.errors:
                        leading_errors += 1  # junk before the first picture (a stream cut mid-GOP)
                        if leading_errors <= self._LEADING_ERRORS:
                            continue
                    st.errors += 1
                    in_a_row += 1
                    if in_a_row > self._RUN_OF_ERRORS:
                        damage = what
                        break
                    bad = bad or what
                    continue
                in_a_row = 0
                for fr in decoded:
                    yield from self._stand_ins(st, fr)
                    yield self._frame(fr, st)
            if damage is None:
                try:
                    for fr in vs.decode(None):
                        yield from self._stand_ins(st, fr)
                        yield self._frame(fr, st)
                except av.EOFError:
                    pass
                except av.FFmpegError as e:
                    damage = _ffmpeg_message(e)
            if st.index:
                yield from self._stand_ins(st, None)  # undecodable pictures at the very end
            if self.damaged_frames:
                n = len(self.damaged_frames)
                shown = ", ".join(f"{i} ({t:.2f} s)" for i, t in zip(self.damaged_frames[:6], self.damaged_times))
                self.warnings.append(
                    f"{n} damaged frame{'s' if n > 1 else ''} could not be decoded ({bad or 'no picture'}): "
                    f"frame{'s' if n > 1 else ''} {shown}{', ...' if n > 6 else ''}; "
                    f"{'each was' if n > 1 else 'it was'} replaced by the previous good one, so timing and sound stay"
                )
            if damage is not None and self.strict:
                raise DamagedMediaError(f"{self.path}: the stream is damaged after frame {st.index - 1} ({damage}); stopped (--strict)")
            if damage is not None:
                if st.index == 0:
                    raise MediaError(
                        f"{self.path} has no decodable video frames ({damage}); the file is damaged"
                    )
                self.warnings.append(
                    f"stream is damaged after frame {st.index - 1} "
                    f"({float(st.last_pts * tb):.2f} s): {damage}; colourised up to there"
                )
                return
            if st.index == 0:
                raise MediaError(f"{self.path} has no decodable video frames; the file is empty or damaged")
            self._check_truncation(st.index, st.last_pts, st.last_step, st.audio_end)
        finally:
            container.close()

    def _stand_ins(self, st: "_PassState", fr: av.VideoFrame | None) -> Iterator[Frame]:
        """Stand-ins for the pictures that were sent to the decoder but never came out, timed
        before ``fr`` (all that are left, at the end: ``fr`` None). Only once the decoder has
        reported an error in this pass (a packet without a picture is otherwise normal), and
        only where a timestamp says where the picture belonged. A stand-in is the last good
        picture again, or ``fr`` itself where none came before it."""
        until = None if fr is None else fr.pts
        if fr is not None and until is None:
            st.sent.clear()  # an untimed picture: nothing to compare with (and nothing kept)
            return
        while st.sent and (until is None or st.sent[0] <= until):
            pts = heapq.heappop(st.sent)
            if pts == until or not st.errors or (st.last_pts is not None and pts <= st.last_pts):
                continue  # it came out, or no error says it is missing, or it is in the past
            if st.last_luma is None:
                if fr is None:
                    continue
                st.last_luma, st.last_chroma = self._convert(fr)
            yield self._stand_in(st, pts)
        # a gap the demuxer skipped over (it lost its way in damaged data and found the next
        # cluster): in a constant-rate stream, the pictures that belonged there
        rate, tb = self.info.average_rate, self.info.time_base
        if fr is not None and st.errors and rate and st.last_pts is not None and st.last_luma is not None:
            step = 1 / (rate * tb)  # time-base ticks per frame, exactly
            missing = round((until - st.last_pts) / step) - 1
            if 1 <= missing and abs(until - st.last_pts - (missing + 1) * step) <= step / 4:
                start = st.last_pts
                for k in range(1, missing + 1):
                    yield self._stand_in(st, start + round(k * step))

    def _stand_in(self, st: "_PassState", pts: int) -> Frame:
        if st.last_pts is not None:
            st.last_step = max(1, pts - st.last_pts)
        st.last_pts = pts
        self.damaged_frames.append(st.index)
        self.damaged_times.append(float(pts * self.info.time_base))
        st.index += 1
        return Frame(index=st.index - 1, pts=pts, time=float(pts * self.info.time_base),
                     luma=st.last_luma, chroma=st.last_chroma, damaged=True)

    def _frame(self, fr: av.VideoFrame, st: "_PassState") -> Frame:
        pts = st.best_effort(fr.pts, fr.dts)
        if pts is None:
            pts = 0 if st.last_pts is None else st.last_pts + st.last_step
        if st.last_pts is not None:
            if pts <= st.last_pts:
                pts = st.last_pts + 1
            st.last_step = max(1, pts - st.last_pts)
        st.last_pts = pts
        luma, chroma = self._convert(fr)
        st.last_luma, st.last_chroma = luma, chroma
        out = Frame(index=st.index, pts=int(pts), time=float(pts * self.info.time_base),
                    luma=luma, chroma=chroma)
        st.index += 1
        return out

    def _check_truncation(self, count, last_pts, last_step, last_audio_end) -> None:
        """Warn when the streams stop well before the duration the container declares
        (a file cut short: matroska/mpeg-ts keep playing up to the cut without error)."""
        tb = self.info.time_base
        start = float((self._start_time or 0) * tb)
        video_end = float((last_pts + last_step) * tb)
        expected = self._declared_video_duration
        if expected is not None:
            expected += start
        else:
            expected = self._declared_duration
            if expected is None:
                return
        reached = max(video_end, last_audio_end or 0.0)
        frame_s = float(last_step * tb)
        if reached < expected - max(1.0, 3 * frame_s):
            self.warnings.append(
                f"stream ends at frame {count - 1} ({video_end:.2f} s) but the file says it lasts "
                f"{expected:.2f} s; it is probably truncated; colourised up to there"
            )

    def close(self) -> None:
        """End any demux pass still open (closing its file handle)."""
        for gen in list(self._passes):
            try:
                gen.close()
            except Exception:  # e.g. still running in another thread
                pass

    def __enter__(self) -> "MediaReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- writer

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
        spc = reader.tags.colorspace if reader.tags.colorspace is not None else _MATRIX_TO_SPC[info.matrix]
        if _SPC_TO_MATRIX.get(spc) != info.matrix:
            spc = _MATRIX_TO_SPC[info.matrix]
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
        cc.color_range = _RANGE_MPEG
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
        dt = _dtype_for_bits(bits)
        frame = av.VideoFrame(w, h, self.pix_fmt)

        y = np.asarray(luma, dtype=np.float32) * np.float32(219 * s) + np.float32(16 * s)
        np.rint(y, out=y)
        np.clip(y, 0, top, out=y)
        _plane_view(frame.planes[0], dt)[...] = y.astype(dt)

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
            _plane_view(plane, dt)[...] = q.astype(dt)
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
            dst_colorspace=_MATRIX_TO_SWS[self.matrix],
            src_color_range="JPEG",
            dst_color_range="MPEG",
        )

    def stamp(self, frame: av.VideoFrame, pts: int) -> None:
        """Time and colour-tag a frame about to be encoded (``pts`` already shifted)."""
        frame.pts = pts
        frame.time_base = self.time_base
        frame.colorspace = self.colorspace
        frame.color_range = _RANGE_MPEG
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
            self._out = av.open(_local(self._tmp_path), "w", format=plan.format, options=self._mux_options())
            self._setup_video()
            self._setup_audio()
        except MediaError:
            self.abort()
            raise
        except (av.FFmpegError, ValueError, OSError) as e:
            self.abort()
            raise MediaError(f"cannot set up {codec} output to {p}: {_ffmpeg_message(e)}") from None
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
        self._tmpl = av.open(_local(self.reader.path), "r")
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
            raise MediaError(f"encoding {self.path} failed: {_ffmpeg_message(e)}") from None
        except OSError as e:
            raise MediaError(f"writing {self.path} failed: {_one_line(e)}") from None

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
            raise MediaError(f"writing {self.path} failed: {_ffmpeg_message(e)}") from None
        except OSError as e:
            raise MediaError(f"writing {self.path} failed: {_one_line(e)}") from None
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
            raise MediaError(f"writing audio to {self.path} failed: {_ffmpeg_message(e)}") from None

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
            raise MediaError(f"could not finish {self.path}: {_ffmpeg_message(e)}") from None
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
