"""Training: stage 1 on images (``10·L1 + 5·Lp``), stage 2 on videos, unrolled recurrently
exactly as at inference (``10·L1 + 5·Lp + 1·LG + 3·Lst + 5·Ldlt``, WGAN critic).

A run lives in one folder: ``config.json`` (every setting used), ``log.jsonl`` (every loss
term at every logged step), ``checkpoints/last.pt`` and ``checkpoints/step-N.pt`` (model,
critic, optimisers, step, RNG state: ``--resume`` continues exactly), ``samples/`` (images to
look at) and ``best/`` (the best validated model as ``config.json`` + ``model.safetensors``).
Progress goes to a callback; nothing here prints.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pickle

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import files
from ..errors import VcganError
from ..models import VARIANTS, Discriminator, Generator, ModelConfig, build_generator
from ..colour import rgb_to_gray_tensor
from .losses import PERCEPTUAL_WEIGHTS, ColourRarity, check_rebalance, build_perceptual, class_loss, perceptual_loss, resolve_perceptual, temporal_losses

#: The paper's defaults per stage (docs/method.md, "Schedule"); every one can be overridden.
STAGE_DEFAULTS = {
    1: dict(batch_size=16, lr_g=2e-4, steps=20_000, lr_halve_every=10_000),
    2: dict(batch_size=4, lr_g=5e-5, steps=20_000, lr_halve_every=4_000),
}


@dataclass
class TrainConfig:
    stage: int = 1
    model: str = "vcgan-lite-v1"  # an architecture in VARIANTS (vcgan-lite-v1: the shipped design)
    data: list[str] = field(default_factory=list)
    val: str | None = None
    out: str = "runs/vcgan"
    init: str | None = None  # stage-1 run folder, checkpoint or exported model to start from
    pretrained: bool = True  # ImageNet-initialised extractors where the variant has them
    freeze_extractors: bool = False  # keep the extractors' pretrained backbones fixed (faster on a CPU)
    # keep every BatchNorm's running statistics as they are (the --init model's) while the weights
    # train, so a fine-tune starts from exactly the network it was forked from (vcgan-lite v1 designs)
    freeze_norm: bool = False
    resnet50_in: str | None = None  # ImageNet ResNet-50-IN checkpoint for the `vcgan` variant
    size: int = 256
    batch_size: int | None = None
    steps: int | None = None
    lr_g: float | None = None
    lr_d: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    lr_halve_every: int | None = None
    w_l1: float = 10.0
    # None: the paper's 5 with VGG-16; 0.5 with the EfficientNet-Lite0 stand-in, whose gradient
    # at the output is ~180x L1's and nearly orthogonal to it (cosine 0.03) at weight 5, which
    # drowned the colour signal (PERCEPTUAL_WEIGHTS in losses.py).
    w_perceptual: float | None = None
    w_gan: float = 1.0
    w_short: float = 3.0
    w_long: float = 5.0
    # Weigh the L1 term's pixels by the rarity of their true colour (Zhang et al. 2016's class
    # rebalancing; losses.ColourRarity): 0 off (the paper), 0.5 Zhang et al.'s mix. By the
    # rarity of the (Cb, Cr) colour ("colour", Zhang et al.'s) or of its magnitude ("chroma").
    rebalance: float = 0.0
    rebalance_by: str = "colour"
    # Architectures with a classification chroma head (ModelConfig.chroma_head "classes"): the
    # weight of the cross-entropy of the predicted chroma distribution against the true chroma
    # (soft-encoded on the bin grid), each pixel weighed by its colour's rarity with this mix
    # (Zhang et al. 2016's 0.5; 0 plain cross-entropy).
    w_class: float = 1.0
    class_rebalance: float = 0.5
    # Scale the true chroma by this before comparing (BigColor's and DDColor's x1.2 against the
    # muted average an L1 loss settles on where unsure); 1 compares with the truth as it is.
    # Not in key-framed stage-2 clips (--reference), which are to carry the key's own colours.
    target_saturation: float = 1.0
    # Losses compare what the user gets: the output's colour on the source's own luma (plus an
    # L1 term keeping the network's luma on the input's). False: the raw RGB, as in the paper.
    keep_luma: bool = True
    critic_width: int = 32  # PatchGAN base width (the critic costs ~2x the vcgan-lite generator per frame at 32)
    # Stage 2: train only the critic for the first N steps (the generator runs without gradients
    # and stays as it is), so a fresh critic starting on a trained generator can tell its colour
    # from the truth's before the generator learns from it. 0: off (the paper's joint training).
    critic_warmup: int = 0
    frames: int = 5  # N consecutive frames per stage-2 sample
    # Stage 2: share of clips unrolled with the colour recurrence (the warped previous colour
    # output as the placeholder input, `vcgan colorize --recurrence colour`), and share whose
    # first frame is given as a key frame (the true colour frame, as `--reference` gives it);
    # the rest run the paper's gray recurrence. A model trained with either says so in its
    # config (ModelConfig.colour_recurrence). 0 and 0: the paper.
    colour_recurrence: float = 0.0
    reference: float = 0.0
    # "carry": train only a vcgan-lite-v1k model's carry path (the colour recurrence's), the
    # rest frozen with its BatchNorm statistics, so the gray recurrence stays exactly the
    # model it was forked from (--init). None: every weight trains (with --freeze-extractors
    # as it says).
    train_only: str | None = None
    alpha: float = 50.0  # occlusion-mask scale
    synthetic: float = 0.5  # share of stage-2 samples made from photos by camera motion
    synthetic_data: list[str] = field(default_factory=list)
    group_power: float = 1.0  # draw photo collections by size**p: 1 every photo alike, 0 every collection alike
    # Keep an exponential moving average of the generator's weights (0: off). Validation,
    # samples, export and --init then use the averaged weights, which damps the adversarial
    # swings between checkpoints (0.999 averages roughly the last 1,000 steps).
    ema_decay: float = 0.0
    # Fuse the global extractor's 1/16 and 1/8 features into the decoder (ModelConfig.skip_fusion);
    # None: the architecture's own setting. Runs from before the setting resume without it.
    skip_fusion: bool | None = None
    perceptual: str = "auto"
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on the CPU
    log_every: int = 10
    checkpoint_every: int = 500
    val_every: int = 1000
    val_frames: int = 20
    val_clips: int | None = None
    best_metric: str = "psnr"

    def resolved(self) -> TrainConfig:
        """Fill the stage-dependent defaults."""
        if self.stage not in STAGE_DEFAULTS:
            raise VcganError("--stage must be 1 (images) or 2 (videos)")
        if self.model not in VARIANTS:
            raise VcganError(f"unknown architecture {self.model!r}; known: {', '.join(VARIANTS)}")
        c = dataclasses.replace(self)
        for k, v in STAGE_DEFAULTS[self.stage].items():
            if getattr(c, k) is None:
                setattr(c, k, v)
        if c.skip_fusion is None:
            c.skip_fusion = VARIANTS[c.model].skip_fusion
        if c.w_perceptual is None:
            c.w_perceptual = PERCEPTUAL_WEIGHTS[resolve_perceptual(c.perceptual)]
        if c.stage == 2 and c.frames < 2:
            raise VcganError("--frames must be at least 2 for stage 2")
        if c.size < 128 or c.size % 64:
            raise VcganError(f"--size {c.size}: training crops must be a multiple of 64, at least 128")
        for name in ("batch_size", "critic_width", "steps", "lr_halve_every", "log_every", "checkpoint_every", "val_every", "val_frames"):
            value = getattr(c, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise VcganError(f"{name.replace('_', '-')} must be a positive whole number, got {value!r}")
        if not isinstance(c.critic_warmup, int) or isinstance(c.critic_warmup, bool) or c.critic_warmup < 0:
            raise VcganError(f"critic-warmup must be a whole number of steps, at least 0, got {c.critic_warmup!r}")
        if c.critic_warmup and c.stage != 2:
            raise VcganError("--critic-warmup is for stage 2 (stage 1 has no critic)")
        if c.critic_warmup and c.w_gan == 0:
            raise VcganError("--critic-warmup needs the critic: it is off with w_gan 0")
        if not isinstance(c.target_saturation, (int, float)) or not 0.5 <= c.target_saturation <= 2.0:
            raise VcganError(f"target-saturation must be between 0.5 and 2, got {c.target_saturation!r}")
        if not 0.0 <= c.class_rebalance < 1.0:
            raise VcganError(f"class-rebalance must be at least 0 and below 1, got {c.class_rebalance!r}")
        for name in ("w_class", "lr_g", "lr_d", "alpha", "w_l1", "w_perceptual", "w_gan", "w_short", "w_long"):
            value = getattr(c, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise VcganError(f"{name.replace('_', '-')} must be a non-negative number, got {value!r}")
        check_rebalance(c.rebalance, c.rebalance_by)
        if not isinstance(c.ema_decay, (int, float)) or not 0.0 <= c.ema_decay < 1.0:
            raise VcganError(f"ema-decay must be at least 0 and below 1, got {c.ema_decay!r}")
        for name in ("colour_recurrence", "reference"):
            value = getattr(c, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise VcganError(f"{name.replace('_', '-')} must be between 0 and 1, got {value!r}")
        if c.train_only not in (None, "carry"):
            raise VcganError(f"train-only must be 'carry' (or not given), got {c.train_only!r}")
        if c.train_only == "carry" and not (VARIANTS[c.model].chroma_carry or VARIANTS[c.model].chroma_gate):
            raise VcganError(f"--train-only carry needs an architecture with a carry path or gate (vcgan-lite-v1k, -v1g, -v1gk, -v1gm), not {c.model}")
        if c.train_only == "carry" and not (c.colour_recurrence or c.reference):
            raise VcganError("--train-only carry trains the colour recurrence's path: give --colour-recurrence or --reference")
        if c.freeze_norm and not (VARIANTS[c.model].mainstream == "encoder" and c.init):
            raise VcganError("--freeze-norm keeps an --init model's BatchNorm statistics: give --init, with a vcgan-lite-v1 architecture")
        if (c.colour_recurrence or c.reference) and c.stage != 2:
            raise VcganError("--colour-recurrence and --reference are for stage 2 (videos)")
        if not 0.0 <= c.synthetic <= 1.0:
            raise VcganError(f"synthetic must be between 0 and 1, got {c.synthetic!r}")
        if not c.data and not (c.stage == 2 and c.synthetic_data):
            raise VcganError("no training data: pass --data (images for stage 1, videos for stage 2)")
        return c

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> dict:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise VcganError(f"{path}: cannot read the training config ({exc})") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise VcganError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        return data


@dataclass(frozen=True)
class TrainOption:
    """One ``vcgan train`` option, declared once beside the :class:`TrainConfig` field it
    sets; the CLI is built from :data:`TRAIN_OPTIONS` (the core knows nothing of click).
    ``kind``: int, float, choice, text, path (an existing path), paths (repeatable), on (a
    flag that sets the field True), off (a flag that sets it False), switch (--x/--no-x)."""

    flag: str
    field: str
    kind: str
    help: str = ""
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] = ()
    metavar: str | None = None


TRAIN_OPTIONS: tuple[TrainOption, ...] = (
    TrainOption("--stage", "stage", "int", "1: images (colour); 2: videos (temporal consistency). Required unless --resume.", 1, 2),
    TrainOption("--data", "data", "paths", "Training data (repeatable): image folders or .tar shards (stage 1); videos, video folders or DAVIS trees (stage 2)."),
    TrainOption("--synthetic-data", "synthetic_data", "paths", "Stage 2: photos to make clips from by smooth camera motion with exact flow."),
    TrainOption("--synthetic", "synthetic", "float", "Stage 2: share of synthetic clips (default 0.5 when --synthetic-data is given).", 0, 1),
    TrainOption("--val", "val", "path", "Validation clips (DAVIS layout), scored with the bench code."),
    TrainOption("--model", "model", "text", "Architecture: vcgan-lite-v1 (default, the shipped design), vcgan-lite-v1c (classification head), vcgan-lite-v1k (v1c with a carry path for the colour recurrence), vcgan-lite-v1g (v1c with a gate that holds the placeholder's colour), vcgan-lite-v1gk (its gate told which shots have a key frame), vcgan-lite-v1gm (v1gk keeping the mixed colour's magnitude), vcgan-lite-v1-l1 / -v1-l2 / -v1c-l1 / -v1c-l2 (v1 and v1c on the EfficientNet-Lite1 / Lite2 encoder), vcgan-lite (v0.4 U-Net), vcgan (the paper) or tiny / tiny-v1."),
    TrainOption("--init", "init", "path", "Start from a run, checkpoint or exported model (a fine-tune, or stage 2 from stage 1)."),
    TrainOption("--resnet50-in", "resnet50_in", "path", "ImageNet ResNet-50-IN checkpoint for the vcgan extractors."),
    TrainOption("--no-pretrained", "pretrained", "off", "Do not initialise the extractors from ImageNet."),
    TrainOption("--freeze-extractors", "freeze_extractors", "on", "Keep the extractors' pretrained backbones fixed (about 1.5x faster on a CPU)."),
    TrainOption("--freeze-norm", "freeze_norm", "on", "Keep every BatchNorm's running statistics (the --init model's) while the weights train, so a fine-tune starts from the very network it forks (vcgan-lite-v1 designs)."),
    TrainOption("--raw-loss", "keep_luma", "off", "Score the network's raw RGB (the paper's) instead of its colour on the source's own luma, which is what vcgan outputs."),
    TrainOption("--size", "size", "int", "Crop size: a multiple of 64, at least 128 (default 256).", 128, 2048),
    TrainOption("--batch-size", "batch_size", "int", "Default 16 (stage 1) / 4 (stage 2).", 1),
    TrainOption("--steps", "steps", "int", "Optimiser steps in total.", 1),
    TrainOption("--lr", "lr_g", "float", "Generator learning rate (default 2e-4 / 5e-5).", 0),
    TrainOption("--lr-d", "lr_d", "float", "Critic learning rate (default 5e-5).", 0),
    TrainOption("--lr-halve-every", "lr_halve_every", "int", "Halve the learning rates every N steps.", 1),
    TrainOption("--group-power", "group_power", "float", "Draw photo collections (folders) with probability ~ size^P: 1 (default) every photo alike, 0 every collection alike.", 0, 1),
    TrainOption("--critic-width", "critic_width", "int", "Stage 2: the PatchGAN critic's base width (default 32); 16 is ~4x cheaper on a CPU.", 1),
    TrainOption("--critic-warmup", "critic_warmup", "int", "Stage 2: train only the critic for the first STEPS steps (the generator stays as it is), so a fresh critic on a trained generator starts out able to judge its colour.", 0, metavar="STEPS"),
    TrainOption("--skip-fusion", "skip_fusion", "switch", "Fuse the global extractor's 1/16 and 1/8 features into the decoder too (default: on for vcgan-lite, off for the paper's vcgan)."),
    TrainOption("--rebalance", "rebalance", "float", "Weigh the colour loss's pixels by the rarity of their true colour (Zhang et al. 2016's class rebalancing): 0 off (default, the paper), 0.5 Zhang et al.'s; more vivid colour for some accuracy.", 0, 1, True, metavar="MIX"),
    TrainOption("--rebalance-by", "rebalance_by", "choice", "What --rebalance counts: the (Cb, Cr) colour (default, Zhang et al.'s; rare hues count more) or only its magnitude (saturated pixels count more, whatever their hue).", choices=("colour", "chroma")),
    TrainOption("--ema-decay", "ema_decay", "float", "Keep a moving average of the generator's weights with this decay (e.g. 0.999; default 0, off); validation, samples and export use it.", 0, 1, True),
    TrainOption("--frames", "frames", "int", "Stage 2: consecutive frames per sample (default 5).", 2, 16),
    TrainOption("--colour-recurrence", "colour_recurrence", "float", "Stage 2: share of clips unrolled with the colour recurrence (the warped previous colour output as the placeholder; `colorize --recurrence colour`). Default 0, the paper's gray recurrence only.", 0, 1, metavar="SHARE"),
    TrainOption("--train-only", "train_only", "choice", "carry: train only the colour recurrence's own parts (vcgan-lite-v1k's carry path, vcgan-lite-v1g's gate), everything else frozen, so its gray recurrence stays the --init model's exactly.", choices=("carry",)),
    TrainOption("--reference", "reference", "float", "Stage 2: share of clips whose first frame is given as a key frame (the true colour frame, as `colorize --reference` gives it), then carried by the colour recurrence. Default 0.", 0, 1, metavar="SHARE"),
    TrainOption("--perceptual", "perceptual", "choice", "Perceptual loss network (auto: VGG-16 if its weights are cached, else EfficientNet-Lite0).", choices=("auto", "vgg16", "efficientnet-lite0", "none")),
    TrainOption("--workers", "workers", "int", "Data-loading worker processes (default 2).", 0),
    TrainOption("--checkpoint-every", "checkpoint_every", "int", "Save a checkpoint every N steps (default 500).", 1),
    TrainOption("--val-every", "val_every", "int", "Validate every N steps (default 1000).", 1),
    TrainOption("--seed", "seed", "int", "Random seed of the run (default 0)."),
)


def option_settings(values: dict) -> dict:
    """The TrainConfig settings given by options: ``values`` maps each option's field to what
    the command line gave (None, an empty list or an unset flag: not given)."""
    out = {}
    for o in TRAIN_OPTIONS:
        v = values.get(o.field)
        if o.kind in ("on", "off"):
            if v:
                out[o.field] = o.kind == "on"
        elif o.kind == "paths":
            if v:
                out[o.field] = [str(x) for x in v]
        elif v is not None:
            out[o.field] = str(v) if o.kind == "path" else v
    return out


@dataclass
class StepReport:
    step: int
    steps: int
    losses: dict[str, float]
    lr: float
    samples_per_s: float
    eta_s: float | None
    event: str | None = None  # e.g. "checkpoint", "validation"
    validation: dict | None = None


class Unroll(nn.Module):
    """The generator run over a clip exactly as at inference: ``s_1 = G(x_1, x_1)``, then
    ``s_t = G(x_t, W(O_{t-1→t}, gray(s_{t-1})))`` (the paper's gray recurrence). One module,
    so DistributedDataParallel sees one forward per backward.

    ``colour`` (B,) bool: those clips run the colour recurrence, ``s_t = G(x_t, W(O, s_{t-1}))``.
    ``reference`` (B,) bool with ``first`` (B, 3, H, W): those clips' first frame is given, as
    a user's key frame is at inference (``s_1`` = the true colour frame, not the network's
    guess), and they run the colour recurrence from it."""

    def __init__(self, generator: Generator, warp):
        super().__init__()
        self.generator = generator
        self.warp = warp

    def forward(self, gray: torch.Tensor, flows: torch.Tensor | None, pairs, colour: torch.Tensor | None = None,
                reference: torch.Tensor | None = None, first: torch.Tensor | None = None) -> list[torch.Tensor]:
        from ..colour import rgb_to_gray_tensor

        config = getattr(self.generator, "config", None)
        keys = bool(getattr(config, "chroma_gate_keys", False))
        # the gate of such a model is told which clips carry a key frame (+1) and which not (-1),
        # a fourth placeholder plane, as runtime.Colorizer tells it
        keyed = None
        if keys:
            has_key = reference if reference is not None else torch.zeros(gray.shape[0], dtype=torch.bool, device=gray.device)
            keyed = torch.where(has_key[:, None, None, None], 1.0, -1.0).to(gray.dtype).expand(-1, 1, *gray.shape[-2:])
        s = self.generator(gray[:, 0], gray[:, 0])
        if reference is not None and bool(reference.any()):
            s = torch.where(reference[:, None, None, None], first.to(s.dtype), s)
            colour = reference if colour is None else (colour | reference)
        outputs = [s]
        for t in range(1, gray.shape[1]):
            k = pairs.index((t - 1, t))
            if colour is None or not bool(colour.any()):
                placeholder = self.warp(rgb_to_gray_tensor(outputs[-1]), flows[:, k])
            else:
                warped = self.warp(outputs[-1], flows[:, k])  # warping is per channel: gray(W(s)) = W(gray(s))
                placeholder = torch.where(colour[:, None, None, None], warped, rgb_to_gray_tensor(warped).expand_as(warped))
                if keyed is not None:
                    placeholder = torch.cat((placeholder, keyed.to(warped.dtype)), 1)
            outputs.append(self.generator(gray[:, t], placeholder))
        return outputs


def _numpy_globals() -> list:
    """The numpy names a checkpoint's RNG state needs (an array and its dtype), allowed to the
    weights-only unpickler: nothing else in a checkpoint may name a Python callable."""
    multiarray = getattr(np, "_core", None) or np.core
    dtype = type(np.dtype(np.uint32))
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, dtype]


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """A training checkpoint (``.pt``), read with PyTorch's weights-only unpickler: tensors,
    numbers, strings and containers, plus numpy arrays. A file naming any other Python object
    (a pickle that would run code when loaded) is refused without running it."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VcganError(
            f"{path}: refused to load: it is not a plain vcgan checkpoint (it names Python objects "
            f"that loading would run: {first[:160]})"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise VcganError(f"{path}: not a readable vcgan checkpoint ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(state, dict) or "generator" not in state:
        raise VcganError(f"{path}: not a vcgan training checkpoint")
    return state


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) under torchrun, else (0, 1, 0)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def architecture(model: str, skip_fusion: bool, colour_recurrence: bool = False) -> ModelConfig:
    """The generator a run trains: its ``model`` variant, with the run's ``skip_fusion``, and
    marked as trained for the colour recurrence where the run trains it."""
    return dataclasses.replace(VARIANTS[model], skip_fusion=bool(skip_fusion), colour_recurrence=bool(colour_recurrence))


