"""The ``vcgan`` command: a thin Click + rich layer over the library."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import __version__
from .errors import VcganError

err = Console(stderr=True, highlight=False)

CODEC_EXT = {"libx264": ".mp4", "libx265": ".mp4", "prores_ks": ".mov", "ffv1": ".mkv"}


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def _run(fn):
    """Run ``fn`` turning every known failure into one line and a non-zero exit."""
    try:
        return fn()
    except VcganError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; no output was written", 130)
    except OSError as exc:  # full disk, permissions
        _fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("VCGAN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {first} (set VCGAN_DEBUG=1 for a traceback)", 2)


class _LazyProgress:
    """A rich progress bar that appears with the first frame (so an input rejected up front
    prints its error line alone), fed by the core's progress callback."""

    def __init__(self, quiet: bool, description: str, note: str | None = None):
        self.quiet = quiet
        self.description = description
        self.note = note
        self.bar: Progress | None = None
        self.task = None

    def update(self, p) -> None:
        if self.quiet:
            return
        if self.bar is None:
            if self.note:
                err.print(f"[yellow]note:[/] {self.note}", soft_wrap=True)
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]}"),
                TextColumn("shots {task.fields[shots]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=None, fps="", shots=0)
        fps = p.frames_done / p.elapsed if p.elapsed > 0 else 0.0
        total = p.frames_total if p.frames_total and p.frames_total >= p.frames_done else None
        self.bar.update(self.task, completed=p.frames_done, total=total, fps=f"{fps:.1f} fps", shots=p.shots)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


model_option = click.option(
    "--model",
    "-m",
    default=None,
    metavar="SPEC",
    help="Registered name (default vcgan-lite), 'tiny' (random weights, for trying the pipeline), "
    "random:ARCH, ./folder with config.json + model.safetensors, or hf-hub:owner/repo[@rev].",
)
size_option = click.option(
    "--size",
    type=click.IntRange(16, 4096),
    default=None,
    help="Working resolution: short side in pixels the network sees (default: the model's training size).",
)
device_option = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="auto = fp16 on CUDA, fp32 on the CPU.",
)
raw_option = click.option(
    "--raw",
    is_flag=True,
    help="Write the network's own RGB instead of keeping the source's full-resolution luminance.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vcgan")
