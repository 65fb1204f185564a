"""``vcgan models``."""
from __future__ import annotations


from rich.console import Console

from .common import (
    main,
)


@main.command("models")
def list_models():
    """List the models: the shipped weights (--model NAME), then the architectures that
    `vcgan train --model` and `random:NAME` build."""
    from ..errors import VcganError
    from ..models import VARIANTS, build_generator, count_parameters
    from ..weights import CONFIG_NAME, DEFAULT_MODEL, REGISTRY, read_config, weights_dir

    out = Console(highlight=False)
    out.print("Shipped weights (--model NAME):")
    for name, entry in REGISTRY.items():
        default = " (default)" if name == DEFAULT_MODEL else ""
        path = weights_dir() / entry.folder / CONFIG_NAME
        try:
            cfg = read_config(path)
            size = f"{count_parameters(build_generator(cfg)) / 1e6:5.2f} M params"
        except (OSError, VcganError):
            size = "missing or unreadable"
        out.print(f"  {name}{default}: {size}; {entry.description}")
    out.print("Architectures (vcgan train --model NAME, --model random:NAME):")
    for name, cfg in VARIANTS.items():
        params = count_parameters(build_generator(cfg)) / 1e6
        note = " (random weights, no file: --model tiny)" if name == "tiny" else ""
        out.print(f"  {name:<16} {params:6.2f} M params, {cfg.extractor} extractors{note}")
