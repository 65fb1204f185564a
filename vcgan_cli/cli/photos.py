"""``vcgan image``."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from .. import files
from ..errors import VcganError
from .common import (
    fail,
    inputs_and_output,
    print_note,
    run_guarded,
    print_line,
    print_warning,
    err,
    main,
    model_option,
    raw_option,
    runtime_options,
    size_option,
)


@main.command()
@inputs_and_output("Output file (one input) or folder (default: NAME_color.EXT beside each input).")
@model_option
@size_option
@raw_option
@runtime_options
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (inputs are never replaced).")
@click.option("--quiet", "-q", is_flag=True, help="Print errors and warnings only.")
def image(inputs, raw_output, model, size, raw, device, backend, precision, overwrite, quiet):
    """Colourise photos: files, or folders of JPEG/PNG/TIFF/WebP images."""
    output = Path(raw_output) if raw_output is not None else None
    from ..images import IMAGE_EXTENSIONS
    from ..pipeline import colorize_image, image_output_path
    from ..runtime import load_model

    photos: list[Path] = []
    for p in inputs:
        if p.is_dir():
            # a folder's own earlier outputs (NAME_color.EXT) are not inputs
            found = sorted(
                f for f in p.iterdir()
                if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".") and not f.stem.endswith("_color")
            )
            if not found:
                fail(f"{p}: no images (JPEG, PNG, TIFF, WebP, BMP) in this folder")
            photos.extend(found)
        elif not p.exists():
            fail(f"{p}: no such file or folder")
        else:
            photos.append(p)
    if output is not None and files.name_problem(output):
        fail(f"{output}: {files.name_problem(output)}")
    many = len(photos) > 1 or any(p.is_dir() for p in inputs)
    as_folder = output is not None and (many or str(raw_output).endswith(("/", os.sep)) or output.is_dir())
    if as_folder and output.exists() and not output.is_dir():
        fail(f"{output} is a file; several inputs need an output folder")
    if as_folder and not output.exists():
        run_guarded(lambda: output.mkdir(parents=True))
    if output is not None and not as_folder:
        if output.suffix.lower() not in IMAGE_EXTENSIONS:
            fail(f"{output}: unknown image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
        problem = files.folder_problem(output.absolute().parent)
        if problem:
            fail(f"{output}: {problem}")

    colorizer = run_guarded(lambda: load_model(model, device=device, precision=precision, backend=backend))
    note = not colorizer.weights.trained and not quiet
    failed = 0
    for src in photos:
        dst = image_output_path(src, output, as_folder)
        try:
            result = colorize_image(src, dst, model=colorizer, size=size, keep_luma=not raw, overwrite=overwrite)
        except KeyboardInterrupt:
            fail("interrupted; the image being written was not kept", 130)
        except VcganError as exc:
            print_line("[bold red]error:[/]", str(exc))
            failed += 1
            continue
        except OSError as exc:
            print_line("[bold red]error:[/]", f"{src} → {dst}: {files.os_error_text(exc)}")
            failed += 1
            continue
        except Exception as exc:  # noqa: BLE001 - one bad photo must not stop a batch
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print_line("[bold red]error:[/]", f"{src}: {first}")
            failed += 1
            continue
        if note:
            print_note(f"model {colorizer.name!r} has random weights: expect noise colours")
            note = False
        for w in result.warnings:
            print_warning(w)
        if not quiet:
            err.print(f"[green]wrote[/] {escape(str(dst))} ({result.size[1]}×{result.size[0]})", soft_wrap=True)
    if failed and len(photos) > 1:
        fail(f"{failed} of {len(photos)} images failed")
    if failed:
        sys.exit(1)
