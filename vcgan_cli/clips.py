"""Colour clips for measuring and training: where they are (a DAVIS tree, folders of frames,
videos) and their frames as RGB. The one home of clip reading for `vcgan bench`, the
training data and the tools."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import VcganError
from .images import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


@dataclass
class Clip:
    name: str
    frames: list[Path] | None = None  # a folder of images, sorted
    video: Path | None = None


def natural_key(path: Path) -> list:
    """Sort key that puts frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def images_in(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=natural_key,
    )


def find_clips(data: str | os.PathLike) -> list[Clip]:
    """Clips in ``data``: a DAVIS tree (``JPEGImages/480p/<clip>/``), a folder of frame
    folders, a folder of colour videos, or one video file."""
    data = Path(data)
    if not data.exists():
        raise VcganError(f"{data}: no such file or folder")
    if data.is_file():
        if data.suffix.lower() not in VIDEO_EXTENSIONS:
            raise VcganError(f"{data}: give a folder of clips or a video file")
        return [Clip(data.stem, video=data)]
    root = data / "JPEGImages" / "480p" if (data / "JPEGImages" / "480p").is_dir() else data
    clips = [Clip(d.name, frames=images_in(d)) for d in sorted(root.iterdir()) if d.is_dir() and images_in(d)]
    clips += [Clip(p.stem, video=p) for p in sorted(root.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS]
    if not clips and images_in(root):
        clips = [Clip(root.name, frames=images_in(root))]
    if not clips:
        raise VcganError(f"{data}: no clips found (expected JPEGImages/480p/<clip>/, folders of frames, or videos)")
    return clips


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise VcganError(f"{path}: not an image OpenCV can read")
    return (img[..., ::-1].astype(np.float32) / 255.0).copy()


def read_clip(clip: Clip, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """RGB float32 frames of a clip, in order."""
    if clip.frames is not None:
        for p in clip.frames[:max_frames]:
            yield _read_rgb(p)
        return
    import av

    try:
        with av.open(f"file:{clip.video}") as container:
            for i, frame in enumerate(container.decode(video=0)):
                if max_frames is not None and i >= max_frames:
                    break
                yield frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0
    except av.FFmpegError as exc:
        raise VcganError(f"{clip.video}: cannot decode ({exc})") from None
