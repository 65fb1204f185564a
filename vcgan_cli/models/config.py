"""Architecture configs: what a ``config.json`` beside ``model.safetensors`` holds."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import WeightsError

EXTRACTORS = ("resnet50-in", "efficientnet-lite0", "tiny")
FORMAT_VERSION = 2  # 2: skip_fusion


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
    format_version: int = dataclasses.field(default=FORMAT_VERSION, compare=False)  # of the file, not the network

    def __post_init__(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise WeightsError(f"config: unknown extractor {self.extractor!r} (known: {', '.join(EXTRACTORS)})")
        if not 0 <= self.nonlocal_blocks <= 3:
            raise WeightsError(f"config: nonlocal_blocks must be 0..3, got {self.nonlocal_blocks}")
        if self.base_width < 1 or self.extractor_channels < 1:
            raise WeightsError("config: widths must be positive")
        if self.format_version > FORMAT_VERSION:
            raise WeightsError(
                f"config: format version {self.format_version} is newer than this vcgan understands; upgrade vcgan"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.skip_fusion:  # readable by the vcgan versions before skip fusion, as it was
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
}
