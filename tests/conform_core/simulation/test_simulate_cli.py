"""`conform simulate`: writes a readable study; user errors exit 2 with the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conform_core.cli import build_app, main
from conform_core.simulation import read_study, simulate_study


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
    assert sorted(p.name for p in func.glob("*_bold.nii.gz")) == ["sub-01_task-conform_run-01_bold.nii.gz"]
    assert (func / "sub-01_task-conform_run-01_events.tsv").is_file()
    assert read_study(tmp_path / "s").subjects[0].timeseries.n_runs == 1


@pytest.mark.parametrize(("args", "fragment"), [
    (["--units", "-3"], "The --units option must be an int in [1, inf); got -3. Pass --units=1 or more."),
    (["--subjects", "0"], "The --subjects option must be an int in [1, inf)"),
    (["--stimuli", "10", "--shared", "20"],
     "The --shared option must be at most --stimuli=10; got 20. Lower --shared or raise --stimuli"),
    (["--snr", "-1"], "The --snr option must be a finite number in [0.0, inf); got -1.0"),
    (["--missing-fraction", "1.5"], "The --missing-fraction option must be a finite number in [0.0, 0.9]"),
    (["--stimuli", "30", "--shared", "10", "--stimuli-per-subject", "25"],
     "at most --stimuli - --shared = 20; leave it unset"),
])
def test_bad_options_exit_2_with_fix(tmp_path: Path, capsys, args: list[str], fragment: str) -> None:
    code, text = run(["simulate", str(tmp_path / "s"), *args], capsys)
    assert code == 2
    assert fragment in " ".join(text.split())
    assert "Traceback" not in text
    assert not (tmp_path / "s").exists()


def test_flags_come_from_one_table_of_simulation_params_names() -> None:
    """Every flag of the table is an option of the command, and names a SimulationParams field."""
    from conform_core.simulation import SimulationParams
    from conform_core.simulation.cli import FLAGS

    fields = set(SimulationParams.__dataclass_fields__)
    assert set(FLAGS) <= fields
    result = CliRunner().invoke(build_app(with_plugins=False), ["simulate", "--help"],
                                terminal_width=200)
    for flag in FLAGS.values():
        assert flag in result.output, flag


def test_existing_output_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "s").mkdir()
    code, text = run(["simulate", str(tmp_path / "s"), "--subjects", "1"], capsys)
    assert code == 2 and "already exists" in text and "remove it" in text


def test_help_lists_every_option() -> None:
    runner = CliRunner()
    result = runner.invoke(build_app(with_plugins=False), ["simulate", "--help"],
                           terminal_width=200)
    assert result.exit_code == 0
    for flag in ("--subjects", "--units", "--stimuli", "--repeats", "--snr", "--timeseries",
                 "--random-state"):
        assert flag in result.output
