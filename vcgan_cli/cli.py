"""The ``vcgan`` command: a thin Click + rich layer over the library."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Column
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import __version__, files
from .codecs import CODECS, CRF_BOUNDS, codec_help, crf_help
from .errors import Interrupted, VcganError

err = Console(stderr=True, highlight=False)

CODEC_EXT = {name: c.extension for name, c in CODECS.items()}


def _say(label: str, message: str) -> None:
    """One message on stderr; ``message`` is plain text (file names may hold [brackets])."""
    err.print(f"{label} {escape(message)}", soft_wrap=True)


def _warn(message: str) -> None:
    _say("[yellow]warning:[/]", message)


def _note(message: str) -> None:
    _say("[yellow]note:[/]", message)


def _fail(message: str, code: int = 1) -> None:
    _say("[bold red]error:[/]", message)
    sys.exit(code)


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, so the work stops as on Ctrl-C
    (temporary files removed, nothing left under an output name)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals(stopper=None):
    """While a command works: SIGTERM (``kill``, a job scheduler) and SIGHUP (a closed
    terminal) interrupt it as Ctrl-C does. With ``stopper`` (a pipeline.StopRequest) all
    three first ask the film being colourised to stop after its frame and keep its work;
    a second one, or one while no film is being colourised, interrupts at once. A signal
    already ignored (``nohup``) stays ignored; the previous handlers come back afterwards."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stopper is not None and stopper.request(signum):
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Signalled(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP", *(("SIGINT",) if stopper is not None else ())):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _resume_command() -> str:
    import shlex

    args = sys.argv[1:]
    return shlex.join(["vcgan", *args, *(() if "--resume" in args else ("--resume",))])


def _fail_interrupted(exc) -> None:
    """One line for a run stopped by a signal, and the command that continues it."""
    _say("[bold red]stopped[/]", str(exc).removeprefix("stopped "))
    if exc.partial:
        _say("[yellow]resume with:[/]", _resume_command())
    sys.exit(exc.exit_code)


def _error_text(exc: Exception) -> str:
    """One line for a failure of one item in a batch (what :func:`_run` would print)."""
    if isinstance(exc, VcganError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{files.os_error_text(exc)}{f': {exc.filename}' if exc.filename else ''}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected {type(exc).__name__}: {first} (set VCGAN_DEBUG=1 for a traceback)"


def _run(fn, stopper=None):
    """Run ``fn`` turning every known failure into one line and a non-zero exit."""
    try:
        with _stop_on_signals(stopper):
            return fn()
    except Interrupted as exc:
        _fail_interrupted(exc)
    except VcganError as exc:
        _fail(str(exc), exc.exit_code)
    except _Signalled as exc:
        import signal

        _fail(f"stopped by {signal.Signals(exc.signum).name}; no output was written", 128 + exc.signum)
    except KeyboardInterrupt:
        _fail("interrupted; no output was written", 130)
    except OSError as exc:  # full disk, permissions
        _fail(f"{files.os_error_text(exc)}{f': {exc.filename}' if exc.filename else ''}")
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("VCGAN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {first} (set VCGAN_DEBUG=1 for a traceback)", 2)


def _check_parent(path: Path | None, option: str) -> None:
    """Refuse up front (not after hours of work) a result file whose folder does not exist."""
    if path is not None and not path.absolute().parent.is_dir():
        _fail(f"{option} {path}: folder {path.absolute().parent} does not exist")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_result_file(path: Path | None, option: str, *, overwrite: bool, protected=(), trees=()) -> None:
    """Refuse up front a result file (a report, a JSON or CSV) that would destroy something:
    a folder, one of the run's own inputs or outputs (``protected``; never, even with
    --overwrite), a file inside a data tree it reads (``trees``), or an existing file
    without --overwrite."""
    if path is None:
        return
    _check_parent(path, option)
    problem = files.target_problem(path)
    if problem:
        _fail(f"{option} {path}: {problem}")
    if path.is_dir():
        _fail(f"{option} {path}: is a folder; give a file name")
    for other in protected:
        if other is not None and (_same_file(path, Path(other)) or path.absolute() == Path(other).absolute()):
            _fail(f"{option} {path}: is also one of this run's inputs or outputs; give another file")
    for tree in trees:
        if tree is not None and Path(tree).is_dir():
            root = Path(tree).resolve()
            if root == path.resolve().parent or root in path.resolve().parents:
                _fail(f"{option} {path}: is inside {tree}, which this run reads; write it elsewhere")
    if path.exists() and not overwrite:
        _fail(f"{option} {path}: exists (pass --overwrite to replace it)")


def _write_text(path: Path, text: str, *, overwrite: bool) -> None:
    try:
        files.write_atomic(path, text, overwrite=overwrite)
    except OSError as exc:
        raise VcganError(f"cannot write {path}: {files.os_error_text(exc)}") from None


class _LazyProgress:
    """A rich progress bar that appears with the first frame (so an input rejected up front
    prints its error line alone), fed by the core's progress callback."""

    def __init__(self, quiet: bool, description: str, note: str | None = None):
        self.quiet = quiet
        self.description = description
        self.note = note
        self.bar: Progress | None = None
        self.task = None
        # over a batch: frames of the films before this one, and of all of them (None: unknown)
        self.offset = 0
        self.grand_total: int | None = None

    def next_film(self, description: str, offset: int) -> None:
        self.description, self.offset = description, offset
        if self.bar is not None:
            self.bar.update(self.task, description=description)

    def update(self, p) -> None:
        if self.quiet:
            return
        if self.bar is None:
            if self.note:
                _note(self.note)
            # fits 80 columns: the name is cut (not the counts) and the bar takes what is left
            self.bar = Progress(
                TextColumn("{task.description}", table_column=Column(max_width=26, overflow="ellipsis", no_wrap=True)),
                BarColumn(bar_width=None, table_column=Column(ratio=1)),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]}"),
                TextColumn("shots {task.fields[shots]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err,
                expand=True,
            )
            self.bar.start()
            # frames of an earlier run resumed from count as done, not as this run's speed
            self.task = self.bar.add_task(self.description, total=None, fps="", shots=0, completed=self.offset + p.frames_resumed)
        fps = (p.frames_done - p.frames_resumed) / p.elapsed if p.elapsed > 0 else 0.0
        total = p.frames_total if p.frames_total and p.frames_total >= p.frames_done else None
        if self.grand_total is not None:
            total = max(self.grand_total, self.offset + p.frames_done)
        self.bar.update(self.task, completed=self.offset + p.frames_done, total=total, fps=f"{fps:.1f} fps", shots=p.shots)

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
backend_option = click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "openvino"]),
    default="auto",
    show_default=True,
    envvar="VCGAN_BACKEND",
    help="How the network runs on the CPU: openvino (about 2x faster; converted once per model and size, "
    "checked against PyTorch, cached), torch, or auto (openvino where installed).",
)
precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
    default="auto",
    show_default=True,
    help="auto = fp16 on CUDA, fp32 on the CPU.",
)


