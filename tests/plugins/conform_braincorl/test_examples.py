"""The two BraInCoRL examples: the training spec is valid and the fit spec tests on its study."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from conform_core.cli import build_app, run_app
from conform_core.spec import load_spec

pytest.importorskip("torch")

from conform_braincorl.spec import load_training_spec, prepare_training  # noqa: E402
from conform_braincorl.testing import tiny_untrained_checkpoint  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_training_example_is_valid_and_leaves_two_subjects_unseen() -> None:
    spec = load_training_spec(EXAMPLES / "braincorl_sim.toml")
    prepared = prepare_training(spec)
    seen = set(spec.train_subjects or []) | set(spec.validation_subjects or [])
    fit = load_spec(EXAMPLES / "braincorl_fit.toml")
    tested = set(fit.dataset["subjects"])
    assert prepared is not None
    assert tested and not tested & seen
    # the fit example analyses the same simulated study (same features, so same feature space)
    assert fit.stages["dataset"][0].params == spec.analysis.stages["dataset"][0].params


def test_fit_example_checks_against_a_model_of_its_features(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    # an untrained stand-in for the trained model (only --check runs: no scores are made)
    tiny_untrained_checkpoint(tmp_path / "braincorl-sim", embed_dim=32,
                              feature_space="precomputed")
    monkeypatch.chdir(tmp_path)
    code = run_app(typer.main.get_command(build_app()),
                   ["fit", os.fspath(EXAMPLES / "braincorl_fit.toml"), "--check",
                    "--out", "out"])
    assert code == 0, capsys.readouterr().err
