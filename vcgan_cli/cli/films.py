"""``vcgan colorize`` (one film or a batch) and ``vcgan preview``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.markup import escape

from .. import files
from ..codecs import CODECS, CRF_BOUNDS, codec_help, crf_help
from ..errors import Interrupted, VcganError
from .common import (
    CODEC_EXT,
    DONE_BEFORE,
    LazyProgress,
    Signalled,
    check_result_file,
    error_text,
    expand_films,
    fail,
    fail_interrupted,
    inputs_and_output,
    print_note,
    run_guarded,
    print_line,
    stop_on_signals,
    print_warning,
    write_text_file,
    err,
    main,
    model_option,
    raw_option,
    runtime_options,
    size_option,
)


def _colorize_batch(films, output, model, device, backend, precision, settings, report, quiet) -> None:
    """Several films, one model: each failure is one line and the others go on; a summary
    at the end, one progress display over all of them; exit 1 if any failed."""
    from rich.table import Table

    from ..media import MediaReader
    from ..partial import partial_dir
    from ..pipeline import StopRequest, colorize_video
    from ..runtime import load_model

    codec, overwrite = settings["codec"], settings["overwrite"]
    stopper = StopRequest()
    if output is not None:
        if output.exists() and not output.is_dir():
            fail(f"{output} is a file; several inputs need an output folder")
        if files.name_problem(output):
            fail(f"{output}: {files.name_problem(output)}")
    targets = [(output if output is not None else f.parent) / f"{f.stem}_color{CODEC_EXT[codec]}" for f in films]
    seen: dict[Path, Path] = {}
    for film, target in zip(films, targets):
        key = target.absolute()
        if key in seen:
            fail(f"{seen[key]} and {film} would both be written to {target}; give them separate runs or folders")
        seen[key] = film
    check_result_file(report, "--report", overwrite=overwrite, protected=(*films, *targets))
    if output is not None and not output.exists():
        run_guarded(lambda: output.mkdir(parents=True))
    colorizer = run_guarded(lambda: load_model(model, device=device, precision=precision, backend=backend))
    note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"

    # probe every film first: the broken ones are named at once, and the bar knows the total
    outcome: list[tuple[Path, Path, object]] = []
    counts = []
    for film, target in zip(films, targets):
        if settings["resume"] and not overwrite and target.exists() and not partial_dir(target).exists():
            counts.append(0)
            outcome.append((film, target, DONE_BEFORE))  # finished by the run being resumed
            continue
        try:
            with stop_on_signals():
                counts.append(MediaReader(film).info.frame_count)
            outcome.append((film, target, None))
        except (VcganError, OSError) as exc:
            counts.append(0)
            outcome.append((film, target, exc))
            print_line("[bold red]error:[/]", f"{film}: {error_text(exc)}" if str(film) not in error_text(exc) else error_text(exc))
    bar = LazyProgress(quiet, "", note)
    bar.grand_total = sum(c or 0 for c in counts) if all(counts[i] for i, o in enumerate(outcome) if o[2] is None) else None
    done = 0
    try:
        for k, (film, target, problem) in enumerate(outcome):
            if problem is not None:
                continue  # broken, or finished before
            bar.next_film(f"[{k + 1}/{len(films)}] {escape(film.name)}", done)
            try:
                with stop_on_signals(stopper):
                    result = colorize_video(film, target, model=colorizer, progress=bar.update, stop=stopper, **settings)
            except Interrupted as exc:
                bar.stop()
                fail_interrupted(exc)
            except Exception as exc:  # noqa: BLE001 - one bad film must not stop a batch (Ctrl-C and signals do)
                if os.environ.get("VCGAN_DEBUG"):
                    raise
                outcome[k] = (film, target, exc)
                bar.stop()
                bar.bar = None
                print_line("[bold red]error:[/]", error_text(exc) if str(film) in error_text(exc) else f"{film}: {error_text(exc)}")
                done += counts[k] or 0
                continue
            outcome[k] = (film, target, result)
            done += result.frames
            for w in result.warnings:
                bar.stop()
                bar.bar = None
                print_warning(f"{film.name}: {w}")
    except Signalled as exc:
        import signal

        bar.stop()
        fail(f"stopped by {signal.Signals(exc.signum).name}; the film being written was not kept", 128 + exc.signum)
    except KeyboardInterrupt:
        bar.stop()
        fail("interrupted; the film being written was not kept", 130)
    finally:
        bar.stop()
    failed = [o for o in outcome if isinstance(o[2], BaseException)]
    if report:
        entries = [
            {"input": str(f), "output": str(t), "error": error_text(r)} if isinstance(r, BaseException)
            else {"input": str(f), "output": str(t), "done_before": True} if r is DONE_BEFORE else r.to_dict()
            for f, t, r in outcome
        ]
        run_guarded(lambda: write_text_file(report, json.dumps({"films": entries}, indent=2) + "\n", overwrite=overwrite))
    if not quiet:
        table = Table(title=f"{len(films) - len(failed)} of {len(films)} films colourised")  # done before included
        for column in ("film", "output", "frames", "fps", "result"):
            table.add_column(column)
        for f, t, r in outcome:
            if isinstance(r, BaseException):
                table.add_row(escape(str(f)), "—", "—", "—", f"[red]failed[/]: {escape(error_text(r))}")
            elif r is DONE_BEFORE:
                table.add_row(escape(str(f)), escape(str(t)), "—", "—", "[green]done before[/] (kept)")
            else:
                table.add_row(escape(str(f)), escape(str(t)), str(r.frames), f"{r.fps:.1f}", "[green]ok[/]" + (f", {len(r.warnings)} warning(s)" if r.warnings else ""))
        err.print(table)
    if failed:
        fail(f"{len(failed)} of {len(films)} films failed")


@main.command()
@inputs_and_output("Output video (one input; default INPUT_color.mp4), or a folder for several inputs or folders of films (default: beside each).")
@model_option
@size_option
@click.option(
    "--codec",
    type=click.Choice(list(CODECS)),
    default="libx264",
    show_default=True,
    help=codec_help(),
)
@click.option("--crf", type=click.IntRange(*CRF_BOUNDS), default=None, help=crf_help())
@raw_option
@click.option("--no-scene-detect", is_flag=True, help="Never restart the recurrence at detected scene cuts.")
@click.option(
    "--scene-sensitivity",
    type=click.FloatRange(0.1, 10.0),
    default=1.0,
    show_default=True,
    help="Scene-cut detection: higher finds more cuts.",
)
@runtime_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (the input is never replaced).")
@click.option("--report", type=click.Path(path_type=Path), help="Also write a JSON summary (frames, shot starts, timing) here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary; errors and warnings only.")
@click.option("--strict", is_flag=True, help="Stop with exit status 3 at any damage in the input, instead of replacing an undecodable frame by the previous good one.")
@click.option("--start", metavar="TIME", help="Colourise from here: seconds (90, 1.5), HH:MM:SS.mmm, or a frame number (f1234). The sound is cut to match.")
@click.option("--end", metavar="TIME", help="... up to here (not included), in the same forms.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its saved work (OUTPUT.partial/), with the same settings; finished films of a batch are skipped.")
@click.option("--recurrence", type=click.Choice(["gray", "colour"]), default="gray", show_default=True,
              help="What the placeholder extractor sees of the previous output: its warped grayscale (the paper's) or its warped colour, which carries colour from frame to frame (a model trained for it).")
@click.option("--reference", type=click.Path(path_type=Path), metavar="IMAGE", help="A colour version of the first frame (of the excerpt, with --start): its colours are kept and carried through its shot.")
@click.option("--references", type=click.Path(path_type=Path), metavar="DIR", help="A folder of key frames, each named by the frame index it colours (000000.png, 001234.jpg): each one's colours are carried through the rest of its shot.")
def colorize(inputs, raw_output, model, size, codec, crf, raw, no_scene_detect, scene_sensitivity, device, backend, precision, overwrite, report, quiet, strict, start, end, resume, recurrence, reference, references):
    """Colourise films into new videos, keeping their sound and timing.

    INPUTS: one film, several, or folders of them (with -o a folder, or beside each)."""
    from ..media import CONTAINERS
    from ..partial import partial_dir
    from ..pipeline import StopRequest, colorize_video
    from ..runtime import load_model

    films = expand_films(inputs)
    output = Path(raw_output) if raw_output is not None else None
    if output is not None and files.name_problem(output):
        fail(f"cannot write {output}: {files.name_problem(output)}")
    as_folder = len(films) > 1 or any(p.is_dir() for p in inputs) or (
        output is not None and (str(raw_output).endswith(("/", os.sep)) or output.is_dir())
    )
    settings = dict(
        size=size, keep_luma=not raw, codec=codec, crf=crf, overwrite=overwrite,
        detect_cuts=not no_scene_detect, cut_sensitivity=scene_sensitivity, strict=strict, start=start, end=end,
        resume=resume, recurrence=recurrence,
    )
    from ..keyframes import KeyFrames
    from ..pipeline import parse_position

    if (reference is not None or references is not None) and (len(films) > 1 or any(p.is_dir() for p in inputs)):
        fail("key frames (--reference, --references) belong to one film; give one input")
    keys = run_guarded(lambda: KeyFrames.load(reference, references))  # an unreadable one fails now, before any work
    if keys is not None:
        settings["references"] = keys

    for value, what in ((start, "--start"), (end, "--end")):
        if value is not None:
            run_guarded(lambda v=value, w=what: parse_position(v, w))  # a typo fails now, not after the model loads
    if as_folder and output is not None and not output.is_dir() and output.suffix.lower() in CONTAINERS:
        what = "a folder of films" if any(p.is_dir() for p in inputs) else f"{len(films)} films"
        fail(f"{' '.join(map(str, inputs))}: {what} need -o to be a folder, not the file name {output}")
    if as_folder:
        return _colorize_batch(films, output, model, device, backend, precision, settings, report, quiet)
    input = films[0]
    if output is None:
        output = input.with_name(f"{input.stem}_color{CODEC_EXT[codec]}")
    check_result_file(report, "--report", overwrite=overwrite, protected=(input, output))
    if resume and not overwrite and output.exists() and not partial_dir(output).exists():
        print_note(f"{output} is finished already: there is no work in progress to resume ({partial_dir(output).name})")
        return
    stopper = StopRequest()

    def work():
        colorizer = load_model(model, device=device, precision=precision, backend=backend)
        note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"
        bar = LazyProgress(quiet, f"Colourising {escape(input.name)}", note)
        try:
            return colorize_video(input, output, model=colorizer, progress=bar.update, stop=stopper, **settings)
        finally:
            bar.stop()

    result = run_guarded(work, stopper)
    for w in result.warnings:
        print_warning(w)
    if report:
        run_guarded(lambda: write_text_file(report, json.dumps(result.to_dict(), indent=2) + "\n", overwrite=overwrite))
    if not quiet:
        cuts = [i for i in result.shot_starts if i > 0]
        cut_text = f" (cuts at frames {', '.join(map(str, cuts[:8]))}{', …' if len(cuts) > 8 else ''})" if cuts else ""
        dur = f", {result.duration:.2f} s" if result.duration else ""
        resumed = f" (resumed at frame {result.resumed_from})" if result.resumed_from else ""
        if result.references:
            used = ", ".join(f"{Path(r['file']).name} → shot {r['shot']}" for r in result.references[:6])
            resumed += f"\n  key frames: {used}{', …' if len(result.references) > 6 else ''}"
        if result.recurrence != "gray":
            resumed += f"\n  {result.recurrence} recurrence"
        err.print(
            f"[green]wrote[/] {escape(result.output)}: {result.frames} frames{dur}, {len(result.shot_starts)} shot(s){cut_text}{resumed}\n"
            f"  model {result.model} ({escape(result.model_source)}) on {result.device} {result.precision} ({result.backend}), "
            f"network at {result.working_size[1]}×{result.working_size[0]}, {result.fps:.1f} fps in {result.elapsed:.1f} s\n"
            f"  {result.output_info}",
            soft_wrap=True,
        )


@main.command()
@click.argument("film", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), help="The sheet, .png or .jpg (default: FILM_preview.png).")
@click.option("--frames", "-n", type=click.IntRange(1, 200), default=12, show_default=True, help="Frames on the sheet, spread evenly over the film.")
@model_option
@size_option
@click.option("--no-scene-detect", is_flag=True, help="Do not look for scene cuts.")
@click.option("--scene-sensitivity", type=click.FloatRange(0.1, 10.0), default=1.0, show_default=True, help="Scene-cut detection: higher finds more cuts.")
@runtime_options
@click.option("--overwrite", is_flag=True, help="Replace the sheet if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print errors and warnings only.")
def preview(film, output, frames, model, size, no_scene_detect, scene_sensitivity, device, backend, precision, overwrite, quiet):
    """A contact sheet to judge a model or setting before a long run: frames spread over
    FILM, each gray beside colour, with time codes, shots and the film's scene cuts."""
    from ..pipeline import preview_film
    from ..runtime import load_model

    output = output or film.with_name(f"{film.stem}_preview.png")

    def work():
        colorizer = load_model(model, device=device, precision=precision, backend=backend)
        note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"
        bar = LazyProgress(quiet, f"Previewing {escape(film.name)}", note)
        try:
            return preview_film(film, output, model=colorizer, frames=frames, size=size, detect_cuts=not no_scene_detect,
                                cut_sensitivity=scene_sensitivity, overwrite=overwrite, progress=bar.update)
        finally:
            bar.stop()

    result = run_guarded(work)
    for w in result.warnings:
        print_warning(w)
    if not quiet:
        cuts = ", ".join(f"{t:.2f}" for t in result.cuts[:12]) + (", …" if len(result.cuts) > 12 else "")
        err.print(
            f"[green]wrote[/] {escape(result.output)}: {len(result.picked)} of {result.frames_total} frames, "
            f"{len(result.cuts) + 1} shot(s){f' (cuts at {cuts} s)' if result.cuts else ''}, in {result.elapsed:.1f} s",
            soft_wrap=True,
        )