def main() -> None:
    """Colourise black-and-white films and photographs with VCGAN."""


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Output video (default: INPUT_color.mp4).")
@model_option
@size_option
@click.option(
    "--codec",
    type=click.Choice(list(CODEC_EXT)),
    default="libx264",
    show_default=True,
    help="Video codec; prores_ks and ffv1 make archival masters (.mov / .mkv).",
)
@click.option("--crf", type=click.IntRange(0, 51), default=None, help="Quality for libx264/libx265 (lower is better; default 18/20).")
@raw_option
@click.option("--no-scene-detect", is_flag=True, help="Never restart the recurrence at detected scene cuts.")
@click.option(
    "--scene-sensitivity",
    type=click.FloatRange(0.1, 10.0),
    default=1.0,
    show_default=True,
    help="Scene-cut detection: higher finds more cuts.",
)
@device_option
@precision_option
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (the input is never replaced).")
@click.option("--report", type=click.Path(path_type=Path), help="Also write a JSON summary (frames, shot starts, timing) here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary; errors and warnings only.")
def colorize(input, output, model, size, codec, crf, raw, no_scene_detect, scene_sensitivity, device, precision, overwrite, report, quiet):
    """Colourise the film INPUT into a new video, keeping its sound and timing."""
    from .pipeline import colorize_video
    from .runtime import load_model

    if output is None:
        output = input.with_name(f"{input.stem}_color{CODEC_EXT[codec]}")

    def work():
        colorizer = load_model(model, device=device, precision=precision)
        note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"
        bar = _LazyProgress(quiet, f"Colourising {input.name}", note)
        try:
            return colorize_video(
                input,
                output,
                model=colorizer,
                size=size,
                keep_luma=not raw,
                codec=codec,
                crf=crf,
                overwrite=overwrite,
                detect_cuts=not no_scene_detect,
                cut_sensitivity=scene_sensitivity,
                progress=bar.update,
            )
        finally:
            bar.stop()

    result = _run(work)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}", soft_wrap=True)
    if report:
        _run(lambda: report.write_text(json.dumps(result.to_dict(), indent=2) + "\n"))
    if not quiet:
        cuts = [i for i in result.shot_starts if i > 0]
        cut_text = f" (cuts at frames {', '.join(map(str, cuts[:8]))}{', …' if len(cuts) > 8 else ''})" if cuts else ""
        dur = f", {result.duration:.2f} s" if result.duration else ""
        err.print(
            f"[green]wrote[/] {result.output}: {result.frames} frames{dur}, {len(result.shot_starts)} shot(s){cut_text}\n"
            f"  model {result.model} ({result.model_source}) on {result.device} {result.precision}, "
            f"network at {result.working_size[1]}×{result.working_size[0]}, {result.fps:.1f} fps in {result.elapsed:.1f} s\n"
            f"  {result.output_info}",
            soft_wrap=True,
        )


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Output file (one input) or folder (default: NAME_color.EXT beside each input).",
)
@model_option
@size_option
@raw_option
@device_option
@precision_option
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (inputs are never replaced).")
@click.option("--quiet", "-q", is_flag=True, help="Print errors and warnings only.")
def image(inputs, output, model, size, raw, device, precision, overwrite, quiet):
    """Colourise photos: files, or folders of JPEG/PNG/TIFF/WebP images."""
    from .images import IMAGE_EXTENSIONS
    from .pipeline import colorize_image, image_output_path
    from .runtime import load_model

    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith("."))
            if not found:
                _fail(f"{p}: no images (JPEG, PNG, TIFF, WebP, BMP) in this folder")
            files.extend(found)
        elif not p.exists():
            _fail(f"{p}: no such file or folder")
        else:
            files.append(p)
    many = len(files) > 1 or any(p.is_dir() for p in inputs)
    if many and output is not None and output.exists() and not output.is_dir():
        _fail(f"{output} is a file; several inputs need an output folder")
    if many and output is not None and not output.exists():
        _run(lambda: output.mkdir(parents=True))

    colorizer = _run(lambda: load_model(model, device=device, precision=precision))
    note = not colorizer.weights.trained and not quiet
    failed = 0
    for src in files:
        dst = image_output_path(src, output, many)
        try:
            result = colorize_image(src, dst, model=colorizer, size=size, keep_luma=not raw, overwrite=overwrite)
        except VcganError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            failed += 1
            continue
        if note:
            err.print(f"[yellow]note:[/] model {colorizer.name!r} has random weights: expect noise colours")
            note = False
        for w in result.warnings:
            err.print(f"[yellow]warning:[/] {w}", soft_wrap=True)
        if not quiet:
            err.print(f"[green]wrote[/] {dst} ({result.size[1]}×{result.size[0]})", soft_wrap=True)
    if failed and len(files) > 1:
        _fail(f"{failed} of {len(files)} images failed")
    if failed:
        sys.exit(1)


@main.command("models")
def list_models():
    """List the models: shipped weights and the architectures."""
    from .models import VARIANTS, Generator, count_parameters
    from .weights import DEFAULT_MODEL, REGISTRY, weights_dir

    out = Console(highlight=False)
    for name, cfg in VARIANTS.items():
        shipped = name in REGISTRY and (weights_dir() / REGISTRY[name].folder).is_dir()
        params = count_parameters(Generator(cfg)) / 1e6
        status = "shipped weights" if shipped else ("random weights" if name == "tiny" else "no weights shipped yet")
        default = " (default)" if name == DEFAULT_MODEL else ""
        out.print(f"{name:<12}{default:<10} {params:7.2f} M params, {cfg.extractor} extractors — {status}")


if __name__ == "__main__":
    main()
