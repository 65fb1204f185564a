"""Reading and writing still images (JPEG, PNG, TIFF, WebP, BMP), 8- or 16-bit, gray or colour."""
from __future__ import annotations

import os
import contextlib
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .colour import rgb_to_ycbcr
from . import files
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
    warnings: list[str] = field(default_factory=list)  # what the decoder said (damaged data)


@contextlib.contextmanager
def _native_stderr():
    """Collect what native decoders (libjpeg: "Corrupt JPEG data: ...") write straight to file
    descriptor 2 while the block runs, as a list of lines, instead of letting it reach the
    terminal past ``-q``; the caller turns it into warnings."""
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (some embedded interpreters): leave it be
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read(4096).decode("utf-8", "replace").splitlines())


def read_image(path: str | os.PathLike) -> Still:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path} is a folder, not an image")
    data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths
    # ANYCOLOR|ANYDEPTH keeps gray as gray and 16 bits as 16 bits and, unlike UNCHANGED,
    # applies the EXIF orientation, so a phone photo comes out the way viewers show it.
    with _native_stderr() as said:
        img = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) if data.size else None
    if img is not None and path.suffix.lower() in (".png", ".tif", ".tiff", ".webp"):
        with _native_stderr():
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
    damage = [f"{path}: {line.strip()} (the decoder's words); parts of the picture may be grey or smeared"
              for line in said if line.strip()][:3]
    return Still(luma, chroma_sum / luma.size if img.ndim == 3 else 0.0, depth, alpha, damage)


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


def write_image(
    path: str | os.PathLike, rgb: np.ndarray, *, bit_depth: int, alpha: np.ndarray | None, overwrite: bool = False
) -> None:
    """Write RGB in [0, 1] to ``path`` (format from the extension) through
    :func:`~vcgan_cli.files.write_atomic` (``overwrite``: replace a file that is there). ``rgb`` may also be the
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
    try:
        files.write_atomic(path, encoded.tobytes(), overwrite=overwrite)
    except OSError as exc:
        raise MediaError(f"cannot write {path}: {files.os_error_text(exc)}") from None
