"""Training on tiny synthetic data with the tiny variant, on the CPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from media_fixtures import make_clip, probe
from vcgan_cli.cli import main
from vcgan_cli.errors import VcganError
from vcgan_cli.train.data import flow_pairs, warp_tensor
from vcgan_cli.train.losses import REBALANCE_BY, ColourRarity, temporal_losses
from vcgan_cli.train.trainer import TrainConfig, Trainer


def config(tmp_path, photos, **kw):
    base = dict(
        model="tiny", data=[str(photos)], out=str(tmp_path / "run"), size=128, batch_size=2, steps=4,
        perceptual="none", workers=0, pretrained=False, checkpoint_every=2, val_every=10**6, log_every=1,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def fixed_batch_losses(trainer, steps):
    batch = next(iter(trainer.loader))
    return [trainer.train_step(batch)["total"] for _ in range(steps)]


def test_stage1_reduces_its_loss_on_a_fixed_batch(tmp_path, photos):
    trainer = Trainer(config(tmp_path, photos, stage=1, lr_g=1e-3))
    losses = fixed_batch_losses(trainer, 25)
    assert losses[-1] < 0.7 * losses[0]


def test_frozen_extractors_stay_fixed(tmp_path, photos):
    trainer = Trainer(config(tmp_path, photos, stage=1, freeze_extractors=True))
    before = {k: v.clone() for k, v in trainer.generator.gfe.state_dict().items()}
    mainstream = trainer.generator.d0[0].weight.clone()
    fixed_batch_losses(trainer, 2)
    after = trainer.generator.gfe.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(mainstream, trainer.generator.d0[0].weight)  # the rest still learns


class _Oracle(torch.nn.Module):
    """Stands in for the unrolled generator: the true colours, brightened by ``offset``."""

    def __init__(self, batch, offset):
        super().__init__()
        self.rgb, self.offset = batch["rgb"], offset
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, gray, flows, pairs, *modes):
        rgb = self.rgb if self.rgb.dim() == 5 else self.rgb[:, None]
        return [(rgb[:, t] + self.offset + self.w) for t in range(rgb.shape[1])]


@pytest.mark.parametrize("stage", [1, 2])
def test_losses_judge_colour_on_the_source_luma(tmp_path, photos, stage):
    """By default the losses see what vcgan outputs: the network's chroma on the input's own
    luma. Right colours with a wrong brightness then cost only the (separate) luma term; with
    --raw-loss (the paper's way) the same output is penalised in L1 as well."""
    kw = dict(stage=stage, perceptual="none")
    if stage == 2:
        kw.update(data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=3)
    for keep_luma in (True, False):
        trainer = Trainer(config(tmp_path / str(keep_luma), photos, keep_luma=keep_luma, **kw))
        batch = next(iter(trainer.loader))
        trainer.unroll_ddp = _Oracle(batch, 0.2)
        trainer.opt_g = torch.optim.SGD(trainer.unroll_ddp.parameters(), lr=0.0)
        losses = trainer.train_step(batch)
        if keep_luma:
            assert losses["l1"] < 1e-5 and abs(losses["luma"] - 0.2) < 1e-4
            if stage == 2:
                assert losses["short_term"] < 0.05 and losses["long_term"] < 0.05
        else:
            assert abs(losses["l1"] - 0.2) < 1e-4 and "luma" not in losses


def test_runs_from_before_keep_luma_resume_unchanged(tmp_path, photos):
    Trainer(config(tmp_path, photos, stage=1, steps=2)).run()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["keep_luma"] is True
    del saved["keep_luma"]  # what a run started by an earlier vcgan has
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    resumed = Trainer(TrainConfig(out=str(tmp_path / "run")), resume=True, overrides={"steps": 3})
    assert resumed.config.keep_luma is False


def test_stage2_reduces_its_loss_on_a_fixed_batch(tmp_path, photos):
    trainer = Trainer(
        config(tmp_path, photos, stage=2, data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=3, lr_g=1e-3)
    )
    losses = fixed_batch_losses(trainer, 20)
    assert losses[-1] < 0.8 * losses[0]


def test_temporal_losses_zero_when_consistent_large_when_flickering():
    n, pairs = 4, flow_pairs(4)
    rng = torch.Generator().manual_seed(0)
    frame = torch.rand(2, 3, 32, 32, generator=rng) * 2 - 1
    gray = frame.mean(1, keepdim=True)[:, None].expand(-1, n, -1, -1, -1)
    flows = torch.zeros(2, len(pairs), 2, 32, 32)
    steady = [frame.clone() for _ in range(n)]
    short, dense = temporal_losses(steady, gray, flows, pairs, 50.0, warp_tensor)
    assert float(short) < 1e-6 and float(dense) < 1e-6
    flicker = [(frame + 0.6 * (torch.rand(2, 3, 1, 1, generator=rng) - 0.5)).clamp(-1, 1) for _ in range(n)]
    short, dense = temporal_losses(flicker, gray, flows, pairs, 50.0, warp_tensor)
    assert float(short) > 0.05 and float(dense) > 0.05


def _log(run):
    return {r["step"]: r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())}


