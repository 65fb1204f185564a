"""Architecture configs: what a ``config.json`` beside ``model.safetensors`` holds."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import WeightsError

EXTRACTORS = ("resnet50-in", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "tiny")
FORMAT_VERSION = 9  # 2: skip_fusion; 3: mainstream "encoder" (vcgan-lite v1) and its fields; 4: colour_recurrence; 5: the gate's keys and blend; 6: the gate's cap; 7: the "spread" blend; 8: the gate's guess; 9: the EfficientNet-Lite1/2 extractors
#: Extractors that vcgan before format 9 did not know: a config using one says format 9, so older vcgan asks to be upgraded.
FORMAT_9_EXTRACTORS = ("efficientnet-lite1", "efficientnet-lite2")
MAINSTREAMS = ("unet", "encoder")
CHROMA_HEADS = ("regress", "classes")
GATE_BLENDS = ("linear", "magnitude", "spread", "magnitude-spread")
GATE_GUESSES = ("colour", "gray")
#: The fields of the "encoder" mainstream; written to config.json only for that design, so the
#: U-Net models' files stay readable by the vcgan versions before it.
ENCODER_FIELDS = ("mainstream", "chroma_head", "chroma_scale", "chroma_bins", "anneal_t", "pfe_width", "guide_radius", "guide_eps")


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions of a generator. Saved as JSON next to the weights, so a checkpoint carries
    its own architecture."""

    name: str
    base_width: int = 32
    extractor: str = "resnet50-in"
    extractor_channels: int = 512
    nonlocal_blocks: int = 3
    #: Short side the model was trained at; the default working resolution.
    train_size: int = 256
    #: Also add the global extractor's own 1/16 and 1/8 features into the decoder there
    #: (zero-initialised 1×1 convs), not only its 1/32 features at the bottleneck as in the
    #: paper: pretrained semantics reach the colour at a finer scale (vcgan-lite).
    skip_fusion: bool = False
    #: "unet": the paper's from-scratch U-Net mainstream (RGB out). "encoder": vcgan-lite v1,
    #: the global extractor's own multi-scale features as the encoder, chroma out
    #: (models/chroma.py); base_width is then its decoder's width unit.
    mainstream: str = "unet"
    #: "encoder" only: how the chroma is predicted ("regress": (Cb, Cr) directly; "classes": a
    #: distribution over a chroma_bins² grid, decoded by the annealed mean at anneal_t), at
    #: 1/chroma_scale of the working size, guided up by the luma (guide_radius, guide_eps).
    chroma_head: str = "regress"
    chroma_scale: int = 4
    chroma_bins: int = 16
    anneal_t: float = 0.38
    pfe_width: int = 32
    guide_radius: int = 1
    guide_eps: float = 1e-3
    #: Trained (stage 2) also with the *colour* recurrence: the warped previous colour output,
    #: or a user's reference frame, as the placeholder input, mixed with the paper's warped
    #: grayscale. Only such a model may run ``--recurrence colour`` or take key frames.
    colour_recurrence: bool = False
    #: "encoder" only: a carry path that hands the placeholder's own chroma (and how far its
    #: luma is from the frame's, a cue for where the flow failed) to the chroma head's output,
    #: for the colour recurrence only; zero-initialised so it starts as the network without it
    #: (models/chroma.py: CarryPath).
    chroma_carry: bool = False
    #: "encoder" only: a gate that keeps the placeholder's own chroma in place of the network's
    #: where it can be trusted, per pixel, for the colour recurrence only (models/chroma.py:
    #: CarryGate).
    chroma_gate: bool = False
    #: The gate also told whether the placeholder carries a key frame's colour (a fourth
    #: placeholder plane, 1 in a shot with a user's key frame), so it may hold a key's colour
    #: fully yet re-guess its own where no key was given.
    chroma_gate_keys: bool = False
    #: How the gate mixes the two chromas: "linear" (``g * placeholder + (1 - g) * network``),
    #: "magnitude" (that mix's hue, with the mix of the two magnitudes, so two disagreeing
    #: guesses do not average to gray), "spread" (the linear mix with the frame's spread of
    #: colours kept at the mix of the two spreads; format 7) or "magnitude-spread" (both).
    chroma_gate_blend: str = "linear"
    #: The most the gate may hold of the placeholder's chroma where it carries no key frame
    #: (with chroma_gate_keys; everywhere without): 1 lets it propagate a shot's first guess
    #: for ever; below 1 each frame keeps at least (1 - cap) of the network's own guess, a
    #: moving average of the guesses along the flow with a time constant of 1 / (1 - cap) frames.
    chroma_gate_cap: float = 1.0
    #: What the network's own guess (the chroma the gate mixes with the held one) is made from
    #: on a frame without a key: "colour", the warped colour placeholder itself, as the gate was
    #: trained; "gray", that placeholder's gray, so the guess is the paper's gray recurrence's
    #: exactly and the colour recurrence only adds what the gate holds (format 8).
    chroma_gate_guess: str = "colour"
    format_version: int = dataclasses.field(default=FORMAT_VERSION, compare=False)  # of the file, not the network

    def __post_init__(self) -> None:
        self._check_types()
        if self.extractor not in EXTRACTORS:
            raise WeightsError(f"config: unknown extractor {self.extractor!r} (known: {', '.join(EXTRACTORS)})")
        if not 0 <= self.nonlocal_blocks <= 3:
            raise WeightsError(f"config: nonlocal_blocks must be 0..3, got {self.nonlocal_blocks}")
        if self.base_width < 1 or self.extractor_channels < 1:
            raise WeightsError("config: widths must be positive")
        if self.mainstream not in MAINSTREAMS:
            raise WeightsError(f"config: unknown mainstream {self.mainstream!r} (known: {', '.join(MAINSTREAMS)})")
        for name in ("chroma_carry", "chroma_gate"):
            if getattr(self, name) and self.mainstream != "encoder":
                raise WeightsError(f"config: {name} is a field of the encoder design (mainstream \"encoder\")")
        if (self.chroma_gate_keys or self.chroma_gate_blend != "linear" or self.chroma_gate_cap != 1.0
                or self.chroma_gate_guess != "colour") and not self.chroma_gate:
            raise WeightsError("config: chroma_gate_keys, chroma_gate_blend, chroma_gate_cap and chroma_gate_guess are fields of the gate (chroma_gate)")
        if self.chroma_gate_guess not in GATE_GUESSES:
            raise WeightsError(f"config: unknown chroma_gate_guess {self.chroma_gate_guess!r} (known: {', '.join(GATE_GUESSES)})")
        if not 0.0 <= self.chroma_gate_cap <= 1.0:
            raise WeightsError(f"config: chroma_gate_cap must be in [0, 1], got {self.chroma_gate_cap}")
        if self.chroma_gate_blend not in GATE_BLENDS:
            raise WeightsError(f"config: unknown chroma_gate_blend {self.chroma_gate_blend!r} (known: {', '.join(GATE_BLENDS)})")
        if self.mainstream == "encoder":
            if self.chroma_head not in CHROMA_HEADS:
                raise WeightsError(f"config: unknown chroma_head {self.chroma_head!r} (known: {', '.join(CHROMA_HEADS)})")
            if self.chroma_scale not in (4, 8):
                raise WeightsError(f"config: chroma_scale must be 4 or 8, got {self.chroma_scale}")
            if not 2 <= self.chroma_bins <= 64 or self.pfe_width < 2 or self.guide_radius < 0:
                raise WeightsError("config: chroma_bins must be 2..64, pfe_width at least 2, guide_radius at least 0")
            if not (0 < self.anneal_t <= 10 and 0 < self.guide_eps < 1):
                raise WeightsError("config: anneal_t must be in (0, 10] and guide_eps in (0, 1)")
        if self.format_version > FORMAT_VERSION:
            raise WeightsError(
                f"config: format version {self.format_version} is newer than this vcgan understands; upgrade vcgan"
            )

    #: Largest widths a config may ask for (the shipped models use 16-32 and 256): a file asking
    #: for more would allocate gigabytes before its weights were even compared with it.
    MAX_WIDTH = 128
    MAX_CHANNELS = 2048

    def _check_types(self) -> None:
        """Each field of the type its annotation says (no bool for int, no NaN or infinity),
        before anything is built from it: a hand-edited config.json gets one clear line."""
        import math

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            if kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif kind == "float":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            elif kind == "bool":
                ok = isinstance(value, bool)
            elif kind == "str":
                ok = isinstance(value, str)
            else:
                ok = True
            if not ok:
                raise WeightsError(f"config: {f.name} must be {'a whole number' if kind == 'int' else 'a finite number' if kind == 'float' else 'true or false' if kind == 'bool' else 'a string'}, got {value!r}")
        if self.base_width > self.MAX_WIDTH or self.extractor_channels > self.MAX_CHANNELS or self.pfe_width > self.MAX_WIDTH:
            raise WeightsError(
                f"config: widths above {self.MAX_WIDTH} (base_width, pfe_width) or {self.MAX_CHANNELS} "
                "(extractor_channels) are not a vcgan model; is this config.json edited?"
            )
        if not 64 <= self.train_size <= 4096:
            raise WeightsError(f"config: train_size must be 64..4096, got {self.train_size}")

    def to_dict(self) -> dict[str, Any]:
        data = self._fields()
        if self.extractor in FORMAT_9_EXTRACTORS:
            data["format_version"] = 9
        return data

    def _fields(self) -> dict[str, Any]:
        """The fields to write, with the oldest format version that can read them."""
        data = dataclasses.asdict(self)
        if self.colour_recurrence or self.chroma_carry or self.chroma_gate:  # format 4: only a model that has them says so
            if self.chroma_gate_guess == "colour":  # format 8 only where used
                del data["chroma_gate_guess"]
            if self.chroma_gate_cap == 1.0:  # format 6 only where used
                del data["chroma_gate_cap"]
                data["format_version"] = min(self.format_version, 5)
            if not self.chroma_gate_keys and self.chroma_gate_blend == "linear":  # format 5 only where used
                del data["chroma_gate_keys"], data["chroma_gate_blend"]  # ... so the gate's files before stay as they were
                data["format_version"] = min(self.format_version, 4)
            if not self.chroma_gate:
                del data["chroma_gate"]  # ... and format-4 files written before the gate stay as they were
            if self.chroma_gate_cap != 1.0:  # a cap older vcgan could not honour: it refuses the file
                data["format_version"] = 6
            if self.chroma_gate_blend.endswith("spread"):  # likewise a blend it does not know
                data["format_version"] = 7
            if self.chroma_gate_guess != "colour":
                data["format_version"] = 8
            return data
        del data["colour_recurrence"], data["chroma_carry"], data["chroma_gate"], data["chroma_gate_keys"], data["chroma_gate_blend"], data["chroma_gate_cap"], data["chroma_gate_guess"]  # ... so the files before it stay as they were
        if self.mainstream == "encoder":  # format 3, every field
            data["format_version"] = min(self.format_version, 3)
            return data
        # U-Net models are written as the vcgan versions before the encoder design read them
        for key in ENCODER_FIELDS:
            del data[key]
        data["format_version"] = min(self.format_version, 2)
        if not self.skip_fusion:  # ... and before skip fusion, as it was
            del data["skip_fusion"]
            data["format_version"] = min(self.format_version, 1)
        return data

    def to_json(self) -> str:
        return json.dumps({"architecture": "vcgan-generator", **self.to_dict()}, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        arch = data.pop("architecture", "vcgan-generator")
        if arch != "vcgan-generator":
            raise WeightsError(f"config: architecture {arch!r} is not a vcgan generator")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeightsError(f"config: unknown keys {', '.join(unknown)}; is this a vcgan config.json?")
        try:
            return cls(**data)
        except TypeError as exc:  # a missing "name", wrong types
            raise WeightsError(f"config: {exc}") from None


#: Named architectures. ``vcgan`` is the paper's; ``vcgan-lite`` is the shipped default once
#: trained; ``tiny`` exists so the whole pipeline can be tried and tested without weights.
VARIANTS: dict[str, ModelConfig] = {
    "vcgan": ModelConfig(name="vcgan"),
    "vcgan-lite": ModelConfig(
        name="vcgan-lite", base_width=16, extractor="efficientnet-lite0", extractor_channels=256, skip_fusion=True
    ),
    "tiny": ModelConfig(name="tiny", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=1),
    # vcgan-lite v1 candidates (models/chroma.py); tiny-v1 tests their plumbing
    "vcgan-lite-v1": ModelConfig(
        name="vcgan-lite", base_width=32, extractor="efficientnet-lite0", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="regress",
    ),
    "vcgan-lite-v1c": ModelConfig(
        name="vcgan-lite", base_width=32, extractor="efficientnet-lite0", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="classes",
    ),
    # the same designs on the deeper (Lite1) and deeper, wider (Lite2) ImageNet encoders
    **{f"vcgan-lite-v1{head}-l{n}": ModelConfig(
        name="vcgan-lite", base_width=32, extractor=f"efficientnet-lite{n}", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="classes" if head else "regress",
    ) for head in ("", "c") for n in (1, 2)},
    # v1c with the colour recurrence's carry path (trained for it: stage 2 --colour-recurrence)
    "vcgan-lite-v1k": ModelConfig(
        name="vcgan-lite", base_width=32, extractor="efficientnet-lite0", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="classes", chroma_carry=True,
    ),
    # v1c with the colour recurrence's gate (keeps the placeholder's chroma where it can be trusted)
    "vcgan-lite-v1g": ModelConfig(
        name="vcgan-lite", base_width=32, extractor="efficientnet-lite0", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="classes", chroma_gate=True,
    ),
    # v1g whose gate knows a key frame's shot (fourth placeholder plane); -v1gm also keeps the
    # mixed chroma's magnitude
    "vcgan-lite-v1gk": ModelConfig(
        name="vcgan-lite", base_width=32, extractor="efficientnet-lite0", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="classes", chroma_gate=True, chroma_gate_keys=True,
    ),
    "vcgan-lite-v1gm": ModelConfig(
        name="vcgan-lite", base_width=32, extractor="efficientnet-lite0", extractor_channels=256,
        nonlocal_blocks=0, mainstream="encoder", chroma_head="classes", chroma_gate=True, chroma_gate_keys=True,
        chroma_gate_blend="magnitude",
    ),
    "tiny-v1gm": ModelConfig(
        name="tiny-v1", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=0,
        mainstream="encoder", chroma_head="classes", chroma_bins=4, pfe_width=4, chroma_gate=True,
        chroma_gate_keys=True, chroma_gate_blend="magnitude",
    ),
    # the shipped v1.3's gate settings on the tiny network (a key-aware gate, capped at 0.92 on
    # shots without a key, keeping the frame's spread of colours, its own guess from the gray
    # of the placeholder), for tests (the OpenVINO conversion among them)
    "tiny-v1gs": ModelConfig(
        name="tiny-v1", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=0,
        mainstream="encoder", chroma_head="classes", chroma_bins=4, pfe_width=4, chroma_gate=True,
        chroma_gate_keys=True, chroma_gate_blend="spread", chroma_gate_cap=0.92, chroma_gate_guess="gray",
    ),
    "tiny-v1g": ModelConfig(
        name="tiny-v1", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=0,
        mainstream="encoder", chroma_head="classes", chroma_bins=4, pfe_width=4, chroma_gate=True,
    ),
    "tiny-v1k": ModelConfig(
        name="tiny-v1", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=0,
        mainstream="encoder", chroma_head="classes", chroma_bins=4, pfe_width=4, chroma_carry=True,
    ),
    "tiny-v1": ModelConfig(
        name="tiny-v1", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=0,
        mainstream="encoder", chroma_head="classes", chroma_bins=4, pfe_width=4,
    ),
    "tiny-v1r": ModelConfig(
        name="tiny-v1", base_width=4, extractor="tiny", extractor_channels=8, nonlocal_blocks=0,
        mainstream="encoder", chroma_head="regress", pfe_width=4,
    ),
}
