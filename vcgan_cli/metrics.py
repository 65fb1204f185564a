"""Quality metrics for colourised frames and videos (the paper's section IV-B and later work).

Frames are RGB float32 (H, W, 3) in [0, 1]. Video metrics are accumulated one frame at a time
(:class:`ClipScorer`), so a clip never has to be held in memory.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from .colour import rgb_to_gray
from .flow import estimate_flow, occlusion_mask, to_u8, warp

#: PSNR reported for identical images (instead of infinity).
PSNR_CAP = 100.0
CDC_STEPS = (1, 2, 4)
METRICS = ("psnr", "ssim", "warp-error", "cdc", "colourfulness", "chroma-error", "cast", "purple")
#: Hue range (CIELAB degrees) and least chroma counted as purple-magenta by the "purple" metric.
PURPLE_HUES = (260.0, 340.0)
PURPLE_CHROMA = 10.0


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    mse = float(np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2))
    if mse <= 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    return 10.0 * np.log10(1.0 / mse)


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of Wang et al. (11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03, data range 1),
    averaged over channels; matches ``skimage.metrics.structural_similarity`` with
    ``gaussian_weights=True, use_sample_covariance=False``."""
    c1, c2 = 0.01**2, 0.03**2
    x = pred.astype(np.float64)
    y = gt.astype(np.float64)

    def blur(a):
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[5:-5, 5:-5].mean())


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk's colourfulness M (on the 0–255 scale): ~0 for gray, >20 'fairly'."""
    r, g, b = (rgb[..., i].astype(np.float64) * 255.0 for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _cbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .colour import rgb_to_ycbcr

    _, cb, cr = rgb_to_ycbcr(rgb.astype(np.float32))
    return cb, cr


def _chroma_distance(p: tuple[np.ndarray, np.ndarray], g: tuple[np.ndarray, np.ndarray]) -> float:
    return float(np.mean(np.hypot(p[0] - g[0], p[1] - g[1])) * 100.0)


def _cast_distance(p: tuple[np.ndarray, np.ndarray], g: tuple[np.ndarray, np.ndarray]) -> float:
    return float(np.hypot(p[0].mean() - g[0].mean(), p[1].mean() - g[1].mean()) * 100.0)


def chroma_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-pixel distance between the two (Cb, Cr), ×100 (chroma in [-0.5, 0.5]): how
    far the colour is from the truth's, pixel for pixel; the grayscale input scores the
    truth's own mean chroma."""
    return _chroma_distance(_cbcr(pred), _cbcr(gt))


def cast(pred: np.ndarray, gt: np.ndarray) -> float:
    """Distance between the frame's mean (Cb, Cr) and the truth's, ×100: a colour cast over
    the whole picture (0 for the truth)."""
    return _cast_distance(_cbcr(pred), _cbcr(gt))


def purple_share(rgb: np.ndarray) -> float:
    """Percentage of pixels with a strong (CIELAB chroma > 10) purple-magenta hue (260–340°),
    the colour an unsure colouriser paints goats and grass in."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32).clip(0, 1), cv2.COLOR_RGB2LAB)
    a, b = lab[..., 1], lab[..., 2]
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    strong = (np.hypot(a, b) > PURPLE_CHROMA) & (hue >= PURPLE_HUES[0]) & (hue <= PURPLE_HUES[1])
    return float(strong.mean() * 100.0)


def _histograms(rgb: np.ndarray) -> np.ndarray:
    u8 = to_u8(rgb)
    return np.stack([np.bincount(u8[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)


def _js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between histograms, per row, averaged."""
    p = p / p.sum(-1, keepdims=True)
    q = q / q.sum(-1, keepdims=True)
    m = 0.5 * (p + q)

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log2(a / b), 0.0).sum(-1)

    return float(np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)))


@dataclass
class GroundTruthStep:
    """What the ground truth says about frame t: its flow back to t-1 and the mask of pixels
    that flow can be trusted on (no occlusion, no motion boundary)."""

    flow: np.ndarray | None
    mask: np.ndarray | None


class FlowReference:
    """Flows between consecutive ground-truth frames, computed once per clip and shared by
    every method scored on it (protocol of Lai et al.: forward–backward check)."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None

    def step(self, gt: np.ndarray) -> GroundTruthStep:
        gray = to_u8(rgb_to_gray(gt))
        prev, self.prev = self.prev, gray
        if prev is None:
            return GroundTruthStep(None, None)
        back = estimate_flow(prev, gray)  # t -> t-1
        fwd = estimate_flow(gray, prev)  # t-1 -> t
        return GroundTruthStep(back, occlusion_mask(back, fwd))


@dataclass
class ClipScorer:
    """Accumulates every metric for one method on one clip, frame by frame."""

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    warp: list[float] = field(default_factory=list)
    colourfulness: list[float] = field(default_factory=list)
    chroma: list[float] = field(default_factory=list)
    casts: list[float] = field(default_factory=list)
    purple: list[float] = field(default_factory=list)
    cdc_terms: dict[int, list[float]] = field(default_factory=lambda: {d: [] for d in CDC_STEPS})
    metrics: tuple[str, ...] = METRICS
    _prev: np.ndarray | None = None
    _hists: deque = field(default_factory=lambda: deque(maxlen=max(CDC_STEPS)))

    def add(self, pred: np.ndarray, gt: np.ndarray, ref: GroundTruthStep) -> None:
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape[:2]} and ground truth {gt.shape[:2]} differ in size")
        if "psnr" in self.metrics:
            self.psnr.append(psnr(pred, gt))
        if "ssim" in self.metrics:
            self.ssim.append(ssim(pred, gt))
        if "colourfulness" in self.metrics:
            self.colourfulness.append(colourfulness(pred))
        if "chroma-error" in self.metrics or "cast" in self.metrics:
            p, g = _cbcr(pred), _cbcr(gt)  # once a frame for both
            if "chroma-error" in self.metrics:
                self.chroma.append(_chroma_distance(p, g))
            if "cast" in self.metrics:
                self.casts.append(_cast_distance(p, g))
        if "purple" in self.metrics:
            self.purple.append(purple_share(pred))
        if "warp-error" in self.metrics:
            if ref.flow is not None and self._prev is not None:
                diff = ((pred - warp(self._prev, ref.flow)) ** 2).sum(-1)
                self.warp.append(float((diff * ref.mask).sum() / max(ref.mask.sum(), 1.0)))
            self._prev = pred
        if "cdc" in self.metrics:
            h = _histograms(pred)
            for d in CDC_STEPS:
                if len(self._hists) >= d:
                    self.cdc_terms[d].append(_js(self._hists[-d], h))
            self._hists.append(h)

    def summary(self) -> dict[str, float | None]:
        def mean(v):
            return float(np.mean(v)) if len(v) else None

        out: dict[str, float | None] = {}
        if "psnr" in self.metrics:
            out["psnr"] = mean(self.psnr)
        if "ssim" in self.metrics:
            out["ssim"] = mean(self.ssim)
        if "warp-error" in self.metrics:
            out["warp-error"] = mean(self.warp)
        if "cdc" in self.metrics:
            per_d = [mean(v) for v in self.cdc_terms.values() if v]
            out["cdc"] = float(np.mean(per_d)) if per_d else None
        if "colourfulness" in self.metrics:
            out["colourfulness"] = mean(self.colourfulness)
        for name, values in (("chroma-error", self.chroma), ("cast", self.casts), ("purple", self.purple)):
            if name in self.metrics:
                out[name] = mean(values)
        out["frames"] = len(self.psnr or self.ssim or self.colourfulness or self.chroma or self.purple or self.warp) or None
        return out