def run_architecture(settings: dict) -> ModelConfig:
    """:func:`architecture` from a run's saved settings (``config.json`` or a checkpoint's)."""
    colour = bool(settings.get("colour_recurrence", 0) or settings.get("reference", 0))
    return architecture(settings["model"], settings.get("skip_fusion", False), colour)


def load_generator_state(source: str | os.PathLike) -> dict:
    """Generator weights from a run folder (best, else last checkpoint), a ``.pt`` checkpoint,
    or an exported model folder."""
    path = Path(source)
    if path.is_dir() and (path / "checkpoints" / "last.pt").is_file():
        best = path / "best" / "model.safetensors"
        if best.is_file():
            path = best.parent
        else:
            path = path / "checkpoints" / "last.pt"
    if path.suffix == ".pt":
        state = load_checkpoint(path)
        return state.get("generator_ema") or state["generator"]
    from ..weights import load_weights

    return load_weights(str(path) if "/" in str(path) else f"./{path}").generator.state_dict()


def _lock_run(folder: Path):
    """Hold an exclusive lock on ``folder`` for this process's life: two runs writing one
    folder would interleave their checkpoints and logs."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return None
    handle = open(folder / ".lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise VcganError(f"{folder}: another `vcgan train` is using this run folder") from None
    return handle


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        overrides: dict | None = None,
        on_step: Callable[[StepReport], None] | None = None,
        on_message: Callable[[str], None] | None = None,
    ):
        from ..runtime import resolve_device
        from . import data as D

        self.rank, self.world, local_rank = _distributed()
        self.on_step = (on_step if self.rank == 0 else None) or (lambda r: None)
        self.say = (on_message if self.rank == 0 else None) or (lambda m: None)
        self.out = Path(config.out)
        if resume:
            # the run's own settings, changed only where the caller says so (e.g. more steps)
            try:
                saved = json.loads((self.out / "config.json").read_text())
            except (OSError, json.JSONDecodeError):
                raise VcganError(f"{self.out}: not a training run (no readable config.json)") from None
            saved.setdefault("keep_luma", False)  # runs from before the setting compared raw RGB
            saved.setdefault("skip_fusion", False)  # ... and had no skip fusion
            config = dataclasses.replace(TrainConfig(**saved), **(overrides or {}))
        self.config = c = config.resolved()
        device = resolve_device(c.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        self.device = device
        if c.precision == "fp16":
            raise VcganError("training in fp16 needs loss scaling that vcgan does not do; use --precision bf16 (or auto)")
        if c.precision == "bf16" and device.type != "cuda":
            raise VcganError("bf16 training is supported on CUDA only; use --precision fp32 (or auto) on the CPU")
        self.autocast = device.type == "cuda" and c.precision in ("auto", "bf16")
        self.amp_dtype = torch.bfloat16
        torch.manual_seed(c.seed)

        # models
        self.generator = build_generator(run_architecture(dataclasses.asdict(c))).to(device)
        if not resume:
            self._initialise(c)
        for ext in (self.generator.gfe, self.generator.pfe):
            if hasattr(ext, "freeze_bn"):  # ImageNet BatchNorm statistics stay fixed, in every run
                ext.freeze_bn = True
        if c.train_only == "carry":
            self.generator.requires_grad_(False)
            for part in self.generator.colour_parts():
                part.requires_grad_(True)
            self.generator.frozen_trunk = True  # its train() keeps the rest in eval mode
        if c.freeze_norm:
            self.generator.frozen_norm = True  # its train() keeps every BatchNorm in eval mode
        if c.freeze_extractors:
            for ext in (self.generator.gfe, self.generator.pfe):
                if self.generator.config.mainstream == "unet" or hasattr(ext, "backbone"):  # v1's lean PFE is not one
                    getattr(ext, "backbone", ext).requires_grad_(False)
        self.pairs = D.flow_pairs(c.frames) if c.stage == 2 else []
        self.unroll = Unroll(self.generator, D.warp_tensor).to(device)
        # stage 2's WGAN critic; none with --w-gan 0 (the temporal losses alone, at a third of the cost)
        self.critic = Discriminator(c.critic_width).to(device) if c.stage == 2 and c.w_gan > 0 else None
        self.ema = self._new_ema() if c.ema_decay > 0 else None
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(trainable, lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = (
            torch.optim.Adam(self.critic.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2)) if self.critic else None
        )
        self.perceptual = build_perceptual(c.perceptual) if c.w_perceptual > 0 else None
        if self.perceptual is not None:
            self.perceptual.to(device)
        self.rarity = ColourRarity(c.rebalance, device, by=c.rebalance_by) if c.rebalance > 0 else None
        self.bins = getattr(self.generator, "bins", None)  # a classification chroma head's grid
        self.class_rarity = (
            ColourRarity(c.class_rebalance, device) if self.bins is not None and c.class_rebalance > 0 else None
        )
        self.step = 0
        self._stop_reason: str | None = None  # set by request_stop
        self.best: float | None = None
        if resume:
            self._load(self.out / "checkpoints" / "last.pt")
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.unroll_ddp = DDP(self.unroll, device_ids=ids)
            self.critic_ddp = DDP(self.critic, device_ids=ids) if self.critic else None
        else:
            self.unroll_ddp, self.critic_ddp = self.unroll, self.critic

        # data
        if c.stage == 1:
            self.dataset = D.ImageDataset(c.data, size=c.size, seed=c.seed, group_power=c.group_power)
        else:
            self.dataset = D.VideoDataset(
                c.data,
                size=c.size,
                frames=c.frames,
                seed=c.seed,
                synthetic_from=c.synthetic_data or None,
                synthetic_ratio=c.synthetic if c.synthetic_data else 0.0,
                group_power=c.group_power,
            )
        self.loader = D.make_loader(
            self.dataset, c.batch_size, self.step, c.workers, rank=self.rank, world_size=self.world, seed=c.seed
        )
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_run(self.out)
            files.write_atomic(self.out / "config.json", json.dumps(dataclasses.asdict(c), indent=2) + "\n", overwrite=True)
            described = getattr(self.dataset, "describe", lambda: f"{type(self.dataset).__name__}")()
            self.say(f"data: {described}")
            self.say(f"perceptual loss: {getattr(self.perceptual, 'name', 'none')}")
            self.say(f"device: {device}{' bf16 autocast' if self.autocast else ' fp32'}, {self.world} process(es)")

    # -- set-up -----------------------------------------------------------------------------
    def _initialise(self, c: TrainConfig) -> None:
        if c.init:
            state = load_generator_state(c.init)
            own = self.generator.state_dict()
            # a tensor whose shape differs (a regression head forked into a classification head)
            # starts fresh, like one the source lacks; anything the model does not have is refused
            reshaped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
            state = {k: v for k, v in state.items() if k not in reshaped}
            missing, unexpected = self.generator.load_state_dict(state, strict=False)
            if unexpected or len(missing) == len(own):
                raise VcganError(f"{c.init}: these weights are not a {c.model} generator")
            fresh = sorted(set(missing))
            names = ", ".join(fresh[:4]) + (", ..." if len(fresh) > 4 else "")
            self.say(f"initialised from {c.init}" + (f"; starting fresh (not in it, or another shape): {len(fresh)} tensors ({names})" if fresh else ""))
            return
        arch: ModelConfig = VARIANTS[c.model]
        if c.pretrained and arch.extractor.startswith("efficientnet-lite"):
            for ext in (self.generator.gfe, self.generator.pfe):
                if hasattr(ext, "load_imagenet"):  # not v1's lean PFE
                    ext.load_imagenet()
            self.say(f"extractors: ImageNet EfficientNet-Lite{arch.extractor.removeprefix('efficientnet-lite')}")
        elif arch.extractor == "resnet50-in" and c.resnet50_in:
            state = torch.load(c.resnet50_in, map_location="cpu", weights_only=True)
            for ext in (self.generator.gfe, self.generator.pfe):
                ext.load_state_dict(state, strict=False)
            self.say(f"extractors: ResNet-50-IN from {c.resnet50_in}")

    def _new_ema(self) -> Generator:
        """A copy of the generator that follows its weights as a moving average."""
        import copy

        ema = copy.deepcopy(self.generator).eval()
        ema.requires_grad_(False)
        return ema

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.config.ema_decay
        ema = dict(self.ema.named_parameters())
        params = [(ema[k], p) for k, p in self.generator.named_parameters()]
        torch._foreach_lerp_([e for e, _ in params], [p.detach() for _, p in params], 1.0 - d)
        ema_buffers = dict(self.ema.named_buffers())
        for k, b in self.generator.named_buffers():  # BatchNorm statistics: the current ones
            ema_buffers[k].copy_(b)

    @property
    def model(self) -> Generator:
        """The weights to judge and ship: the moving average when kept, else the generator."""
        return self.ema if self.ema is not None else self.generator

    def _lr(self, base: float) -> float:
        return base * 0.5 ** (self.step // self.config.lr_halve_every)

    # -- checkpoints ------------------------------------------------------------------------
    def _save(self) -> None:
        if self.rank != 0:
            return
        folder = self.out / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "config": dataclasses.asdict(self.config),
            "generator": self.generator.state_dict(),
            "generator_ema": self.ema.state_dict() if self.ema is not None else None,
            "critic": self.critic.state_dict() if self.critic else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d else None,
            "best": self.best,
            "colour_counts": self.rarity.state_dict() if self.rarity is not None else None,
            "rng": _rng_state(),
        }
        with files.atomic_path(folder / "last.pt", overwrite=True) as tmp:
            torch.save(state, tmp)
        numbered = folder / f"step-{self.step:07d}.pt"
        if numbered.exists():
            numbered.unlink()
        try:
            os.link(folder / "last.pt", numbered)  # a second name, no second copy
        except OSError:  # file systems without hard links
            import shutil

            shutil.copyfile(folder / "last.pt", numbered)

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise VcganError(f"{path.parent.parent}: no checkpoint to resume from ({path} is missing)")
        state = load_checkpoint(path, self.device)
        self.generator.load_state_dict(state["generator"])
        if self.ema is not None:
            self.ema.load_state_dict(state.get("generator_ema") or state["generator"])  # a run that starts averaging now
        if self.critic is not None and state["critic"] is not None:
            self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_d is not None and state["opt_d"] is not None:
            self.opt_d.load_state_dict(state["opt_d"])
        self.step = state["step"]
        self.best = state.get("best")
        counts = state.get("colour_counts")
        if self.rarity is not None and counts is not None and counts.get("by", "colour") == self.rarity.by:
            # no "by": saved before --rebalance-by, so colour; turned on or counting otherwise now: afresh
            self.rarity.load_state_dict(counts)
        _set_rng_state(state["rng"])
        self.say(f"resumed at step {self.step}")

    # -- one step ---------------------------------------------------------------------------
    def _amp(self):
        import contextlib

        return torch.autocast("cuda", dtype=self.amp_dtype) if self.autocast else contextlib.nullcontext()

    def train_step(self, batch: dict, sync: bool = True) -> dict[str, float]:
        """One optimiser step on ``batch`` (``gray``, ``rgb`` and for stage 2 ``flows``).
        Returns the loss terms as floats, or with ``sync=False`` as detached tensors on the
        device, so a caller feeding batches made on a GPU need not wait for the step."""
        c = self.config
        for group in self.opt_g.param_groups:
            group["lr"] = self._lr(c.lr_g)
        gray = batch["gray"].to(self.device, non_blocking=True)
        rgb = batch["rgb"].to(self.device, non_blocking=True)
        if c.stage == 1:
            gray, rgb = gray[:, None], rgb[:, None]
            flows = None
        else:
            flows = batch["flows"].to(self.device, non_blocking=True)
        losses: dict[str, torch.Tensor] = {}
        warmup = self.critic is not None and self.step < c.critic_warmup  # only the critic learns
        if self.bins is not None:
            self.generator.logits_log = []  # each frame's chroma logits, for the class loss
        colour = reference = None
        if c.stage == 2 and (c.colour_recurrence or c.reference):
            # each clip's recurrence drawn from the run's seeded RNG (checkpointed: a resume repeats it)
            b = gray.shape[0]
            reference = (torch.rand(b) < c.reference).to(self.device)
            colour = (torch.rand(b) < c.colour_recurrence).to(self.device)
        with self._amp(), torch.set_grad_enabled(not warmup):
            unroll = self.unroll if warmup else self.unroll_ddp
            modes = () if colour is None else (colour, reference, rgb[:, 0])
            outputs = unroll(gray, flows, self.pairs, *modes)
            fake = torch.stack(outputs, 1).flatten(0, 1).float()
        logits = None
        if self.bins is not None:
            logits = torch.stack(self.generator.logits_log, 1).flatten(0, 1) if self.generator.logits_log else None
            self.generator.logits_log = None
        real = rgb.flatten(0, 1)
        if c.target_saturation != 1.0:
            y = rgb_to_gray_tensor(real)
            boosted = (y + c.target_saturation * (real - y)).clamp(-1.0, 1.0)
            if reference is not None and bool(reference.any()):
                # a key-framed clip is to carry the key frame's own colours, not more: a boosted
                # target there teaches "the placeholder's colour, x1.2", which the colour
                # recurrence would compound frame after frame
                keep = reference.repeat_interleave(gray.shape[1])[:, None, None, None]
                real = torch.where(keep, real, boosted)
            else:
                real = boosted
        flat_gray = gray.flatten(0, 1)
        if c.keep_luma:
            # The pipeline shows the user the output's chroma on the source's luma; adding the
            # luma difference to R, G and B alike changes Y and nothing else (Cb, Cr stay).
            luma_error = flat_gray - rgb_to_gray_tensor(fake)
            losses["luma"] = luma_error.abs().mean()
            fake = fake + luma_error
            outputs = list(fake.view(*gray.shape[:2], *fake.shape[1:]).unbind(1))  # the same, per frame

        if self.critic is not None:  # WGAN critic step, spectral norm in D
            for group in self.opt_d.param_groups:
                group["lr"] = self._lr(c.lr_d)
            self.critic.requires_grad_(True)
            with self._amp():
                scores = self.critic_ddp(torch.cat((flat_gray, flat_gray)), torch.cat((fake.detach(), real)))
            s_fake, s_real = scores.float().chunk(2)
            loss_d = s_fake.mean() - s_real.mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            losses["critic"] = loss_d.detach()
            self.critic.requires_grad_(False)
            if warmup:
                self.step += 1
                return {k: float(v.detach()) for k, v in losses.items()} if sync else {k: v.detach() for k, v in losses.items()}

        error = (fake - real).abs()
        if self.rarity is not None:
            error = error * self.rarity(real)
        losses["l1"] = error.mean()
        with self._amp():
            losses["perceptual"] = perceptual_loss(self.perceptual, fake, real).float()
        total = c.w_l1 * losses["l1"] + c.w_perceptual * losses["perceptual"]
        if logits is not None:
            losses["class"] = class_loss(logits, real, self.bins, self.class_rarity)
            total = total + c.w_class * losses["class"]
        if c.keep_luma:
            total = total + c.w_l1 * losses["luma"]
        if self.critic is not None:
            with self._amp():
                losses["gan"] = -self.critic(flat_gray, fake).float().mean()
            total = total + c.w_gan * losses["gan"]
        if c.stage == 2:
            from .data import warp_tensor

            losses["short_term"], losses["long_term"] = temporal_losses(
                [o.float() for o in outputs], gray, flows, self.pairs, c.alpha, warp_tensor
            )
            total = total + c.w_short * losses["short_term"] + c.w_long * losses["long_term"]
        losses["total"] = total
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if self.ema is not None:
            self._update_ema()
        self.step += 1
        if not sync:
            return {k: v.detach() for k, v in losses.items()}
        return {k: float(v.detach()) for k, v in losses.items()}

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> dict | None:
        c = self.config
        if self.rank != 0 or not c.val:
            return None
        from ..bench import evaluate_quality
        from ..runtime import Colorizer
        from ..weights import LoadedWeights, save_weights

        judged = self.model
        judged.eval()
        try:
            model = Colorizer(LoadedWeights(judged.config, judged, "training", True), self.device, torch.float32)
            report = evaluate_quality(
                c.val, model=model, metrics=("psnr", "ssim", "warp-error"), size=c.size,
                max_frames=c.val_frames, max_clips=c.val_clips,
            )
        finally:
            self.generator.train()
            if self.ema is not None:
                self.ema.eval()
        mean = report["rows"][report["method"]]["mean"]
        value = mean.get(c.best_metric)
        better = value is not None and math.isfinite(value) and (  # a diverged model is never the best
            self.best is None or (value < self.best if c.best_metric == "warp-error" else value > self.best)
        )
        if better:
            self.best = value
            save_weights(self.model, self.out / "best")
            files.write_atomic(self.out / "best" / "metrics.json", json.dumps({"step": self.step, **report}, indent=2) + "\n", overwrite=True)
        return {"step": self.step, "best": better, **{k: v for k, v in mean.items()}}

    def save_samples(self, batch: dict) -> None:
        if self.rank != 0:
            return
        import cv2

        from . import data as D

        judged = self.model
        judged.eval()
        with torch.no_grad():
            gray = batch["gray"][:4].to(self.device)
            rgb = batch["rgb"][:4]
            if gray.dim() == 5:  # a clip: its last frame, recurrently
                outs = Unroll(judged, D.warp_tensor)(gray, batch["flows"][:4].to(self.device), self.pairs)
                pred, gray, rgb = outs[-1], gray[:, -1], rgb[:, -1]
            else:
                pred = judged(gray, gray)
        self.generator.train()
        rows = [torch.cat((gray.expand(-1, 3, -1, -1).cpu(), pred.float().cpu(), rgb), 3)]
        grid = ((torch.cat(rows[0].unbind(0), 1) + 1) * 127.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
        folder = self.out / "samples"
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"step-{self.step:07d}.jpg"), grid[..., ::-1])

    # -- the loop ---------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask :meth:`run` to stop cleanly after the step in progress (with a checkpoint).
        Safe to call from a signal handler: it only sets a flag."""
        self._stop_reason = reason

    def _stop_after_this_step(self, started: float, time_limit_s: float | None) -> str | None:
        """Why to stop now (a :meth:`request_stop` reason, or ``"time limit"``), else None.
        Every process follows rank 0, so all stop after the same step."""
        reason = self._stop_reason
        if reason is None and time_limit_s is not None and time.perf_counter() - started >= time_limit_s:
            reason = "time limit"
        if self.world > 1:  # one small broadcast a step; the loss read-out syncs each step anyway
            reasons = (None, "time limit", self._stop_reason or "stop requested")
            t = torch.tensor([float(reasons.index(reason) if reason in reasons[:2] else 2)], device=self.device)
            dist.broadcast(t, 0)
            reason = reasons[int(t.item())]
        return reason

    def run(self, time_limit_s: float | None = None) -> dict:
        """Train to ``config.steps``. With ``time_limit_s``, stop cleanly after the first step
        that ends past that many seconds of this call, or after the step in progress when
        :meth:`request_stop` is called; either way a checkpoint is saved to resume from and
        the result's ``stopped`` gives the reason (None when all the steps were run)."""
        c = self.config
        if time_limit_s is not None and not time_limit_s >= 0:
            raise VcganError(f"time limit must be a non-negative number of seconds, got {time_limit_s!r}")
        self.generator.train()
        log = open(self.out / "log.jsonl", "a") if self.rank == 0 else None
        started, first_step = time.perf_counter(), self.step
        last: dict[str, float] = {}
        stopped = None
        try:
            for batch in self.loader:
                if self.step >= c.steps:
                    break
                last = self.train_step(batch)
                elapsed = time.perf_counter() - started
                done = self.step - first_step
                rate = done * c.batch_size * self.world / elapsed if elapsed > 0 else 0.0
                eta = (c.steps - self.step) * elapsed / done if done else None
                event, val = None, None
                if self.step < c.steps:
                    stopped = self._stop_after_this_step(started, time_limit_s)
                if self.step % c.checkpoint_every == 0 or self.step == c.steps or stopped:
                    self._save()
                    self.save_samples(batch)
                    event = "checkpoint"
                if c.val and (self.step % c.val_every == 0 or self.step == c.steps):
                    val = self.validate()
                    if val and val["best"]:
                        self._save()  # keep `best` in the checkpoint too
                    event = "validation"
                if self.world > 1 and event:
                    dist.barrier()
                if log and (self.step % c.log_every == 0 or event or self.step == c.steps):
                    entry = {"step": self.step, "lr": self._lr(c.lr_g), "elapsed_s": round(elapsed, 2),
                             "samples_per_s": round(rate, 3), **last}
                    log.write(json.dumps({**entry, **({"val": val} if val else {})}) + "\n")
                    log.flush()
                self.on_step(StepReport(self.step, c.steps, last, self._lr(c.lr_g), rate, eta, event, val))
                if stopped:
                    break
        except KeyboardInterrupt:
            if self.step > first_step and self.step % c.checkpoint_every:
                self._save()  # keep the work done since the last checkpoint
            raise
        finally:
            if log:
                log.close()
        if self.step < c.steps and stopped is None:
            raise VcganError("the data loader stopped before the last step")
        return {"step": self.step, "losses": last, "best": self.best, "out": str(self.out), "stopped": stopped}


