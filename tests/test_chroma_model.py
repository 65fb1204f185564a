"""vcgan-lite v1's design (models/chroma.py): shapes, config round-trip, the chroma head's
encode/decode, the guided upsampling, and training it (tiny-v1, random weights)."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vcgan_cli.colour import rgb_to_gray_tensor
from vcgan_cli.errors import WeightsError
from vcgan_cli.models import VARIANTS, Generator, ModelConfig, build_generator
from vcgan_cli.models.chroma import CarryGate, ChromaBins, EncoderGenerator, guided_upsample, rgb_to_cbcr_tensor, ycbcr_to_rgb_tensor
from vcgan_cli.train.losses import class_loss
from vcgan_cli.weights import load_weights, save_weights


@pytest.mark.parametrize("head", ["regress", "classes"])
def test_encoder_generator_shapes_and_keeps_the_luma(head):
    cfg = dataclasses.replace(VARIANTS["tiny-v1"], chroma_head=head)
    torch.manual_seed(0)
    g = build_generator(cfg).eval()
    assert isinstance(g, EncoderGenerator)
    x = torch.rand(2, 1, 128, 192) * 2 - 1
    with torch.no_grad():
        y = g(x, x)
        y_colour_placeholder = g(x, torch.rand(2, 3, 128, 192) * 2 - 1)  # the PFE takes colour too
    assert y.shape == (2, 3, 128, 192) and y_colour_placeholder.shape == y.shape
    assert torch.allclose(rgb_to_gray_tensor(y), x, atol=1e-5)  # only chroma is predicted
    assert float((y - y.mean(1, keepdim=True)).abs().mean()) > 1e-3  # and it is not gray
    with pytest.raises(ValueError, match="multiple of 64"):
        g(x[..., :100], x[..., :100])


def test_v1_config_round_trips_and_old_configs_keep_their_format(tmp_path):
    cfg = VARIANTS["vcgan-lite-v1c"]
    data = json.loads(cfg.to_json())
    assert data["mainstream"] == "encoder" and data["chroma_head"] == "classes" and data["format_version"] == 3
    assert ModelConfig.from_dict(data) == cfg
    old = json.loads(VARIANTS["vcgan-lite"].to_json())  # the U-Net: no new keys, format 2 as before
    assert "mainstream" not in old and "chroma_bins" not in old and old["format_version"] == 2
    assert isinstance(build_generator(ModelConfig.from_dict(old)), Generator)
    with pytest.raises(WeightsError, match="chroma_head"):
        ModelConfig.from_dict({**data, "chroma_head": "rgb"})
    with pytest.raises(WeightsError, match="chroma_scale"):
        ModelConfig.from_dict({**data, "chroma_scale": 3})

    torch.manual_seed(1)
    g = build_generator(VARIANTS["tiny-v1"]).eval()
    save_weights(g, tmp_path / "m")
    loaded = load_weights(str(tmp_path / "m"))
    x = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.generator(x, x), g.half().float()(x, x), atol=1e-4)
    assert loaded.config == VARIANTS["tiny-v1"]


@pytest.mark.parametrize("name", ["vcgan-lite-v1-l2", "vcgan-lite-v1c-l1"])
def test_the_lite1_and_lite2_encoder_designs_build_round_trip_and_say_format_9(tmp_path, name):
    """The v1 designs on EfficientNet-Lite1/Lite2: the decoder takes the deeper encoder's own
    pyramid, the output keeps the luma, and the config (format 9, which vcgan before it refuses
    with "upgrade vcgan") and the weights round-trip through a model folder."""
    cfg = VARIANTS[name]
    data = json.loads(cfg.to_json())
    assert data["format_version"] == 9 and ModelConfig.from_dict(data) == cfg
    assert json.loads(VARIANTS["vcgan-lite-v1c"].to_json())["format_version"] == 3  # Lite0's stay as they were
    torch.manual_seed(0)
    g = build_generator(cfg).eval()
    assert g.gfe.pyramid_channels == ((24, 48, 120) if name.endswith("l2") else (24, 40, 112))
    x = torch.rand(1, 1, 128, 192) * 2 - 1
    with torch.no_grad():
        y = g(x, x)
    assert y.shape == (1, 3, 128, 192) and torch.allclose(rgb_to_gray_tensor(y), x, atol=1e-5)
    save_weights(g, tmp_path / "m")
    loaded = load_weights(str(tmp_path / "m"))
    assert loaded.config == cfg
    with torch.no_grad():
        assert torch.allclose(loaded.generator(x, x), g.half().float()(x, x), atol=1e-3)
    with pytest.raises(WeightsError, match="newer than this vcgan"):
        ModelConfig.from_dict({**data, "format_version": 10})


def test_shipped_unet_model_folder_still_loads():
    loaded = load_weights("weights/vcgan-lite")
    assert isinstance(loaded.generator, (Generator, EncoderGenerator))


def test_chroma_bins_encode_then_decode_returns_the_colour_within_a_bin():
    bins = ChromaBins(16)
    torch.manual_seed(0)
    cbcr = (torch.rand(3, 2, 5, 7) - 0.5) * 0.9
    target = bins.encode(cbcr)
    assert target.shape == (3, 256, 5, 7)
    assert torch.allclose(target.sum(1), torch.ones(3, 5, 7), atol=1e-6)
    assert torch.allclose(bins.decode(target, temperature=None), cbcr, atol=1e-5)  # the soft target's mean
    hard = bins.centres[bins.hard(cbcr)].permute(0, 3, 1, 2)
    assert float((hard - cbcr).abs().max()) <= bins.step / 2 + 1e-6  # the nearest centre: within half a bin
    # a confident distribution decodes to its bin's centre at any temperature
    logits = torch.full((1, 256, 1, 1), -30.0)
    logits[0, 5 * 16 + 9] = 30.0
    assert torch.allclose(bins.decode(logits, 0.38).flatten(), bins.centres[5 * 16 + 9], atol=1e-5)


def test_class_loss_prefers_the_true_colour():
    bins = ChromaBins(8)
    rgb = torch.tensor([0.8, 0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 8, 8) * 2 - 1
    cbcr = rgb_to_cbcr_tensor((F.avg_pool2d(rgb, 4) + 1) * 0.5)
    right = torch.log(bins.encode(cbcr) + 1e-6)
    wrong = torch.log(bins.encode(-cbcr) + 1e-6)
    assert class_loss(right, rgb, bins) < 0.5 * class_loss(wrong, rgb, bins)


def test_guided_upsampling_keeps_a_sharp_edge_that_bilinear_blurs():
    # luma: a sharp vertical edge at column 37 (not on the 4-pixel grid); chroma changes there too
    h, w = 32, 64
    luma = torch.full((1, 1, h, w), 0.2)
    luma[..., 37:] = 0.8
    chroma = torch.zeros(1, 2, h, w)
    chroma[:, 0, :, :37], chroma[:, 0, :, 37:] = 0.25, -0.2  # Cb
    chroma[:, 1, :, :37], chroma[:, 1, :, 37:] = -0.1, 0.3  # Cr
    low = F.avg_pool2d(chroma, 4)  # what a 1/4-scale head can at best predict
    guided = guided_upsample(low, luma, radius=1, eps=1e-3)
    bilinear = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    near = slice(33, 42)  # the columns around the edge
    err_guided = float((guided - chroma)[..., near].abs().mean())
    err_bilinear = float((bilinear - chroma)[..., near].abs().mean())
    assert err_guided < 0.2 * err_bilinear
    assert float((guided - chroma)[..., 34:36].abs().max()) < 0.02  # right up to the edge
    assert float((guided - chroma)[..., 38:40].abs().max()) < 0.02
    # flat luma: nothing to follow, so no edge is made up: a smooth field within low's range
    flat = guided_upsample(low, torch.full_like(luma, 0.5))
    assert float(flat.amax()) <= float(low.amax()) + 1e-6 and float(flat.amin()) >= float(low.amin()) - 1e-6
    assert float(flat.diff(dim=-1).abs().max()) < 0.2 * float(chroma.diff(dim=-1).abs().max())


def test_ycbcr_round_trip():
    rgb = torch.rand(2, 3, 4, 4)
    y = rgb_to_gray_tensor(rgb)
    assert torch.allclose(ycbcr_to_rgb_tensor(y, rgb_to_cbcr_tensor(rgb)), rgb, atol=1e-6)


@pytest.mark.parametrize("stage", [1, 2])
def test_trainer_trains_the_classes_head_in_both_stages(tmp_path, photos, stage):
    from vcgan_cli.train.trainer import TrainConfig, Trainer

    kw = dict(data=[str(photos)]) if stage == 1 else dict(synthetic_data=[str(photos)], synthetic=1.0, frames=2, critic_width=4)
    trainer = Trainer(TrainConfig(
        stage=stage, model="tiny-v1", out=str(tmp_path / "run"), size=128, batch_size=2, steps=2, lr_g=1e-3,
        perceptual="none", workers=0, pretrained=False, checkpoint_every=10, val_every=10**6, device="cpu", **kw,
    ))
    batch = next(iter(trainer.loader))
    first = trainer.train_step(batch)
    assert first["class"] > 0 and np.isfinite(first["total"])
    for _ in range(15):
        last = trainer.train_step(batch)
    assert last["class"] < first["class"]  # the cross-entropy is what it learns from
    assert trainer.generator.logits_log is None  # nothing kept between steps


def test_the_carry_path_starts_as_the_network_without_it_and_sees_the_placeholders_colour():
    """vcgan-lite-v1k's carry path is zero-initialised: forked from v1c's weights it gives
    v1c's output exactly; once trained, its input is the placeholder's own chroma (none for a
    gray placeholder) and how far its luma is from the frame's."""
    torch.manual_seed(0)
    plain = build_generator(VARIANTS["tiny-v1"]).eval()
    carry = build_generator(VARIANTS["tiny-v1k"]).eval()
    missing, unexpected = carry.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("carry.") for k in missing)
    x = torch.rand(2, 1, 128, 192) * 2 - 1
    i = torch.rand(2, 3, 128, 192) * 2 - 1
    with torch.no_grad():
        assert torch.equal(carry(x, i), plain(x, i))
        cues = EncoderGenerator._placeholder_cues(x, x, (32, 48))
        assert cues.shape == (2, 3, 32, 48) and cues.abs().max() < 1e-6  # gray: no colour, no difference
        yellow = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(2, 3, 128, 192) * 2 - 1
        cues = EncoderGenerator._placeholder_cues(x, yellow, (32, 48))
        assert cues[:, 0].max() < -0.4 and cues[:, 2].min() >= 0  # yellow: Cb about -0.5
        torch.nn.init.normal_(carry.carry.out.weight)
        torch.nn.init.normal_(carry.carry.direct.weight)
        assert not torch.equal(carry(x, i), plain(x, i))  # trained, it changes the colour
        assert torch.equal(carry(x, x), plain(x, x))  # ... of the colour recurrence only
    with pytest.raises(Exception, match="chroma_carry"):
        ModelConfig(name="x", chroma_carry=True)  # a U-Net has no such path