def _resume_hint(step: int, run) -> str:
    return f"at step {step} (checkpoint saved); continue with: vcgan train --resume {run}"


class Duration(click.ParamType):
    """A length of time: seconds (``90``, ``90s``), minutes (``45m``), hours (``2h``, ``1.5h``)
    or a sum (``1h30m``)."""

    name = "duration"
    _UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        import re

        text = str(value).strip().lower()
        number = r"(\d+(?:\.\d*)?|\.\d+)"
        parts = re.findall(number + r"([hms]?)", text) if re.fullmatch(f"(?:{number}[hms]?)+", text) else []
        if not parts or (len(parts) > 1 and any(unit == "" for _, unit in parts)):
            self.fail(f"{value!r} is not a duration (say 600, 45m, 2h or 1h30m)", param, ctx)
        return sum(float(n) * self._UNITS[unit or "s"] for n, unit in parts)


raw_option = click.option(
    "--raw",
    is_flag=True,
    help="Write the network's own RGB instead of keeping the source's full-resolution luminance.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vcgan")
def main() -> None:
    """Colourise black-and-white films and photographs with VCGAN."""


def _inputs_and_output(output_help: str):
    """INPUTS (files or folders) and -o/--output (a file for one input, else a folder), as
    `colorize` and `image` both take them."""

    def apply(fn):
        fn = click.option("--output", "-o", "raw_output", type=click.Path(), help=output_help)(fn)
        return click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))(fn)

    return apply


