"""Where a model comes from, in one place.

A model spec (``--model``) is one of, never guessed between:

* a registered name (``vcgan-lite``): ``config.json`` + ``model.safetensors`` in the project's
  ``weights/<name>/`` folder, checked against the SHA-256 pinned in :data:`REGISTRY`;
* ``tiny``, or ``random:NAME`` for any architecture in :data:`~vcgan_cli.models.VARIANTS`:
  seeded random weights, no file at all (for trying the pipeline, tests and speed benchmarks);
* a local path: a folder holding ``config.json`` + ``model.safetensors``, or the
  ``.safetensors`` file itself with ``config.json`` beside it. Paths are written with a
  ``/`` (``./my-model``), so a bare word is never mistaken for a folder;
* ``hf-hub:owner/repo[@revision]``: the same pair from the Hugging Face Hub, cached by
  ``huggingface_hub`` (works offline once cached, e.g. with ``HF_HUB_OFFLINE=1``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from . import files
from .errors import WeightsError
from .models import VARIANTS, Generator, ModelConfig, build_generator

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RANDOM_SEED = 0


def weights_dir() -> Path:
    """The folder of shipped weights: ``$VCGAN_WEIGHTS_DIR`` or the project's ``weights/``."""
    env = os.environ.get("VCGAN_WEIGHTS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "_weights", here.parent / "weights"):
        if candidate.is_dir():
            return candidate
    return here.parent / "weights"


@dataclass(frozen=True)
class Registered:
    """A shipped model: its folder under :func:`weights_dir`, the SHA-256 of its weights and
    of its ``config.json`` (the architecture the weights are read into is pinned too)."""

    folder: str
    sha256: str
    description: str
    config_sha256: str | None = None


#: Shipped, hash-pinned weights.
REGISTRY: dict[str, Registered] = {
    "vcgan-lite": Registered(
        "vcgan-lite",
        "622943eec1003d90b25d71e3b6f7e4e93fbb1b077d9f3218346df3f114460c90",
        "CPU-trained vcgan-lite v0.4 (U-Net; v0.3 + 0.25 x (v0.3 - v0.2)); see weights/vcgan-lite/README.md",
        "1bf0362b646fa7570bd45ac79b40c5337c81bc24694b3f21be8056cfc97d3c5f",
    ),
    "vcgan-lite-v1": Registered(
        "vcgan-lite-v1",
        "6ad8ccfb84ef765de420434b44c3109a414d9f432ba2b507221b0e60bc8d9c06",
        "CPU-trained vcgan-lite v1.3 (EfficientNet-Lite0 encoder, chroma classes at 1/4, guided upsampling; "
        "v1.1 plus a gate for the colour recurrence and key frames; ~3x faster than v0.4); see weights/vcgan-lite-v1/README.md",
        "0f56a588eeb5a5ef59dc40f63d67c0fd7579aafa30ab18b47403122284af9c53",
    ),
}

#: The model used when none is given.
DEFAULT_MODEL = "vcgan-lite-v1"


@dataclass
class LoadedWeights:
    config: ModelConfig
    generator: Generator
    #: Human-readable origin, e.g. "weights/vcgan-lite (sha256 1a2b3c4d…)" or "random (seed 0)".
    source: str
    trained: bool


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(path: Path) -> ModelConfig:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path} is missing; a model folder needs {CONFIG_NAME} and {WEIGHTS_NAME}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); re-export or re-download the model") from None
    except RecursionError:
        raise WeightsError(f"{path} is nested too deeply to be a vcgan config; re-export or re-download the model") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path} is not a vcgan config (expected a JSON object)")
    return ModelConfig.from_dict(data)