def test_the_gate_holds_the_placeholders_colour_where_open_and_leaves_the_gray_recurrence_alone():
    """vcgan-lite-v1g's gate: closed, the network's own colour; open, the placeholder's chroma
    exactly (on the frame's luma); shut where the placeholder's luma is far from the frame's
    (the flow failed there); never used for a gray placeholder."""
    from vcgan_cli.models.chroma import rgb_to_cbcr_tensor

    torch.manual_seed(0)
    plain = build_generator(VARIANTS["tiny-v1"]).eval()
    gated = build_generator(VARIANTS["tiny-v1g"]).eval()
    missing, unexpected = gated.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("gate.") for k in missing)
    x = torch.rand(1, 1, 128, 192) * 2 - 1
    luma = (x + 1) / 2
    cbcr = torch.zeros(1, 2, 128, 192)
    cbcr[:, 1] = 0.3  # a red placeholder on the frame's own luma: the flow was perfect
    from vcgan_cli.models.chroma import ycbcr_to_rgb_tensor

    red = (ycbcr_to_rgb_tensor(luma, cbcr) * 2 - 1).clamp(-1, 1)
    with torch.no_grad():
        assert torch.equal(gated(x, x), plain(x, x))  # gray recurrence: the gate never runs
        start = rgb_to_cbcr_tensor((gated(x, red) + 1) / 2)
        own = rgb_to_cbcr_tensor((plain(x, red) + 1) / 2)
        assert (start - own).abs().max() < 0.05 * 0.6  # it starts nearly closed (g ~ 0.05)
        gated.gate.out.bias.fill_(30.0)  # open everywhere
        held = rgb_to_cbcr_tensor((gated(x, red) + 1) / 2)
        clipped = (red.abs() > 0.999).any(1, keepdim=True).expand_as(held)  # out-of-gamut pixels clip
        assert (held - rgb_to_cbcr_tensor((red + 1) / 2))[~clipped].abs().max() < 1e-3
        gated.gate.out.bias.fill_(4.0)  # open (g 0.98) where the placeholder's luma is the frame's ...
        gated.gate.log_edge.fill_(math.log(100.0))  # ... and shut where it is 0.3 away
        moved = red.clone()
        moved[..., :, 96:] = -moved[..., :, 96:]  # the right half: a placeholder that does not match the frame
        out = rgb_to_cbcr_tensor((gated(x, moved) + 1) / 2)
        mine = rgb_to_cbcr_tensor((plain(x, moved) + 1) / 2)
        far = ((((moved + 1) / 2) * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1) - luma[:, 0]).abs() > 0.3
        assert far.any()
        assert (out - mine)[:, :, far[0]].abs().max() < 0.02  # where the flow failed: the network's own
    with pytest.raises(Exception, match="chroma_gate"):
        ModelConfig(name="x", chroma_gate=True)