def _expand_films(inputs: tuple[Path, ...]) -> list[Path]:
    """The films named: files as given, folders as the videos in them (not hidden files, not
    their own earlier NAME_color outputs)."""
    from .media import VIDEO_EXTENSIONS

    films: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir()
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS and not f.name.startswith(".") and not f.stem.endswith("_color")
            )
            if not found:
                _fail(f"{p}: no videos ({', '.join(VIDEO_EXTENSIONS[:6])}, ...) in this folder")
            films.extend(found)
        else:
            films.append(p)
    return films


#: A film of a batch being resumed whose output was finished by the run before.
_DONE_BEFORE = object()


def _colorize_batch(films, output, model, device, backend, precision, settings, report, quiet) -> None:
    """Several films, one model: each failure is one line and the others go on; a summary
    at the end, one progress display over all of them; exit 1 if any failed."""
    from rich.table import Table

    from .media import MediaReader
    from .partial import partial_dir
    from .pipeline import StopRequest, colorize_video
    from .runtime import load_model

    codec, overwrite = settings["codec"], settings["overwrite"]
    stopper = StopRequest()
    if output is not None:
        if output.exists() and not output.is_dir():
            _fail(f"{output} is a file; several inputs need an output folder")
        if files.name_problem(output):
            _fail(f"{output}: {files.name_problem(output)}")
    targets = [(output if output is not None else f.parent) / f"{f.stem}_color{CODEC_EXT[codec]}" for f in films]
    seen: dict[Path, Path] = {}
    for film, target in zip(films, targets):
        key = target.absolute()
        if key in seen:
            _fail(f"{seen[key]} and {film} would both be written to {target}; give them separate runs or folders")
        seen[key] = film
    _check_result_file(report, "--report", overwrite=overwrite, protected=(*films, *targets))
    if output is not None and not output.exists():
        _run(lambda: output.mkdir(parents=True))
    colorizer = _run(lambda: load_model(model, device=device, precision=precision, backend=backend))
    note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"

    # probe every film first: the broken ones are named at once, and the bar knows the total
    outcome: list[tuple[Path, Path, object]] = []
    counts = []
    for film, target in zip(films, targets):
        if settings["resume"] and not overwrite and target.exists() and not partial_dir(target).exists():
            counts.append(0)
            outcome.append((film, target, _DONE_BEFORE))  # finished by the run being resumed
            continue
        try:
            with _stop_on_signals():
                counts.append(MediaReader(film).info.frame_count)
            outcome.append((film, target, None))
        except (VcganError, OSError) as exc:
            counts.append(0)
            outcome.append((film, target, exc))
            _say("[bold red]error:[/]", f"{film}: {_error_text(exc)}" if str(film) not in _error_text(exc) else _error_text(exc))
    bar = _LazyProgress(quiet, "", note)
    bar.grand_total = sum(c or 0 for c in counts) if all(counts[i] for i, o in enumerate(outcome) if o[2] is None) else None
    done = 0
    try:
        for k, (film, target, problem) in enumerate(outcome):
            if problem is not None:
                continue  # broken, or finished before
            bar.next_film(f"[{k + 1}/{len(films)}] {escape(film.name)}", done)
            try:
                with _stop_on_signals(stopper):
                    result = colorize_video(film, target, model=colorizer, progress=bar.update, stop=stopper, **settings)
            except Interrupted as exc:
                bar.stop()
                _fail_interrupted(exc)
            except Exception as exc:  # noqa: BLE001 - one bad film must not stop a batch (Ctrl-C and signals do)
                if os.environ.get("VCGAN_DEBUG"):
                    raise
                outcome[k] = (film, target, exc)
                bar.stop()
                bar.bar = None
                _say("[bold red]error:[/]", _error_text(exc) if str(film) in _error_text(exc) else f"{film}: {_error_text(exc)}")
                done += counts[k] or 0
                continue
            outcome[k] = (film, target, result)
            done += result.frames
            for w in result.warnings:
                bar.stop()
                bar.bar = None
                _warn(f"{film.name}: {w}")
    except _Signalled as exc:
        import signal

        bar.stop()
        _fail(f"stopped by {signal.Signals(exc.signum).name}; the film being written was not kept", 128 + exc.signum)
    except KeyboardInterrupt:
        bar.stop()
        _fail("interrupted; the film being written was not kept", 130)
    finally:
        bar.stop()
    failed = [o for o in outcome if isinstance(o[2], BaseException)]
    if report:
        entries = [
            {"input": str(f), "output": str(t), "error": _error_text(r)} if isinstance(r, BaseException)
            else {"input": str(f), "output": str(t), "done_before": True} if r is _DONE_BEFORE else r.to_dict()
            for f, t, r in outcome
        ]
        _run(lambda: _write_text(report, json.dumps({"films": entries}, indent=2) + "\n", overwrite=overwrite))
    if not quiet:
        table = Table(title=f"{len(films) - len(failed)} of {len(films)} films colourised")  # done before included
        for column in ("film", "output", "frames", "fps", "result"):
            table.add_column(column)
        for f, t, r in outcome:
            if isinstance(r, BaseException):
                table.add_row(escape(str(f)), "—", "—", "—", f"[red]failed[/]: {escape(_error_text(r))}")
            elif r is _DONE_BEFORE:
                table.add_row(escape(str(f)), escape(str(t)), "—", "—", "[green]done before[/] (kept)")
            else:
                table.add_row(escape(str(f)), escape(str(t)), str(r.frames), f"{r.fps:.1f}", "[green]ok[/]" + (f", {len(r.warnings)} warning(s)" if r.warnings else ""))
        err.print(table)
    if failed:
        _fail(f"{len(failed)} of {len(films)} films failed")


