"""Key frames: colour versions of some of a film's frames, given by the user, that set a
shot's colours (``vcgan colorize --reference key.png`` or ``--references DIR``).

A key frame replaces the network's guess on its frame (its chroma on the film's own luma)
and the colour recurrence carries it through the rest of that shot (docs/method.md, "Colour
recurrence"). Everything a user can get wrong is checked before any work starts: an image
that cannot be read, another aspect than the film's, an index past the film's end, two files
for one frame. Pixels are read only when their frame comes (one image at a time in memory).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import VcganError
from .images import IMAGE_EXTENSIONS

#: Largest relative difference of a key frame's aspect ratio from the film's (a frame
#: exported at another size rounds its sides to whole pixels).
ASPECT_TOLERANCE = 0.01
#: Mean |Cb, Cr| under which a key frame is taken to have no colour at all.
GRAY_CHROMA = 0.01
_NAME = re.compile(r"^(\d+)$")


@dataclass(frozen=True)
class KeyFrame:
    #: The film's frame it colours, counted from 0 (as frame exporters name files); None for
    #: ``--reference``: the first frame coloured (of the excerpt, with ``--start``).
    index: int | None
    path: Path
    width: int = 0
    height: int = 0
    sha256: str = ""
    chroma: float = 0.0  # mean |Cb, Cr|: ~0 for an image with no colour

    @property
    def label(self) -> str:
        return self.path.name


def _read(path: Path) -> np.ndarray:
    """The image as float32 RGB in [0, 1] (8 or 16 bits; gray becomes three equal planes,
    alpha is dropped), or a one-line error."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise VcganError(f"key frame {path}: cannot be read ({exc.strerror or exc})") from None
    img = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if img is None:
        raise VcganError(f"key frame {path} is not an image OpenCV can read (JPEG, PNG, TIFF, WebP, BMP)")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else None
    if scale is None:
        raise VcganError(f"key frame {path}: {img.dtype} pixels are not supported; save it as 8- or 16-bit")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    return img[..., 2::-1].astype(np.float32) / scale  # BGR(A) → RGB


def _identify(index: int | None, path: Path) -> KeyFrame:
    path = Path(path)
    if not path.is_file():
        raise VcganError(f"key frame {path}: no such file")
    rgb = _read(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return KeyFrame(index, path, rgb.shape[1], rgb.shape[0], h.hexdigest(), chroma_of(rgb))


def from_folder(folder: str | os.PathLike) -> list[KeyFrame]:
    """The images of ``folder``, each named by the frame index it colours (``000000.png``,
    ``001234.jpg``); other files (not images) are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VcganError(f"--references {folder}: not a folder")
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith("."):
            continue
        m = _NAME.match(path.stem)
        if not m:
            raise VcganError(
                f"key frame {path}: name each image by the frame index it colours (e.g. 000000.png, 001234.jpg)"
            )
        index = int(m.group(1))
        if index in found:
            raise VcganError(f"key frames {found[index].name} and {path.name} both colour frame {index}; keep one")
        found[index] = path
    if not found:
        raise VcganError(f"--references {folder}: no images named by frame index (e.g. 000000.png) in it")
    return [_identify(i, p) for i, p in sorted(found.items())]


class KeyFrames:
    """The key frames of one run, checked against the film before any work."""

    def __init__(self, frames: list[KeyFrame]):
        self.frames = list(frames)
        self.by_index = {k.index: k for k in self.frames if k.index is not None}
        self.first = next((k for k in self.frames if k.index is None), None)

    @classmethod
    def load(cls, reference: str | os.PathLike | None = None, references: str | os.PathLike | None = None) -> KeyFrames | None:
        """``reference``: one image, the first frame's colours; ``references``: a folder of
        images named by frame index. None when neither is given."""
        if reference is not None and references is not None:
            raise VcganError("give --reference (the first frame) or --references (a folder), not both")
        if reference is not None:
            return cls([_identify(None, Path(reference))])
        if references is not None:
            return cls(from_folder(references))
        return None

    def __bool__(self) -> bool:
        return bool(self.frames)

    def check(self, width: int, height: int, frame_count: int | None) -> None:
        """A one-line error for a key frame of another aspect than the film's ``width`` ×
        ``height``, or one past the film's last frame (where the film says how many it has)."""
        film = width / height
        for k in self.frames:
            aspect = k.width / k.height
            if abs(aspect / film - 1.0) > ASPECT_TOLERANCE:
                raise VcganError(
                    f"key frame {k.path} is {k.width}x{k.height} (aspect {aspect:.3f}), the film {width}x{height} "
                    f"(aspect {film:.3f}); export it from the film at the film's aspect"
                )
            if k.index is not None and frame_count is not None and k.index >= frame_count:
                raise VcganError(
                    f"key frame {k.path} is for frame {k.index}, past the end of the film ({frame_count} frames, 0 to {frame_count - 1})"
                )

    def settings(self) -> list[list]:
        """What a resume must find the same: each key frame's index and file digest."""
        return [[k.index if k.index is not None else "first", k.sha256] for k in self.frames]

    def rgb(self, key: KeyFrame, height: int, width: int) -> np.ndarray:
        """``key``'s pixels as RGB in [0, 1] at ``height`` × ``width`` (the working size)."""
        from .runtime import resize

        rgb = _read(key.path)
        if rgb.shape[:2] != (height, width):
            rgb = resize(rgb, height, width)
        return np.clip(rgb, 0.0, 1.0)

    def warnings(self) -> list[str]:
        return [f"key frame {k.path} has no colour in it; its frame and shot will come out gray"
                for k in self.frames if k.chroma < GRAY_CHROMA]


def chroma_of(rgb: np.ndarray) -> float:
    from .colour import rgb_to_ycbcr

    _, cb, cr = rgb_to_ycbcr(rgb, "bt601")
    return float(np.hypot(cb, cr).mean())


def on_luma(rgb: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """A key frame's chroma on the frame's own luma (both at the working size): what the
    network's output would be had it guessed the key frame's colours; RGB in [0, 1]."""
    from .colour import rgb_to_ycbcr, ycbcr_to_rgb

    _, cb, cr = rgb_to_ycbcr(rgb, "bt601")
    return np.clip(ycbcr_to_rgb(gray, cb, cr, "bt601"), 0.0, 1.0).astype(np.float32)