def export(
    run: str | os.PathLike, out: str | os.PathLike, which: str = "best", overwrite: bool = False,
    average: bool = True,
) -> tuple[Path, str, str]:
    """Write a run's generator as ``config.json`` + fp16 ``model.safetensors``; returns the
    folder, the SHA-256 of the weights and what was exported. A checkpoint's moving average of
    the weights is exported where the run kept one, unless ``average`` is False."""
    from ..weights import check_model_folder, load_weights, save_weights

    run, out = Path(run), check_model_folder(out, overwrite)
    best = run / "best" / "model.safetensors"
    if which == "best" and best.is_file():
        try:
            averaged = json.loads((run / "config.json").read_text()).get("ema_decay", 0) > 0
        except (OSError, json.JSONDecodeError):
            averaged = False
        if averaged and not average:
            raise VcganError(
                f"{run / 'best'} holds the moving average of the weights; for the raw ones export a checkpoint "
                "(--checkpoint last or step-N.pt)"
            )
        generator = load_weights(str(best)).generator
        used = f"best model ({run / 'best'}{', moving average of the weights' if averaged else ''})"
    else:
        if which in ("best", "last"):
            ckpt = run / "checkpoints" / "last.pt"
        else:
            ckpt = Path(which) if Path(which).is_file() else run / "checkpoints" / which
        if not ckpt.is_file():
            raise VcganError(f"{run}: no checkpoint to export ({ckpt} is missing)")
        state = load_checkpoint(ckpt)
        generator = build_generator(run_architecture(state["config"]))
        averaged = average and state.get("generator_ema") is not None
        generator.load_state_dict(state["generator_ema"] if averaged else state["generator"])
        used = (
            f"step {state['step']} ({ckpt}{', moving average of the weights' if averaged else ''})"
            + (" — the run has no validated best model" if which == "best" else "")
        )
    sha = save_weights(generator, out)
    return out, sha, used