def test_a_gate_that_knows_key_frames_is_told_by_a_fourth_plane_and_can_keep_the_colours_strength():
    """vcgan-lite-v1gk/-v1gm: the gate sees whether the placeholder carries a key frame (a fourth
    placeholder plane, +1 keyed, -1 not; a three-plane placeholder reads as not keyed); the
    "magnitude" blend keeps the linear mix's hue at the mix of the two chromas' strengths, so
    two disagreeing colours do not average towards gray; fully open or shut it is the linear mix."""
    from vcgan_cli.models.chroma import CarryGate

    torch.manual_seed(0)
    g = build_generator(VARIANTS["tiny-v1gm"]).eval()
    with torch.no_grad():
        g.gate.out.weight.normal_(0.0, 1.0)  # a gate that has learned something
    x = torch.rand(1, 1, 128, 192) * 2 - 1
    colour = torch.rand(1, 3, 128, 192) * 2 - 1
    plane = lambda v: torch.full((1, 1, 128, 192), v)
    with torch.no_grad():
        unkeyed = g(x, torch.cat((colour, plane(-1.0)), 1))
        assert torch.equal(g(x, colour), unkeyed)
        assert not torch.allclose(g(x, torch.cat((colour, plane(1.0)), 1)), unkeyed, atol=1e-4)
        assert torch.equal(g(x, x), g(x, x))  # the gray recurrence: no plane, no gate
        with pytest.raises(ValueError, match="placeholder of 2 planes"):
            g(x, torch.cat((x, x), 1))
    gate = CarryGate(8, blend="magnitude")
    held = torch.tensor([0.3, 0.0]).view(1, 2, 1, 1)
    guess = torch.tensor([0.0, 0.3]).view(1, 2, 1, 1)
    half = torch.full((1, 1, 1, 1), 0.5)
    linear = CarryGate(8).mix(half, held, guess)
    kept = gate.mix(half, held, guess)
    assert torch.allclose(linear, torch.tensor([0.15, 0.15]).view(1, 2, 1, 1))
    assert torch.allclose(kept, torch.tensor([0.3, 0.3]).view(1, 2, 1, 1) / math.sqrt(2), atol=1e-5)  # linear's hue, 0.3 strong
    assert torch.allclose(gate.mix(torch.ones_like(half), held, guess), held, atol=1e-6)
    assert torch.allclose(gate.mix(torch.zeros_like(half), held, guess), guess, atol=1e-6)
    opposite = gate.mix(half, held, -held)  # no hue to keep: stays gray, no division blow-up
    assert torch.isfinite(opposite).all() and opposite.abs().max() < 1e-3


