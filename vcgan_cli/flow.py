"""Optical flow, warping and scene-cut detection (OpenCV, on the CPU).

Flow here is always *backward*: ``flow = estimate_flow(prev, cur)`` gives, for every pixel of
``cur``, where it came from in ``prev``, so ``warp(prev_image, flow)`` is ``prev_image``
aligned onto ``cur`` — the paper's ``W(O_{t-1→t}, ·)``.
"""
from __future__ import annotations

import functools
import threading
from collections import deque

import cv2
import numpy as np

_local = threading.local()


def _dis() -> cv2.DISOpticalFlow:
    # One DIS instance per thread (OpenCV objects are not thread-safe).
    dis = getattr(_local, "dis", None)
    if dis is None:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        _local.dis = dis
    return dis


def to_u8(gray: np.ndarray) -> np.ndarray:
    return (np.clip(gray, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def estimate_flow(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Backward flow (H, W, 2) float32 from grayscale ``cur`` to ``prev`` (both [0, 1] or uint8)."""
    p = prev if prev.dtype == np.uint8 else to_u8(prev)
    c = cur if cur.dtype == np.uint8 else to_u8(cur)
    return _dis().calc(c, p, None)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False  # shared between calls
    return grid_x, grid_y


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` (H, W[, C]) at ``x + flow(x)``: bilinear, edges replicated."""
    grid_x, grid_y = _grid(*flow.shape[:2])  # built once per frame size, not per frame
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Binary mask (H, W) of pixels that are neither occluded nor on a motion boundary,
    by the forward–backward consistency check of Ruder et al. (as in Lai et al.'s warp error).

    ``flow_fw`` maps frame t → t-1 (backward flow of t); ``flow_bw`` maps t-1 → t.
    """
    back = warp(flow_bw, flow_fw)
    total = flow_fw + back
    consistent = (total**2).sum(-1) < 0.01 * ((flow_fw**2).sum(-1) + (back**2).sum(-1)) + 0.5
    # forward differences, as Lai et al.'s compute_flow_gradients (last row/column 0)
    dx = np.zeros_like(flow_fw)
    dy = np.zeros_like(flow_fw)
    dx[:, :-1] = flow_fw[:, :-1] - flow_fw[:, 1:]
    dy[:-1] = flow_fw[:-1] - flow_fw[1:]
    boundary = (dx**2 + dy**2).sum(-1) > 0.01 * (flow_fw**2).sum(-1) + 0.002
    return (consistent & ~boundary).astype(np.float32)


class SceneCutDetector:
    """Decides, frame by frame, whether a new shot starts.

    Two cues, both cheap given the flow already computed for the recurrence: the residual
    left after motion compensation (``|cur − warp(prev)|``), which a cut makes large and
    motion does not, and the change of the gray-level histogram. A cut needs the residual to
    stand out against the recent ones *and* the histogram (or an extreme residual) to agree.
    ``sensitivity`` scales the thresholds: higher finds more cuts.
    """

    def __init__(self, sensitivity: float = 1.0, history: int = 24):
        if sensitivity <= 0:
            raise ValueError("sensitivity must be positive")
        self.sensitivity = sensitivity
        self.recent: deque[float] = deque(maxlen=history)

    def reset(self) -> None:
        self.recent.clear()

    @staticmethod
    def _histogram(gray_u8: np.ndarray) -> np.ndarray:
        hist = np.bincount((gray_u8 >> 2).ravel(), minlength=64).astype(np.float32)
        return hist / max(hist.sum(), 1.0)

    def score(self, prev_u8: np.ndarray, cur_u8: np.ndarray, flow: np.ndarray) -> tuple[float, float]:
        """(motion-compensated residual, histogram total-variation distance), both in [0, 1]."""
        aligned = warp(prev_u8, flow)
        residual = float(np.mean(cv2.absdiff(cur_u8, aligned))) / 255.0
        hist = 0.5 * float(np.abs(self._histogram(prev_u8) - self._histogram(cur_u8)).sum())
        return residual, hist

    def is_cut(self, prev_u8: np.ndarray, cur_u8: np.ndarray, flow: np.ndarray) -> bool:
        residual, hist = self.score(prev_u8, cur_u8, flow)
        s = self.sensitivity
        typical = float(np.median(self.recent)) if self.recent else 0.0
        stands_out = residual > max(0.06 / s, 4.0 * typical / s)
        cut = stands_out and (hist > 0.2 / s or residual > 0.18 / s)
        if cut:
            self.recent.clear()
        else:
            self.recent.append(residual)
        return cut
