"""``conform mosaic ...`` commands (added through ``conform_register_commands``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conform_core.exceptions import DataFileError

__all__ = ["mosaic_app"]

mosaic_app = typer.Typer(help="Check and inspect MOSAIC-format HDF5 files.", no_args_is_help=True)

_SHOWN = 50


@mosaic_app.command("validate")
def validate_command(
    files: Annotated[
        list[Path], typer.Argument(help="Per-subject sub-XX_<CODE>.hdf5 or merged files.")
    ],
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Skip reading the betas (checks keys and attributes only)."),
    ] = False,
) -> None:
    """Check that each FILE follows the MOSAIC format; list every problem. Writes nothing.

    Exits with status 2 when any file has a problem.
    """
    from ._validate import validate

    failed = []
    for path in files:
        problems = validate(path, check_values=not quick)
        if problems:
            failed.append((path, problems))
        else:
            typer.echo(f"{path}: OK (MOSAIC-compliant)")
    if failed:
        lines = []
        for path, problems in failed:
            lines.append(f"{path}: {len(problems)} problem(s)")
            lines += [f"  - {p}" for p in problems[:_SHOWN]]
            if len(problems) > _SHOWN:
                lines.append(f"  ... and {len(problems) - _SHOWN} more")
        raise DataFileError(
            f"{len(failed)} of {len(files)} file(s) do not follow the MOSAIC format:\n"
            + "\n".join(lines)
        )
