"""A generator placed on a device, with the padding and precision it needs: one call per frame."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .colour import to_network
from .errors import VcganError
from .media.types import shrink
from .models import MULTIPLE
from .weights import DEFAULT_MODEL, LoadedWeights, load_weights

#: How the placeholder input is made from the previous output: the paper's warped grayscale
#: ("gray"), or the warped colour output itself ("colour"; a model trained for it).
RECURRENCES = ("gray", "colour")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise VcganError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise VcganError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise VcganError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) present")
    elif dev.type != "cpu":
        raise VcganError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp16 on CUDA (bf16 where fp16 is not faster is not guessed) and fp32 on CPU."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in PRECISIONS:
        raise VcganError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    if precision == "fp16" and device.type == "cpu":
        raise VcganError("fp16 is not supported on the CPU; use --precision fp32 or bf16")
    return PRECISIONS[precision]


def working_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the short side scaled to ``short_side``, keeping the aspect ratio."""
    if short_side < 16:
        raise VcganError(f"--size {short_side} is too small; use at least 16")
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` at ``height`` x ``width`` (area-averaged when smaller, bicubic when larger)."""
    return shrink(image, height, width)


@dataclass
class Colorizer:
    """A loaded model on a device. ``colorizer(gray, placeholder)`` → RGB, all at working size."""

    weights: LoadedWeights
    device: torch.device
    dtype: torch.dtype
    #: None: PyTorch; else a backends runner (OpenVINO on the CPU).
    runner: object | None = None
    #: One-line notes for the user (a backend fallen back from, ...).
    notes: list[str] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return "torch" if self.runner is None else self.runner.name

    @property
    def config(self):
        return self.weights.config

    @property
    def name(self) -> str:
        return self.weights.config.name

    @property
    def source(self) -> str:
        return self.weights.source

    @property
    def precision(self) -> str:
        return {v: k for k, v in PRECISIONS.items()}[self.dtype]

    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @contextlib.contextmanager
    def few_frames(self):
        """While only a few frames of each size will be run (a preview): a backend that
        converts the network per size does not convert now (its cached sizes still run)."""
        runner = self.runner
        if runner is None or getattr(runner, "eager", True):
            yield
            return
        runner.few = True
        try:
            yield
        finally:
            runner.few = False

    def check_fits(self, height: int, width: int, short_side: int) -> None:
        """Refuse a working size this device has not the memory for (see :mod:`vcgan_cli.memory`)."""
        from .memory import check_fits

        check_fits(self.config, height, width, self.device, self.dtype, short_side)

    def check_recurrence(self, mode: str, references: bool = False) -> None:
        """Refuse the colour recurrence (``mode`` "colour", or key frames) for a trained model
        that was not trained for it: its placeholder extractor has only seen gray. An
        untrained (random) model runs anything, for plumbing."""
        if mode not in RECURRENCES:
            raise VcganError(f"unknown recurrence {mode!r}; use {' or '.join(RECURRENCES)}")
        if (mode == "colour" or references) and self.weights.trained and not self.config.colour_recurrence:
            what = "key frames (--reference, --references)" if references else "--recurrence colour"
            raise VcganError(
                f"{what} need a model trained for the colour recurrence; {self.name} ({self.source}) "
                f"was trained for the paper's gray recurrence only; the default model ({DEFAULT_MODEL}) takes them"
            )

    @torch.inference_mode()
    def __call__(self, gray: np.ndarray, placeholder: np.ndarray, keyed: bool = False) -> np.ndarray:
        """Colourise one frame: ``gray`` (H, W) and ``placeholder`` (H, W) gray or (H, W, 3)
        RGB (the colour recurrence), in [0, 1] → RGB (H, W, 3) in [0, 1]. ``keyed``: the
        placeholder carries a user's key frame's colour (a model whose gate knows keys is told,
        by a fourth placeholder plane). Any size; padded (reflect) to a multiple of 64 for the
        network."""
        h, w = gray.shape
        if placeholder.ndim == 3:
            planes = np.concatenate((to_network(gray)[None], np.moveaxis(to_network(placeholder), 2, 0)))
            if self.config.chroma_gate_keys:
                planes = np.concatenate((planes, np.full((1, h, w), 1.0 if keyed else -1.0, planes.dtype)))
        else:
            planes = np.stack((to_network(gray), to_network(placeholder)))
        x = torch.from_numpy(planes[None]).to(self.device, non_blocking=True)  # (1, 1 + C, H, W)
        # Multiples of 64, and at least 128 so the 1/64 bottleneck keeps more than one pixel.
        ph, pw = max(-h % MULTIPLE, 2 * MULTIPLE - h), max(-w % MULTIPLE, 2 * MULTIPLE - w)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        x, i = x[:, :1].contiguous(), x[:, 1:].contiguous()
        out = None
        if self.runner is not None and self.runner.ready(tuple(x.shape), tuple(i.shape)):
            try:
                out = self.runner(x, i)
            except Exception as exc:  # noqa: BLE001 - a conversion that fails falls back, once
                self.notes.append(f"{self.runner.name} could not run this model ({_first_line(exc)}); using PyTorch")
                self.runner = None
        if out is None:
            with self._autocast():
                out = self.weights.generator(x, i)
        out = out[0, :, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
        rgb = ((out.float() + 1.0) * 0.5).clamp_(0.0, 1.0).permute(1, 2, 0)
        return rgb.cpu().numpy()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def load_model(
    model: str | os.PathLike | None = None, *, device: str = "auto", precision: str = "auto", backend: str | None = None
) -> Colorizer:
    """Load a model by spec (name, ``random:ARCH``, path or ``hf-hub:``) onto a device.

    ``backend``: "torch", "openvino" (the CPU only; converted and checked against PyTorch on
    first use, cached), or "auto": OpenVINO on the CPU where it is installed, else PyTorch.
    None: the ``VCGAN_BACKEND`` environment variable, else "auto"."""
    from .backends import BACKENDS, OpenVINORunner, openvino_available

    backend = backend or os.environ.get("VCGAN_BACKEND") or "auto"

    if backend not in BACKENDS:
        raise VcganError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    weights = load_weights(model)
    weights.generator.to(dev).eval()
    colorizer = Colorizer(weights, dev, dtype)
    if backend == "openvino" and dev.type != "cpu":
        raise VcganError("--backend openvino runs on the CPU; use --device cpu or --backend torch")
    if backend == "openvino" and not openvino_available():
        raise VcganError("--backend openvino: OpenVINO is not installed; pip install openvino (or use --backend torch)")
    if dev.type == "cpu" and backend != "torch" and openvino_available():
        colorizer.runner = OpenVINORunner(weights.generator, "bf16" if dtype == torch.bfloat16 else "f32", eager=backend == "openvino")
    return colorizer