def test_the_spread_blend_keeps_the_frames_spread_of_colours_without_adding_a_cast(tmp_path):
    """blend "spread": where the held and the guessed chroma disagree the linear mix is narrower
    than either; the spread mix has the linear mix's frame mean (no cast) and the mixed spread;
    g = 0 or 1 returns guess or held; a frame without colour stays without; format 7."""
    torch.manual_seed(0)
    gate = CarryGate(8, blend="spread")
    held = torch.randn(1, 2, 16, 24) * 0.1 + 0.02
    guess = torch.randn(1, 2, 16, 24) * 0.1 - 0.01  # independent: the linear mix is ~0.7x as wide
    g = torch.full((1, 1, 16, 24), 0.5)
    mean = lambda t: t.mean((2, 3), keepdim=True)
    spread = lambda t: float(((t - mean(t)) ** 2).sum(1).mean().sqrt())
    linear = CarryGate(8).mix(g, held, guess)
    kept = gate.mix(g, held, guess)
    assert spread(linear) < 0.8 * 0.5 * (spread(held) + spread(guess))
    assert abs(spread(kept) - 0.5 * (spread(held) + spread(guess))) < 1e-4
    assert torch.allclose(mean(kept), mean(linear), atol=1e-6)  # the cast as the linear mix's
    assert torch.allclose(gate.mix(torch.ones_like(g), held, guess), held, atol=1e-5)
    assert torch.allclose(gate.mix(torch.zeros_like(g), held, guess), guess, atol=1e-5)
    flat = gate.mix(g, torch.zeros_like(held), torch.zeros_like(guess))
    assert torch.isfinite(flat).all() and flat.abs().max() < 1e-6
    assert (gate.mix(g, held, guess) - linear).abs().max() <= 2 * (linear - mean(linear)).abs().max() + 1e-6  # at most 2x
    cfg = dataclasses.replace(VARIANTS["tiny-v1gm"], chroma_gate_blend="spread")
    data = cfg.to_dict()
    assert data["format_version"] == 7 and ModelConfig.from_dict(json.loads(json.dumps(data))) == cfg
    save_weights(build_generator(cfg), tmp_path / "m")
    assert load_weights(str(tmp_path / "m")).config.chroma_gate_blend == "spread"
    both = CarryGate(8, blend="magnitude-spread").mix(g, held, guess)  # per pixel, then the frame's spread
    assert abs(spread(both) - 0.5 * (spread(held) + spread(guess))) < 1e-4
    assert dataclasses.replace(cfg, chroma_gate_blend="magnitude-spread").to_dict()["format_version"] == 7


