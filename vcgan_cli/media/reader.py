"""Reading a film: one pass in demux order yielding normalised luma frames and the raw audio
packets, with damage handling, seeking for excerpts and an audio-only pass."""
from __future__ import annotations

import heapq
import os
import weakref
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from ..errors import DamagedMediaError, MediaError
from .pixels import MATRIX_TO_SWS, SPC_TO_MATRIX, dtype_for_bits, luma_plan, orient, orientation, plane_view, resolve_matrix
from .types import AudioPacket, AudioStreamInfo, Frame, SourceTags, VideoInfo, ffmpeg_message, local_path, one_line, shrink


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


def _scaled(y: np.ndarray, plan) -> np.ndarray:
    """Integer luma codes (as float32) to the reader's scale: nominal black 0, white 1."""
    bits = plan.bits
    if plan.full_range:
        return y * np.float32(1.0 / (2 ** bits - 1))
    s = float(2 ** (bits - 8))
    return (y - np.float32(16 * s)) / np.float32(219 * s)


class _Picture:
    """A decoded picture; its luma (and chroma measure) converted once, when first asked for."""

    __slots__ = ("_reader", "_frame", "_value")

    def __init__(self, reader: "MediaReader", fr: av.VideoFrame):
        self._reader, self._frame, self._value = reader, fr, None

    def convert(self) -> tuple[np.ndarray, float]:
        if self._value is None:
            self._value = self._reader._convert(self._frame)
            self._frame = None  # the decoder's buffer is not kept once converted
        return self._value

    def small(self, height: int, width: int) -> np.ndarray:
        if self._value is not None:
            return shrink(self._value[0], height, width)
        return self._reader._small(self._frame, height, width)