@main.command()
@_inputs_and_output("Output video (one input; default INPUT_color.mp4), or a folder for several inputs or folders of films (default: beside each).")
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
@device_option
@backend_option
@precision_option
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
    from .media import CONTAINERS
    from .partial import partial_dir
    from .pipeline import StopRequest, colorize_video
    from .runtime import load_model

    films = _expand_films(inputs)
    output = Path(raw_output) if raw_output is not None else None
    if output is not None and files.name_problem(output):
        _fail(f"cannot write {output}: {files.name_problem(output)}")
    as_folder = len(films) > 1 or any(p.is_dir() for p in inputs) or (
        output is not None and (str(raw_output).endswith(("/", os.sep)) or output.is_dir())
    )
    settings = dict(
        size=size, keep_luma=not raw, codec=codec, crf=crf, overwrite=overwrite,
        detect_cuts=not no_scene_detect, cut_sensitivity=scene_sensitivity, strict=strict, start=start, end=end,
        resume=resume, recurrence=recurrence,
    )
    from .keyframes import KeyFrames
    from .pipeline import parse_position

    if (reference is not None or references is not None) and (len(films) > 1 or any(p.is_dir() for p in inputs)):
        _fail("key frames (--reference, --references) belong to one film; give one input")
    keys = _run(lambda: KeyFrames.load(reference, references))  # an unreadable one fails now, before any work
    if keys is not None:
        settings["references"] = keys

    for value, what in ((start, "--start"), (end, "--end")):
        if value is not None:
            _run(lambda v=value, w=what: parse_position(v, w))  # a typo fails now, not after the model loads
    if as_folder and output is not None and not output.is_dir() and output.suffix.lower() in CONTAINERS:
        what = "a folder of films" if any(p.is_dir() for p in inputs) else f"{len(films)} films"
        _fail(f"{' '.join(map(str, inputs))}: {what} need -o to be a folder, not the file name {output}")
    if as_folder:
        return _colorize_batch(films, output, model, device, backend, precision, settings, report, quiet)
    input = films[0]
    if output is None:
        output = input.with_name(f"{input.stem}_color{CODEC_EXT[codec]}")
    _check_result_file(report, "--report", overwrite=overwrite, protected=(input, output))
    if resume and not overwrite and output.exists() and not partial_dir(output).exists():
        _note(f"{output} is finished already: there is no work in progress to resume ({partial_dir(output).name})")
        return
    stopper = StopRequest()

    def work():
        colorizer = load_model(model, device=device, precision=precision, backend=backend)
        note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"
        bar = _LazyProgress(quiet, f"Colourising {escape(input.name)}", note)
        try:
            return colorize_video(input, output, model=colorizer, progress=bar.update, stop=stopper, **settings)
        finally:
            bar.stop()

    result = _run(work, stopper)
    for w in result.warnings:
        _warn(w)
    if report:
        _run(lambda: _write_text(report, json.dumps(result.to_dict(), indent=2) + "\n", overwrite=overwrite))
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
@device_option
@backend_option
@precision_option
@click.option("--overwrite", is_flag=True, help="Replace the sheet if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print errors and warnings only.")
def preview(film, output, frames, model, size, no_scene_detect, scene_sensitivity, device, backend, precision, overwrite, quiet):
    """A contact sheet to judge a model or setting before a long run: frames spread over
    FILM, each gray beside colour, with time codes, shots and the film's scene cuts."""
    from .pipeline import preview_film
    from .runtime import load_model

    output = output or film.with_name(f"{film.stem}_preview.png")

    def work():
        colorizer = load_model(model, device=device, precision=precision, backend=backend)
        note = None if colorizer.weights.trained else f"model {colorizer.name!r} has random weights: expect noise colours"
        bar = _LazyProgress(quiet, f"Previewing {escape(film.name)}", note)
        try:
            return preview_film(film, output, model=colorizer, frames=frames, size=size, detect_cuts=not no_scene_detect,
                                cut_sensitivity=scene_sensitivity, overwrite=overwrite, progress=bar.update)
        finally:
            bar.stop()

    result = _run(work)
    for w in result.warnings:
        _warn(w)
    if not quiet:
        cuts = ", ".join(f"{t:.2f}" for t in result.cuts[:12]) + (", …" if len(result.cuts) > 12 else "")
        err.print(
            f"[green]wrote[/] {escape(result.output)}: {len(result.picked)} of {result.frames_total} frames, "
            f"{len(result.cuts) + 1} shot(s){f' (cuts at {cuts} s)' if result.cuts else ''}, in {result.elapsed:.1f} s",
            soft_wrap=True,
        )


