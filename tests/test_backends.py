"""The OpenVINO backend (vcgan_cli/backends.py): converted once, checked against PyTorch,
cached by the weights' digest, and PyTorch where it is missing or fails."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from media_fixtures import make_clip, probe
from vcgan_cli import backends
from vcgan_cli.cli import main
from vcgan_cli.errors import VcganError
from vcgan_cli.runtime import load_model

needs_openvino = pytest.mark.skipif(not backends.openvino_available(), reason="OpenVINO is not installed")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VCGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VCGAN_BACKEND", raising=False)
    return tmp_path / "cache" / "openvino"


@needs_openvino
def test_the_conversion_matches_pytorch_and_is_cached_by_the_weights(cache):
    gray = np.random.default_rng(0).random((100, 150)).astype(np.float32)
    ov = load_model("tiny")  # auto: OpenVINO on the CPU where installed
    assert ov.backend == "openvino"
    reference = load_model("tiny", backend="torch")(gray, gray)
    assert np.array_equal(ov(gray, gray), reference) and ov.runner.converted_now == 0  # a size met once: PyTorch
    out = ov(gray, gray)  # met again (a film's second frame): converted
    assert ov.runner.converted_now == 1 and np.abs(out - reference).max() < 1e-4
    assert len(list(cache.glob("*.xml"))) == 1
    again = load_model("tiny", backend="openvino")
    assert np.array_equal(again(gray, gray), out) and again.runner.converted_now == 0  # from the cache
    cached = load_model("tiny")  # auto, and this size is in the cache: OpenVINO from the first call
    assert np.array_equal(cached(gray, gray), out) and cached.runner.converted_now == 0
    # other weights (the same architecture): the cached conversion is not theirs
    changed = load_model("tiny", backend="openvino")
    with torch.no_grad():
        next(changed.weights.generator.parameters()).add_(0.05)
    fresh = changed(gray, gray)
    assert changed.runner.converted_now == 1 and len(list(cache.glob("*.xml"))) == 2
    assert np.abs(fresh - load_model("tiny", backend="torch")(gray, gray)).max() > 0


def test_without_openvino_auto_is_pytorch_and_asking_for_it_says_how_to_get_it(cache, monkeypatch):
    monkeypatch.setattr(backends, "openvino_available", lambda: False)
    assert load_model("tiny").backend == "torch"
    with pytest.raises(VcganError, match="pip install openvino"):
        load_model("tiny", backend="openvino")
    with pytest.raises(VcganError, match="unknown backend"):
        load_model("tiny", backend="tensorrt")


@needs_openvino
def test_a_conversion_that_fails_falls_back_to_pytorch_with_a_note(cache, monkeypatch, tmp_path):
    def broken(self, *shapes):
        raise VcganError("the OpenVINO conversion differs from PyTorch by 0.5; not used")

    monkeypatch.setattr(backends.OpenVINORunner, "_model", broken)
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_clip(src, frames=4, audio=None)
    result = CliRunner().invoke(main, ["colorize", str(src), "-o", str(out), "--model", "tiny", "--size", "128"])
    assert result.exit_code == 0, result.output
    assert "differs from PyTorch" in result.output and "using PyTorch" in result.output
    assert "(torch)" in result.output and probe(out)["frames"] == 4


@needs_openvino
def test_colorize_through_openvino_gives_pytorchs_film(cache, tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=6, audio="aac")
    outs = {}
    for backend in ("torch", "openvino"):
        outs[backend] = tmp_path / f"{backend}.mkv"
        result = CliRunner().invoke(main, ["colorize", str(src), "-o", str(outs[backend]), "--codec", "ffv1",
                                           "--model", "tiny", "--size", "128", "--backend", backend])
        assert result.exit_code == 0 and f"({backend})" in result.output, result.output
    import av

    def planes(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="yuv444p").astype(int) for f in c.decode(video=0)]

    a, b = planes(outs["torch"]), planes(outs["openvino"])
    assert len(a) == len(b) == 6
    assert max(np.abs(x - y).max() for x, y in zip(a, b)) <= 1  # within one code value


@needs_openvino
def test_a_preview_converts_nothing_but_uses_what_is_cached(cache, tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=24, cut_at=12, width=96, height=64)
    from vcgan_cli.pipeline import preview_film

    model = load_model("tiny")  # auto
    preview_film(src, tmp_path / "a.png", model=model, size=64, frames=6)
    assert model.runner.converted_now == 0 and not list(cache.glob("*.xml"))  # six frames: not worth it
    gray = np.zeros((64, 96), np.float32)
    model(gray, gray), model(gray, gray)  # a film at that size converts it
    assert model.runner.converted_now == 1
    again = load_model("tiny")
    with again.few_frames():
        again(gray, gray)
    assert again.runner.converted_now == 0 and ("openvino", True) == (again.backend, bool(again.runner._compiled))


@needs_openvino
@pytest.mark.parametrize("arch", ["tiny-v1", "tiny-v1r", "tiny-v1k", "tiny-v1g", "tiny-v1gm", "tiny-v1gs"])
def test_the_shipped_design_converts_too(cache, arch):
    """The encoder design with guided upsampling (the default model's): OpenVINO 2026 refused
    its pooling kernel when it was computed from the input's shape, and auto fell back."""
    gray = np.random.default_rng(1).random((90, 160)).astype(np.float32)
    ov = load_model(f"random:{arch}", backend="openvino")
    out = ov(gray, gray)
    assert ov.backend == "openvino" and not ov.notes and ov.runner.converted_now == 1
    assert np.abs(out - load_model(f"random:{arch}", backend="torch")(gray, gray)).max() < 1e-4
    colour = np.random.default_rng(2).random((90, 160, 3)).astype(np.float32)  # the colour recurrence's input
    out = ov(gray, colour)
    assert ov.runner.converted_now == 2 and not ov.notes
    assert np.abs(out - load_model(f"random:{arch}", backend="torch")(gray, colour)).max() < 1e-4
    keyed = ov(gray, colour, keyed=True)  # a gate that knows key frames: the same shapes, one conversion
    assert ov.runner.converted_now == 2 and not ov.notes
    assert np.abs(keyed - load_model(f"random:{arch}", backend="torch")(gray, colour, keyed=True)).max() < 1e-4
