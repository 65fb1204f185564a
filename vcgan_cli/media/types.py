"""The media layer's data: what a film is (VideoInfo, its streams, its colour tags) and what
flows out of the reader (Frame, AudioPacket), plus the one-line FFmpeg error text."""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .. import files



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


class Frame:
    """A decoded picture and when it shows. ``luma``: float32 (H, W), upright, the source's Y'
    scaled so that nominal black is 0 and white 1; ``chroma``: how far from gray the source
    picture is (its mean |Cb|, |Cr|, 0 for a gray source). ``damaged``: a stand-in, the picture
    at this timestamp could not be decoded, so this is the previous good picture (or, at the very
    start, the first good one) again.

    From a lazy pass (:meth:`~vcgan_cli.media.reader.MediaReader.demux` with ``lazy=True``)
    ``luma`` and ``chroma`` are converted from the decoded picture when first read, and
    :meth:`small` gives the picture at a small size without converting it whole, so a pass that
    looks at every frame small (a preview's search for scene cuts) does not pay for full-size
    float pictures."""

    __slots__ = ("index", "pts", "time", "damaged", "_luma", "_chroma", "_source")

    def __init__(self, index: int, pts: int, time: float, luma: np.ndarray | None = None, chroma: float = 0.0,
                 damaged: bool = False, source=None):
        if luma is None and source is None:
            raise ValueError("a Frame needs its luma or a source to convert it from")
        self.index, self.pts, self.time, self.damaged = index, pts, time, damaged
        self._luma, self._chroma, self._source = luma, chroma, source

    @property
    def luma(self) -> np.ndarray:
        if self._luma is None:
            self._luma, self._chroma = self._source.convert()
            self._source = None
        return self._luma

    @property
    def chroma(self) -> float:
        if self._luma is None:
            self.luma  # noqa: B018 - converts both
        return self._chroma

    def small(self, height: int, width: int) -> np.ndarray:
        """The luma at ``height`` x ``width`` (area-averaged; float32, same scale as ``luma``).
        From a lazy pass it is made from the decoded integer picture, within half a code value
        of resizing ``luma`` itself."""
        if self._luma is None:
            return self._source.small(height, width)
        return shrink(self._luma, height, width)

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, pts={self.pts}, time={self.time:.3f}{', damaged' if self.damaged else ''})"


def shrink(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` at ``height`` x ``width``: area-averaged when smaller, bicubic when larger (the
    one resizing rule; :func:`vcgan_cli.runtime.resize` is this)."""
    import cv2

    if image.shape[:2] == (height, width):
        return image
    smaller = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)


@dataclass
class AudioPacket:
    stream_index: int
    packet: av.Packet


# ------------------------------------------------------------------ small helpers

# AVColorSpace -> our matrix names.
def one_line(text: object) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= 300 else s[:297] + "..."


def ffmpeg_message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno:
        return files.os_error_text(err)
    msg = getattr(err, "strerror", None) or str(err)
    return one_line(msg)


def local_path(path: str) -> str:
    """Force FFmpeg's file protocol, so a name like ``take:2.mp4`` is not a URL."""
    return "file:" + os.path.abspath(path)