def _load_pair(
    folder: Path, weights: Path, source: str, sha256: str | None = None, config_sha256: str | None = None
) -> LoadedWeights:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if config_sha256 is not None and (folder / CONFIG_NAME).is_file():
        actual = _sha256(folder / CONFIG_NAME)
        if actual != config_sha256:
            raise WeightsError(
                f"{folder / CONFIG_NAME} is edited or not the registered file (sha256 {actual[:12]}…, expected "
                f"{config_sha256[:12]}…); restore it with `git checkout -- weights/` or reinstall vcgan"
            )
    config = read_config(folder / CONFIG_NAME)
    if not weights.is_file():
        raise WeightsError(f"{weights} is missing; a model folder needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    if sha256 is not None:
        actual = _sha256(weights)
        if actual != sha256:
            raise WeightsError(
                f"{weights} is corrupt or not the registered file (sha256 {actual[:12]}…, expected {sha256[:12]}…); "
                "restore it with `git checkout -- weights/` or reinstall vcgan"
            )
        source = f"{source} (sha256 {sha256[:12]}…)"
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{weights} is not a readable safetensors file ({exc}); re-export or re-download it") from None
    generator = build_generator(config)
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} with other shapes (e.g. {wrong[0]})")
        raise WeightsError(
            f"{weights} does not match its {CONFIG_NAME} ({'; '.join(parts)} tensors); "
            "the two files must come from the same export"
        )
    generator.load_state_dict({k: v.float() for k, v in state.items()})
    return LoadedWeights(config, generator.eval(), source, trained=True)


def random_weights(name: str, seed: int = RANDOM_SEED) -> LoadedWeights:
    """An architecture from :data:`VARIANTS` with seeded random weights (noise colours)."""
    if name not in VARIANTS:
        raise WeightsError(f"unknown architecture {name!r}; known: {', '.join(VARIANTS)}")
    config = VARIANTS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = build_generator(config)
    return LoadedWeights(config, generator.eval(), f"random weights (seed {seed})", trained=False)


def _from_hub(spec: str) -> LoadedWeights:
    repo = spec[len("hf-hub:") :]
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise WeightsError(f"{spec!r}: write hf-hub:owner/repo or hf-hub:owner/repo@revision")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        config_path = Path(hf_hub_download(repo, CONFIG_NAME, revision=revision))
        weights_path = Path(hf_hub_download(repo, WEIGHTS_NAME, revision=revision))
    except LocalEntryNotFoundError:
        raise WeightsError(
            f"{spec}: not in the local Hugging Face cache and the Hub cannot be reached; "
            "connect once (without HF_HUB_OFFLINE) to download it"
        ) from None
    except GatedRepoError:
        raise WeightsError(f"{spec}: this repo is gated; accept its terms on the Hub and log in (huggingface-cli login)") from None
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:
        raise WeightsError(f"{spec}: {type(exc).__name__} — needs {CONFIG_NAME} and {WEIGHTS_NAME} in that repo") from None
    except Exception as exc:  # network errors, revisions that do not exist
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{spec}: could not fetch from the Hub ({first})") from None
    if config_path.parent != weights_path.parent:
        raise WeightsError(f"{spec}: {CONFIG_NAME} and {WEIGHTS_NAME} come from different revisions")
    return _load_pair(config_path.parent, weights_path, spec)


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec
        or os.sep in spec
        or spec.startswith((".", "~"))
        or spec.endswith((".safetensors", ".json"))
    )


def load_weights(spec: str | os.PathLike | None = None) -> LoadedWeights:
    """Resolve a model spec (see the module docstring) into a generator on the CPU."""
    spec = DEFAULT_MODEL if spec is None else spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if spec.startswith("hf-hub:"):
        return _from_hub(spec)
    if spec.startswith("random:"):
        return random_weights(spec[len("random:") :])
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if path.is_dir():
            return _load_pair(path, path / WEIGHTS_NAME, str(path))
        if path.is_file() and path.suffix == ".safetensors":
            return _load_pair(path.parent, path, str(path))
        if path.is_file():
            raise WeightsError(f"{spec}: give the model folder or its .safetensors file")
        raise WeightsError(f"{spec}: no such model folder or file")
    if spec in REGISTRY:
        entry = REGISTRY[spec]
        folder = weights_dir() / entry.folder
        return _load_pair(folder, folder / WEIGHTS_NAME, f"weights/{entry.folder}", entry.sha256, entry.config_sha256)
    if spec == "tiny":
        return random_weights("tiny")
    if spec in VARIANTS:
        raise WeightsError(
            f"no trained weights for {spec!r} are shipped in weights/ yet; train and export them "
            f"(`vcgan train`), pass --model PATH or hf-hub:owner/repo, or try the pipeline with "
            f"--model tiny (random weights, noise colours)"
        )
    names = ", ".join(sorted(set(REGISTRY) | {"tiny"}))
    hint = f" (for a local folder write ./{spec})" if Path(spec).exists() else ""
    raise WeightsError(
        f"unknown model {spec!r}{hint}; use a registered name ({names}), random:ARCH, a path, or hf-hub:owner/repo"
    )


