"""Reading and writing still images (JPEG, PNG, TIFF, WebP, BMP), 8- or 16-bit, gray or colour."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .colour import rgb_to_ycbcr
from .errors import MediaError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
#: Formats that can hold 16 bits per channel.
SIXTEEN_BIT = (".png", ".tif", ".tiff")
#: Rows per strip where a photo is converted at full resolution: memory per pixel stays small.
STRIP_ROWS = 256


@dataclass
class Still:
    luma: np.ndarray  # float32 (H, W) in [0, 1]
    chroma: float  # mean |Cb, Cr| of the input; ~0 for a black-and-white picture
    bit_depth: int  # 8 or 16
    alpha: np.ndarray | None  # the input's alpha channel, kept as is


def read_image(path: str | os.PathLike) -> Still:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path} is a folder, not an image")
    data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths
    # ANYCOLOR|ANYDEPTH keeps gray as gray and 16 bits as 16 bits and, unlike UNCHANGED,
    # applies the EXIF orientation, so a phone photo comes out the way viewers show it.
    img = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if img is not None and path.suffix.lower() in (".png", ".tif", ".tiff", ".webp"):
        full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # formats with alpha (no EXIF rotation)
        if full is not None and full.ndim == 3 and full.shape[2] in (2, 4):
            img = full
    if img is None:
        raise MediaError(f"{path} is not an image OpenCV can read (JPEG, PNG, TIFF, WebP, BMP)")
    if img.dtype == np.uint8:
        depth, scale = 8, 255.0
    elif img.dtype == np.uint16:
        depth, scale = 16, 65535.0
    elif img.dtype == np.float32:
        depth, scale = 16, 1.0
    else:
        raise MediaError(f"{path}: {img.dtype} pixels are not supported; save it as 8- or 16-bit")
    alpha = None
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3]
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        alpha = img[..., 1]
        img = img[..., 0]
    # in strips of rows, so a 100-megapixel scan never exists as float RGB (12 bytes a pixel)
    h = img.shape[0]
    luma = np.empty(img.shape[:2], np.float32)
    chroma_sum = 0.0
    for r in range(0, h, STRIP_ROWS):
        part = img[r : r + STRIP_ROWS].astype(np.float32) / scale
        if part.ndim == 2:
            luma[r : r + STRIP_ROWS] = part
            continue
        y, cb, cr = rgb_to_ycbcr(part[..., ::-1], "bt601")
        luma[r : r + STRIP_ROWS] = y
        chroma_sum += float(np.hypot(cb, cr).sum(dtype=np.float64))
    return Still(luma, chroma_sum / luma.size if img.ndim == 3 else 0.0, depth, alpha)


def output_format(path: str | os.PathLike, bit_depth: int) -> tuple[float, type]:
    """(scale, integer dtype) of the pixels :func:`write_image` writes to ``path``: 16-bit for
    16-bit sources in formats that hold it (PNG, TIFF), else 8-bit."""
    sixteen = bit_depth == 16 and Path(path).suffix.lower() in SIXTEEN_BIT
    return (65535.0, np.uint16) if sixteen else (255.0, np.uint8)


def to_bgr(rgb: np.ndarray, scale: float, dtype) -> np.ndarray:
    """Float RGB in [0, 1] → integer BGR, in strips of rows (no float copy of the whole)."""
    out = np.empty(rgb.shape, dtype)
    for r in range(0, rgb.shape[0], STRIP_ROWS):
        out[r : r + STRIP_ROWS] = rgb[r : r + STRIP_ROWS, :, ::-1] * scale + 0.5
    return out


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, bit_depth: int, alpha: np.ndarray | None) -> None:
    """Write RGB in [0, 1] to ``path`` (format from the extension) through a temporary file
    in the same folder, renamed into place only once it is complete. ``rgb`` may also be the
    integer BGR already in :func:`output_format` (as :func:`~vcgan_cli.pipeline.compose_bgr`
    makes it)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise MediaError(f"{path}: unknown image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
    scale, dtype = output_format(path, bit_depth)
    if np.issubdtype(rgb.dtype, np.integer):
        if rgb.dtype != dtype:
            raise MediaError(f"{path}: expected {np.dtype(dtype).name} pixels, got {rgb.dtype}")
        bgr = rgb
    else:
        bgr = to_bgr(rgb, scale, dtype)
    if alpha is not None and ext in (".png", ".tif", ".tiff", ".webp"):
        if alpha.dtype != dtype:
            top = np.iinfo(alpha.dtype).max if np.issubdtype(alpha.dtype, np.integer) else 1.0
            alpha = (np.clip(alpha.astype(np.float64) / top, 0, 1) * scale + 0.5).astype(dtype)
        bgr = np.dstack((bgr, alpha))
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    if ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 95]
    ok, encoded = cv2.imencode(ext, bgr, params)
    if not ok:
        raise MediaError(f"{path}: OpenCV could not encode this image")
    tmp = path.with_name(f".{path.name}.vcgan-tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(encoded.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
