"""``vcgan train``, ``export``, ``extrapolate``."""
from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..errors import VcganError
from .common import (
    Duration,
    fail,
    resume_hint,
    run_guarded,
    print_line,
    device_option,
    err,
    main,
    precision_option,
)


def _train_options(fn):
    """The options of `vcgan train`, made from their one declaration (train.trainer.TRAIN_OPTIONS)."""
    from ..train.trainer import TRAIN_OPTIONS

    def number(o, kind):
        if o.low is None and o.high is None:
            return kind
        ranged = click.IntRange if kind is int else click.FloatRange
        return ranged(o.low, o.high, max_open=o.high_open)

    for o in reversed(TRAIN_OPTIONS):
        if o.kind in ("on", "off"):
            option = click.option(o.flag, o.field, is_flag=True, default=False, help=o.help)
        elif o.kind == "switch":
            name = o.flag.removeprefix("--")
            option = click.option(f"--{name}/--no-{name}", o.field, default=None, help=o.help)
        elif o.kind in ("path", "paths"):
            option = click.option(o.flag, o.field, multiple=o.kind == "paths",
                                  type=click.Path(exists=True, path_type=Path), help=o.help)
        elif o.kind == "choice":
            option = click.option(o.flag, o.field, type=click.Choice(list(o.choices)), default=None, help=o.help)
        else:
            kind = {"int": int, "float": float, "text": str}[o.kind]
            option = click.option(o.flag, o.field, type=number(o, kind) if kind is not str else str,
                                  default=None, metavar=o.metavar, help=o.help)
        fn = option(fn)
    return fn


@main.command()
@_train_options
@click.option("--time-limit", type=Duration(), default=None, help="Stop cleanly after this much training time (600, 45m, 2h, 1h30m), saving a checkpoint that --resume continues from.")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path), help="JSON file of settings (any TrainConfig field); flags override it.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (default runs/stage<N>).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Continue the run in this folder exactly where it stopped.")
@device_option
@precision_option
@click.option("--quiet", "-q", is_flag=True)
def train(time_limit, config_file, out, resume, device, precision, quiet, **options):
    """Train VCGAN: --stage 1 on images, then --stage 2 on videos (the paper's losses)."""
    from rich.live import Live
    from rich.table import Table

    from ..train.trainer import TrainConfig, Trainer, option_settings

    live = None if quiet else Live(Table.grid(), console=err, refresh_per_second=4, transient=False)

    def say(message: str) -> None:
        if not quiet:
            err.print(escape(message), soft_wrap=True)

    def on_step(r):
        if live is None:
            return
        eta = "" if r.eta_s is None else f"ETA {int(r.eta_s // 3600)}:{int(r.eta_s % 3600 // 60):02d}:{int(r.eta_s % 60):02d}"
        terms = "  ".join(f"{k} {v:.4f}" for k, v in r.losses.items())
        grid = Table.grid(padding=(0, 2))
        grid.add_row(f"[bold]step {r.step}/{r.steps}[/]", f"{r.samples_per_s:.1f} samples/s", f"lr {r.lr:.2e}", eta)
        grid.add_row(terms)
        if r.validation:
            v = r.validation
            scores = "  ".join(f"{k} {v[k]:.4f}" for k in ("psnr", "ssim", "warp-error") if v.get(k) is not None)
            grid.add_row(f"val step {v['step']}: {scores}" + ("  (best so far)" if v["best"] else ""))
        live.update(grid)

    def work():
        settings = TrainConfig.from_file(config_file) if config_file else {}
        settings.update(option_settings(options))
        settings.update(device=device, precision=precision)
        if resume:
            # only what was given on the command line (or in --config) changes a resumed run
            given = {k: v for k, v in settings.items() if k not in ("device", "precision") or v != "auto"}
            trainer = Trainer(TrainConfig(out=str(resume)), resume=True, overrides=given, on_step=on_step, on_message=say)
        else:
            if "stage" not in settings:
                raise VcganError("pass --stage 1 (images) or --stage 2 (videos), or --resume RUN_DIR")
            settings["out"] = str(out or settings.get("out") or Path("runs") / f"stage{settings['stage']}")
            if Path(settings["out"], "checkpoints", "last.pt").exists():
                raise VcganError(f"{settings['out']} already holds a run; use --resume {settings['out']} or another --out")
            trainer = Trainer(TrainConfig(**settings), on_step=on_step, on_message=say)

        # SIGTERM (a scheduler's stop, `kill`, the end of a job slot) stops the run cleanly
        # after the step in progress, with a checkpoint; a second SIGTERM kills at once. A
        # background job started by a shell ignores SIGINT, so SIGTERM is what reaches it.
        import signal
        import threading

        def on_term(signum, frame):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            trainer.request_stop("SIGTERM")

        previous = None
        try:
            main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
            if main_thread and signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
                previous = signal.signal(signal.SIGTERM, on_term)
            if live:
                live.start()
            return trainer.run(time_limit_s=time_limit)
        except KeyboardInterrupt:
            if live:
                live.stop()
            fail(f"interrupted {resume_hint(trainer.step, trainer.out)}", 130)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if live:
                live.stop()

    result = run_guarded(work)
    if result.get("stopped") == "SIGTERM":
        fail(f"stopped by SIGTERM {resume_hint(result['step'], result['out'])}", 143)
    if quiet:
        return
    if result.get("stopped") == "time limit":
        print_line("[yellow]time limit:[/]", f"stopped {resume_hint(result['step'], result['out'])}")
    else:
        print_line("[green]done:[/]", f"step {result['step']}, run in {result['out']}; export with: vcgan export {result['out']} -o MODEL_DIR")


@main.command("export")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Model folder to write (config.json + model.safetensors).")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint (a file, or a name in RUN/checkpoints/).")
@click.option("--overwrite", is_flag=True, help="Replace the model in an existing, non-empty folder.")
@click.option("--raw-weights", is_flag=True, help="From a checkpoint of a run with --ema-decay: the generator's own weights, not their moving average.")
def export_model(run, output, checkpoint, overwrite, raw_weights):
    """Export a training run as a model folder that `vcgan colorize --model` loads."""
    from ..train.trainer import export

    folder, sha, used = run_guarded(lambda: export(run, output, checkpoint, overwrite, average=not raw_weights))
    print_line("[green]wrote[/]", f"{folder}/model.safetensors from {used} (fp16, sha256 {sha})")


@main.command("extrapolate")
@click.argument("older")
@click.argument("newer")
@click.option("--by", "amount", type=float, required=True, help="How far past NEWER to go, as a fraction of the step from OLDER to NEWER (e.g. 0.25; keep it small; negative values interpolate back towards OLDER).")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Model folder to write (config.json + model.safetensors).")
@click.option("--overwrite", is_flag=True, help="Replace the model in an existing, non-empty folder.")
def extrapolate_model(older, newer, amount, output, overwrite):
    """Write NEWER + BY x (NEWER - OLDER): continue the step one round of training took.

    OLDER and NEWER are models as --model takes them (a registered name, ./folder or
    hf-hub:owner/repo), NEWER trained from OLDER. Only the learned weights move (ExPO, Zheng
    et al. 2024). Score the result on held-out clips (vcgan bench) before trusting it.
    """
    from ..weights import check_model_folder, extrapolate, load_weights, save_weights

    def write() -> str:
        check_model_folder(output, overwrite)
        return save_weights(extrapolate(load_weights(older), load_weights(newer), amount), output)

    sha = run_guarded(write)
    print_line("[green]wrote[/]", f"{output}/model.safetensors = {newer} + {amount:g} x ({newer} - {older}) (fp16, sha256 {sha})")
