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


