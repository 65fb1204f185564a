"""Training data: colour photos (stage 1) and short colour clips with optical flow (stage 2).

Sampling is deterministic and resumable: item ``i`` of a dataset is a pure function of
``(seed, i)`` — every random choice (which photo or clip, crop, flip, start frame, synthetic
camera motion) comes from ``np.random.default_rng([seed, i])``. The trainer asks for global
indices through :class:`StepSampler` (step ``s`` of rank ``r`` reads indices
``(s * world_size + r) * batch_size + j``), so a run resumed at step ``s`` sees exactly the
batches an uninterrupted run would have seen, whatever the number of loader workers.

Tensors are in the network's range, [-1, 1]; grayscale is ``0.299 R + 0.587 G + 0.114 B``.
Flows are *backward* flows in pixels (x, y), as everywhere in vcgan: ``flows[k]`` for the pair
``(m, t) = flow_pairs(n)[k]`` says, for each pixel of frame ``t``, where it is in frame ``m``,
so ``warp_tensor(frame_m, flows[k])`` is frame ``m`` aligned onto frame ``t``.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from ..clips import Clip, find_clips
from ..colour import rgb_to_gray
from ..errors import VcganError
from ..flow import estimate_flow, to_u8
from ..images import IMAGE_EXTENSIONS

__all__ = [
    "ImageDataset",
    "VideoDataset",
    "SyntheticMotion",
    "StepSampler",
    "flow_pairs",
    "warp_tensor",
    "make_loader",
    "looks_gray",
]

#: What ``len()`` of a dataset says: sampling is by index, without epochs.
DATASET_LENGTH = 2**62
#: A pixel shows colour when two of its channels differ by more than this (8-bit levels),
#: measured on a 4× reduced image so that JPEG chroma noise averages out.
GRAY_LEVEL_DIFF = 16
#: An image is grayscale when fewer than this fraction of its (reduced) pixels show colour.
#: On the shards in ../shared/data/train-images this separates black-and-white photos stored
#: as RGB (no colour pixel at all) and near-colourless ones (well under 0.2 %) from the rest.
GRAY_MAX_FRACTION = 0.002
#: Attempts at drawing a colour image before giving up (each draw from the same rng).
_MAX_DRAWS = 64
_HEADER_BYTES = 1 << 17


def flow_pairs(n: int) -> list[tuple[int, int]]:
    """Frame pairs ``(m, t)``, ``m < t``, that the temporal losses use, in the order of the
    ``flows`` tensor: for each ``t``, the long-term pairs ``(0, t) … (t-2, t)`` and then the
    short-term pair ``(t-1, t)``."""
    return [(m, t) for t in range(1, n) for m in range(t)]


# -- grayscale detection ----------------------------------------------------------------------


def looks_gray(rgb: np.ndarray, *, reduced: bool = False) -> bool:
    """Whether an 8-bit (H, W, 3) image is black and white, though stored with three channels.

    ``reduced``: the image is already about 4× smaller than the original (as from
    ``cv2.IMREAD_REDUCED_COLOR_4``); otherwise it is reduced here first.
    """
    if rgb.ndim == 2 or rgb.shape[2] == 1:
        return True
    if not reduced and min(rgb.shape[:2]) >= 16:
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    if rgb.dtype != np.uint8:
        rgb = to_u8(rgb)
    c = rgb.astype(np.int16)
    d = np.maximum(np.abs(c[..., 0] - c[..., 1]), np.abs(c[..., 1] - c[..., 2]))
    d = np.maximum(d, np.abs(c[..., 0] - c[..., 2]))
    return float(np.count_nonzero(d > GRAY_LEVEL_DIFF)) < GRAY_MAX_FRACTION * d.size


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_components(data: bytes) -> int | None:
    """Number of colour components in a JPEG's frame header (1: grayscale), or None when
    ``data`` does not start with a JPEG header that says."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF_MARKERS:
            return data[i + 9] if i + 9 < n else None
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        i += 2 + length
    return None


def _decode_rgb(data: bytes | np.ndarray, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    if buf.size == 0:
        return None
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error:
        return None
    if img is None:
        return None
    return np.ascontiguousarray(img[..., ::-1])


# -- resizing and cropping --------------------------------------------------------------------


def _resize_short(img: np.ndarray, short: float) -> np.ndarray:
    """Resize so that the short side is ``round(short)`` pixels (area when shrinking, bicubic
    when enlarging); uint8 in, uint8 out."""
    h, w = img.shape[:2]
    f = short / min(h, w)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    if (nw, nh) == (w, h):
        return img
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (nw, nh), interpolation=interp)


