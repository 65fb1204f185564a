"""Building blocks shared by the generator, the extractors and the discriminator."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm


def batchnorms_to_eval(module: nn.Module) -> None:
    """Put every BatchNorm inside ``module`` in eval mode: it normalises with its running
    statistics and no longer updates them (the rest of the module keeps its mode)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def conv_block(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    *,
    norm: bool = True,
    act: bool = True,
    sn: bool = False,
    pad_mode: str = "reflect",
) -> nn.Sequential:
    """Conv → (InstanceNorm) → (LeakyReLU 0.2), with reflect padding.

    Odd kernels keep the size; 4×4 kernels pad 1 on each side, so stride 2 halves an even size
    exactly and stride 1 shrinks it by one (the Pix2Pix PatchGAN tail).
    """
    pad = kernel // 2 if kernel % 2 else kernel // 2 - 1
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=pad, padding_mode=pad_mode, bias=not norm)
    layers: list[nn.Module] = [spectral_norm(conv) if sn else conv]
    if norm:
        layers.append(nn.InstanceNorm2d(out_ch, affine=True))
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class NonLocalBlock(nn.Module):
    """SAGAN-style self-attention: 1×1 query/key to C/8, 1×1 value, softmax over positions,
    ``gamma * attention + x`` with gamma starting at 0 (so a fresh block is the identity)."""

    def __init__(self, channels: int, sn: bool = False):
        super().__init__()
        inner = max(channels // 8, 1)
        wrap = spectral_norm if sn else (lambda m: m)
        self.query = wrap(nn.Conv2d(channels, inner, 1))
        self.key = wrap(nn.Conv2d(channels, inner, 1))
        self.value = wrap(nn.Conv2d(channels, channels, 1))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # B, N, C/8
        k = self.key(x).flatten(2)  # B, C/8, N
        v = self.value(x).flatten(2)  # B, C, N
        # scaled_dot_product_attention picks a memory-efficient kernel where one exists; the
        # scale of 1 keeps SAGAN's plain softmax(QK^T).
        out = torch.nn.functional.scaled_dot_product_attention(
            q.unsqueeze(1), k.transpose(1, 2).unsqueeze(1), v.transpose(1, 2).unsqueeze(1), scale=1.0
        )
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma * out
