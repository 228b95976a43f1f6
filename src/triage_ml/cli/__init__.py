"""The ``triage-ml`` command line. Errors the user can fix print one line and exit with status 2.

One module per group of commands; ``common`` holds the Typer apps they register on."""

from __future__ import annotations

import logging
import os
import sys

import typer

from triage_ml.cli import data, keys, report, review, run, training  # noqa: F401  (they register the commands)
from triage_ml.cli.common import app
from triage_ml.errors import TriageError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the CLI, turning our errors into one line and exit status 2."""
    import click

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(standalone_mode=False)
    except TriageError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (click.exceptions.ClickException, typer.exceptions.TyperException) as exc:  # typer vendors click
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        typer.echo("aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
