"""How the network is run: PyTorch, or OpenVINO on the CPU (faster where installed).

A backend is a callable ``run(x, i) -> RGB`` on the padded network input (torch tensors, as
:class:`~vcgan_cli.runtime.Colorizer` makes them). :class:`OpenVINORunner` converts the
generator once per input shape (a film has one), checks the conversion against PyTorch on a
random input before using it, and caches it on disk keyed by a digest of the weights, so a
changed model is converted afresh and a second run starts at once.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import VcganError

BACKENDS = ("auto", "torch", "openvino")
#: Largest |difference| (network output in [-1, 1]) tolerated between an fp32 conversion and
#: PyTorch on the conversion check.
CHECK_TOLERANCE = 1e-3


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or a broken install: not available
        return False
    return True


def cache_dir() -> Path:
    root = os.environ.get("VCGAN_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "vcgan")
    return Path(root) / "openvino"


def weights_digest(generator: torch.nn.Module) -> str:
    """SHA-256 over the generator's architecture, the code that builds its graph (the models
    package's source: a change there, say in what the gate is told, must not reuse a graph
    converted from the old code) and every tensor's bytes."""
    h = hashlib.sha256(generator.config.to_json().encode())
    for source in sorted(Path(__file__).with_name("models").glob("*.py")):
        h.update(source.read_bytes())
    for name, t in generator.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


class OpenVINORunner:
    """The generator compiled by OpenVINO for the CPU. ``precision``: "f32" or "bf16"."""

    name = "openvino"

    def __init__(self, generator: torch.nn.Module, precision: str = "f32", eager: bool = True):
        import openvino as ov

        self.generator = generator
        self.precision = precision
        self.core = ov.Core()
        self.digest: str | None = None
        self._compiled: dict[tuple, object] = {}
        self._seen: dict[tuple, int] = {}
        # not eager (--backend auto): a shape is converted the second time it is asked for
        # (a film's second frame), not for a photo of a size met once, where converting
        # (seconds) would cost more than it saves; one already in the cache is used at once
        self.eager = eager
        self.converted_now = 0  # conversions made (not read from the cache), for tests
        # set while a caller runs only a few frames of each size (a preview sheet): nothing is
        # converted then (a conversion costs seconds, more than a dozen frames save), only
        # shapes already in the cache run here
        self.few = False

    def _tag(self, shape_x: tuple, shape_i: tuple) -> str:
        return f"{self.digest[:32]}-{'x'.join(map(str, shape_x))}-{'x'.join(map(str, shape_i))}"

    def ready(self, shape_x: tuple, shape_i: tuple) -> bool:
        """Whether this call should run here (else PyTorch runs it; see ``eager``)."""
        key = (tuple(shape_x), tuple(shape_i))
        if self.eager or key in self._compiled:
            return True
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] >= 2 and not self.few:
            return True
        if self.digest is None:
            self.digest = weights_digest(self.generator)
        return (cache_dir() / f"{self._tag(*key)}.xml").is_file()

    def _model(self, shape_x: tuple, shape_i: tuple):
        import openvino as ov

        self.digest = weights_digest(self.generator)  # now: the weights as they are at conversion
        tag = self._tag(shape_x, shape_i)
        folder = cache_dir()
        xml, meta = folder / f"{tag}.xml", folder / f"{tag}.json"
        if xml.is_file() and meta.is_file():
            try:
                if json.loads(meta.read_text()).get("digest") == self.digest:
                    return self.core.read_model(str(xml))
            except (OSError, ValueError, RuntimeError):
                pass  # a damaged cache entry: convert again
        x, i = torch.rand(shape_x) * 2 - 1, torch.rand(shape_i) * 2 - 1
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks
            model = ov.convert_model(self.generator, example_input=(x, i),
                                     input=[ov.PartialShape(list(shape_x)), ov.PartialShape(list(shape_i))])
            reference = self.generator(x, i).float().numpy()
        check = self.core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        diff = float(np.abs(check([x.numpy(), i.numpy()])[0] - reference).max())
        if not diff <= CHECK_TOLERANCE:
            raise VcganError(f"the OpenVINO conversion differs from PyTorch by {diff:.2g}; not used")
        self.converted_now += 1
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:  # both files, then the names
                ov.save_model(model, str(Path(tmp) / "m.xml"), compress_to_fp16=False)
                os.replace(Path(tmp) / "m.bin", folder / f"{tag}.bin")
                os.replace(Path(tmp) / "m.xml", xml)
                (Path(tmp) / "m.json").write_text(json.dumps({"digest": self.digest, "max_difference": diff}))
                os.replace(Path(tmp) / "m.json", meta)
        except OSError:
            pass  # no cache (a read-only home): convert again next time
        return model

    def __call__(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), tuple(i.shape))
        compiled = self._compiled.get(key)
        if compiled is None:
            hint = "bf16" if self.precision == "bf16" else "f32"
            compiled = self.core.compile_model(self._model(*key), "CPU", {"INFERENCE_PRECISION_HINT": hint})
            self._compiled[key] = compiled
        out = compiled([x.detach().float().numpy(), i.detach().float().numpy()])[0]
        return torch.from_numpy(np.asarray(out))


def clear_cache() -> None:
    shutil.rmtree(cache_dir(), ignore_errors=True)
