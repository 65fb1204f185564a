"""``vcgan models``."""
from __future__ import annotations


from rich.console import Console

from .common import (
    main,
)


@main.command("models")
def list_models():
    """List the models: shipped weights and the architectures."""
    from ..models import VARIANTS, build_generator, count_parameters
    from ..weights import DEFAULT_MODEL, REGISTRY, weights_dir

    out = Console(highlight=False)
    for name, cfg in VARIANTS.items():
        shipped = name in REGISTRY and (weights_dir() / REGISTRY[name].folder).is_dir()
        params = count_parameters(build_generator(cfg)) / 1e6
        status = "shipped weights" if shipped else ("random weights" if name == "tiny" else "no weights shipped yet")
        default = " (default)" if name == DEFAULT_MODEL else ""
        out.print(f"{name:<12}{default:<10} {params:7.2f} M params, {cfg.extractor} extractors — {status}")
