"""Networks: the VCGAN generator and discriminator, and their named variants."""
from .config import VARIANTS, ModelConfig
from .generator import MULTIPLE, Discriminator, Generator, build_generator
from .stats import count_macs, count_parameters

__all__ = ["VARIANTS", "ModelConfig", "MULTIPLE", "Discriminator", "Generator", "build_generator", "count_macs", "count_parameters"]