class _PassState:
    """Book-keeping for one demux pass."""

    __slots__ = ("index", "last_pts", "last_step", "audio_end", "last_picture", "lazy", "sent", "errors",
                 "_faulty_pts", "_faulty_dts", "_seen_pts", "_seen_dts")

    def __init__(self, step: int, lazy: bool = False):
        self.index = 0
        self.last_picture: _Picture | None = None  # the last good picture, for stand-ins
        self.lazy = lazy  # frames convert their luma when it is first read
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
            return av.open(local_path(self.path), "r")
        except av.FFmpegError as e:
            raise MediaError(
                f"{self.path} is not a media file FFmpeg can read ({ffmpeg_message(e)}); "
                "check that it is a video"
            ) from None
        except OSError as e:
            raise MediaError(f"cannot open {self.path}: {one_line(e)}") from None

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
        self._plan = luma_plan(fmt, color_range)
        coded_w, coded_h = first.width, first.height
        self._coded = (coded_w, coded_h)
        rotation, self._orient_op = orientation(first)
        if self._orient_op in ("cw", "ccw", "transpose", "antitranspose"):
            width, height = coded_h, coded_w
        else:
            width, height = coded_w, coded_h
        matrix = resolve_matrix(colorspace, coded_h)
        self._colorspace_raw = colorspace if colorspace in SPC_TO_MATRIX else None
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
                        return None, ffmpeg_message(e)
                    continue
                if frames:
                    return frames[0], None
                if n > self._PROBE_PACKETS:
                    return None, f"no picture in the first {self._PROBE_PACKETS} packets"
            frames = vs.decode(None)
            if frames:
                return frames[0], None
        except av.FFmpegError as e:
            return None, ffmpeg_message(e)
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
            plan = luma_plan(fmt, fr.color_range)
        if plan.convert_to is not None:
            rng = "JPEG" if plan.full_range else "MPEG"
            sws = MATRIX_TO_SWS[self.info.matrix]
            if fmt.is_rgb or fmt.name.startswith(("pal", "rgb", "bgr", "gbr")):
                fr = fr.reformat(format=plan.convert_to, dst_colorspace=sws,
                                 src_color_range="JPEG", dst_color_range="JPEG")
            else:
                fr = fr.reformat(format=plan.convert_to, src_colorspace=sws, dst_colorspace=sws,
                                 src_color_range=rng, dst_color_range=rng)
        bits = plan.bits
        dt = dtype_for_bits(bits)
        s = float(2 ** (bits - 8))
        luma = _scaled(plane_view(fr.planes[0], dt).astype(np.float32), plan)

        chroma = 0.0
        if plan.chroma != "none" and len(fr.planes) >= 2:
            planes = [1, 2] if plan.chroma == "planar" else [1]
            scale = (2 ** bits - 1) if plan.full_range else 224 * s
            devs = []
            for i in planes:
                if i >= len(fr.planes):
                    continue
                c = plane_view(fr.planes[i], dt)[::2, ::2]
                devs.append(float(np.abs(c.astype(np.float32) - np.float32(128 * s)).mean()))
            if devs:
                chroma = float(np.mean(devs)) / float(scale)

        return orient(luma, self._orient_op), chroma

    # -- the one pass -----------------------------------------------------------------

    def demux(self, seek: float | None = None, lazy: bool = False) -> Iterator[Frame | AudioPacket]:
        """One pass over the file: decoded video frames (presentation order) and the
        audio packets of every audio stream, interleaved in demux order.

        Each call opens the file afresh; the pass holds only the frame being decoded
        (memory stays flat).  Abandoning the iterator is fine; ``close()`` (or leaving
        the reader's ``with`` block) ends any pass still open. ``seek`` (seconds, on the
        frames' own clock: :attr:`Frame.time`) starts the pass at the last keyframe at or
        before that time instead of the beginning; frame indices then count from there.
        ``lazy``: each frame's luma is converted only when read (in the reader of the frame,
        not in this pass), and :meth:`Frame.small` is cheap; otherwise it is converted here.
        """
        gen = self._demux(seek, lazy)
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

    def _demux(self, seek: float | None = None, lazy: bool = False) -> Iterator[Frame | AudioPacket]:
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
            st = _PassState(step, lazy)
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
                    damage = ffmpeg_message(e)
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
                    what = ffmpeg_message(e)
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
                    damage = ffmpeg_message(e)
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
            if st.last_picture is None:
                if fr is None:
                    continue
                st.last_picture = self._picture(fr, st)
            yield self._stand_in(st, pts)
        # a gap the demuxer skipped over (it lost its way in damaged data and found the next
        # cluster): in a constant-rate stream, the pictures that belonged there
        rate, tb = self.info.average_rate, self.info.time_base
        if fr is not None and st.errors and rate and st.last_pts is not None and st.last_picture is not None:
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
        return self._frame_of(st.last_picture, st.index - 1, pts, damaged=True)

    def _picture(self, fr: av.VideoFrame, st: "_PassState") -> _Picture:
        picture = _Picture(self, fr)
        if not st.lazy:
            picture.convert()
        return picture

    def _frame_of(self, picture: _Picture, index: int, pts: int, damaged: bool = False) -> Frame:
        time = float(pts * self.info.time_base)
        if picture._value is not None:  # converted (an eager pass): the frame holds the arrays
            luma, chroma = picture._value
            return Frame(index=index, pts=pts, time=time, luma=luma, chroma=chroma, damaged=damaged)
        return Frame(index=index, pts=pts, time=time, damaged=damaged, source=picture)

    #: orientations that turn the picture a quarter (its axes swap)
    _QUARTER_TURNS = ("cw", "ccw", "transpose", "antitranspose")

    def _small(self, fr: av.VideoFrame, height: int, width: int) -> np.ndarray:
        """``_convert(fr)``'s luma at ``height`` x ``width``, made from the integer luma plane
        (area-averaged, then scaled) where the picture is as announced and its first plane is
        the luma; otherwise by converting it whole."""
        import cv2

        plan = self._plan
        if (fr.width, fr.height) != self._coded or fr.format.name != self.info.pix_fmt or plan.convert_to is not None:
            return shrink(self._convert(fr)[0], height, width)
        bits = plan.bits
        y = plane_view(fr.planes[0], dtype_for_bits(bits))
        op = self._orient_op
        h, w = (width, height) if op in self._QUARTER_TURNS else (height, width)  # before turning
        smaller = h * w < y.shape[0] * y.shape[1]
        y = cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC).astype(np.float32)
        return orient(_scaled(y, plan), op)

    def _frame(self, fr: av.VideoFrame, st: "_PassState") -> Frame:
        pts = st.best_effort(fr.pts, fr.dts)
        if pts is None:
            pts = 0 if st.last_pts is None else st.last_pts + st.last_step
        if st.last_pts is not None:
            if pts <= st.last_pts:
                pts = st.last_pts + 1
            st.last_step = max(1, pts - st.last_pts)
        st.last_pts = pts
        st.last_picture = self._picture(fr, st)
        out = self._frame_of(st.last_picture, st.index, int(pts))
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