def test_resume_continues_exactly(tmp_path, photos):
    whole = config(tmp_path, photos, stage=1, out=str(tmp_path / "whole"), steps=4)
    Trainer(whole).run()
    part = config(tmp_path, photos, stage=1, out=str(tmp_path / "part"), steps=2)
    Trainer(part).run()
    Trainer(TrainConfig(out=str(tmp_path / "part")), resume=True, overrides={"steps": 4}).run()
    a, b = _log(tmp_path / "whole"), _log(tmp_path / "part")
    for step in (3, 4):
        assert b[step]["total"] == pytest.approx(a[step]["total"], rel=1e-5, abs=1e-7)
        assert b[step]["l1"] == pytest.approx(a[step]["l1"], rel=1e-5, abs=1e-7)
    saved = json.loads((tmp_path / "part" / "config.json").read_text())
    assert saved["w_l1"] == 10.0 and saved["lr_g"] == 2e-4 and saved["steps"] == 4


def test_cli_train_export_and_colorize(tmp_path, photos):
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["train", "--stage", "1", "--model", "tiny", "--data", str(photos), "--size", "128", "--batch-size", "2",
         "--steps", "2", "--perceptual", "none", "--workers", "0", "--no-pretrained", "--out", str(run), "-q"],
    )
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "last.pt").exists() and list((run / "samples").glob("*.jpg"))
    model = tmp_path / "model"
    result = CliRunner().invoke(main, ["export", str(run), "-o", str(model), "--checkpoint", "last"])
    assert result.exit_code == 0, result.output
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=4, audio=None)
    result = CliRunner().invoke(main, ["colorize", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(model), "-q"])
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "o.mp4")["frames"] == 4
    again = CliRunner().invoke(main, ["train", "--stage", "1", "--data", str(photos), "--out", str(run), "-q"])
    assert again.exit_code == 1 and "--resume" in again.output


def test_a_config_files_out_is_where_the_run_goes(tmp_path, photos, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default runs/stage1 would land
    settings = dict(stage=1, model="tiny", data=[str(photos)], out=str(tmp_path / "mine"), size=128, batch_size=1,
                    steps=1, perceptual="none", workers=0, pretrained=False, device="cpu")
    (tmp_path / "c.json").write_text(json.dumps(settings))
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "c.json"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mine" / "checkpoints" / "last.pt").exists() and not (tmp_path / "runs").exists()
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "flag"), "-q"])
    assert result.exit_code == 0 and (tmp_path / "flag" / "checkpoints" / "last.pt").exists()  # the flag wins


def test_two_process_torchrun_on_cpu(tmp_path, photos):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "vcgan_cli", "train", "--stage", "1", "--model", "tiny", "--data", str(photos), "--size", "128",
        "--batch-size", "1", "--steps", "3", "--perceptual", "none", "--workers", "0", "--no-pretrained",
        "--device", "cpu", "--out", str(tmp_path / "ddp"), "-q",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = _log(tmp_path / "ddp")
    assert max(log) == 3


def test_validation_keeps_the_best_model(tmp_path, photos):
    from test_bench import davis_tree

    val = davis_tree(tmp_path / "val", clips=1, frames=3)
    trainer = Trainer(config(tmp_path, photos, stage=1, val=str(val), val_every=2, steps=4, ema_decay=0.5))
    result = trainer.run()
    log = _log(tmp_path / "run")
    assert {"psnr", "ssim", "warp-error"} <= set(log[2]["val"]) and "val" in log[4]
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    best = json.loads((tmp_path / "run" / "best" / "metrics.json").read_text())
    assert best["rows"]["tiny"]["mean"]["psnr"] == pytest.approx(result["best"])
    # with --ema-decay, best/ is the moving average: exported as such, never passed off as raw
    from vcgan_cli.train.trainer import export

    assert "moving average" in export(tmp_path / "run", tmp_path / "m")[2]
    with pytest.raises(VcganError, match="moving average"):
        export(tmp_path / "run", tmp_path / "m2", average=False)


def test_bad_settings_and_export_safety(tmp_path, photos):
    from vcgan_cli.errors import VcganError
    from vcgan_cli.train.trainer import export

    with pytest.raises(VcganError, match="multiple of 64"):
        Trainer(config(tmp_path, photos, stage=1, size=100))
    with pytest.raises(VcganError, match="checkpoint-every must be a positive"):
        Trainer(config(tmp_path, photos, stage=1, checkpoint_every=0))
    run = tmp_path / "run"
    Trainer(config(tmp_path, photos, stage=1, steps=1)).run()
    folder, sha, used = export(run, tmp_path / "m")
    assert "no validated best model" in used and (folder / "config.json").exists()
    with pytest.raises(VcganError, match="--overwrite"):
        export(run, tmp_path / "m")
    assert export(run, tmp_path / "m", "step-0000001.pt", overwrite=True)[1] == sha
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    with pytest.raises(VcganError, match="is a file; give a folder"):
        export(run, afile, overwrite=True)
    assert afile.read_text() == "keep me"


