"""Colour conversions shared by video, images, training and metrics.

Conventions: RGB and luma as float32 in [0, 1]; chroma (Cb, Cr) as float32 in [-0.5, 0.5]
with 0 neutral; network tensors in [-1, 1].
"""
from __future__ import annotations

import numpy as np
import torch

#: (Kr, Kb) luma coefficients per matrix.
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}
#: The paper's (and ImageNet training's) grayscale conversion.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """``0.299 R + 0.587 G + 0.114 B`` over the last axis."""
    r, g, b = GRAY_WEIGHTS
    return (rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b).astype(np.float32)


def rgb_to_gray_tensor(rgb: torch.Tensor) -> torch.Tensor:
    """Grayscale of a (B, 3, H, W) tensor, keeping a channel axis: (B, 1, H, W)."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


def rgb_to_ycbcr(rgb: np.ndarray, matrix: str = "bt601") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analog Y'CbCr of an (..., 3) RGB array: Y in [0, 1], Cb/Cr in [-0.5, 0.5]."""
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    return y.astype(np.float32), cb.astype(np.float32), cr.astype(np.float32)


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, matrix: str = "bt601") -> np.ndarray:
    """RGB in [0, 1] from Y'CbCr, keeping Y exactly wherever Y itself is in [0, 1].

    Where a colour would fall outside the RGB cube, its chroma is scaled down towards gray
    (rather than clipping each channel, which would change the luminance).
    """
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    y = np.clip(y, 0.0, 1.0).astype(np.float32)
    # Offsets of each channel from Y, linear in (cb, cr).
    dr = 2.0 * (1.0 - kr) * cr
    db = 2.0 * (1.0 - kb) * cb
    dg = -(kr * dr + kb * db) / kg
    scale = np.ones_like(y)
    for d in (dr, dg, db):
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(d > 1e-6, (1.0 - y) / d, np.inf)
            down = np.where(d < -1e-6, -y / d, np.inf)
        scale = np.minimum(scale, np.minimum(up, down))
    scale = np.clip(scale, 0.0, 1.0).astype(np.float32)
    rgb = np.stack((y + scale * dr, y + scale * dg, y + scale * db), axis=-1)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def to_network(gray: np.ndarray) -> np.ndarray:
    """[0, 1] grayscale (clipped) to the network's [-1, 1]."""
    return np.clip(gray, 0.0, 1.0, dtype=np.float32) * 2.0 - 1.0


def chroma_strength(cb: np.ndarray, cr: np.ndarray) -> float:
    """Mean chroma magnitude sqrt(Cb² + Cr²); 0 for a gray picture."""
    return float(np.mean(np.hypot(cb, cr)))
