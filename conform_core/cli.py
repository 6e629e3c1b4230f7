"""The ``conform`` command line: typer app, error handling and plugin commands.

Commands defined here: ``plugins`` (list and scaffold), ``simulate``, ``data info``.
Plugins add their own (``design``, ``glmsingle``, ``mosaic``, ...) through the
``conform_register_commands(app)`` hook, so this module imports no plugin.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import typer

from .exceptions import ConformError

__all__ = ["main", "build_app", "run_app"]

HELP = (
    "conform: design multi-site fMRI vision studies, denoise and model their data, and "
    "compare methods as plugins.\n\nRun `conform COMMAND --help` for each command."
)


def build_app(*, with_plugins: bool = True) -> typer.Typer:
    """Build the root typer app, with plugin commands added when ``with_plugins``."""
    from . import cli_commands

    root = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                       rich_markup_mode="rich", pretty_exceptions_enable=False)
    cli_commands.add_core_commands(root)
    if with_plugins:
        import warnings

        from .exceptions import ConformWarning
        from .plugins import default_plugin_manager, default_registry, register_commands

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConformWarning)
            errors = list(default_registry().load_errors)
        errors += register_commands(default_plugin_manager(), root)
        for error in errors:
            print_error(str(error), warning=True)
    return root


def print_error(message: str, *, warning: bool = False) -> None:
    """Print a user-facing error (or warning) in red/yellow on stderr, without traceback."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    label = "Warning" if warning else "Error"
    console.print(f"[{'yellow' if warning else 'red'}]{label}:[/] {message}", markup=True)


def run_app(application: Any, args: list[str] | None = None) -> int:
    """Run ``application`` and map errors to exit codes (ConformError: 2, bug: 1)."""
    debug = os.environ.get("CONFORM_DEBUG") == "1"
    try:
        application(args=args, standalone_mode=False, prog_name="conform")
    except ConformError as exc:
        if debug:
            traceback.print_exc()
        print_error(str(exc))
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print_error("Aborted.")
        return 1
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:  # click usage errors and genuine bugs
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        traceback.print_exc()
        return 1
    return 0


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``conform`` console script."""
    application = typer.main.get_command(build_app())
    sys.exit(run_app(application, args))


def __getattr__(name: str) -> Any:  # `app` is built lazily so importing cli loads no plugin
    if name == "app":
        return build_app()
    raise AttributeError(name)
