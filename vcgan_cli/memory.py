"""Will the network fit? An estimate of its memory at a working size, before any is spent.

The estimate runs the architecture once on PyTorch's ``meta`` device (shapes only: no memory,
no arithmetic, a fraction of a second) and follows every tensor it makes from creation to
release; the peak of what is alive at once, times :data:`HEADROOM` for what kernels allocate
inside themselves (convolution and attention workspaces, the allocator's slack; measured 1.6
to 3.1 times on the CPU for the registered architectures), is compared with the memory the
device has free. A size that cannot fit is refused with the largest that would.
"""
from __future__ import annotations

import functools
import math
import os
import weakref

import torch

from .errors import VcganError

#: Real peak / meta-traced peak, the larger end of what was measured (vcgan-lite v0.4 on the
#: CPU: 2533 MB resident against 806 MB traced at 1024x1024).
HEADROOM = 3.0
#: Below this many pixels no estimate is made: every registered model fits in 1 GB there.
SMALL = 640 * 640


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new allocations on ``device``, or None where it cannot be told."""
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free)
        except Exception:  # noqa: BLE001 - no estimate rather than a failure
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=32)
def traced_peak(config, height: int, width: int, element_bytes: int = 4) -> int:
    """Bytes alive at once at the peak of one ``G(x, i)`` call at (height, width) (multiples
    of 64), traced on the meta device; ``element_bytes`` 2 for fp16 / bf16."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    from .models import build_generator

    class _Peak(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live = self.peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = {id(a) for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)}
            for t in tree_flatten(out)[0]:
                # new storage only: not an in-place op's own input, not a view of another
                if isinstance(t, torch.Tensor) and id(t) not in inputs and t._base is None:
                    n = t.untyped_storage().nbytes()
                    self.live += n
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(t, self._free, n)
            return out

        def _free(self, n):
            self.live -= n

    with torch.device("meta"):
        generator = build_generator(config).eval()
        x = torch.zeros(1, 1, height, width)
    tracer = _Peak()
    with torch.inference_mode(), tracer:
        generator(x, x)
    return tracer.peak * element_bytes // 4


def check_fits(config, height: int, width: int, device: torch.device, dtype: torch.dtype, short_side: int) -> None:
    """Refuse (one line) a working size of (height, width) whose estimate exceeds what
    ``device`` has free; ``short_side`` is the ``--size`` that made it, for the message."""
    from .models import MULTIPLE

    if height * width <= SMALL:
        return
    free = available_bytes(device)
    if free is None:
        return
    ph, pw = max(-(-height // MULTIPLE) * MULTIPLE, 2 * MULTIPLE), max(-(-width // MULTIPLE) * MULTIPLE, 2 * MULTIPLE)
    need = HEADROOM * traced_peak(config, ph, pw, 2 if dtype in (torch.float16, torch.bfloat16) else 4)
    if need <= free:
        return
    fits = int(short_side * math.sqrt(free / need) // 16 * 16)
    where = "GPU" if device.type == "cuda" else "machine"
    raise VcganError(
        f"--size {short_side}: the network would need about {need / 2**30:.1f} GB at {width}x{height}, "
        f"and this {where} has {free / 2**30:.1f} GB free; use --size {max(fits, 16)} or less"
    )
