"""vcgan: colourise black-and-white films and photos with VCGAN (Zhao et al., IEEE TMM).

Library use::

    import vcgan_cli as vcgan
    model = vcgan.load_model("tiny")              # or a name, ./folder, hf-hub:owner/repo
    vcgan.colorize_video("film.mp4", "film-colour.mp4", model=model)
    vcgan.colorize_image("photo.jpg", "photo-colour.jpg", model=model)

Names are imported on first use, so ``vcgan --help`` does not wait for PyTorch.
"""
import os as _os

# The video pipeline runs decoding, optical flow and encoding in threads beside PyTorch's
# own. OpenMP's default busy-waiting then fights those threads for the cores: measured on
# 2 cores, 404 ms vs 58 ms per tiny-model frame. Passive waiting removes that penalty. It
# only takes effect if set before PyTorch is first imported, and a user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import MediaError, VcganError, WeightsError

try:
    __version__ = version("vcgan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "Colorizer": "runtime",
    "load_model": "runtime",
    "ImageResult": "pipeline",
    "Progress": "pipeline",
    "VideoResult": "pipeline",
    "colorize_image": "pipeline",
    "colorize_video": "pipeline",
}

__all__ = ["MediaError", "VcganError", "WeightsError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