def _crop_box(shape: tuple[int, ...], size: int, ux: float, uy: float) -> tuple[int, int]:
    h, w = shape[:2]
    return min(int(ux * (w - size + 1)), w - size), min(int(uy * (h - size + 1)), h - size)


def _to_network(frames_u8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., H, W, 3) uint8 → rgb (..., 3, H, W) and gray (..., 1, H, W), both in [-1, 1]."""
    rgb = frames_u8.astype(np.float32) * (1.0 / 255.0)
    gray = rgb_to_gray(rgb)[..., None]
    rgb_t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(rgb * 2.0 - 1.0, -1, -3)))
    gray_t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(gray * 2.0 - 1.0, -1, -3)))
    return rgb_t, gray_t


def _in_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


# -- images -----------------------------------------------------------------------------------


class ImageFile(NamedTuple):
    """One photo: a file (``offset == -1``) or a member of an uncompressed tar shard."""

    path: str
    offset: int = -1
    size: int = -1
    member: str = ""

    @property
    def name(self) -> str:
        return f"{self.path}:{self.member}" if self.offset >= 0 else self.path


def _is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def _is_tar(path: Path) -> bool:
    return path.suffix.lower() == ".tar"


def _group_of(ref: ImageFile) -> str:
    """The collection a photo belongs to: its folder inside the shard, or on disk."""
    if ref.offset >= 0:
        return str(Path(ref.member).parent) if "/" in ref.member else ""
    return str(Path(ref.path).parent)


class ImageDataset(Dataset):
    """Random ``size``×``size`` colour crops of photos, for stage-1 (image) training.

    ``sources``: folders (searched recursively for images and ``.tar`` shards), tar shards
    and single image files. Tar members are read in place by offset (plain, uncompressed
    ``.tar`` only); the shard is opened once per process. Black-and-white photos are left out:
    single-channel JPEGs from their header, three-channel ones by decoding a 4× reduced copy
    (``scan_gray``, about 0.2 ms a photo; turn it off for very large sets), and any that still
    turns out gray when loaded is replaced by another drawn from the same random stream.

    Item ``i``: ``{"rgb": (3, size, size), "gray": (1, size, size)}`` float32 in [-1, 1].
    Photos with a short side below ``size`` are first enlarged to it; ``scale=(lo, hi)``
    instead resizes every photo so that its short side is ``size * U(lo, hi)``.
    """

    def __init__(
        self,
        sources: list[str | os.PathLike] | str | os.PathLike,
        size: int = 256,
        seed: int = 0,
        *,
        flip: bool = True,
        scale: tuple[float, float] | None = None,
        scan_gray: bool = True,
        group_power: float = 1.0,
    ):
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        if not 0.0 <= group_power <= 1.0:
            raise VcganError(f"group power {group_power} is not between 0 and 1")
        if size < 8:
            raise VcganError(f"crop size {size} is too small (8 pixels at least)")
        if scale is not None and not (1.0 <= scale[0] <= scale[1]):
            raise VcganError(f"scale {scale}: want 1 <= low <= high")
        self.size, self.seed, self.flip, self.scale = int(size), int(seed), bool(flip), scale
        self.sources = [str(s) for s in sources]
        self.gray_skipped = 0
        self.unreadable = 0
        self.n_shards = 0
        self.n_loose = 0
        self._fds: dict[str, int] = {}
        self._pid = os.getpid()
        self.files: list[ImageFile] = self._index(scan_gray)
        if not self.files:
            what = ", ".join(self.sources) or "(no sources)"
            extra = f" ({self.gray_skipped} grayscale skipped)" if self.gray_skipped else ""
            raise VcganError(f"no colour images found in {what}{extra}")
        # Collections (a tar member's or a file's folder): with group_power p < 1 a collection
        # is drawn with probability proportional to its size**p, then a photo within it, so one
        # big collection (e.g. 6,000 outdoor scenes) does not set the colour prior alone.
        self.group_power = float(group_power)
        members: dict[str, list[int]] = {}
        for i, f in enumerate(self.files):
            members.setdefault(_group_of(f), []).append(i)
        self.groups: list[tuple[str, np.ndarray]] = [(n, np.array(members[n], dtype=np.int64)) for n in sorted(members)]
        sizes = np.array([len(ix) for _, ix in self.groups], dtype=np.float64)
        self.group_p = sizes**self.group_power / np.sum(sizes**self.group_power)

    # indexing

    def _index(self, scan_gray: bool) -> list[ImageFile]:
        files: list[ImageFile] = []
        shards: list[Path] = []
        loose: list[Path] = []
        for src in self.sources:
            p = Path(src)
            if not p.exists():
                raise VcganError(f"{p}: no such file or folder")
            if p.is_dir():
                for q in sorted(p.rglob("*")):
                    if any(part.startswith(".") for part in q.relative_to(p).parts) or not q.is_file():
                        continue
                    if _is_tar(q):
                        shards.append(q)
                    elif _is_image(q.name):
                        loose.append(q)
            elif _is_tar(p):
                shards.append(p)
            elif _is_image(p.name):
                loose.append(p)
            else:
                raise VcganError(f"{p}: not an image, a .tar shard or a folder")
        for q in loose:
            self._add(files, ImageFile(str(q)), scan_gray)
        for shard in shards:
            try:
                with tarfile.open(shard, mode="r:") as tf:
                    members = [m for m in tf.getmembers() if m.isfile() and _is_image(m.name)]
            except tarfile.ReadError as exc:
                raise VcganError(f"{shard}: not a plain (uncompressed) tar file ({exc})") from None
            self.n_shards += 1
            for m in members:
                self._add(files, ImageFile(str(shard), m.offset_data, m.size, m.name), scan_gray)
        self.n_loose = len(loose)
        return files

    def _add(self, files: list[ImageFile], ref: ImageFile, scan_gray: bool) -> None:
        data = self._read(ref, None if scan_gray else _HEADER_BYTES)
        gray = jpeg_components(data[:_HEADER_BYTES]) == 1
        if scan_gray and not gray:
            img = _decode_rgb(data, cv2.IMREAD_REDUCED_COLOR_4)
            if img is None:
                self.unreadable += 1
                return
            gray = looks_gray(img, reduced=True)
        if gray:
            self.gray_skipped += 1
        else:
            files.append(ref)

    # reading (lazy, one descriptor per shard and process; pread leaves no shared offset)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_fds"] = {}
        return state

    def _read(self, ref: ImageFile, limit: int | None = None) -> bytes:
        if ref.offset < 0:
            with open(ref.path, "rb") as f:
                return f.read(limit if limit is not None else -1)
        if self._pid != os.getpid():
            self._fds, self._pid = {}, os.getpid()
        fd = self._fds.get(ref.path)
        if fd is None:
            fd = self._fds[ref.path] = os.open(ref.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        n = ref.size if limit is None else min(ref.size, limit)
        if hasattr(os, "pread"):
            return os.pread(fd, n, ref.offset)
        with open(ref.path, "rb") as f:  # no pread (Windows)
            f.seek(ref.offset)
            return f.read(n)

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}

    def __del__(self):
        if getattr(self, "_pid", None) == os.getpid():
            self.close()

    def load(self, k: int) -> np.ndarray | None:
        """Photo ``k`` of :attr:`files` as 8-bit RGB (H, W, 3), or None if it cannot be read."""
        try:
            return _decode_rgb(self._read(self.files[k]))
        except OSError:
            return None

    def draw_colour(self, rng: np.random.Generator) -> np.ndarray:
        """A random colour photo (8-bit RGB), drawing again (from ``rng``) past any that is
        unreadable or turns out gray."""
        for _ in range(_MAX_DRAWS):
            if self.group_power == 1.0:  # every photo equally likely (the same draws as before)
                k = int(rng.integers(len(self.files)))
            else:
                members = self.groups[int(rng.choice(len(self.groups), p=self.group_p))][1]
                k = int(members[rng.integers(len(members))])
            img = self.load(k)
            if img is not None and min(img.shape[:2]) >= 2 and not looks_gray(img):
                return img
        raise VcganError(f"{_MAX_DRAWS} photos in a row were grayscale or unreadable; check the training images")

    # sampling

    def __len__(self) -> int:
        return DATASET_LENGTH

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        img = self.draw_colour(rng)
        if self.scale is not None:
            img = _resize_short(img, self.size * rng.uniform(*self.scale))
        elif min(img.shape[:2]) < self.size:
            img = _resize_short(img, self.size)
        ux, uy, uf = rng.random(3)
        x, y = _crop_box(img.shape, self.size, ux, uy)
        crop = img[y : y + self.size, x : x + self.size]
        if self.flip and uf < 0.5:
            crop = crop[:, ::-1]
        rgb, gray = _to_network(crop)
        return {"rgb": rgb, "gray": gray}

    def describe(self) -> str:
        parts = []
        if self.n_shards:
            parts.append(f"{self.n_shards} tar shard{'s' * (self.n_shards != 1)}")
        if self.n_loose:
            parts.append(f"{self.n_loose:,} image file{'s' * (self.n_loose != 1)}")
        text = f"{len(self.files):,} colour photos from {' and '.join(parts)}"
        if self.group_power != 1.0:
            shares = ", ".join(f"{n or '(top)'} {p:.0%}" for (n, _), p in zip(self.groups, self.group_p))
            text += f" (collections drawn at size^{self.group_power:g}: {shares})"
        notes = [f"{self.gray_skipped:,} grayscale skipped"] if self.gray_skipped else []
        if self.unreadable:
            notes.append(f"{self.unreadable:,} unreadable skipped")
        return text + (", " + ", ".join(notes) if notes else "")


# -- videos -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoClip:
    """One training clip: a folder of frames or a video file, with its frame count and, for
    a video, the presentation timestamps of its frames (sorted) and of its keyframes."""

    name: str
    count: int
    frames: tuple[str, ...] | None = None
    video: str | None = None
    pts: np.ndarray | None = None
    keyframes: np.ndarray | None = None


@dataclass(frozen=True)
class ClipPlan:
    """Where item ``i`` of a :class:`VideoDataset` comes from (``clip`` is -1 for a
    synthetic clip, whose plan is decided while it is made)."""

    synthetic: bool
    clip: int = -1
    start: int = 0
    short_side: float = 0.0
    ux: float = 0.0
    uy: float = 0.0
    flip: bool = False


@dataclass(frozen=True)
class SyntheticMotion:
    """Random camera motion over a still photo, per frame at the output resolution."""

    max_speed: float = 6.0  # initial pan speed, px/frame (uniform in [0, max_speed])
    accel: float = 0.75  # std of the per-frame change of velocity, px/frame²
    max_zoom: float = 0.02  # |log scale change| per frame
    max_rotation: float = 1.0  # degrees per frame
    fill: tuple[float, float] = (0.8, 1.0)  # fraction of the largest camera scale that fits


class _DecodeFailure(Exception):
    pass


def _index_video(path: Path) -> VideoClip | None:
    import av

    try:
        with av.open(f"file:{path}") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            pts, keys, missing = [], [], False
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.pts is None:
                    missing = True
                    pts.append(len(pts))
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None
    if missing:  # no timestamps to seek by: read such a video from its start
        return VideoClip(path.stem, len(pts), video=str(path))
    return VideoClip(
        path.stem, len(pts), video=str(path), pts=np.sort(np.asarray(pts, np.int64)),
        keyframes=np.sort(np.asarray(keys, np.int64)),
    )


def _read_folder(clip: VideoClip, start: int, n: int) -> list[np.ndarray]:
    out = []
    for p in clip.frames[start : start + n]:
        try:
            img = _decode_rgb(np.fromfile(p, np.uint8))
        except OSError:
            img = None
        if img is None:
            raise _DecodeFailure(p)
        out.append(img)
    if len(out) != n or any(f.shape != out[0].shape for f in out):
        raise _DecodeFailure(clip.name)
    return out


def _read_video(clip: VideoClip, start: int, n: int) -> list[np.ndarray]:
    """Frames ``start … start+n-1`` of a video (8-bit RGB): seek to the keyframe at or before
    the first, then decode forward, skipping the non-reference frames before it."""
    import av

    try:
        if clip.pts is not None:
            frames = _decode_by_pts(clip, start, n, seek=True, skip=True)
            if frames is None:  # the index and the decoder disagree: take the slow, sure path
                frames = _decode_by_pts(clip, start, n, seek=False, skip=False)
            if frames is not None:
                return frames
        return _decode_by_count(clip, start, n)
    except (av.FFmpegError, OSError) as exc:
        raise _DecodeFailure(f"{clip.video}: {exc}") from None


def _open_video(clip: VideoClip):
    import av

    container = av.open(f"file:{clip.video}")
    stream = container.streams.video[0]
    if _in_worker():  # loader workers are the parallelism; one decoding thread each
        stream.codec_context.thread_count = 1
    return container, stream


def _decode_by_pts(clip: VideoClip, start: int, n: int, *, seek: bool, skip: bool) -> list[np.ndarray] | None:
    want = clip.pts[start : start + n]
    target, last = int(want[0]), int(want[-1])
    container, stream = _open_video(clip)
    with container:
        k = int(np.searchsorted(clip.keyframes, target, side="right")) - 1
        if seek and k >= 0 and clip.keyframes[k] > clip.pts[0]:
            # Decode the first packet before seeking: stream-level side information in it
            # (such as the x264 version SEI, which enables FFmpeg's workarounds for old x264
            # 4:4:4 streams) is otherwise never seen, and such frames decode as garbage.
            for packet in container.demux(stream):
                if packet.size:
                    packet.decode()
                    break
            container.seek(int(clip.keyframes[k]), stream=stream, backward=True, any_frame=False)
        cc = stream.codec_context
        mode = "DEFAULT"
        out, got, first = [], [], None
        for packet in container.demux(stream):
            if skip:
                want_mode = "NONREF" if packet.pts is not None and packet.pts < target else "DEFAULT"
                if want_mode != mode:
                    cc.skip_frame = mode = want_mode
            for frame in packet.decode():
                if frame.pts is None or (seek and frame.is_corrupt):
                    return None  # (a corrupt frame after a seek: decode from the start instead)
                if first is None:
                    first = frame.pts
                    if first > target:  # the seek landed past the first frame wanted
                        return None
                if frame.pts < target:
                    continue
                if frame.pts > last:
                    break
                out.append(frame.to_ndarray(format="rgb24"))
                got.append(frame.pts)
            if got and got[-1] >= last:
                break
    if got != [int(p) for p in want]:
        return None
    return out


def _decode_by_count(clip: VideoClip, start: int, n: int) -> list[np.ndarray]:
    container, stream = _open_video(clip)
    out = []
    with container:
        for i, frame in enumerate(container.decode(stream)):
            if i >= start:
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == n:
                    return out
    raise _DecodeFailure(f"{clip.video}: fewer than {start + n} frames")


def _affine_camera(
    rng: np.random.Generator, n: int, size: int, shape: tuple[int, int], motion: SyntheticMotion
) -> tuple[list[np.ndarray], float, np.ndarray]:
    """Per-frame 3×3 matrices mapping output pixels to image pixels for a camera moving
    smoothly over an image of ``shape`` (H, W), never looking past its edges (2 px margin for
    bicubic sampling). Returns (matrices, image scale g, unscaled footprint size)."""
    h, w = shape
    o = (size - 1) / 2.0
    speed = rng.uniform(0.0, motion.max_speed)
    angle = rng.uniform(0.0, 2 * np.pi)
    v = speed * np.array([np.cos(angle), np.sin(angle)])
    acc = rng.normal(0.0, motion.accel, size=(max(n - 1, 0), 2))
    zoom = rng.uniform(-motion.max_zoom, motion.max_zoom)
    rot = np.deg2rad(rng.uniform(-motion.max_rotation, motion.max_rotation))
    fill = rng.uniform(*motion.fill)
    ux, uy = rng.random(2)
    # camera in "world" units (output pixels of frame 0): output p → world T_t + z_t R_t (p − o)
    lin, trans = [], []
    pos = np.zeros(2)
    for t in range(n):
        if t > 0:
            pos = pos + v
            v = v + acc[t - 1]
        z, a = np.exp(zoom * t), rot * t
        r = z * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        lin.append(r)
        trans.append(pos - r @ np.array([o, o]))
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    pts = np.concatenate([corners @ r.T + tr for r, tr in zip(lin, trans)])
    lo, hi = pts.min(0), pts.max(0)
    extent = hi - lo
    margin = 2.0
    g_max = min((w - 1 - 2 * margin) / extent[0], (h - 1 - 2 * margin) / extent[1])
    g = g_max * fill
    c0 = np.array(
        [
            (margin - g * lo[0]) + ux * ((w - 1 - margin - g * hi[0]) - (margin - g * lo[0])),
            (margin - g * lo[1]) + uy * ((h - 1 - margin - g * hi[1]) - (margin - g * lo[1])),
        ]
    )
    mats = []
    for r, tr in zip(lin, trans):
        m = np.eye(3)
        m[:2, :2] = g * r
        m[:2, 2] = c0 + g * tr
        mats.append(m)
    return mats, g, extent


def _affine_flow(m_from: np.ndarray, m_to: np.ndarray, size: int) -> np.ndarray:
    """Exact backward flow (2, size, size) of frame ``to`` into frame ``from``, both rendered
    through output→image matrices: p ↦ M_from⁻¹ M_to p − p."""
    a = np.linalg.solve(m_from, m_to)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    fx = a[0, 0] * xs + a[0, 1] * ys + a[0, 2] - xs
    fy = a[1, 0] * xs + a[1, 1] * ys + a[1, 2] - ys
    return np.stack((fx, fy)).astype(np.float32)


class VideoDataset(Dataset):
    """``frames`` consecutive frames of colour clips with the optical flow between them, for
    stage-2 (video) training.

    ``sources``: video files, folders of videos, DAVIS trees (``JPEGImages/480p/<clip>/``) and
    folders of frame folders (as ``vcgan bench`` reads them). Clips shorter than ``frames`` are
    left out. Every frame of a sample gets the same resize (short side ``size * U(scale)``),
    crop and horizontal flip. Flows are estimated (OpenCV DIS) on the grayscale of the
    ground-truth crops, for every pair of :func:`flow_pairs`.

    With probability ``synthetic_ratio`` (always, when there are no video sources) a sample is
    instead made from a still photo of ``synthetic_from`` seen by a camera moving smoothly
    (pan, slight zoom and rotation); its flows are exact, from the camera's affine maps.

    Item ``i``: ``{"rgb": (N, 3, H, W), "gray": (N, 1, H, W)`` in [-1, 1], ``"flows":
    (P, 2, H, W)`` float32 pixels, ``"synthetic": bool}``.
    """

    def __init__(
        self,
        sources: list[str | os.PathLike] | str | os.PathLike | None,
        size: int = 256,
        frames: int = 5,
        seed: int = 0,
        synthetic_from: list[str | os.PathLike] | None = None,
        synthetic_ratio: float = 0.0,
        *,
        scale: tuple[float, float] = (1.0, 1.25),
        flip: bool = True,
        clip_weighting: str = "clip",
        motion: SyntheticMotion = SyntheticMotion(),
        scan_gray: bool = True,
        group_power: float = 1.0,
    ):
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        sources = list(sources or [])
        if isinstance(synthetic_from, (str, os.PathLike)):
            synthetic_from = [synthetic_from]
        if frames < 1:
            raise VcganError(f"frames must be at least 1 (got {frames})")
        if size < 8:
            raise VcganError(f"crop size {size} is too small (8 pixels at least)")
        if not 0.0 <= synthetic_ratio <= 1.0:
            raise VcganError(f"synthetic ratio {synthetic_ratio} is not between 0 and 1")
        if not (1.0 <= scale[0] <= scale[1]):
            raise VcganError(f"scale {scale}: want 1 <= low <= high")
        if clip_weighting not in ("clip", "frames", "sqrt"):
            raise VcganError(f"clip weighting {clip_weighting!r}: use clip, frames or sqrt")
        if not sources and not synthetic_from:
            raise VcganError("no training clips: give videos or frame folders, or photos for synthetic clips")
        if synthetic_ratio > 0 and not synthetic_from:
            raise VcganError("a synthetic ratio above 0 needs photos to make synthetic clips from")
        self.size, self.frames, self.seed = int(size), int(frames), int(seed)
        self.scale, self.flip, self.motion = (float(scale[0]), float(scale[1])), bool(flip), motion
        self.sources = [str(s) for s in sources]
        self.pairs = flow_pairs(self.frames)
        self.too_short = 0
        self.unreadable = 0
        self.clips: list[VideoClip] = self._index()
        if sources and not self.clips:
            raise VcganError(
                f"no clip with at least {self.frames} frames in {', '.join(self.sources)}"
                + (f" ({self.too_short} too short)" if self.too_short else "")
            )
        self.synthetic_ratio = float(synthetic_ratio) if self.clips else 1.0
        self.stills = (
            ImageDataset(
                synthetic_from, size=self.size, seed=self.seed, flip=False, scan_gray=scan_gray, group_power=group_power
            )
            if synthetic_from and self.synthetic_ratio > 0
            else None
        )
        counts = np.array([c.count - self.frames + 1 for c in self.clips], np.float64)
        weights = {"clip": np.ones_like(counts), "frames": counts, "sqrt": np.sqrt(counts)}[clip_weighting]
        self.clip_weighting = clip_weighting
        self._cdf = np.cumsum(weights) / weights.sum() if len(counts) else np.zeros(0)

    def _index(self) -> list[VideoClip]:
        clips: list[VideoClip] = []
        for src in self.sources:
            for c in find_clips(src):
                clip = self._clip(c)
                if clip is None:
                    self.unreadable += 1
                elif clip.count < self.frames:
                    self.too_short += 1
                else:
                    clips.append(clip)
        return clips

    @staticmethod
    def _clip(c: Clip) -> VideoClip | None:
        if c.frames is not None:
            return VideoClip(c.name, len(c.frames), frames=tuple(str(p) for p in c.frames))
        return _index_video(Path(c.video))

    def __len__(self) -> int:
        return DATASET_LENGTH

    def plan(self, index: int) -> ClipPlan:
        """The random choices for item ``index`` (clip, start frame, scale, crop, flip)."""
        return self._plan(np.random.default_rng([self.seed, int(index)]))

    def _plan(self, rng: np.random.Generator) -> ClipPlan:
        synthetic = rng.random() < self.synthetic_ratio
        if synthetic:
            return ClipPlan(True)
        k = min(int(np.searchsorted(self._cdf, rng.random(), side="right")), len(self.clips) - 1)
        start = int(rng.integers(self.clips[k].count - self.frames + 1))
        short = self.size * rng.uniform(*self.scale)
        ux, uy, uf = rng.random(3)
        return ClipPlan(False, k, start, float(short), float(ux), float(uy), bool(self.flip and uf < 0.5))

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, int(index)])
        for _ in range(8):
            plan = self._plan(rng)
            if plan.synthetic:
                return self._synthetic(rng)
            try:
                return self._real(plan)
            except _DecodeFailure:
                continue  # a broken clip: draw again from the same stream
        raise VcganError(f"training clips keep failing to decode (item {index}); check the videos")

    def read_frames(self, plan: ClipPlan) -> list[np.ndarray]:
        """The planned frames at full size, 8-bit RGB, before resize and crop."""
        clip = self.clips[plan.clip]
        if clip.frames is not None:
            return _read_folder(clip, plan.start, self.frames)
        return _read_video(clip, plan.start, self.frames)

    def _real(self, plan: ClipPlan) -> dict:
        frames = self.read_frames(plan)
        out = np.empty((self.frames, self.size, self.size, 3), np.uint8)
        for t, img in enumerate(frames):
            img = _resize_short(img, plan.short_side)
            x, y = _crop_box(img.shape, self.size, plan.ux, plan.uy)
            crop = img[y : y + self.size, x : x + self.size]
            out[t] = crop[:, ::-1] if plan.flip else crop
        rgb, gray = _to_network(out)
        grays = [to_u8(rgb_to_gray(f.astype(np.float32) * (1.0 / 255.0))) for f in out]
        flows = np.empty((len(self.pairs), 2, self.size, self.size), np.float32)
        for k, (m, t) in enumerate(self.pairs):
            flows[k] = estimate_flow(grays[m], grays[t]).transpose(2, 0, 1)
        return {"rgb": rgb, "gray": gray, "flows": torch.from_numpy(flows), "synthetic": False}

    def _synthetic(self, rng: np.random.Generator) -> dict:
        img = self.stills.draw_colour(rng)
        if self.flip and rng.random() < 0.5:
            img = np.ascontiguousarray(img[:, ::-1])
        state = rng.bit_generator.state  # the camera is drawn twice when the photo is shrunk
        mats, g, _ = _affine_camera(rng, self.frames, self.size, img.shape[:2], self.motion)
        if g > 1.0:  # the camera sees more than one photo pixel per output pixel: shrink first
            h, w = img.shape[:2]
            img = cv2.resize(img, (max(8, round(w / g)), max(8, round(h / g))), interpolation=cv2.INTER_AREA)
            rng.bit_generator.state = state
            mats, g, _ = _affine_camera(rng, self.frames, self.size, img.shape[:2], self.motion)
        out = np.empty((self.frames, self.size, self.size, 3), np.uint8)
        for t, m in enumerate(mats):
            out[t] = cv2.warpAffine(
                img, m[:2], (self.size, self.size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT101,
            )
        rgb, gray = _to_network(out)
        flows = np.empty((len(self.pairs), 2, self.size, self.size), np.float32)
        for k, (m, t) in enumerate(self.pairs):
            flows[k] = _affine_flow(mats[m], mats[t], self.size)
        return {"rgb": rgb, "gray": gray, "flows": torch.from_numpy(flows), "synthetic": True}

    def describe(self) -> str:
        n_video = sum(c.video is not None for c in self.clips)
        n_folder = len(self.clips) - n_video
        frames = sum(c.count for c in self.clips)
        kinds = []
        if n_video:
            kinds.append(f"{n_video} video{'s' * (n_video != 1)}")
        if n_folder:
            kinds.append(f"{n_folder} frame folder{'s' * (n_folder != 1)}")
        text = (
            f"{len(self.clips)} clips ({frames:,} frames, {' and '.join(kinds)}), {self.frames} frames a sample"
            if self.clips
            else "no real clips"
        )
        notes = []
        if self.too_short:
            notes.append(f"{self.too_short} shorter than {self.frames} frames skipped")
        if self.unreadable:
            notes.append(f"{self.unreadable} unreadable skipped")
        if self.stills is not None:
            notes.append(f"{self.synthetic_ratio:.0%} synthetic from {self.stills.describe()}")
        return text + ("; " + "; ".join(notes) if notes else "")


# -- warping ----------------------------------------------------------------------------------


def warp_tensor(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` (B, C, H, W) at ``x + flow(x)`` with ``flow`` (B, 2, H, W) in pixels
    (x, y): bilinear, edges replicated — :func:`vcgan_cli.flow.warp` on tensors."""
    b, _, h, w = flow.shape
    dtype = img.dtype if img.dtype in (torch.float32, torch.float64) else torch.float32
    flow = flow.to(dtype)
    ys = torch.arange(h, device=flow.device, dtype=dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    out = F.grid_sample(img.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(img.dtype)


# -- loading ----------------------------------------------------------------------------------


class StepSampler(Sampler[int]):
    """Global sample indices, forever, from step ``start_step`` on: step ``s`` of rank ``r``
    is ``[(s * world_size + r) * batch_size + j for j in range(batch_size)]``."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world_size: int = 1):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size or start_step < 0:
            raise ValueError(f"bad sampler settings: step {start_step}, batch {batch_size}, rank {rank}/{world_size}")
        self.start_step, self.batch_size, self.rank, self.world_size = start_step, batch_size, rank, world_size

    def indices(self, step: int) -> list[int]:
        base = (step * self.world_size + self.rank) * self.batch_size
        return list(range(base, base + self.batch_size))

    def __iter__(self):
        step = self.start_step
        while True:
            yield from self.indices(step)
            step += 1


class _Loader(DataLoader):
    """A DataLoader that starts its workers while OpenCV has no thread pool.

    A forked worker inherits OpenCV's pool in a state where ``cv2.setNumThreads`` deadlocks
    (pthreads backend); so OpenCV is made single-threaded in the parent while the workers
    are forked, and given its threads back right after.
    """

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return super().__iter__()
        finally:
            cv2.setNumThreads(threads)


def _worker_init(worker_id: int, seed: int = 0) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    np.random.seed((seed * 1_000_003 + worker_id) % 2**32)  # samples never use it; other code might


def make_loader(
    dataset: Dataset,
    batch_size: int,
    start_step: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    *,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """An endless loader of batches from step ``start_step`` on (see :class:`StepSampler`).
    The samples depend only on the dataset's own seed and the indices; ``seed`` seeds the
    workers' global random generators, which the datasets here do not use."""
    sampler = StepSampler(start_step, batch_size, rank, world_size)
    kwargs = {}
    if num_workers > 0:
        kwargs.update(
            worker_init_fn=functools.partial(_worker_init, seed=seed),
            persistent_workers=True,
            prefetch_factor=prefetch_factor or 2,
        )
        if "openvino" in sys.modules and "forkserver" in multiprocessing.get_all_start_methods():
            # OpenVINO's thread pool does not survive a fork (the worker dies of SIGSEGV):
            # workers then come from a clean server process instead
            kwargs["multiprocessing_context"] = "forkserver"
    return _Loader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