def test_perceptual_weight_defaults_per_feature_network(photos):
    def weight(**kw):
        return TrainConfig(data=[str(photos)], **kw).resolved().w_perceptual

    assert weight(perceptual="efficientnet-lite0") == 0.5  # the stand-in, rebalanced against L1
    assert weight(perceptual="vgg16") == 5.0  # the paper's
    assert weight(perceptual="efficientnet-lite0", w_perceptual=5.0) == 5.0  # an explicit (or saved) weight stays
    assert weight(perceptual="none") == 0.0


def test_critic_width_is_a_training_setting(tmp_path, photos):
    kw = dict(stage=2, data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=2)
    default = Trainer(config(tmp_path / "a", photos, **kw)).critic
    narrow = Trainer(config(tmp_path / "b", photos, critic_width=8, **kw)).critic
    assert default.net[0][0].out_channels == 64 and narrow.net[0][0].out_channels == 16
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in default.parameters()) / 10


def test_stage2_without_the_adversarial_term_has_no_critic_and_keeps_the_temporal_losses(tmp_path, photos):
    kw = dict(stage=2, data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=3, lr_g=1e-3, w_gan=0.0)
    trainer = Trainer(config(tmp_path, photos, **kw))
    assert trainer.critic is None and trainer.opt_d is None
    batch = next(iter(trainer.loader))
    losses = [trainer.train_step(batch) for _ in range(12)]
    assert "gan" not in losses[0] and "critic" not in losses[0]
    assert losses[0]["short_term"] > 0 and losses[0]["long_term"] > 0
    assert losses[-1]["total"] < 0.8 * losses[0]["total"]
    with pytest.raises(VcganError, match="critic-warmup needs the critic"):
        Trainer(config(tmp_path / "b", photos, critic_warmup=3, **kw))