@main.command()
@_inputs_and_output("Output file (one input) or folder (default: NAME_color.EXT beside each input).")
@model_option
@size_option
@raw_option
@device_option
@backend_option
@precision_option
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (inputs are never replaced).")
@click.option("--quiet", "-q", is_flag=True, help="Print errors and warnings only.")
def image(inputs, raw_output, model, size, raw, device, backend, precision, overwrite, quiet):
    """Colourise photos: files, or folders of JPEG/PNG/TIFF/WebP images."""
    output = Path(raw_output) if raw_output is not None else None
    from .images import IMAGE_EXTENSIONS
    from .pipeline import colorize_image, image_output_path
    from .runtime import load_model

    photos: list[Path] = []
    for p in inputs:
        if p.is_dir():
            # a folder's own earlier outputs (NAME_color.EXT) are not inputs
            found = sorted(
                f for f in p.iterdir()
                if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".") and not f.stem.endswith("_color")
            )
            if not found:
                _fail(f"{p}: no images (JPEG, PNG, TIFF, WebP, BMP) in this folder")
            photos.extend(found)
        elif not p.exists():
            _fail(f"{p}: no such file or folder")
        else:
            photos.append(p)
    if output is not None and files.name_problem(output):
        _fail(f"{output}: {files.name_problem(output)}")
    many = len(photos) > 1 or any(p.is_dir() for p in inputs)
    as_folder = output is not None and (many or str(raw_output).endswith(("/", os.sep)) or output.is_dir())
    if as_folder and output.exists() and not output.is_dir():
        _fail(f"{output} is a file; several inputs need an output folder")
    if as_folder and not output.exists():
        _run(lambda: output.mkdir(parents=True))
    if output is not None and not as_folder:
        if output.suffix.lower() not in IMAGE_EXTENSIONS:
            _fail(f"{output}: unknown image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
        problem = files.folder_problem(output.absolute().parent)
        if problem:
            _fail(f"{output}: {problem}")

    colorizer = _run(lambda: load_model(model, device=device, precision=precision, backend=backend))
    note = not colorizer.weights.trained and not quiet
    failed = 0
    for src in photos:
        dst = image_output_path(src, output, as_folder)
        try:
            result = colorize_image(src, dst, model=colorizer, size=size, keep_luma=not raw, overwrite=overwrite)
        except KeyboardInterrupt:
            _fail("interrupted; the image being written was not kept", 130)
        except VcganError as exc:
            _say("[bold red]error:[/]", str(exc))
            failed += 1
            continue
        except OSError as exc:
            _say("[bold red]error:[/]", f"{src} → {dst}: {files.os_error_text(exc)}")
            failed += 1
            continue
        except Exception as exc:  # noqa: BLE001 - one bad photo must not stop a batch
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _say("[bold red]error:[/]", f"{src}: {first}")
            failed += 1
            continue
        if note:
            _note(f"model {colorizer.name!r} has random weights: expect noise colours")
            note = False
        for w in result.warnings:
            _warn(w)
        if not quiet:
            err.print(f"[green]wrote[/] {escape(str(dst))} ({result.size[1]}×{result.size[0]})", soft_wrap=True)
    if failed and len(photos) > 1:
        _fail(f"{failed} of {len(photos)} images failed")
    if failed:
        sys.exit(1)


BENCH_METRICS = ("psnr", "ssim", "warp-error", "cdc", "colourfulness", "chroma-error", "cast", "purple", "speed")


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--predictions", type=click.Path(path_type=Path), help="Score this folder of another method's frames (same layout as DATA) instead of a model.")
@model_option
@click.option(
    "--metric",
    "metric_names",
    multiple=True,
    type=click.Choice([*BENCH_METRICS, "all"]),
    default=("all",),
    show_default=True,
    help="Metric(s) to measure; repeatable. 'all' is every quality metric, plus speed for a model.",
)
@click.option("--size", "sizes", multiple=True, type=click.IntRange(16, 4096), help="Working short side; repeat to time several sizes (speed).")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Use at most this many frames of each clip.")
@click.option("--clips", "max_clips", type=click.IntRange(1), default=None, help="Use at most this many clips.")
@click.option("--compare", "compare", multiple=True, metavar="SPEC", help="Also score and time this model (repeatable; any --model SPEC) in the same run, for rows and speed ratios measured alike.")
@click.option("--speed-frames", type=click.IntRange(8), default=48, show_default=True, help="Frames timed for speed.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True, help="Speed repetitions (median reported).")
@device_option
@backend_option
@precision_option
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write every number, the settings and the environment here.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Also write a CSV of the per-clip rows.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or tables.")
@click.option("--recurrence", "recurrences", multiple=True, type=click.Choice(["gray", "colour"]), default=("gray",), show_default=True,
              help="The model's recurrence (as colorize --recurrence); repeat for a row of each, measured alike in this run.")
@click.option("--references", type=click.Choice(["first"]), default=None,
              help="first: give each clip's true first frame as its key frame (the protocol of exemplar-based papers); PSNR is also reported per part of the clip (first quarter, middle, last quarter).")
def bench(data, predictions, model, metric_names, sizes, max_frames, max_clips, compare, speed_frames, repeats, device, backend, precision, json_path, csv_path, quiet, recurrences, references):
    """Measure quality (PSNR, SSIM, warp error, CDC, colourfulness) against the ground-truth
    colour clips in DATA, and speed. DATA: a DAVIS tree, folders of frames, or colour videos."""
    from rich.table import Table

    from . import bench as B
    from .metrics import METRICS

    names = set(metric_names)
    quality = tuple(m for m in METRICS if m in names or "all" in names)
    want_speed = "speed" in names or ("all" in names and predictions is None)
    if predictions is not None and "speed" in names:
        _fail("--metric speed needs a model, not --predictions")
    if predictions is not None and model is not None:
        _fail("give --model or --predictions, not both")
    if predictions is not None and compare:
        _fail("--compare needs a model, not --predictions")
    if predictions is not None and (references or set(recurrences) != {"gray"}):
        _fail("--recurrence and --references need a model, not --predictions")
    recurrences = tuple(dict.fromkeys(recurrences))
    for path, option in ((json_path, "--json"), (csv_path, "--csv")):  # re-running a bench replaces its own results
        _check_result_file(path, option, overwrite=True, protected=(data, predictions), trees=(data, predictions))
    if json_path is not None and csv_path is not None and json_path.absolute() == csv_path.absolute():
        _fail(f"--json and --csv are the same file {json_path}; give two")

    def work():
        colorizer = None
        if predictions is None:
            from .runtime import load_model

            colorizer = load_model(model, device=device, precision=precision, backend=backend)
        report = {"data": str(data), "settings": {"metrics": list(quality), "sizes": list(sizes), "max_frames": max_frames, "clips": max_clips, "predictions": str(predictions) if predictions else None,
                                                  "recurrence": list(recurrences), "references": references}}
        report["environment"] = B.environment(colorizer)
        status = None if quiet else err.status("")
        if status:
            status.start()
        try:
            if quality:
                def on_clip(name, n, total):
                    if status:
                        status.update(f"scoring clip {n + 1}/{total}: {name}")
                report["quality"] = B.evaluate_quality(
                    data, model=colorizer, predictions=predictions, metrics=quality,
                    size=sizes[0] if sizes else None, max_frames=max_frames, max_clips=max_clips, progress=on_clip,
                    recurrence=recurrences[0], references=references,
                )
                for other_mode in recurrences[1:]:  # the same model, another recurrence: a row beside
                    q = B.evaluate_quality(
                        data, model=colorizer, metrics=quality, size=sizes[0] if sizes else None,
                        max_frames=max_frames, max_clips=max_clips, progress=on_clip, recurrence=other_mode,
                        references=references,
                    )
                    report["quality"]["rows"][q["method"]] = q["rows"][q["method"]]
            if want_speed:
                report["speed"] = B.measure_speed(
                    data, colorizer, sizes=tuple(sizes), frames=speed_frames, repeats=repeats,
                    progress=(lambda m: status.update(m)) if status else None,
                )
            for spec in compare:  # each model measured exactly as the first, in this run
                other = load_model(spec, device=device, precision=precision, backend=backend)
                label = f"{other.name} ({spec})"
                entry = report.setdefault("compare", {})[label] = {"environment": B.environment(other)}
                if quality:
                    q = B.evaluate_quality(
                        data, model=other, metrics=quality, size=sizes[0] if sizes else None,
                        max_frames=max_frames, max_clips=max_clips, progress=on_clip,
                    )
                    report["quality"]["rows"][label] = q["rows"][q["method"]]
                if want_speed:
                    entry["speed"] = B.measure_speed(
                        data, other, sizes=tuple(sizes), frames=speed_frames, repeats=repeats,
                        progress=(lambda m: status.update(m)) if status else None,
                    )
                    entry["network_time_ratio"] = [  # the first model's network time per frame over this one's
                        a["network_ms"] / b["network_ms"] for a, b in zip(report["speed"]["sizes"], entry["speed"]["sizes"])
                    ]
        finally:
            if status:
                status.stop()
        return report

    report = _run(work)
    out = Console(highlight=False)
    if "quality" in report and not quiet:
        q = report["quality"]
        cols = [m for m in BENCH_METRICS if m in q["metrics"]]
        fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}", "warp-error": "{:.5f}", "cdc": "{:.5f}", "colourfulness": "{:.1f}",
               "chroma-error": "{:.2f}", "cast": "{:.2f}", "purple": "{:.2f}"}
        if references and "psnr" in cols:
            cols += list(B.POSITIONS)
            fmt.update({p: "{:.2f}" for p in B.POSITIONS})
        table = Table(title=f"Quality on {len(q['clips'])} clip(s) of {data}")
        table.add_column("method")
        table.add_column("clip")
        for c in cols:
            table.add_column(c, justify="right")
        for row, body in q["rows"].items():
            for clip, summ in [("mean", body["mean"]), *(body["clips"].items() if len(q["clips"]) > 1 else [])]:
                table.add_row(escape(row) if clip == "mean" else "", escape(clip), *[("—" if summ.get(c) is None else fmt[c].format(summ[c])) for c in cols])
            table.add_section()
        out.print(table)
    if "speed" in report and not quiet:
        timed = [(report["environment"], report["speed"])]
        timed += [(e["environment"], e["speed"]) for e in report.get("compare", {}).values() if "speed" in e]
        for env, sp in timed:
            table = Table(caption="size: working short side; net in: padded network input; dec/enc: decode/encode; fps: end to end; MB: peak memory", title=f"Speed: {env.get('model')} on {env.get('device')} {env.get('precision')} ({env.get('backend', 'torch')}), {sp['parameters'] / 1e6:.2f} M params, {sp['gmacs_256x512']:.2f} GMACs at 256×512")
            for c in ("size", "net in", "dec fps", "flow ms", "net ms", "enc fps", "fps", "host MB", "GPU MB", "GMACs"):
                table.add_column(c, justify="right")
            for r in sp["sizes"]:
                table.add_row(
                    str(r["short_side"]), f"{r['network_size'][1]}×{r['network_size'][0]}", f"{r['decode_fps']:.0f}",
                    f"{r['flow_ms']:.1f}", f"{r['network_ms']:.1f}", f"{r['encode_fps']:.0f}", f"{r['end_to_end_fps']:.2f}",
                    f"{r['peak_host_mb']:.0f}", "—" if r["peak_gpu_mb"] is None else f"{r['peak_gpu_mb']:.0f}", f"{r['gmacs_per_frame']:.2f}",
                )
            out.print(table)
            for r in sp["sizes"]:
                shares = ", ".join(f"{k} {v * 100:.0f}%" for k, v in r.get("stage_share", {}).items() if v is not None)
                out.print(f"size {r['short_side']}: each stage's time per frame as a share of the end-to-end time: {shares}")
        for label, e in report.get("compare", {}).items():
            if "network_time_ratio" in e:
                ratios = ", ".join(f"{r:.2f}" for r in e["network_time_ratio"])
                out.print(f"network time per frame, {report['environment'].get('model')} / {escape(label)}: {ratios}")
    if json_path:
        _run(lambda: _write_text(json_path, json.dumps(report, indent=2) + "\n", overwrite=True))
    if csv_path and "quality" in report:
        import csv

        def write_csv():
            q = report["quality"]
            text = io.StringIO(newline="")
            w = csv.writer(text)
            w.writerow(["method", "clip", *q["metrics"], "frames"])
            for row, body in q["rows"].items():
                for clip, summ in [*body["clips"].items(), ("mean", body["mean"])]:
                    w.writerow([row, clip, *[summ.get(m) for m in q["metrics"]], summ.get("frames")])
            _write_text(csv_path, text.getvalue(), overwrite=True)

        _run(write_csv)


