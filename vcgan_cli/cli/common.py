"""What every ``vcgan`` command shares: the console, one-line errors, signals, the common
options, safe result files, the progress display and the command group itself."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Column
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .. import __version__, files
from ..codecs import CODECS
from ..errors import Interrupted, VcganError

err = Console(stderr=True, highlight=False)

CODEC_EXT = {name: c.extension for name, c in CODECS.items()}


def print_line(label: str, message: str) -> None:
    """One message on stderr; ``message`` is plain text (file names may hold [brackets])."""
    err.print(f"{label} {escape(message)}", soft_wrap=True)


def print_warning(message: str) -> None:
    print_line("[yellow]warning:[/]", message)


def print_note(message: str) -> None:
    print_line("[yellow]note:[/]", message)


def fail(message: str, code: int = 1) -> None:
    print_line("[bold red]error:[/]", message)
    sys.exit(code)


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, so the work stops as on Ctrl-C
    (temporary files removed, nothing left under an output name)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(stopper=None):
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
        raise Signalled(signum)

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


def resume_command() -> str:
    import shlex

    args = sys.argv[1:]
    return shlex.join(["vcgan", *args, *(() if "--resume" in args else ("--resume",))])


def fail_interrupted(exc) -> None:
    """One line for a run stopped by a signal, and the command that continues it."""
    print_line("[bold red]stopped[/]", str(exc).removeprefix("stopped "))
    if exc.partial:
        print_line("[yellow]resume with:[/]", resume_command())
    sys.exit(exc.exit_code)


def error_text(exc: Exception) -> str:
    """One line for a failure of one item in a batch (what :func:`run_guarded` would print)."""
    if isinstance(exc, VcganError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{files.os_error_text(exc)}{f': {exc.filename}' if exc.filename else ''}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected {type(exc).__name__}: {first} (set VCGAN_DEBUG=1 for a traceback)"


def run_guarded(fn, stopper=None):
    """Run ``fn`` turning every known failure into one line and a non-zero exit."""
    try:
        with stop_on_signals(stopper):
            return fn()
    except Interrupted as exc:
        fail_interrupted(exc)
    except VcganError as exc:
        fail(str(exc), exc.exit_code)
    except Signalled as exc:
        import signal

        fail(f"stopped by {signal.Signals(exc.signum).name}; no output was written", 128 + exc.signum)
    except KeyboardInterrupt:
        fail("interrupted; no output was written", 130)
    except OSError as exc:  # full disk, permissions
        fail(f"{files.os_error_text(exc)}{f': {exc.filename}' if exc.filename else ''}")
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("VCGAN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        fail(f"unexpected {type(exc).__name__}: {first} (set VCGAN_DEBUG=1 for a traceback)", 2)


def check_parent(path: Path | None, option: str) -> None:
    """Refuse up front (not after hours of work) a result file whose folder does not exist."""
    if path is not None and not path.absolute().parent.is_dir():
        fail(f"{option} {path}: folder {path.absolute().parent} does not exist")


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_result_file(path: Path | None, option: str, *, overwrite: bool, protected=(), trees=()) -> None:
    """Refuse up front a result file (a report, a JSON or CSV) that would destroy something:
    a folder, one of the run's own inputs or outputs (``protected``; never, even with
    --overwrite), a file inside a data tree it reads (``trees``), or an existing file
    without --overwrite."""
    if path is None:
        return
    check_parent(path, option)
    problem = files.target_problem(path)
    if problem:
        fail(f"{option} {path}: {problem}")
    if path.is_dir():
        fail(f"{option} {path}: is a folder; give a file name")
    for other in protected:
        if other is not None and (same_file(path, Path(other)) or path.absolute() == Path(other).absolute()):
            fail(f"{option} {path}: is also one of this run's inputs or outputs; give another file")
    for tree in trees:
        if tree is not None and Path(tree).is_dir():
            root = Path(tree).resolve()
            if root == path.resolve().parent or root in path.resolve().parents:
                fail(f"{option} {path}: is inside {tree}, which this run reads; write it elsewhere")
    if path.exists() and not overwrite:
        fail(f"{option} {path}: exists (pass --overwrite to replace it)")


def write_text_file(path: Path, text: str, *, overwrite: bool) -> None:
    try:
        files.write_atomic(path, text, overwrite=overwrite)
    except OSError as exc:
        raise VcganError(f"cannot write {path}: {files.os_error_text(exc)}") from None


class LazyProgress:
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
                print_note(self.note)
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


def runtime_options(fn):
    """--device, --backend and --precision: where and how the network runs, as every command
    that colourises takes them."""
    return device_option(backend_option(precision_option(fn)))


def resume_hint(step: int, run) -> str:
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


def inputs_and_output(output_help: str):
    """INPUTS (files or folders) and -o/--output (a file for one input, else a folder), as
    `colorize` and `image` both take them."""

    def apply(fn):
        fn = click.option("--output", "-o", "raw_output", type=click.Path(), help=output_help)(fn)
        return click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))(fn)

    return apply


def expand_films(inputs: tuple[Path, ...]) -> list[Path]:
    """The films named: files as given, folders as the videos in them (not hidden files, not
    their own earlier NAME_color outputs)."""
    from ..media import VIDEO_EXTENSIONS

    films: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir()
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS and not f.name.startswith(".") and not f.stem.endswith("_color")
            )
            if not found:
                fail(f"{p}: no videos ({', '.join(VIDEO_EXTENSIONS[:6])}, ...) in this folder")
            films.extend(found)
        else:
            films.append(p)
    return films


#: A film of a batch being resumed whose output was finished by the run before.
DONE_BEFORE = object()


