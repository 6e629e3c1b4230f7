"""`conform fit` with few-shot curves: bad `context_sizes` at --check, the printed table."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import typer

from conform_core.cli import build_app, run_app

SPEC = """
denoiser = "trial-average"
encoder = "ridge"
features = "precomputed"

[analysis]
name = "few-shot"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 2
n_units = 30
n_stimuli = 60
"""


def _fit(*args: str) -> int:
    return run_app(typer.main.get_command(build_app()), ["fit", *args])


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(SPEC))
    return path


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("evaluation.context_sizes=[1,10]", "context_sizes: 1 is below 2"),
        ("evaluation.context_sizes=[10,10]", "context_sizes lists 10 more than once"),
        ("evaluation.context_sizes=[]", "context_sizes is an empty list"),
        ("evaluation.context_sizes=[2.5]", "context_sizes: 2.5 is not an integer"),
        ("evaluation.context_sizes=10", "context_sizes must be a list"),
        ("evaluation.context_draws=0", "context_draws must be an integer of 1 or more; got 0"),
        ("evaluation.context_sizes=[10,60]",
         "context_sizes: 60 is not smaller than the dataset's 60 stimuli"),
    ],
)
def test_check_refuses_bad_few_shot_options_with_the_fix(spec, tmp_path, capsys, value, message):
    code = _fit(str(spec), "--check", "--out", str(tmp_path / "out"), "--set", value)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "--set evaluation.context_" in err  # the fix, as a flag
    assert not (tmp_path / "out").exists()


def test_check_says_which_few_shot_fits_would_run(spec, tmp_path, capsys):
    code = _fit(str(spec), "--check", "--out", str(tmp_path / "out"),
                "--set", "evaluation.context_sizes=[10,5]", "--set", "evaluation.context_draws=2")
    assert code == 0
    assert "few-shot fits on N = 5, 10 training stimuli (2 draw(s) each)" in capsys.readouterr().out


def test_fit_prints_the_few_shot_table_and_the_skipped_sizes(spec, tmp_path, capsys):
    code = _fit(str(spec), "--quiet", "--out", str(tmp_path / "out"),
                "--set", "evaluation.context_sizes=[5,10,55]", "--set", "evaluation.context_draws=2")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Few-shot: held-out pearson_r by number of training stimuli N" in out
    assert "N=5" in out and "N=10" in out and "all (N=48)" in out  # 60 stimuli, 12 held out
    assert "Noise ceiling in pearson_r units" in out
    assert "N=55 for sub-01 (48), sub-02 (48)" in " ".join(out.split())
    assert (tmp_path / "out" / "few_shot_curve.png").is_file()
    assert (tmp_path / "out" / "context_draws.csv").is_file()


def test_fit_without_context_sizes_prints_no_few_shot_table(spec, tmp_path, capsys):
    assert _fit(str(spec), "--quiet", "--out", str(tmp_path / "out")) == 0
    assert "Few-shot" not in capsys.readouterr().out


def test_a_failed_few_shot_fit_fails_its_cell(spec, tmp_path, capsys):
    """Ridge's 5-fold cross-validation cannot run on N = 3: exit 3, unless --allow-failures."""
    args = ["--quiet", "--set", "evaluation.context_sizes=[3,5]", "--set",
            "evaluation.context_draws=1"]
    assert _fit(str(spec), "--out", str(tmp_path / "strict"), *args) == 3
    out = " ".join(capsys.readouterr().out.split())
    assert "error: n_context=3:" in out and "2 of 2 cells failed" in out
    assert _fit(str(spec), "--out", str(tmp_path / "loose"), "--allow-failures", *args) == 0
