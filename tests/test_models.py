import pytest
import torch

from vcgan_cli.models import MULTIPLE, VARIANTS, Discriminator, Generator, count_macs, count_parameters
from vcgan_cli.models.layers import NonLocalBlock


def test_vcgan_matches_the_paper():
    g = Generator(VARIANTS["vcgan"]).eval()
    # SPEC.md: 96.6 M parameters, 33.0 M in each ResNet-50-IN extractor.
    assert count_parameters(g) / 1e6 == pytest.approx(96.6, abs=0.15)
    assert count_parameters(g.gfe) / 1e6 == pytest.approx(33.0, abs=0.1)
    # 61.5 GMACs for one 256x512 frame (the paper's Table II says 60.52).
    assert count_macs(g, 256, 512) / 1e9 == pytest.approx(61.5, rel=0.02)


def test_lite_is_a_quarter_of_vcgan_and_ships_under_40_mb():
    lite = Generator(VARIANTS["vcgan-lite"]).eval()
    full_macs = 61.5e9
    assert count_macs(lite, 256, 512) <= full_macs / 4
    fp16_bytes = 2 * count_parameters(lite)
    assert fp16_bytes < 40e6


def test_generator_shapes_and_range():
    torch.manual_seed(0)
    g = Generator(VARIANTS["tiny"]).eval()
    x = torch.rand(2, 1, 128, 192) * 2 - 1
    with torch.no_grad():
        y = g(x, x)
    assert y.shape == (2, 3, 128, 192)
    assert y.min() >= -1 and y.max() <= 1
    with pytest.raises(ValueError, match="multiple of 64"):
        g(x[..., :100], x[..., :100])
    with pytest.raises(ValueError, match="at least 128"):
        g(x[..., :64, :], x[..., :64, :])
    assert MULTIPLE == 64


def test_placeholder_input_changes_the_output():
    torch.manual_seed(0)
    g = Generator(VARIANTS["tiny"]).eval()
    x = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(g(x, x), g(x, -x))


def test_discriminator_is_a_70px_patchgan_with_spectral_norm():
    d = Discriminator(base_width=8)
    score = d(torch.zeros(1, 1, 256, 256), torch.zeros(1, 3, 256, 256))
    assert score.shape == (1, 1, 30, 30)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "weight_orig") for m in convs)


def test_non_local_block_starts_as_identity_and_attends_after():
    block = NonLocalBlock(16)
    x = torch.randn(1, 16, 6, 5)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    assert not torch.allclose(block(x), x)


@pytest.mark.parametrize("name", ["tiny", "vcgan-lite", "vcgan"])
def test_skip_fusion_starts_as_the_paper_generator_and_then_learns(name):
    """skip_fusion adds the global extractor's 1/16 and 1/8 features into the decoder through
    zero-initialised 1×1 convs: with the paper's weights loaded it computes exactly the paper's
    generator, and its new convs get a gradient from the first step."""
    import dataclasses

    torch.manual_seed(0)
    plain = Generator(dataclasses.replace(VARIANTS[name], skip_fusion=False)).eval()
    fused = Generator(dataclasses.replace(VARIANTS[name], skip_fusion=True)).eval()
    missing, unexpected = fused.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["skip16.bias", "skip16.weight", "skip8.bias", "skip8.weight"]
    x = torch.rand(1, 1, 128, 192) * 2 - 1
    with torch.no_grad():
        assert torch.equal(plain(x, x), fused(x, x))
    fused.train()
    fused(x, x).square().mean().backward()
    assert fused.skip16.weight.grad.abs().sum() > 0 and fused.skip8.weight.grad.abs().sum() > 0


def test_skip_fusion_is_part_of_the_saved_architecture():
    from vcgan_cli.models.config import ModelConfig

    lite = VARIANTS["vcgan-lite"]
    assert lite.skip_fusion and not VARIANTS["vcgan"].skip_fusion  # the paper's stays the paper's
    data = lite.to_dict()
    assert data["skip_fusion"] is True and data["format_version"] == 2
    assert ModelConfig.from_dict(data) == lite
    old = {k: v for k, v in data.items() if k != "skip_fusion"} | {"format_version": 1}  # a v0.2 config.json
    assert ModelConfig.from_dict(old).skip_fusion is False
    plain = VARIANTS["vcgan"].to_dict()
    assert "skip_fusion" not in plain and plain["format_version"] == 1  # readable by earlier vcgan
