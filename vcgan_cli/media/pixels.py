"""Pixels in and out of FFmpeg frames: colour matrices, plane views, rotation, the luma plan."""
from __future__ import annotations

import re
from dataclasses import dataclass

import av
import numpy as np


SPC_TO_MATRIX = {1: "bt709", 4: "bt601", 5: "bt601", 6: "bt601", 7: "bt709", 9: "bt2020", 10: "bt2020"}
MATRIX_TO_SPC = {"bt601": 6, "bt709": 1, "bt2020": 9}
MATRIX_TO_SWS = {"bt601": "ITU601", "bt709": "ITU709", "bt2020": "BT2020"}
RANGE_MPEG, _RANGE_JPEG = 1, 2

# Pixel formats whose plane 0 is the luma at full size, LSB-aligned, little-endian.
_DIRECT_YUV = re.compile(r"^(yuv|yuvj|yuva)(420|422|444|440|411|410)p(\d+le)?$")
_DIRECT_NV = re.compile(r"^nv(12|21|16|24|42)$")
_DIRECT_GRAY = re.compile(r"^gray(\d+le)?$")


def dtype_for_bits(bits: int) -> np.dtype:
    return np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")


def plane_view(plane, dtype: np.dtype) -> np.ndarray:
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


def orientation(frame: av.VideoFrame) -> tuple[int, str]:
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


def orient(a: np.ndarray, op: str) -> np.ndarray:
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


def luma_plan(fmt: av.VideoFormat, color_range: int) -> _LumaPlan:
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


def resolve_matrix(colorspace: int | None, height: int) -> str:
    m = SPC_TO_MATRIX.get(colorspace or 2)
    if m is None:
        m = "bt601" if height < 720 else "bt709"
    return m


