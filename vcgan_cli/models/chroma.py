"""vcgan-lite v1: the pretrained extractor as the mainstream's encoder, chroma predicted at a
fraction of the working size and brought up guided by the full-resolution luma.

The frame of VCGAN is kept: a *global feature extractor* (GFE, ImageNet EfficientNet-Lite0)
sees the grayscale frame ``x`` and a *placeholder feature extractor* (PFE) the placeholder
input ``i`` (the warped grayscale of the previous output, or the frame itself for a first
frame or a photo); the recurrence and the training losses are the trainer's, unchanged. What
changes is where the compute goes (:class:`EncoderGenerator`):

* the GFE's own multi-scale features (1/4, 1/8, 1/16 and its 1/32 head) *are* the U-Net's
  encoder, so the pretrained semantics reach the colour at every scale, and there is no
  from-scratch full-resolution encoder; a lean from-scratch path (two strided convs) adds fine
  edges at 1/4;
* the PFE is a lean strided CNN to 1/4, 1/8 and 1/16, fused into the decoder at those scales;
* the decoder stops at ``1/chroma_scale`` of the working size and predicts only chroma (Cb, Cr),
  as a regression (``chroma_head="regress"``) or as a distribution over a grid of quantised
  chroma (``"classes"``, Zhang et al. 2016), decoded by the annealed mean;
* :func:`guided_upsample` (He et al.'s guided filter, computed at the low resolution and applied
  at full resolution, as in Wu et al.'s fast guided filter) brings the chroma to the working
  size so its edges follow the luma's; the output is that chroma on the input's own luma.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .extractors import build_extractor
from .layers import batchnorms_to_eval

#: BT.601 chroma → RGB offsets (as colour.ycbcr_to_rgb): R = Y + 1.402 Cr, B = Y + 1.772 Cb.
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def ycbcr_to_rgb_tensor(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma in [0, 1] and (B, 2, H, W) chroma in [-0.5, 0.5] → (B, 3, H, W) RGB
    (not clipped: the pipeline reduces out-of-range chroma and clips)."""
    cb, cr = cbcr[:, :1], cbcr[:, 1:2]
    dr = 2.0 * (1.0 - _KR) * cr
    db = 2.0 * (1.0 - _KB) * cb
    dg = -(_KR * dr + _KB * db) / _KG
    return torch.cat((y + dr, y + dg, y + db), 1)