def test_a_gray_guess_makes_the_colour_recurrences_own_guess_the_gray_recurrences(tmp_path):
    """chroma_gate_guess "gray": on a frame without a key the network's own guess comes from the
    gray of the colour placeholder (a shut gate gives the gray recurrence's output exactly); on
    a keyed frame nothing changes; format 8, written only where used."""
    torch.manual_seed(0)
    base = dataclasses.replace(VARIANTS["tiny-v1gs"], chroma_gate_blend="linear", chroma_gate_cap=1.0, chroma_gate_guess="colour")
    coloured = build_generator(base).eval()
    grayed = build_generator(dataclasses.replace(base, chroma_gate_guess="gray")).eval()
    grayed.load_state_dict(coloured.state_dict())
    x = torch.rand(1, 1, 128, 192) * 2 - 1
    colour = torch.rand(1, 3, 128, 192) * 2 - 1
    gray = (torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1) * colour).sum(1, keepdim=True)
    plane = lambda v: torch.full((1, 1, 128, 192), v)
    with torch.no_grad():
        keyed = torch.cat((colour, plane(1.0)), 1)
        assert torch.equal(grayed(x, keyed), coloured(x, keyed))
        unkeyed = torch.cat((colour, plane(-1.0)), 1)
        assert (grayed(x, unkeyed) - coloured(x, unkeyed)).abs().max() > 1e-3
        for g in (grayed, coloured):
            g.gate.out.bias.fill_(-30.0)  # shut: the output is the network's own guess
        assert (grayed(x, unkeyed) - grayed(x, gray)).abs().max() < 1e-5  # the gray recurrence's
        assert (coloured(x, unkeyed) - coloured(x, gray)).abs().max() > 1e-3
    cfg = grayed.config
    assert cfg.to_dict()["format_version"] == 8 and "chroma_gate_guess" not in base.to_dict()
    save_weights(grayed, tmp_path / "m")
    assert load_weights(str(tmp_path / "m")).config == cfg
    with pytest.raises(WeightsError, match="unknown chroma_gate_guess"):
        dataclasses.replace(base, chroma_gate_guess="sepia")
    with pytest.raises(WeightsError, match="fields of the gate"):
        ModelConfig(name="x", mainstream="encoder", chroma_gate_guess="gray")


