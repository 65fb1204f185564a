import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vcgan_cli import weights as W
from vcgan_cli.errors import WeightsError
from vcgan_cli.models import VARIANTS, Generator
from vcgan_cli.runtime import load_model


@pytest.fixture()
def tiny_dir(tmp_path):
    loaded = W.random_weights("tiny", seed=3)
    folder = tmp_path / "tiny-export"
    sha = W.save_weights(loaded.generator, folder)
    return folder, sha, loaded


def _out(generator, x):
    with torch.no_grad():
        return generator(x, x)


def test_save_and_load_round_trip(tiny_dir):
    folder, sha, loaded = tiny_dir
    assert len(sha) == 64
    assert json.loads((folder / "config.json").read_text())["name"] == "tiny"
    # both files get the same ordinary permissions (safetensors alone makes its file 0600)
    assert (folder / "model.safetensors").stat().st_mode == (folder / "config.json").stat().st_mode
    again = W.load_weights(f"{folder}")
    assert again.trained and str(folder) in again.source
    x = torch.rand(1, 1, 128, 128) * 2 - 1
    # stored in fp16: outputs agree to fp16 precision
    assert torch.allclose(_out(again.generator, x), _out(loaded.generator, x), atol=2e-2)
    # the .safetensors file itself works too
    assert W.load_weights(str(folder / "model.safetensors")).config == loaded.config


def test_tiny_needs_no_file_and_is_seeded():
    a, b = W.load_weights("tiny"), W.load_weights("tiny")
    assert not a.trained
    for (ka, va), (kb, vb) in zip(a.generator.state_dict().items(), b.generator.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert W.load_weights("random:vcgan-lite").config.name == "vcgan-lite"


def test_registered_weights_are_hash_checked(tiny_dir, monkeypatch, tmp_path):
    folder, sha, _ = tiny_dir
    root = tmp_path / "shipped"
    shutil.copytree(folder, root / "mine")
    monkeypatch.setenv("VCGAN_WEIGHTS_DIR", str(root))
    monkeypatch.setitem(W.REGISTRY, "mine", W.Registered("mine", sha, "test"))
    assert W.load_weights("mine").trained
    monkeypatch.setitem(W.REGISTRY, "mine", W.Registered("mine", "0" * 64, "test"))
    with pytest.raises(WeightsError, match="corrupt or not the registered file"):
        W.load_weights("mine")
    # the config is pinned too: an edited train_size is refused, though the weights are intact
    config_sha = W._sha256(root / "mine" / "config.json")
    monkeypatch.setitem(W.REGISTRY, "mine", W.Registered("mine", sha, "test", config_sha))
    assert W.load_weights("mine").trained
    cfg = json.loads((root / "mine" / "config.json").read_text())
    (root / "mine" / "config.json").write_text(json.dumps({**cfg, "train_size": 32}))
    with pytest.raises(WeightsError, match="config.json is edited or not the registered file"):
        W.load_weights("mine")


def test_the_shipped_models_pin_their_config_too():
    for name, entry in W.REGISTRY.items():
        assert entry.config_sha256 and W._sha256(W.weights_dir() / entry.folder / "config.json") == entry.config_sha256, name


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "model.safetensors").write_bytes(b"garbage" * 10), "not a readable safetensors"),
        (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda f: (f / "config.json").unlink(), "config.json is missing"),
        (lambda f: (f / "config.json").write_text("{nope"), "not valid JSON"),
        (lambda f: (f / "config.json").write_text('{"name": "tiny", "colour": 1}'), "unknown keys colour"),
        (
            lambda f: (f / "config.json").write_text(json.dumps({"name": "tiny", "base_width": 6, "extractor": "tiny", "extractor_channels": 8, "nonlocal_blocks": 1})),
            "does not match its config.json",
        ),
    ],
)
def test_broken_model_folders_give_one_line_errors(tiny_dir, damage, message):
    folder, _, _ = tiny_dir
    damage(folder)
    with pytest.raises(WeightsError, match=message) as info:
        W.load_weights(str(folder))
    assert "\n" not in str(info.value)


