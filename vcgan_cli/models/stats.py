"""Parameter and MAC counts (the paper's Table II)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_macs(generator: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one generator forward pass on a ``height``×``width`` frame."""
    device = next(generator.parameters()).device
    x = torch.zeros(1, 1, height, width, device=device)
    with FlopCounterMode(display=False) as counter:
        generator(x, x)
    return counter.get_total_flops() // 2