def _train_options(fn):
    """The options of `vcgan train`, made from their one declaration (train.trainer.TRAIN_OPTIONS)."""
    from .train.trainer import TRAIN_OPTIONS

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

    from .train.trainer import TrainConfig, Trainer, option_settings

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
            _fail(f"interrupted {_resume_hint(trainer.step, trainer.out)}", 130)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if live:
                live.stop()

    result = _run(work)
    if result.get("stopped") == "SIGTERM":
        _fail(f"stopped by SIGTERM {_resume_hint(result['step'], result['out'])}", 143)
    if quiet:
        return
    if result.get("stopped") == "time limit":
        _say("[yellow]time limit:[/]", f"stopped {_resume_hint(result['step'], result['out'])}")
    else:
        _say("[green]done:[/]", f"step {result['step']}, run in {result['out']}; export with: vcgan export {result['out']} -o MODEL_DIR")


@main.command("export")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Model folder to write (config.json + model.safetensors).")
@click.option("--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint (a file, or a name in RUN/checkpoints/).")
@click.option("--overwrite", is_flag=True, help="Replace the model in an existing, non-empty folder.")
@click.option("--raw-weights", is_flag=True, help="From a checkpoint of a run with --ema-decay: the generator's own weights, not their moving average.")
def export_model(run, output, checkpoint, overwrite, raw_weights):
    """Export a training run as a model folder that `vcgan colorize --model` loads."""
    from .train.trainer import export

    folder, sha, used = _run(lambda: export(run, output, checkpoint, overwrite, average=not raw_weights))
    _say("[green]wrote[/]", f"{folder}/model.safetensors from {used} (fp16, sha256 {sha})")


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
    from .weights import check_model_folder, extrapolate, load_weights, save_weights

    def write() -> str:
        check_model_folder(output, overwrite)
        return save_weights(extrapolate(load_weights(older), load_weights(newer), amount), output)

    sha = _run(write)
    _say("[green]wrote[/]", f"{output}/model.safetensors = {newer} + {amount:g} x ({newer} - {older}) (fp16, sha256 {sha})")


@main.command("models")
def list_models():
    """List the models: shipped weights and the architectures."""
    from .models import VARIANTS, build_generator, count_parameters
    from .weights import DEFAULT_MODEL, REGISTRY, weights_dir

    out = Console(highlight=False)
    for name, cfg in VARIANTS.items():
        shipped = name in REGISTRY and (weights_dir() / REGISTRY[name].folder).is_dir()
        params = count_parameters(build_generator(cfg)) / 1e6
        status = "shipped weights" if shipped else ("random weights" if name == "tiny" else "no weights shipped yet")
        default = " (default)" if name == DEFAULT_MODEL else ""
        out.print(f"{name:<12}{default:<10} {params:7.2f} M params, {cfg.extractor} extractors — {status}")



def entry() -> None:
    """The ``vcgan`` console script: Click's own usage errors become one line as well."""
    try:
        code = main.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "vcgan"
        _fail(f"{exc.format_message()} (see: {command} --help)", 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)