def rgb_to_cbcr_tensor(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] → (B, 2, H, W) BT.601 (Cb, Cr) in [-0.5, 0.5]."""
    r, g, b = rgb[:, :1], rgb[:, 1:2], rgb[:, 2:3]
    y = _KR * r + _KG * g + _KB * b
    return torch.cat(((b - y) / (2.0 * (1.0 - _KB)), (r - y) / (2.0 * (1.0 - _KR))), 1)


def _box(t: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(t, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_upsample(low: torch.Tensor, guide: torch.Tensor, radius: int = 1, eps: float = 1e-3) -> torch.Tensor:
    """Upsample ``low`` (B, C, h, w) to the size of ``guide`` (B, 1, H, W), H = s·h, so that
    its edges follow the guide's: a guided filter (He et al. 2010) fitted at the low
    resolution against the area-averaged guide, its local linear coefficients upsampled
    bilinearly and applied to the full-resolution guide (Wu et al. 2018). ``eps`` (in the
    guide's units squared) sets how strong a guide edge must be to be followed; a flat
    region of the guide gets the bilinear upsampling of ``low``."""
    # plain ints: a traced conversion (OpenVINO) then sees a constant pooling kernel, which
    # OpenVINO 2026 requires (it refuses one computed from the input's shape)
    h, w = (int(v) for v in low.shape[-2:])
    H, W = (int(v) for v in guide.shape[-2:])
    if H == h and W == w:
        return low
    g = F.adaptive_avg_pool2d(guide, (h, w)) if (H % h or W % w) else F.avg_pool2d(guide, (H // h, W // w))
    mean_g = _box(g, radius)
    mean_p = _box(low, radius)
    cov = _box(g * low, radius) - mean_g * mean_p
    var = _box(g * g, radius) - mean_g * mean_g
    a = cov / (var.clamp_min(0) + eps)
    b = mean_p - a * mean_g
    a, b = _box(a, radius), _box(b, radius)
    up = lambda t: F.interpolate(t, size=(H, W), mode="bilinear", align_corners=False)
    return up(a) * guide + up(b)


class ChromaBins:
    """A Q×Q grid of (Cb, Cr) bin centres over [-0.5, 0.5]² for the classification head.

    :meth:`encode` spreads a colour bilinearly over its four nearest centres (a soft target
    whose mean is the colour itself), :meth:`decode` takes the annealed mean of a predicted
    distribution (Zhang et al. 2016: ``softmax(logits / T)``; T = 1 is the mean, T → 0 the mode).
    """

    def __init__(self, q: int):
        if q < 2:
            raise ValueError("chroma_bins must be at least 2")
        self.q = q
        self.step = 1.0 / q
        centres = -0.5 + self.step * (torch.arange(q, dtype=torch.float32) + 0.5)
        cb, cr = torch.meshgrid(centres, centres, indexing="ij")
        self.centres = torch.stack((cb.flatten(), cr.flatten()), 1)  # (Q², 2), class k = i*Q + j

    def encode(self, cbcr: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) chroma → (B, Q², H, W) soft target (each pixel's weights sum to 1)."""
        q = self.q
        pos = ((cbcr.float() + 0.5) / self.step - 0.5).clamp(0, q - 1)  # in bin-centre units
        lo = pos.floor().clamp(max=q - 2)
        frac = pos - lo
        lo = lo.long()
        b, _, h, w = cbcr.shape
        target = torch.zeros(b, q * q, h, w, dtype=torch.float32, device=cbcr.device)
        for di in (0, 1):
            wi = frac[:, 0] if di else 1 - frac[:, 0]
            for dj in (0, 1):
                wj = frac[:, 1] if dj else 1 - frac[:, 1]
                k = (lo[:, 0] + di) * q + (lo[:, 1] + dj)
                target.scatter_add_(1, k[:, None], (wi * wj)[:, None])
        return target

    def decode(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """(B, Q², H, W) logits (or, with ``temperature=None``, probabilities) → (B, 2, H, W)."""
        p = logits if temperature is None else torch.softmax(logits.float() / temperature, 1)
        c = self.centres.to(p.device, p.dtype)
        return torch.einsum("bkhw,kc->bchw", p, c)

    def hard(self, cbcr: torch.Tensor) -> torch.Tensor:
        """The index of each pixel's nearest bin centre: (B, H, W) long."""
        ij = ((cbcr.float() + 0.5) / self.step).floor().long().clamp(0, self.q - 1)
        return ij[:, 0] * self.q + ij[:, 1]


def _cbr(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
    )


class LeanExtractor(nn.Module):
    """The placeholder branch: a from-scratch strided CNN on a 1- or 3-channel image in
    [-1, 1] → features at 1/4, 1/8 and 1/16."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.s4 = nn.Sequential(_cbr(3, w // 2, 2), _cbr(w // 2, w, 2))
        self.s8 = _cbr(w, 2 * w, 2)
        self.s16 = _cbr(2 * w, 2 * w, 2)
        self.channels = (w, 2 * w, 2 * w)

    def forward(self, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if i.shape[1] == 1:
            i = i.expand(-1, 3, -1, -1)
        f4 = self.s4(i)
        f8 = self.s8(f4)
        return f4, f8, self.s16(f8)


class CarryPath(nn.Module):
    """vcgan-lite-v1k's path for the colour recurrence: per pixel at the head's scale, the
    decoder's features with the placeholder's (Cb, Cr) and |its luma - the frame's| (where the
    flow failed) → a correction added to the head's output (chroma logits or values). A
    linear term from the cues alone can already say "this colour" (logits peaked at a bin are
    linear in the colour); the hidden layer decides where to trust it. Both zero-initialised:
    a model forked from one without the path starts as that model. It runs only for a
    three-plane placeholder, so the gray recurrence is exactly the network without it."""

    def __init__(self, features: int, outputs: int, hidden: int = 128):
        super().__init__()
        self.hidden = nn.Sequential(nn.Conv2d(features + 3, hidden, 1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(hidden, outputs, 1)
        self.direct = nn.Conv2d(3, outputs, 1)
        for conv in (self.out, self.direct):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, u: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(torch.cat((u, cues), 1))) + self.direct(cues)


class CarryGate(nn.Module):
    """vcgan-lite-v1g's gate for the colour recurrence: per pixel, how much of the placeholder's
    own chroma (the warped previous output, or a key frame) to keep in place of the network's
    guess: ``out = g * placeholder + (1 - g) * network``. ``g`` is decided at the head's scale
    from the decoder's features, the placeholder's (Cb, Cr), the network's own (Cb, Cr) and
    |the placeholder's luma - the frame's| (where the flow failed), brought to the working size,
    and lowered at full resolution where that luma difference is large (a sharp occlusion
    edge). Holding a colour is then one number per pixel, which a correction of the head's
    logits (:class:`CarryPath`) could not learn. It starts nearly closed (g ~ 0.05). It runs
    only for a three-plane placeholder, so the gray recurrence is exactly the network without it."""

    def __init__(self, features: int, hidden: int = 32, keys: bool = False, blend: str = "linear"):
        super().__init__()
        self.blend = blend
        # cues: the placeholder's (Cb, Cr), its luma difference and, with keys, whether it
        # carries a key frame's colour; plus the network's own (Cb, Cr)
        self.hidden = nn.Sequential(nn.Conv2d(features + 5 + int(keys), hidden, 1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(hidden, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, -3.0)
        self.log_edge = nn.Parameter(torch.tensor(2.3))  # exp: 10 logits per unit of luma difference

    def forward(self, u: torch.Tensor, cues: torch.Tensor, own: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        a = self.out(self.hidden(torch.cat((u.float(), cues.float(), own.float()), 1)))
        a = F.interpolate(a, size=dy.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(a - self.log_edge.exp() * dy)

    def mix(self, g: torch.Tensor, held: torch.Tensor, guess: torch.Tensor) -> torch.Tensor:
        """The output chroma: ``g * held + (1 - g) * guess``; with ``blend`` "magnitude" that
        mix's hue at the mix of the two chromas' magnitudes (at most twice the mix's own), so
        that where the two disagree the colour does not fade towards gray; with "spread" the
        mix's deviations from its frame mean scaled so that its spread over the frame is the
        mix (by the mean g) of the two spreads (at most twice its own); "magnitude-spread"
        both, in that order."""
        out = g * held + (1.0 - g) * guess
        if self.blend in ("magnitude", "magnitude-spread"):
            norm = lambda t: torch.sqrt((t * t).sum(1, keepdim=True) + 1e-8)
            target = g * norm(held) + (1.0 - g) * norm(guess)
            out = out * (target / torch.maximum(norm(out), 0.5 * target))
        if self.blend in ("spread", "magnitude-spread"):
            # a mix of two chroma fields that disagree in places is narrower than either (a
            # moving average of a flickering guess fades): keep the frame's spread of colours
            # (about its own mean, so no cast is added) at the mix of the two spreads
            mean = lambda t: t.mean((2, 3), keepdim=True)
            spread = lambda t: torch.sqrt(mean(((t - mean(t)) ** 2).sum(1, keepdim=True)) + 1e-8)
            gm = mean(g)
            target = gm * spread(held) + (1.0 - gm) * spread(guess)
            centre = mean(out)
            out = centre + (out - centre) * (target / torch.maximum(spread(out), 0.5 * target))
        return out


class EncoderGenerator(nn.Module):
    """``G(x, i)`` for ``mainstream="encoder"`` configs (see the module docstring).

    Same interface as the U-Net :class:`~vcgan_cli.models.generator.Generator`: x (B, 1, H, W)
    grayscale and i (B, 1 or 3, H, W) placeholder in [-1, 1], H and W multiples of 64;
    returns RGB in [-1, 1] whose luma is x's. In training mode the classification head's
    logits of each call are appended to ``logits_log`` when that is a list.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config.base_width
        e = config.extractor_channels
        self.gfe = build_extractor(config.extractor, e)
        ch = self.gfe.pyramid_channels  # channels at 1/4, 1/8, 1/16
        self.pfe = LeanExtractor(config.pfe_width)
        p4, p8, p16 = self.pfe.channels
        self.detail = nn.Sequential(_cbr(1, 16, 2), _cbr(16, 24, 2))  # the lean full-resolution path
        self.up16 = nn.Sequential(_cbr(e + ch[2] + p16, 4 * c), _cbr(4 * c, 4 * c))
        self.up8 = nn.Sequential(_cbr(4 * c + ch[1] + p8, 3 * c), _cbr(3 * c, 3 * c))
        # chroma_scale 8: the last conv strides down to 1/8
        self.up4 = nn.Sequential(_cbr(3 * c + ch[0] + p4 + 24, 2 * c), _cbr(2 * c, 2 * c, config.chroma_scale // 4))
        classes = config.chroma_head == "classes"
        self.bins = ChromaBins(config.chroma_bins) if classes else None
        self.head = nn.Conv2d(2 * c, config.chroma_bins ** 2 if classes else 2, 1)
        self.carry = CarryPath(2 * c, self.head.out_channels) if config.chroma_carry else None
        self.gate = CarryGate(2 * c, keys=config.chroma_gate_keys, blend=config.chroma_gate_blend) if config.chroma_gate else None
        #: Train only the colour recurrence's parts (carry path, gate; the rest frozen with its
        #: BatchNorm statistics): see train().
        self.frozen_trunk = False
        #: Every BatchNorm keeps its running statistics while the weights train (a fine-tune
        #: from a trained model: training then starts from the very network it forks).
        self.frozen_norm = False
        self.logits_log: list[torch.Tensor] | None = None

    def train(self, mode: bool = True):
        """With ``frozen_trunk`` only the carry path trains; the rest stays in eval mode, so its
        BatchNorm statistics stay those it was trained with; with ``frozen_norm`` every
        BatchNorm stays in eval mode."""
        if not self.frozen_trunk:
            super().train(mode)
        else:
            super().train(False)
            for part in self.colour_parts():
                part.train(mode)
        if mode and self.frozen_norm:
            batchnorms_to_eval(self)
        return self

    def colour_parts(self) -> list[nn.Module]:
        """The modules that run only for the colour recurrence (a three-plane placeholder)."""
        return [m for m in (self.carry, self.gate) if m is not None]

    @staticmethod
    def _placeholder_planes(x: torch.Tensor, i: torch.Tensor, keys: bool = False,
                            key_plane: torch.Tensor | None = None) -> torch.Tensor:
        """(Cb, Cr) of the placeholder (zero for a gray one) and |its luma - the frame's|, at the
        working size: (B, 3, H, W); with ``keys`` a fourth plane, ``key_plane`` (±1) in [0, 1]
        (1: the placeholder carries a key frame's colour; 0 where none was given)."""
        luma = (x.float() + 1.0) * 0.5
        if i.shape[1] == 3:
            rgb = (i.float() + 1.0) * 0.5
            cbcr = rgb_to_cbcr_tensor(rgb)
            y = _KR * rgb[:, :1] + _KG * rgb[:, 1:2] + _KB * rgb[:, 2:3]
        else:
            y = (i.float() + 1.0) * 0.5
            cbcr = torch.zeros_like(luma).expand(-1, 2, -1, -1)
        planes = [cbcr, (y - luma).abs()]
        if keys:
            planes.append((key_plane.float() + 1.0) * 0.5 if key_plane is not None else torch.zeros_like(luma))
        return torch.cat(planes, 1)

    @staticmethod
    def _placeholder_cues(x: torch.Tensor, i: torch.Tensor, size, planes: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`_placeholder_planes` area-averaged to ``size`` (the head's): (B, 3 or 4, h, w)."""
        k = (int(x.shape[-2]) // int(size[0]), int(x.shape[-1]) // int(size[1]))  # plain ints (OpenVINO)
        planes = EncoderGenerator._placeholder_planes(x, i) if planes is None else planes
        return F.avg_pool2d(planes, k).to(x.dtype)

    def _guess_from(self, i: torch.Tensor, key_plane: torch.Tensor | None) -> torch.Tensor:
        """What the placeholder extractor sees: the placeholder, or with ``chroma_gate_guess``
        "gray" a colour placeholder's gray on frames without a key frame (so the network's own
        guess is the gray recurrence's; the gate still holds the placeholder's colour)."""
        if i.shape[1] != 3 or self.gate is None or self.config.chroma_gate_guess != "gray":
            return i
        gray = (_KR * i[:, :1] + _KG * i[:, 1:2] + _KB * i[:, 2:3]).expand_as(i)
        if key_plane is None:
            return gray
        keyed = key_plane.mean((1, 2, 3), keepdim=True) > 0.0  # a key frame's colour: as trained
        return torch.where(keyed, i, gray)

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 64 or w % 64 or min(h, w) < 128:
            raise ValueError(f"generator input {h}x{w} must be a multiple of 64, at least 128")
        if i.shape[1] not in (1, 3, 4):
            raise ValueError(f"placeholder of {i.shape[1]} planes: 1 (gray), 3 (colour) or 4 (colour and key plane)")
        key_plane = None  # a fourth plane: whether the placeholder carries a key frame's colour
        if i.shape[1] == 4:
            key_plane, i = i[:, 3:], i[:, :3]
        g32, (g4, g8, g16) = self.gfe.forward_pyramid(x)
        p4, p8, p16 = self.pfe(self._guess_from(i, key_plane))
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)
        u = self.up16(torch.cat((up(g32), g16, p16), 1))
        u = self.up8(torch.cat((up(u), g8, p8), 1))
        u = self.up4(torch.cat((up(u), g4, p4, self.detail(x)), 1))
        z = self.head(u).float()
        colour = i.shape[1] == 3  # the colour recurrence (a gray placeholder: none of its parts run)
        keys = self.gate is not None and self.config.chroma_gate_keys
        if colour and self.colour_parts():
            planes = self._placeholder_planes(x, i, keys, key_plane)
            cues = self._placeholder_cues(x, i, u.shape[-2:], planes)
        else:
            planes = cues = None
        if self.carry is not None and colour:
            z = z + self.carry(u, cues[:, :3]).float()
        if self.bins is not None:
            if self.logits_log is not None:  # set by the trainer for a training step
                self.logits_log.append(z)
            cbcr = self.bins.decode(z, self.config.anneal_t)
        else:
            cbcr = 0.5 * torch.tanh(z)
        luma = (x.float() + 1.0) * 0.5
        own = cbcr
        cbcr = guided_upsample(cbcr, luma, self.config.guide_radius, self.config.guide_eps)
        if self.gate is not None and colour:
            g = self.gate(u, cues, own, planes[:, 2:3])  # the placeholder's (Cb, Cr) held, where g says
            cap = self.config.chroma_gate_cap
            if cap < 1.0:  # at most cap of it where no key frame is carried (a key's colour held fully)
                g = torch.where(planes[:, 3:4] > 0.5, g, g.clamp(max=cap)) if keys else g.clamp(max=cap)
            cbcr = self.gate.mix(g, planes[:, :2], cbcr)
        return (ycbcr_to_rgb_tensor(luma, cbcr) * 2.0 - 1.0).to(x.dtype)