def test_the_gates_key_and_blend_fields_are_format_5_and_only_where_used(tmp_path):
    data = VARIANTS["tiny-v1gm"].to_dict()
    assert data["format_version"] == 5 and data["chroma_gate_keys"] is True and data["chroma_gate_blend"] == "magnitude"
    assert ModelConfig.from_dict(json.loads(json.dumps(data))) == VARIANTS["tiny-v1gm"]
    old = VARIANTS["tiny-v1g"].to_dict()  # the gate's files before stay format 4, as they were
    assert old["format_version"] == 4 and "chroma_gate_keys" not in old and "chroma_gate_blend" not in old
    torch.manual_seed(0)
    save_weights(build_generator(VARIANTS["tiny-v1gm"]), tmp_path / "m")
    assert load_weights(str(tmp_path / "m")).config == VARIANTS["tiny-v1gm"]
    with pytest.raises(WeightsError, match="fields of the gate"):
        ModelConfig(name="x", mainstream="encoder", chroma_gate_keys=True)
    with pytest.raises(WeightsError, match="unknown chroma_gate_blend"):
        dataclasses.replace(VARIANTS["tiny-v1g"], chroma_gate_blend="cubic")


def test_the_gates_cap_keeps_a_share_of_the_networks_guess_where_no_key_frame_is_carried(tmp_path):
    """chroma_gate_cap: a fully open gate holds at most ``cap`` of the placeholder's chroma on a
    shot without a key frame (the rest is the network's own guess), all of it on a keyed shot;
    the field is written (format 6) only where it is below 1, and out of [0, 1] is refused."""
    torch.manual_seed(0)
    base = dataclasses.replace(VARIANTS["tiny-v1gm"], name="tiny-v1gk", chroma_gate_blend="linear")
    capped_cfg = dataclasses.replace(base, chroma_gate_cap=0.75)
    free = build_generator(base).eval()
    capped = build_generator(capped_cfg).eval()
    capped.load_state_dict(free.state_dict())
    shut = build_generator(dataclasses.replace(base, chroma_gate_cap=0.0)).eval()
    shut.load_state_dict(free.state_dict())
    for g in (free, capped, shut):
        with torch.no_grad():
            g.gate.out.bias.fill_(30.0)  # open everywhere
    x = torch.rand(1, 1, 128, 192) * 2 - 1
    luma = (x + 1) / 2
    cbcr = torch.zeros(1, 2, 128, 192)
    cbcr[:, 1] = 0.2
    red = (ycbcr_to_rgb_tensor(luma, cbcr) * 2 - 1).clamp(-1, 1)  # a red placeholder on the frame's luma
    plane = lambda v: torch.full((1, 1, 128, 192), v)
    c = lambda t: rgb_to_cbcr_tensor((t + 1) / 2)
    with torch.no_grad():
        held = c(free(x, red))  # uncapped: the placeholder's chroma
        own = c(shut(x, red))  # cap 0: the network's own guess
        mixed = c(capped(x, red))
        inside = ((red.abs() < 0.99).all(1) & ((x[:, 0] + 1) / 2 > 0.3) & ((x[:, 0] + 1) / 2 < 0.7))[0]  # no clipping
        want = 0.75 * held + 0.25 * own
        assert (held - own)[:, :, inside].abs().max() > 0.05  # the two differ, so the mix is seen
        assert (mixed - want)[:, :, inside].abs().max() < 2e-3
        keyed = torch.cat((red, plane(1.0)), 1)
        assert torch.allclose(capped(x, keyed), free(x, keyed), atol=1e-6)  # a key frame's colour held fully
        assert torch.allclose(capped(x, torch.cat((red, plane(-1.0)), 1)), capped(x, red), atol=1e-6)
        assert torch.equal(capped(x, x), free(x, x))  # the gray recurrence: no gate, no cap
    data = capped_cfg.to_dict()
    assert data["chroma_gate_cap"] == 0.75 and data["format_version"] == 6
    assert "chroma_gate_cap" not in base.to_dict() and base.to_dict()["format_version"] == 5
    assert ModelConfig.from_dict(json.loads(json.dumps(data))) == capped_cfg
    save_weights(capped, tmp_path / "m")
    assert load_weights(str(tmp_path / "m")).config.chroma_gate_cap == 0.75
    with pytest.raises(WeightsError, match="chroma_gate_cap must be in"):
        dataclasses.replace(base, chroma_gate_cap=1.5)
    with pytest.raises(WeightsError, match="fields of the gate"):
        ModelConfig(name="x", mainstream="encoder", chroma_gate_cap=0.5)