def test_unknown_specs(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="unknown model 'nonesuch'"):
        W.load_weights("nonesuch")
    with pytest.raises(WeightsError, match="no such model folder"):
        W.load_weights(str(tmp_path / "missing"))
    with pytest.raises(WeightsError, match="no trained weights for 'vcgan'"):
        W.load_weights("vcgan")
    # a bare word that happens to be a folder is not silently taken as one
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nonesuch").mkdir()
    with pytest.raises(WeightsError, match=r"write \./nonesuch"):
        W.load_weights("nonesuch")
    with pytest.raises(WeightsError, match="hf-hub:owner/repo"):
        W.load_weights("hf-hub:justone")


def _fake_hub_cache(cache: Path, repo: str, folder: Path, commit: str = "a" * 40) -> None:
    """The layout huggingface_hub itself writes: models--owner--name/{refs,snapshots}."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(folder / name, snap / name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


def test_hf_hub_works_offline_from_the_cache(tiny_dir, tmp_path, monkeypatch):
    folder, _, _ = tiny_dir
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "someone/vcgan-test", folder)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as C

    monkeypatch.setattr(C, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", True)
    loaded = W.load_weights("hf-hub:someone/vcgan-test")
    assert loaded.trained and loaded.source == "hf-hub:someone/vcgan-test"
    with pytest.raises(WeightsError, match="not in the local Hugging Face cache"):
        W.load_weights("hf-hub:someone/not-cached")


def test_load_model_runs_a_frame():
    model = load_model("tiny", device="cpu")
    gray = np.random.default_rng(0).random((90, 130), dtype=np.float32)  # odd, small: padded inside
    rgb = model(gray, gray)
    assert rgb.shape == (90, 130, 3) and rgb.dtype == np.float32
    assert 0 <= rgb.min() and rgb.max() <= 1


def _trained(config, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = Generator(config).eval()
    return W.LoadedWeights(config, generator, f"model {seed}", trained=True)


def test_extrapolate_continues_the_step_and_keeps_the_statistics():
    lite = VARIANTS["vcgan-lite"]  # has BatchNorm statistics (in its extractors); tiny has none
    old, new = _trained(lite, 1), _trained(lite, 2)
    for module in new.generator.modules():  # statistics that differ from old's
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.add_(0.5)
    params = {n for n, _ in new.generator.named_parameters()}
    buffers = [n for n in new.generator.state_dict() if n not in params and "running" in n]
    assert buffers
    so, sn = old.generator.state_dict(), new.generator.state_dict()
    before = {k: v.clone() for k, v in sn.items()}
    for amount in (0.0, 0.5, -1.0):
        torch.manual_seed(7)
        expected_draw = torch.rand(3)
        torch.manual_seed(7)
        out = W.extrapolate(old, new, amount).state_dict()
        assert torch.equal(torch.rand(3), expected_draw)  # torch's random state is left alone
        for name in params:
            assert torch.allclose(out[name], sn[name] + amount * (sn[name] - so[name]), atol=1e-6), name
        for name in buffers:  # normalisation statistics are newer's, never extrapolated
            assert torch.equal(out[name], sn[name]), name
    # -1 lands on the older model's weights, 0 on the newer's
    back = W.extrapolate(old, new, -1.0).state_dict()
    assert all(torch.allclose(back[n], so[n], atol=1e-6) for n in params)
    assert any(not torch.equal(so[n], sn[n]) for n in params)
    assert all(torch.equal(v, before[k]) for k, v in new.generator.state_dict().items())  # inputs untouched
    with pytest.raises(WeightsError, match="overflows"):
        W.extrapolate(old, new, 1e40)


def test_extrapolate_counts_zero_started_layers_as_zero():
    from dataclasses import replace

    plain = VARIANTS["tiny"]
    fused = replace(plain, skip_fusion=True)
    old, new = _trained(plain, 1), _trained(fused, 2)
    with torch.no_grad():
        new.generator.skip8.weight.fill_(0.25)
    out = W.extrapolate(old, new, 0.5)
    assert out.config == fused
    assert torch.allclose(out.skip8.weight, torch.full_like(out.skip8.weight, 0.375))
    # the other way round, or between different architectures: one clear error
    with pytest.raises(WeightsError, match="give the older model first"):
        W.extrapolate(new, old, 0.5)
    with pytest.raises(WeightsError, match="differ in architecture"):
        W.extrapolate(old, _trained(replace(plain, base_width=8), 3), 0.5)
    deeper = _trained(replace(plain, nonlocal_blocks=2), 4)  # a layer that does not start at zero
    with pytest.raises(WeightsError, match="does not start at zero"):
        W.extrapolate(old, deeper, 0.5)
    with pytest.raises(WeightsError, match="the two differ in architecture"):
        W.extrapolate(deeper, old, 0.5)
    with pytest.raises(WeightsError, match="finite"):
        W.extrapolate(old, _trained(plain, 2), float("inf"))
    with pytest.raises(WeightsError, match="random weights"):
        W.extrapolate(W.load_weights("tiny"), new, 0.5)


def test_cli_extrapolate_writes_a_model_folder(tmp_path):
    from click.testing import CliRunner

    from vcgan_cli.cli import main

    folders = []
    for seed in (1, 2):
        folders.append(tmp_path / f"m{seed}")
        W.save_weights(W.random_weights("tiny", seed=seed).generator, folders[-1])
    out = tmp_path / "ahead"
    args = ["extrapolate", str(folders[0]), str(folders[1]), "--by", "0.5", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ahead = W.load_weights(str(out))
    a, b = (W.load_weights(str(f)).generator.state_dict() for f in folders)
    got = ahead.generator.state_dict()
    for name, _ in ahead.generator.named_parameters():  # stored in fp16
        assert torch.allclose(got[name], b[name] + 0.5 * (b[name] - a[name]), atol=5e-3, rtol=2e-3), name
    before = (out / "model.safetensors").read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "pass --overwrite" in again.output
    assert (out / "model.safetensors").read_bytes() == before
    bad = CliRunner().invoke(main, [*args[:4], "nan", "-o", str(tmp_path / "nan")])
    assert bad.exit_code == 1 and "finite" in bad.output and not (tmp_path / "nan").exists()
    # past fp16's range: refused, and nothing (not even a folder) is left behind
    big = CliRunner().invoke(main, [*args[:4], "1e8", "-o", str(tmp_path / "big")])
    assert big.exit_code == 1 and "not finite in float16" in big.output and not (tmp_path / "big").exists()


def test_save_weights_refuses_non_finite_weights_and_leaves_nothing(tmp_path):
    generator = W.random_weights("tiny").generator
    with torch.no_grad():
        next(generator.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(WeightsError, match="not finite"):
        W.save_weights(generator, tmp_path / "diverged")
    assert not (tmp_path / "diverged").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"base_width": 4.5}, "base_width must be a whole number"),
        ({"base_width": True}, "base_width must be a whole number"),
        ({"base_width": "256"}, "base_width must be a whole number"),
        ({"base_width": 256}, "widths above"),
        ({"train_size": -5}, "train_size must be 64..4096"),
        ({"skip_fusion": 1}, "skip_fusion must be true or false"),
        ({"guide_eps": float("inf")}, "guide_eps must be a finite number"),
    ],
)
def test_hand_edited_configs_get_one_clear_line(tiny_dir, tmp_path, edit, message):
    folder, _, _ = tiny_dir
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, **edit}))
    with pytest.raises(WeightsError, match=message):
        W.load_weights(str(bad))


def test_a_deeply_nested_config_is_a_clear_error(tiny_dir, tmp_path):
    folder, _, _ = tiny_dir
    bad = tmp_path / "deep"
    shutil.copytree(folder, bad)
    (bad / "config.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(WeightsError, match="nested too deeply"):
        W.load_weights(str(bad))