def check_model_folder(folder: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse to write a model where it would replace something unasked: ``folder`` must be
    absent, empty, or ``overwrite`` given; never a file."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WeightsError(f"{folder} is a file; give a folder to write the model in")
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise WeightsError(f"{folder} exists and is not empty; pass --overwrite to replace the model in it")
    return folder


def save_weights(generator: Generator, folder: str | os.PathLike, *, dtype: torch.dtype = torch.float16) -> str:
    """Write ``config.json`` + ``model.safetensors`` (fp16 by default); return the SHA-256.

    Weights that are not finite in ``dtype`` (a diverged run, or values past fp16's range)
    are refused before anything is written; a failed write leaves no temporary files."""
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in generator.state_dict().items()}
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(
                f"the weights are not finite in {str(dtype).replace('torch.', '')} ({name}); nothing was written"
            )
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        # both files complete (and on disk) before either gets its name; the folder was
        # checked by check_model_folder, so what is in it now is replaced
        with files.atomic_path(folder / WEIGHTS_NAME, overwrite=True) as tmp:
            with files.atomic_path(folder / CONFIG_NAME, overwrite=True) as tmp_config:
                # one metadata key: safetensors writes several in no fixed order, and the bytes
                # (so the pinned SHA-256) of an export should depend on the weights alone
                save_file(state, str(tmp), metadata={"vcgan_config": generator.config.to_json()})
                tmp_config.write_text(generator.config.to_json())
                shutil.copymode(tmp_config, tmp)  # safetensors creates its file private (0600)
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return _sha256(folder / WEIGHTS_NAME)


def extrapolate(older: LoadedWeights, newer: LoadedWeights, amount: float) -> Generator:
    """Weight extrapolation (ExPO; Zheng et al. 2024, "Weak-to-strong extrapolation expedites
    alignment"): ``newer + amount · (newer − older)``, a step further along the direction one
    round of training moved the weights (a negative ``amount`` interpolates back towards
    ``older``).

    Only learned parameters move: normalisation statistics and counters are ``newer``'s.
    ``newer`` may have layers that ``older`` lacks if its architecture starts them at zero
    (``skip_fusion``'s convs, which a model gains when fine-tuned into that architecture);
    ``older`` counts as zero there. Any other difference in architecture is an error. The
    inputs are left as they were, and so is torch's random state."""
    import copy
    import math

    if not math.isfinite(amount):
        raise WeightsError(f"the extrapolation amount must be a finite number, got {amount}")
    if not (older.trained and newer.trained):
        raise WeightsError("extrapolate between two trained models, not random weights")
    old_state, new_state = older.generator.state_dict(), newer.generator.state_dict()
    extra = sorted(set(old_state) - set(new_state))
    if extra:
        listed = f"{', '.join(extra[:3])}{', …' if len(extra) > 3 else ''}"
        hint = "give the older model first" if _zero_at_start(older.config, extra) else "the two differ in architecture"
        raise WeightsError(f"{older.source} has layers that {newer.source} lacks ({listed}); {hint}")
    parameters = {name for name, _ in newer.generator.named_parameters()}
    missing = sorted(parameters - set(old_state))
    if missing and not _zero_at_start(newer.config, missing):
        raise WeightsError(
            f"{older.source} lacks layers ({', '.join(missing[:3])}) that {newer.source}'s architecture does not "
            "start at zero: extrapolate between two rounds of training of the same model"
        )
    state = {}
    for name, new in new_state.items():
        if name not in parameters:
            state[name] = new
            continue
        old = old_state[name] if name in old_state else torch.zeros_like(new)
        if old.shape != new.shape:
            raise WeightsError(
                f"{older.source} and {newer.source} differ in architecture ({name}: "
                f"{tuple(old.shape)} against {tuple(new.shape)})"
            )
        value = new.float() + amount * (new.float() - old.float())
        if not bool(torch.isfinite(value).all()):
            raise WeightsError(f"extrapolating by {amount:g} overflows ({name}); use a smaller amount")
        state[name] = value
    out = copy.deepcopy(newer.generator)
    out.load_state_dict(state)
    return out.eval()


def _zero_at_start(config: ModelConfig, names: list[str]) -> bool:
    """Whether a freshly built generator of ``config`` starts all the tensors ``names`` at zero."""
    with torch.random.fork_rng(devices=[]):
        fresh = build_generator(config).state_dict()
    return all(name in fresh and not torch.count_nonzero(fresh[name]) for name in names)
