"""`conform simulate`: options derived from SimulationParams, a readable study, user errors
exit 2 with the fix (named by the command's flags)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from conform_synthetic import (
    SimulationParams,
    conform_register_commands,
    read_study,
    simulate_study,
)
from conform_synthetic.cli import FLAGS
from typer.testing import CliRunner

from conform_core.cli import build_app, main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return int(info.value.code), captured.out + captured.err


def test_simulate_writes_study_matching_simulate_study(tmp_path: Path, capsys) -> None:
    code, text = run(["simulate", str(tmp_path / "s"), "--subjects", "2", "--units", "12",
                      "--stimuli", "24", "--repeats", "2", "--snr", "0.5", "--random-state", "9",
                      "--quiet"], capsys)
    assert code == 0, text
    assert "Wrote a synthetic study of 2 subject(s)" in text
    back = read_study(tmp_path / "s")
    assert back.params["snr"] == 0.5 and back.params["n_shared"] == 8  # a third of --stimuli
    again = simulate_study(**back.params)
    np.testing.assert_array_equal(again.subjects[1].trials.betas, back.subjects[1].trials.betas)
    assert back.subjects[0].timeseries is None


def test_simulate_timeseries_writes_bids_runs(tmp_path: Path, capsys) -> None:
    code, text = run(["simulate", str(tmp_path / "s"), "--subjects", "1", "--units", "9",
                      "--stimuli", "12", "--repeats", "2", "--timeseries", "--quiet"], capsys)
    assert code == 0, text
    func = tmp_path / "s" / "sub-01" / "func"
    assert sorted(p.name for p in func.glob("*_bold.nii.gz")) == [
        "sub-01_task-conform_run-01_bold.nii.gz"
    ]
    assert (func / "sub-01_task-conform_run-01_events.tsv").is_file()
    assert read_study(tmp_path / "s").subjects[0].timeseries.n_runs == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--units", "-3"],
            "The --units option must be an int in [1, inf); got -3. Pass --units=1 or more.",
        ),
        (["--subjects", "0"], "The --subjects option must be an int in [1, inf)"),
        (
            ["--stimuli", "10", "--shared", "20"],
            "The --shared option must be at most --stimuli=10; got 20. Lower --shared or raise --stimuli",
        ),
        (["--snr", "-1"], "The --snr option must be a finite number in [0.0, inf); got -1.0"),
        (
            ["--missing-fraction", "1.5"],
            "The --missing-fraction option must be a finite number in [0.0, 0.9]",
        ),
        (
            ["--stimuli", "30", "--shared", "10", "--stimuli-per-subject", "25"],
            "at most --stimuli - --shared = 20; leave it unset",
        ),
    ],
)
def test_bad_options_exit_2_with_fix(
    tmp_path: Path, capsys, args: list[str], fragment: str
) -> None:
    code, text = run(["simulate", str(tmp_path / "s"), *args], capsys)
    assert code == 2
    assert fragment in " ".join(text.split())
    assert "Traceback" not in text
    assert not (tmp_path / "s").exists()


def _app() -> typer.Typer:
    """The core's app with only this plugin's commands, added through its hookimpl."""
    app = build_app(with_plugins=False)
    conform_register_commands(app)
    return app


def _simulate_options() -> dict[str, Any]:
    group = typer.main.get_command(_app())
    command = group.commands["simulate"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}


def test_the_core_does_not_register_simulate() -> None:
    result = CliRunner().invoke(build_app(with_plugins=False), ["simulate", "--help"])
    assert result.exit_code == 2 and "No such command" in result.output


def test_every_setting_is_an_option_with_its_flag_default_and_help() -> None:
    """The options are derived from SimulationParams: one per field, then --layout (how the
    study is written, not a setting of the simulator) and --quiet."""
    options = _simulate_options()
    assert list(options) == ["out", *SimulationParams.names(), "layout", "quiet"]
    assert options["layout"].opts == ["--layout"] and options["layout"].default == "conform"
    assert set(FLAGS) == set(SimulationParams.names())
    for name, default in SimulationParams.defaults().items():
        assert options[name].opts == [FLAGS[name]], name
        assert options[name].default == default, name
        assert options[name].help == SimulationParams.help(name), name


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(_app(), ["simulate", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag in (*FLAGS.values(), "--layout", "--quiet"):
        assert flag in result.output, flag


def test_defaults_write_the_default_study(tmp_path: Path, capsys) -> None:
    """`conform simulate OUT` writes what simulate_study() simulates: the defaults are one."""
    code, text = run(["simulate", str(tmp_path / "s"), "--quiet"], capsys)
    assert code == 0, text
    assert "Wrote a synthetic study of 3 subject(s)" in text
    assert read_study(tmp_path / "s").params == SimulationParams().as_dict()


def test_existing_output_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "s").mkdir()
    code, text = run(["simulate", str(tmp_path / "s"), "--subjects", "1"], capsys)
    assert code == 2 and "already exists" in text and "remove it" in text
