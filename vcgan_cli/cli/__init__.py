"""The ``vcgan`` command: a thin Click + rich layer over the library, one module per group of
commands (films, photos, bench, train, models) over the shared layer (``common``)."""
from __future__ import annotations

import sys

import click

from . import bench, films, models, photos, train  # noqa: F401 - each registers its commands on `main`
from .common import Duration, fail, main
from .films import colorize

__all__ = ["Duration", "colorize", "entry", "main"]


def entry() -> None:
    """The ``vcgan`` console script: Click's own usage errors become one line as well."""
    try:
        code = main.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "vcgan"
        fail(f"{exc.format_message()} (see: {command} --help)", 2)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)