def test_critic_warmup_trains_only_the_critic_first(tmp_path, photos):
    """--critic-warmup N: for the first N steps the critic learns and the generator (its
    weights, moving average and optimiser) stays exactly as it was; then both learn."""
    kw = dict(stage=2, data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=2, ema_decay=0.9, lr_g=1e-3)
    trainer = Trainer(config(tmp_path, photos, critic_warmup=2, **kw))
    g0 = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    d0 = {k: v.clone() for k, v in trainer.critic.state_dict().items()}
    batch = next(iter(trainer.loader))
    for _ in range(2):
        losses = trainer.train_step(batch)
        assert set(losses) <= {"critic", "luma"}  # no generator losses while warming up
    assert trainer.step == 2
    assert all(torch.equal(g0[k], v) for k, v in trainer.generator.state_dict().items())
    assert all(torch.equal(g0[k], v) for k, v in trainer.ema.state_dict().items())
    assert not trainer.opt_g.state  # Adam never stepped
    assert any(not torch.equal(d0[k], v) for k, v in trainer.critic.state_dict().items())
    losses = trainer.train_step(batch)  # step 3: joint training as usual
    assert {"gan", "l1", "short_term"} <= set(losses)
    assert any(not torch.equal(g0[k], v) for k, v in trainer.generator.state_dict().items())
    with pytest.raises(VcganError, match="critic-warmup"):
        Trainer(config(tmp_path / "s1", photos, stage=1, critic_warmup=5))
    with pytest.raises(VcganError, match="critic-warmup"):
        Trainer(config(tmp_path / "neg", photos, critic_warmup=-1, **kw))

    # from the command line: the flag reaches the run, and a stage-1 use is a one-line error
    base = ["train", "--model", "tiny", "--synthetic-data", str(photos), "--size", "128", "--batch-size", "2",
            "--frames", "2", "--steps", "1", "--perceptual", "none", "--workers", "0", "--no-pretrained", "-q"]
    run = tmp_path / "cli"
    result = CliRunner().invoke(main, [*base, "--stage", "2", "--critic-warmup", "1", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["critic_warmup"] == 1
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["step"] == 1 and "critic" in logged[-1] and "gan" not in logged[-1]
    result = CliRunner().invoke(main, [*base, "--stage", "1", "--data", str(photos), "--critic-warmup", "1",
                                       "--out", str(tmp_path / "s1cli")])
    assert result.exit_code != 0 and "critic-warmup is for stage 2" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _rgb(*colours, size=8):
    """A (N, 3, size, size) batch in the network's [-1, 1], one flat RGB colour (0-1) per picture."""
    return torch.tensor(colours, dtype=torch.float32).view(-1, 3, 1, 1).expand(-1, 3, size, size) * 2 - 1


def test_colour_rarity_weighs_rare_colours_up_and_keeps_the_mean():
    gray, brown, red = (0.5, 0.5, 0.5), (0.45, 0.35, 0.25), (0.9, 0.1, 0.1)
    batch = _rgb(gray, gray, gray, gray, gray, gray, brown, brown, red)  # red: 1 picture in 9
    w = ColourRarity(0.2)(batch)
    assert w.shape == (9, 1, 8, 8)
    w_gray, w_brown, w_red = float(w[0].mean()), float(w[6].mean()), float(w[8].mean())
    assert w_red > w_brown > w_gray  # rarer colour, more weight
    assert float(w.mean()) == pytest.approx(1.0, rel=1e-5)  # the L1 term keeps its size
    assert torch.equal(ColourRarity(0.0)(batch), torch.ones_like(w))  # 0: the paper's plain L1
    strong = ColourRarity(0.5)(batch)
    assert float(strong[8].mean()) / float(strong[0].mean()) > w_red / w_gray  # more mix, stronger
    # counts accumulate over the run: after many red pictures, red is no longer rare
    rarity = ColourRarity(0.2)
    rarity(batch)
    for _ in range(5):
        rarity(_rgb(red, red, red, red))
    after = rarity(batch)
    assert float(after[8].mean()) < float(after[0].mean())
    with pytest.raises(VcganError, match="rebalance"):
        ColourRarity(1.0)


def test_chroma_rarity_weighs_saturation_whatever_the_hue():
    """by="chroma": a saturated colour weighs more than a muted one, and two hues of the same
    strength weigh the same however often each occurs; by="colour" favours the rarer hue."""
    def from_ycbcr(y, cb, cr):
        r, b = y + 1.402 * cr, y + 1.772 * cb
        return (r, (y - 0.299 * r - 0.114 * b) / 0.587, b)

    gray, blue, red = from_ycbcr(0.5, 0, 0), from_ycbcr(0.5, 0.1, 0), from_ycbcr(0.5, 0, 0.1)
    batch = _rgb(*[gray] * 6, *[blue] * 2, red)  # red 1 picture in 9, blue 2, as strong as each other
    chroma = ColourRarity(0.7, by="chroma")(batch)
    colour = ColourRarity(0.7, by="colour")(batch)
    assert float(chroma[6].mean()) > 1.3 * float(chroma[0].mean())  # saturated over gray
    assert float(chroma[8].mean()) == pytest.approx(float(chroma[6].mean()))  # hue does not matter
    assert float(colour[8].mean()) > 1.05 * float(colour[6].mean())  # colour: the rarer hue weighs more
    assert float(chroma.mean()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(VcganError, match="rebalance-by"):
        ColourRarity(0.5, by="hue")


def test_rebalance_weighs_the_l1_term_and_resumes_with_its_counts(tmp_path, photos):
    plain = Trainer(config(tmp_path / "plain", photos, stage=1, lr_g=0.0))
    batch = next(iter(plain.loader))
    assert plain.rarity is None
    base = plain.train_step(batch)["l1"]
    rebalanced = Trainer(config(tmp_path / "rb", photos, stage=1, lr_g=0.0, rebalance=0.5))
    assert rebalanced.train_step(batch)["l1"] != pytest.approx(base, rel=1e-4)  # same outputs, other weights
    assert rebalanced.rarity.counts.sum() == batch["rgb"].shape[0] * 128 * 128

    # a resumed run continues with the colour counts it had, exactly as an unbroken one
    whole = config(tmp_path, photos, stage=1, out=str(tmp_path / "whole"), steps=4, rebalance=0.3)
    Trainer(whole).run()
    Trainer(config(tmp_path, photos, stage=1, out=str(tmp_path / "part"), steps=2, rebalance=0.3)).run()
    resumed = Trainer(TrainConfig(out=str(tmp_path / "part")), resume=True, overrides={"steps": 4})
    assert resumed.rarity.mix == 0.3 and resumed.rarity.counts.sum() == 2 * 2 * 128 * 128
    resumed.run()
    a, b = _log(tmp_path / "whole"), _log(tmp_path / "part")
    assert b[4]["l1"] == pytest.approx(a[4]["l1"], rel=1e-5, abs=1e-7)
    # resumed counting something else (magnitudes, not colours): the counts start afresh
    resumed._lock.close()  # that run has ended
    other = Trainer(TrainConfig(out=str(tmp_path / "part")), resume=True, overrides={"steps": 5, "rebalance_by": "chroma"})
    assert other.rarity.by == "chroma" and other.rarity.counts.sum() == 0
    # a checkpoint saved before --rebalance-by existed counted colours: its counts carry on
    other._lock.close()
    last = tmp_path / "whole" / "checkpoints" / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=False)
    del state["colour_counts"]["by"]
    torch.save(state, last)
    older = Trainer(TrainConfig(out=str(tmp_path / "whole")), resume=True, overrides={"steps": 5})
    assert older.rarity.by == "colour" and older.rarity.counts.sum() == 4 * 2 * 128 * 128

    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(VcganError, match="rebalance"):
            Trainer(config(tmp_path / "bad", photos, stage=1, rebalance=bad))
    base = ["train", "--stage", "1", "--model", "tiny", "--data", str(photos), "--size", "128", "--batch-size", "2",
            "--steps", "1", "--perceptual", "none", "--workers", "0", "--no-pretrained", "-q"]
    result = CliRunner().invoke(main, [*base, "--rebalance", "0.2", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["rebalance"] == 0.2
    result = CliRunner().invoke(main, [*base, "--rebalance", "0.2", "--rebalance-by", "chroma", "--out", str(tmp_path / "cli2")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "cli2" / "config.json").read_text())
    assert saved["rebalance"] == 0.2 and saved["rebalance_by"] == "chroma"
    with pytest.raises(VcganError, match="rebalance-by"):
        Trainer(config(tmp_path / "badby", photos, stage=1, rebalance=0.2, rebalance_by="hue"))
    option = next(p for p in main.commands["train"].params if p.name == "rebalance_by")
    assert tuple(option.type.choices) == REBALANCE_BY  # the CLI's literal list (no torch at --help) is the trainer's
    result = CliRunner().invoke(main, [*base, "--rebalance", "1", "--out", str(tmp_path / "cli1")])
    assert result.exit_code != 0 and "--rebalance" in result.output


def test_two_runs_cannot_share_a_run_folder(tmp_path, photos):
    first = Trainer(config(tmp_path, photos, stage=1))
    with pytest.raises(VcganError, match="another `vcgan train` is using"):
        Trainer(config(tmp_path, photos, stage=1))
    first._lock.close()  # the first run ends: the folder is free again
    Trainer(config(tmp_path, photos, stage=1))


def test_moving_average_of_the_weights(tmp_path, photos):
    """--ema-decay keeps ema = d·ema + (1-d)·weights after every step; checkpoints carry it,
    resuming continues it exactly, and export ships it (or the raw weights on request)."""
    from vcgan_cli.train.trainer import export
    from vcgan_cli.weights import load_weights

    d = 0.9
    trainer = Trainer(config(tmp_path, photos, stage=1, ema_decay=d, lr_g=1e-3, steps=2, out=str(tmp_path / "r")))
    assert Trainer(config(tmp_path, photos, stage=1)).ema is None  # off by default
    start = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    assert all(torch.equal(start[k], v) for k, v in trainer.ema.state_dict().items())
    batch = next(iter(trainer.loader))
    trainer.train_step(batch)
    weights, ema = trainer.generator.state_dict(), trainer.ema.state_dict()
    moved = [k for k, _ in trainer.generator.named_parameters() if not torch.equal(start[k], weights[k])]
    assert moved
    for k in moved:
        torch.testing.assert_close(ema[k], d * start[k] + (1 - d) * weights[k])
    assert not any(p.requires_grad for p in trainer.ema.parameters())

    # a run of 4 steps in one go equals 2 + resume 2, average included
    kw = dict(stage=1, ema_decay=d, lr_g=1e-2)  # steps large enough to tell the average from the weights in fp16
    Trainer(config(tmp_path, photos, steps=4, out=str(tmp_path / "whole"), **kw)).run()
    Trainer(config(tmp_path, photos, steps=2, out=str(tmp_path / "part"), **kw)).run()
    Trainer(TrainConfig(out=str(tmp_path / "part")), resume=True, overrides={"steps": 4}).run()
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=False)
    for k, v in a["generator_ema"].items():
        torch.testing.assert_close(b["generator_ema"][k], v)
    assert any(not torch.equal(a["generator_ema"][k], a["generator"][k]) for k in a["generator"])

    _, _, used = export(tmp_path / "whole", tmp_path / "avg", "last")
    assert "moving average" in used
    key = "d0.0.weight"
    assert not torch.equal(a["generator_ema"][key].half(), a["generator"][key].half())
    shipped = load_weights(str(tmp_path / "avg")).generator.state_dict()
    assert torch.equal(shipped[key].half(), a["generator_ema"][key].half())
    _, _, used = export(tmp_path / "whole", tmp_path / "raw", "last", average=False)
    raw = load_weights(str(tmp_path / "raw")).generator.state_dict()
    assert "moving average" not in used and torch.equal(raw[key].half(), a["generator"][key].half())
    with pytest.raises(VcganError, match="ema-decay"):
        Trainer(config(tmp_path, photos, stage=1, ema_decay=1.0))


def test_skip_fusion_fine_tunes_from_a_model_without_it(tmp_path, photos):
    """--init from weights without skip fusion: the new convs start at zero, so the run begins
    exactly where those weights were; runs from before the setting resume without it."""
    Trainer(config(tmp_path, photos, stage=1, steps=1, out=str(tmp_path / "plain"), skip_fusion=False)).run()
    said = []
    fused = Trainer(config(tmp_path, photos, stage=1, out=str(tmp_path / "fused"), skip_fusion=True,
                           init=str(tmp_path / "plain" / "checkpoints" / "last.pt")), on_message=said.append)
    assert fused.generator.config.skip_fusion and any("skip16" in m for m in said)
    assert not fused.generator.skip16.weight.any()
    saved = json.loads((tmp_path / "plain" / "config.json").read_text())
    del saved["skip_fusion"]  # what a run started by an earlier vcgan has
    (tmp_path / "plain" / "config.json").write_text(json.dumps(saved))
    resumed = Trainer(TrainConfig(out=str(tmp_path / "plain")), resume=True, overrides={"steps": 2})
    assert resumed.config.skip_fusion is False and not hasattr(resumed.generator, "skip16")


def test_a_regression_model_forks_into_a_classification_head(tmp_path, photos):
    """--init from a regression-head model into a classification-head one: the trunk carries
    over tensor for tensor, the head (another shape) starts fresh and is said to."""
    Trainer(config(tmp_path, photos, stage=1, steps=1, model="tiny-v1r", out=str(tmp_path / "reg"))).run()
    said = []
    forked = Trainer(config(tmp_path, photos, stage=1, model="tiny-v1", out=str(tmp_path / "cls"),
                            init=str(tmp_path / "reg" / "checkpoints" / "last.pt")), on_message=said.append)
    from vcgan_cli.train.trainer import load_generator_state

    source = load_generator_state(tmp_path / "reg" / "checkpoints" / "last.pt")
    own = forked.generator.state_dict()
    assert own["head.weight"].shape[0] == 16 and source["head.weight"].shape[0] == 2
    assert any("starting fresh" in m and "head.weight" in m for m in said)
    same = [k for k in source if k in own and own[k].shape == source[k].shape]
    assert len(same) == len(source) - 2 and all(torch.equal(own[k], source[k]) for k in same)
    forked.run()
    with pytest.raises(VcganError, match="not a tiny generator"):  # the U-Net shares almost nothing
        Trainer(config(tmp_path, photos, stage=1, model="tiny", out=str(tmp_path / "unet"),
                       init=str(tmp_path / "reg" / "checkpoints" / "last.pt")))


def test_time_limit_stops_cleanly_and_resumes(tmp_path, photos):
    result = Trainer(config(tmp_path, photos, stage=1, steps=50, checkpoint_every=1000)).run(time_limit_s=0)
    assert result["stopped"] == "time limit" and result["step"] == 1
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["step"] == 1  # saved although no checkpoint was due
    assert list((tmp_path / "run" / "samples").glob("*.jpg"))  # and samples, like any checkpoint
    again = Trainer(TrainConfig(out=str(tmp_path / "run")), resume=True, overrides={"steps": 3}).run()
    assert again["step"] == 3 and again["stopped"] is None


def test_cli_time_limit_and_bad_durations(tmp_path, photos):
    args = ["train", "--stage", "1", "--model", "tiny", "--data", str(photos), "--size", "128", "--batch-size", "2",
            "--steps", "50", "--perceptual", "none", "--workers", "0", "--no-pretrained"]
    run = tmp_path / "run"
    result = CliRunner().invoke(main, args + ["--out", str(run), "--time-limit", "0s"])
    assert result.exit_code == 0, result.output
    assert "stopped at step 1" in result.output and f"--resume {run}" in result.output
    assert (run / "checkpoints" / "last.pt").exists()
    for bad in ("soon", "1h30", "-5m"):
        out = CliRunner().invoke(main, args + ["--out", str(tmp_path / "other"), "--time-limit", bad])
        assert out.exit_code == 2 and f"{bad!r} is not a duration" in out.output, out.output
    exe = Path(sys.executable).with_name("vcgan")  # the console script: one line
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vcgan_cli"]
    proc = subprocess.run([*cmd, *args, "--out", str(tmp_path / "other"), "--time-limit", "soon"], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "not a duration" in proc.stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("text,seconds", [("600", 600), ("90s", 90), ("45m", 2700), ("1.5h", 5400), ("1h30m", 5400)])
def test_duration_parsing(text, seconds):
    from vcgan_cli.cli import Duration

    assert Duration().convert(text, None, None) == seconds


def test_sigterm_saves_a_checkpoint_to_resume_from(tmp_path, photos):
    """`kill` (SIGTERM) stops a training run like Ctrl-C: checkpoint saved, one line, resumable."""
    import signal
    import time

    run = tmp_path / "run"
    exe = Path(sys.executable).with_name("vcgan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vcgan_cli"]
    proc = subprocess.Popen(
        [*cmd, "train", "--stage", "1", "--model", "tiny", "--data", str(photos), "--size", "128", "--batch-size", "2",
         "--steps", "100000", "--checkpoint-every", "100000", "--perceptual", "none", "--workers", "0",
         "--no-pretrained", "--out", str(run), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        log = run / "log.jsonl"
        for _ in range(3000):  # until the first logged step (10) is done, or the process ends
            if proc.poll() is not None or (log.exists() and log.read_text().count("\n") >= 1):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and f"--resume {run}" in lines[0]
    saved = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["step"] >= 10
    assert json.loads(log.read_text().splitlines()[-1])["step"] == saved["step"]  # the last step is logged
    again = Trainer(TrainConfig(out=str(run)), resume=True, overrides={"steps": saved["step"] + 1}).run()
    assert again["step"] == saved["step"] + 1


class _Payload:
    """Unpickling this would create a file: the proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_without_running_it(tmp_path, photos):
    run = tmp_path / "run"
    Trainer(config(tmp_path, photos, stage=1, steps=1)).run()
    from vcgan_cli.train.trainer import load_checkpoint

    state = load_checkpoint(run / "checkpoints" / "last.pt")  # a real checkpoint still loads
    marker = tmp_path / "pwned"
    state["best"] = _Payload(str(marker))
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    (run / "checkpoints" / "last.pt").unlink()
    torch.save(state, run / "checkpoints" / "last.pt")
    for args in (["export", str(run), "-o", str(tmp_path / "m"), "--checkpoint", "last"],
                 ["export", str(run), "-o", str(tmp_path / "m2"), "--checkpoint", str(evil)],
                 ["train", "--stage", "1", "--model", "tiny", "--data", str(photos), "--init", str(evil), "--size", "128",
                  "--steps", "1", "--perceptual", "none", "--workers", "0", "--no-pretrained", "--out", str(tmp_path / "r2"), "-q"],
                 ["train", "--resume", str(run), "--steps", "2", "-q"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0, args
        assert "refused to load" in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert not marker.exists(), args  # the payload never ran
    assert not (tmp_path / "m").exists() and not (tmp_path / "m2").exists()


def test_train_options_are_declared_once_beside_the_config_fields():
    import dataclasses

    from vcgan_cli.train.trainer import TRAIN_OPTIONS

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    declared = [o.field for o in TRAIN_OPTIONS]
    assert set(declared) <= fields and len(declared) == len(set(declared))
    params = {p.name for p in main.commands["train"].params}
    assert params == set(declared) | {"time_limit", "config_file", "out", "resume", "device", "precision", "quiet"}
    size = next(o for o in TRAIN_OPTIONS if o.field == "size")
    with pytest.raises(VcganError, match="at least 128"):  # the declared bound is the config's
        TrainConfig(data=["x"], size=int(size.low) - 64).resolved()
    TrainConfig(data=["x"], size=int(size.low)).resolved()


class _Spy(torch.nn.Module):
    """A generator that records its placeholder inputs and returns a fixed colour per call."""

    def __init__(self):
        super().__init__()
        self.placeholders = []

    def forward(self, x, i):
        self.placeholders.append(i.detach().clone())
        n = len(self.placeholders)
        rgb = torch.stack((x[:, 0], x[:, 0] * 0 + 0.1 * n, x[:, 0] * 0 - 0.2), 1)
        return rgb


def test_unroll_runs_the_colour_recurrence_and_key_frames_per_clip():
    from vcgan_cli.train.trainer import Unroll

    b, t, h, w = 3, 3, 8, 8
    gray = torch.rand(b, t, 1, h, w) * 2 - 1
    pairs = flow_pairs(t)
    flows = torch.zeros(b, len(pairs), 2, h, w)
    first = torch.rand(b, 3, h, w) * 2 - 1
    spy = _Spy()
    colour = torch.tensor([True, False, False])
    reference = torch.tensor([False, False, True])
    outs = Unroll(spy, warp_tensor)(gray, flows, pairs, colour, reference, first)
    # the key-framed clip starts from the given frame; the others from the network's guess
    assert torch.equal(outs[0][2], first[2]) and not torch.equal(outs[0][0], first[0])
    p = spy.placeholders[1]  # the second frame's placeholders (zero flow: the previous output itself)
    assert p.shape[1] == 3
    assert torch.allclose(p[0], outs[0][0], atol=1e-6)  # colour recurrence: the colour output
    assert torch.allclose(p[2], first[2], atol=1e-6)  # key frame: carried in colour
    gray_prev = 0.299 * outs[0][1, 0] + 0.587 * outs[0][1, 1] + 0.114 * outs[0][1, 2]
    assert torch.allclose(p[1], gray_prev.expand(3, h, w), atol=1e-5)  # the paper's gray recurrence
    # nothing asked: the paper's unroll, a one-channel gray placeholder
    spy2 = _Spy()
    Unroll(spy2, warp_tensor)(gray, flows, pairs)
    assert spy2.placeholders[1].shape[1] == 1
    # a gate that knows key frames (vcgan-lite-v1gk/-v1gm) is told which clips carry one, as
    # runtime.Colorizer tells it: a fourth plane, +1 for the key-framed clip, -1 otherwise
    from vcgan_cli.models import VARIANTS

    spy3 = _Spy()
    spy3.config = VARIANTS["tiny-v1gm"]
    Unroll(spy3, warp_tensor)(gray, flows, pairs, colour, reference, first)
    p3 = spy3.placeholders[1]
    assert p3.shape[1] == 4 and torch.equal(p3[:, :3], p)
    assert torch.equal(p3[:, 3], torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1).expand(3, h, w))
    assert spy3.placeholders[0].shape[1] == 1  # the first frame's G(x, x) as before


def test_a_run_with_the_colour_recurrence_exports_a_model_that_says_so(tmp_path, photos):
    from vcgan_cli.train.trainer import export
    from vcgan_cli.weights import load_weights

    kw = dict(stage=2, model="tiny-v1", data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=3, w_gan=0.0,
              colour_recurrence=0.5, reference=0.5, steps=2)
    Trainer(config(tmp_path, photos, **kw)).run()
    out, _, _ = export(tmp_path / "run", tmp_path / "model", which="last")
    data = json.loads((out / "config.json").read_text())
    assert data["colour_recurrence"] is True and data["format_version"] == 4
    assert load_weights(str(out)).config.colour_recurrence
    with pytest.raises(VcganError, match="reference must be between 0 and 1"):
        Trainer(config(tmp_path / "b", photos, **{**kw, "reference": 1.5}))
    with pytest.raises(VcganError, match="are for stage 2"):
        Trainer(config(tmp_path / "c", photos, stage=1, colour_recurrence=0.5))
    # a paper run's model file is as before
    Trainer(config(tmp_path / "p", photos, stage=1, model="tiny-v1", steps=1, out=str(tmp_path / "p"))).run()
    out, _, _ = export(tmp_path / "p", tmp_path / "pm", which="last")
    assert "colour_recurrence" not in json.loads((out / "config.json").read_text())


def test_key_framed_clips_are_judged_against_the_truth_itself_not_a_boosted_one(tmp_path, photos):
    """With --target-saturation 1.2 a key-framed clip must not learn "the key's colour x1.2"
    (the colour recurrence would compound it): its frames are compared with the truth as is."""
    kw = dict(stage=2, model="tiny-v1", data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=2, w_gan=0.0,
              perceptual="none", target_saturation=1.5, w_class=0.0)
    seen = {}
    for share in (0.0, 1.0):
        trainer = Trainer(config(tmp_path / str(share), photos, reference=share, colour_recurrence=1.0, **kw))
        batch = next(iter(trainer.loader))
        trainer.unroll_ddp = _Oracle(batch, 0.0)  # outputs the truth itself
        trainer.opt_g = torch.optim.SGD(trainer.unroll_ddp.parameters(), lr=0.0)
        seen[share] = trainer.train_step(batch)["l1"]
    assert seen[1.0] < 1e-6  # key-framed: the truth is the target
    assert seen[0.0] > 0.01  # otherwise the boosted truth is


@pytest.mark.parametrize("arch, part", [("tiny-v1k", "carry."), ("tiny-v1g", "gate."), ("tiny-v1gm", "gate.")])
def test_training_only_the_carry_path_leaves_the_gray_recurrence_as_it_was(tmp_path, photos, arch, part):
    """--train-only carry (vcgan-lite-v1k's carry path, -v1g's gate): only that part learns;
    every other weight and BatchNorm statistic stays the --init model's, so its gray
    recurrence is that model exactly."""
    from vcgan_cli.models import VARIANTS, build_generator
    from vcgan_cli.weights import save_weights

    torch.manual_seed(0)
    base = build_generator(VARIANTS["tiny-v1"])
    save_weights(base, tmp_path / "base")
    kw = dict(stage=2, model=arch, data=[], synthetic_data=[str(photos)], synthetic=1.0, frames=3, w_gan=0.0,
              colour_recurrence=1.0, reference=0.5, train_only="carry", init=str(tmp_path / "base"), lr_g=1e-2, steps=3)
    trainer = Trainer(config(tmp_path, photos, **kw))
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    trainer.run()
    after = trainer.generator.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(part) for k in changed), sorted(changed)
    from vcgan_cli.weights import load_weights

    g = trainer.generator.eval()
    base = load_weights(str(tmp_path / "base")).generator.float().eval()  # as saved (fp16) and read back
    x = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(g(x, x), base(x, x), atol=1e-6)
        colour = torch.rand(1, 3, 128, 128) * 2 - 1
        assert not torch.allclose(g(x, colour), base(x, colour), atol=1e-4)  # the colour recurrence learned
    with pytest.raises(VcganError, match="needs an architecture with a carry path"):
        Trainer(config(tmp_path / "b", photos, **{**kw, "model": "tiny-v1"}))


def test_freeze_norm_keeps_the_init_models_batchnorm_statistics(tmp_path, photos):
    """--freeze-norm: the weights train but every BatchNorm keeps the --init model's running
    statistics, in the network and in its moving average, so the fine-tune's first forward pass
    is the forked model's own; a plain fine-tune re-estimates them at once. Refused without --init."""
    from vcgan_cli.models import VARIANTS, build_generator
    from vcgan_cli.weights import save_weights

    torch.manual_seed(0)
    base = build_generator(VARIANTS["tiny-v1"])
    for m in base.modules():  # statistics unlike a fresh network's, as a trained model's are
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    save_weights(base, tmp_path / "base")
    stats = lambda g: {k: v.clone() for k, v in g.state_dict().items() if "running_" in k}
    runs = {}
    for frozen in (True, False):
        t = Trainer(config(tmp_path, photos, stage=1, model="tiny-v1", init=str(tmp_path / "base"), steps=3,
                           lr_g=1e-2, ema_decay=0.9, freeze_norm=frozen, out=str(tmp_path / f"run{frozen}")))
        before, weights = stats(t.generator), {k: v.clone() for k, v in t.generator.named_parameters()}
        t.run()
        assert any(not torch.equal(weights[k], v) for k, v in t.generator.named_parameters())  # it trained
        runs[frozen] = (before, stats(t.generator), stats(t.ema))
    before, after, ema = runs[True]
    assert before and all(torch.equal(before[k], after[k]) and torch.equal(before[k], ema[k]) for k in before)
    before, after, _ = runs[False]
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(VcganError, match="--freeze-norm keeps an --init model's"):
        Trainer(config(tmp_path, photos, stage=1, model="tiny-v1", freeze_norm=True, out=str(tmp_path / "no-init")))
