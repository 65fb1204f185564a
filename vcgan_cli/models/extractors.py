"""Feature extractors for the generator's global (GFE) and placeholder (PFE) branches.

Each maps a grayscale tensor in [-1, 1], shape (B, 1, H, W), to features at 1/32 scale;
``forward_multi`` also returns its intermediate features at 1/8 and 1/16 (``skip_channels``
channels), which the generator can fuse into its decoder (``skip_fusion``).
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_block


class Bottleneck(nn.Module):
    """ResNet bottleneck with instance norm and LeakyReLU; stride on the 3×3 conv."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width * self.expansion
        self.body = nn.Sequential(
            conv_block(in_ch, width, 1, pad_mode="zeros"),
            conv_block(width, width, 3, stride, pad_mode="zeros"),
            conv_block(width, out_ch, 1, act=False, pad_mode="zeros"),
        )
        self.shortcut = (
            conv_block(in_ch, out_ch, 1, stride, act=False, pad_mode="zeros")
            if stride != 1 or in_ch != out_ch
            else nn.Identity()
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet50IN(nn.Module):
    """The paper's "ResNet-50-IN": fully convolutional ResNet-50 with instance norm and
    LeakyReLU, pooling replaced by strided convs (7×7/1 stem, two 4×4/2 convs), stages
    [3, 4, 6, 3], then a 3×3 conv 2048 → ``out_channels``. Output at 1/32 scale."""

    skip_channels = (512, 1024)

    def __init__(self, out_channels: int = 512):
        super().__init__()
        self.stem = nn.Sequential(
            conv_block(3, 64, 7),
            conv_block(64, 64, 4, 2),
            conv_block(64, 64, 4, 2),
        )
        stages = []
        in_ch = 64
        for i, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
            layers = []
            for j in range(blocks):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(Bottleneck(in_ch, width, stride))
                in_ch = width * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = conv_block(in_ch, out_channels, 3, norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x.expand(-1, 3, -1, -1))))

    def forward_multi(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        s4 = self.stages[0](self.stem(x.expand(-1, 3, -1, -1)))
        s8 = self.stages[1](s4)
        s16 = self.stages[2](s8)
        return self.head(self.stages[3](s16)), (s8, s16)


class TinyExtractor(nn.Module):
    """A few strided convs down to 1/32: a stand-in with the right interface, for tests."""

    def __init__(self, out_channels: int = 16, width: int = 8):
        super().__init__()
        self.skip_channels = (2 * width, 2 * width)
        self.pyramid_channels = (width, 2 * width, 2 * width)
        chans = [1, width, width, 2 * width, 2 * width, 4 * width]
        self.body = nn.Sequential(*[conv_block(a, b, 4, 2) for a, b in zip(chans[:-1], chans[1:])])
        self.head = conv_block(chans[-1], out_channels, 1, norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x[:, :1]))

    def forward_multi(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        s8 = self.body[:3](x[:, :1])
        s16 = self.body[3](s8)
        return self.head(self.body[4](s16)), (s8, s16)

    def forward_pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        s4 = self.body[:2](x[:, :1])
        s8 = self.body[2](s4)
        s16 = self.body[3](s8)
        return self.head(self.body[4](s16)), (s4, s8, s16)


def build_extractor(kind: str, out_channels: int, pretrained: bool = False) -> nn.Module:
    """Build one extractor. ``pretrained`` loads ImageNet weights where the kind has them."""
    if kind == "resnet50-in":
        # No public ImageNet checkpoint of ResNet-50-IN exists offline; training takes a path.
        return ResNet50IN(out_channels)
    if kind.startswith("efficientnet-lite"):  # the variant is checked there
        from .efficientnet import build_extractor as build_effnet

        return build_effnet(out_channels, pretrained=pretrained, variant=kind.removeprefix("efficientnet-"))
    if kind == "tiny":
        return TinyExtractor(out_channels)
    raise ValueError(f"unknown extractor {kind!r}")
