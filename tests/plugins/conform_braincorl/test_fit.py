"""braincorl in `conform fit`: feature checks before any work, few-shot rows, exit codes.

The checkpoints here are untrained (random weights): these tests check the plumbing, not
the science (tests/plugins/conform_braincorl/test_training.py checks that a trained model
beats ridge).
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest
import typer

from conform_core.cli import build_app, run_app

pytest.importorskip("torch")

from conform_braincorl.testing import tiny_untrained_checkpoint  # noqa: E402

SPEC = """
denoiser = "trial-average"
encoder = ["ridge", {{plugin = "braincorl", params = {{checkpoint = "{ckpt}"}}}}]
features = "precomputed"

[analysis]
name = "braincorl-fit"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 2
n_units = 20
n_stimuli = 60
n_features = 8

[evaluation]
context_sizes = [10, 20]
context_draws = 2
"""


def _fit(*args: str) -> int:
    return run_app(typer.main.get_command(build_app()), ["fit", *args])


def _spec(tmp_path: Path, ckpt: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(SPEC.format(ckpt=ckpt)))
    return path


def test_fit_with_braincorl_and_context_sizes(tmp_path: Path, capsys: pytest.CaptureFixture
                                              ) -> None:
    ckpt = tiny_untrained_checkpoint(tmp_path / "model", embed_dim=8,
                                     feature_space="precomputed")
    out = tmp_path / "out"
    assert _fit(str(_spec(tmp_path, ckpt)), "--out", str(out), "--quiet") == 0
    with open(out / "results.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["encoder"] == "braincorl"]
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["n_context"] for r in rows} >= {"10", "20"}
    assert (out / "few_shot_curve.png").is_file()


def test_check_refuses_a_checkpoint_of_another_dimension(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    ckpt = tiny_untrained_checkpoint(tmp_path / "model", embed_dim=5)
    code = _fit(str(_spec(tmp_path, ckpt)), "--check", "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert "Stage 'encoder' (braincorl)" in err and "8 dimensions" in err and "5-d" in err
    assert "Traceback" not in err


def test_check_refuses_a_checkpoint_of_another_feature_space(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    ckpt = tiny_untrained_checkpoint(tmp_path / "model", embed_dim=8,
                                     feature_space="clip:ViT-B-32:0123abcd")
    code = _fit(str(_spec(tmp_path, ckpt)), "--check", "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert "'precomputed'" in err and "clip:ViT-B-32:0123abcd" in err


def test_check_refuses_a_corrupt_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture
                                            ) -> None:
    ckpt = tiny_untrained_checkpoint(tmp_path / "model", embed_dim=8)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code = _fit(str(_spec(tmp_path, ckpt)), "--check", "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert "truncated or corrupt" in err
