"""The VCGAN generator ``G(x, i)`` and the 70×70 PatchGAN discriminator (``docs/method.md``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .extractors import build_extractor
from .layers import NonLocalBlock, conv_block

#: Height and width of the generator's input must be multiples of this (d6 is at 1/64).
MULTIPLE = 64


class UpBlock(nn.Module):
    """Nearest ×2 up-sampling, 3×3 conv + IN + LeakyReLU, optional non-local block."""

    def __init__(self, in_ch: int, out_ch: int, attention: bool):
        super().__init__()
        self.conv = conv_block(in_ch, out_ch, 3)
        self.attn = NonLocalBlock(out_ch) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))


class Generator(nn.Module):
    """U-Net mainstream with non-local blocks; GFE(x) and PFE(i) are fused at 1/32 (and, with
    ``skip_fusion``, GFE's own 1/16 and 1/8 features are added into the decoder there).

    ``forward(x, i)``: x is the grayscale frame, i the placeholder input (the grayscale frame
    itself for a first frame or a photo; the warped grayscale of the previous output
    otherwise). Both (B, 1, H, W) in [-1, 1], H and W multiples of :data:`MULTIPLE`.
    Returns RGB in [-1, 1].
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config.base_width
        e = config.extractor_channels
        nl = config.nonlocal_blocks
        self.d0 = conv_block(1, c, 7, norm=False)
        self.d1 = conv_block(c, 2 * c, 4, 2)
        self.d2 = conv_block(2 * c, 4 * c, 4, 2)
        self.d3 = conv_block(4 * c, 8 * c, 4, 2)
        self.d4 = conv_block(8 * c, 16 * c, 4, 2)
        self.d5 = conv_block(16 * c, 16 * c, 4, 2)
        self.gfe = build_extractor(config.extractor, e)
        self.pfe = build_extractor(config.extractor, e)
        self.d6 = conv_block(16 * c + 2 * e, 16 * c, 4, 2)
        self.u1 = UpBlock(16 * c, 16 * c, nl >= 1)
        self.u2 = UpBlock(32 * c, 16 * c, nl >= 2)
        self.u3 = UpBlock(32 * c, 8 * c, nl >= 3)
        self.u4 = UpBlock(16 * c, 4 * c, False)
        self.u5 = UpBlock(8 * c, 2 * c, False)
        self.u6 = UpBlock(4 * c, c, False)
        self.out = nn.Sequential(
            nn.Conv2d(2 * c, 3, 7, padding=3, padding_mode="reflect"), nn.Tanh()
        )
        if config.skip_fusion:
            s8, s16 = self.gfe.skip_channels
            self.skip16 = nn.Conv2d(s16, 16 * c, 1)
            self.skip8 = nn.Conv2d(s8, 8 * c, 1)
            for conv in (self.skip16, self.skip8):  # start as the paper's generator exactly
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % MULTIPLE or w % MULTIPLE or min(h, w) < 2 * MULTIPLE:
            raise ValueError(f"generator input {h}x{w} must be a multiple of {MULTIPLE}, at least {2 * MULTIPLE}")
        d0 = self.d0(x)
        d1 = self.d1(d0)
        d2 = self.d2(d1)
        d3 = self.d3(d2)
        d4 = self.d4(d3)
        d5 = self.d5(d4)
        g, (g8, g16) = self.gfe.forward_multi(x)  # the intermediate features cost nothing extra
        fused = torch.cat((d5, g, self.pfe(i)), 1)
        u = self.u1(self.d6(fused))
        u = self.u2(torch.cat((u, d5), 1))
        skip = self.config.skip_fusion
        if skip:
            u = u + self.skip16(g16)
        u = self.u3(torch.cat((u, d4), 1))
        if skip:
            u = u + self.skip8(g8)
        u = self.u4(torch.cat((u, d3), 1))
        u = self.u5(torch.cat((u, d2), 1))
        u = self.u6(torch.cat((u, d1), 1))
        return self.out(torch.cat((u, d0), 1))


def build_generator(config: ModelConfig) -> nn.Module:
    """The generator a config describes: the paper's U-Net (:class:`Generator`) or vcgan-lite
    v1's encoder design (:class:`~vcgan_cli.models.chroma.EncoderGenerator`)."""
    if config.mainstream == "encoder":
        from .chroma import EncoderGenerator

        return EncoderGenerator(config)
    return Generator(config)


class Discriminator(nn.Module):
    """70×70 PatchGAN on (grayscale, colour): spectral norm everywhere, IN except first and
    last, a non-local block after the strided convs. 30×30 score map for a 256×256 input."""

    def __init__(self, base_width: int = 32):
        super().__init__()
        c = base_width
        self.net = nn.Sequential(
            conv_block(4, 2 * c, 7, norm=False, sn=True),
            conv_block(2 * c, 4 * c, 4, 2, sn=True),
            conv_block(4 * c, 8 * c, 4, 2, sn=True),
            conv_block(8 * c, 16 * c, 4, 2, sn=True),
            NonLocalBlock(16 * c, sn=True),
            conv_block(16 * c, 8 * c, 4, 1, sn=True),
            conv_block(8 * c, 1, 4, 1, norm=False, act=False, sn=True),
        )

    def forward(self, gray: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((gray, rgb), 1))
