"""A command's one table of flags: library errors name parameters, the CLI prints flags."""

from __future__ import annotations

import inspect
from typing import Annotated

import pytest
import typer

from conform_core.cli import flag_table, parameter_flags, render_error, run_app
from conform_core.constraints import Interval, check_constraints
from conform_core.exceptions import DataFileError, ParameterError

LIBRARY = {"n_units": [Interval(int, 1, None)], "n_shared": [Interval(int, 0, None)]}


def _library(**params: int) -> None:
    """Library code: names the Python parameters, knows nothing of flags."""
    check_constraints(LIBRARY, params, owner="simulate_toy",
                      fixes={"n_units": "Pass $n_units=1 or more."})
    if params["n_shared"] > params["n_units"]:
        raise ParameterError(param="n_shared", value=params["n_shared"], owner="simulate_toy",
                             allowed=f"at most $n_units={params['n_units']}",
                             fix="Lower $n_shared or raise $n_units.")


FLAGS = flag_table(("n_units", "n_shared"), drop_prefix="n_")


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @parameter_flags(FLAGS)
    def toy(units: Annotated[int, typer.Option("--units", help="Units.")] = 5,
            shared: Annotated[int, typer.Option("--shared", help="Shared.")] = 1) -> None:
        """Run the toy."""
        _library(n_units=units, n_shared=shared)

    @app.command()
    def bare(units: Annotated[int, typer.Option("--units")] = 5) -> None:
        """No table: errors keep the Python names."""
        _library(n_units=units, n_shared=0)

    return app


def test_flag_table_follows_one_rule_with_overrides():
    assert FLAGS == {"n_units": "--units", "n_shared": "--shared"}
    assert flag_table(["list_file", "per_participant"], overrides={"list_file": "--list"}) == \
        {"list_file": "--list", "per_participant": "--per-participant"}


@pytest.mark.parametrize(("args", "message"), [
    (["toy", "--units", "0"],
     "Error: The --units option must be an int in [1, inf); got 0. Pass --units=1 or more."),
    (["toy", "--units", "3", "--shared", "4"],
     ("Error: The --shared option must be at most --units=3; got 4. Lower --shared or raise "
      "--units.")),
    (["bare", "--units", "0"],
     ("Error: The 'n_units' parameter of simulate_toy must be an int in [1, inf); got 0. Pass "
      "n_units=1 or more.")),
])
def test_errors_print_with_the_commands_flags(capsys, args, message):
    code = run_app(_app(), args)
    assert code == 2
    assert " ".join(capsys.readouterr().err.split()) == message


def test_the_decorator_keeps_the_command_signature_and_help():
    @parameter_flags(FLAGS)
    def command(units: int = 5) -> None:
        """Help text."""

    assert list(inspect.signature(command).parameters) == ["units"]
    assert command.__doc__ == "Help text."


def test_the_library_error_itself_is_not_rewritten():
    """The table rides on the error; str() still names the Python parameter."""
    @parameter_flags(FLAGS)
    def command() -> None:
        _library(n_units=0, n_shared=0)

    with pytest.raises(ParameterError) as info:
        command()
    assert str(info.value).startswith("The 'n_units' parameter of simulate_toy")
    assert render_error(info.value).startswith("The --units option")
    assert render_error(DataFileError("gone")) == "gone"
