"""``conform braincorl train`` and ``import-official`` end to end (seconds)."""

from __future__ import annotations

import json

import pytest
import typer

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from conform_braincorl.checkpoint import load_checkpoint  # noqa: E402
from conform_braincorl.cli import braincorl_app  # noqa: E402
from conform_braincorl.network import BraInCoRLNetwork, preset_config  # noqa: E402

from conform_core.cli import run_app  # noqa: E402

TINY_SPEC = """
description = "test model"
features = "precomputed"

[model]
preset = "tiny"
num_tsfm_layers = 1

[dataset]
plugin = "synthetic"
validation_subjects = ["sub-03"]

[dataset.params]
n_subjects = 3
n_units = 30
n_stimuli = 90
n_features = 8
n_latent = 2

[training]
batch_voxels = 8
n_query = 8
validate_every = 5
checkpoint_every = 10
validation_voxels = 16
validation_context = 8

[[stages]]
name = "prior"
source = "prior"
steps = 5
context = [8, 8]

[[stages]]
name = "subjects"
source = "subjects"
steps = 10
context = [4, 16]
"""


def _conform(*args: str) -> int:
    root = typer.Typer()
    root.add_typer(braincorl_app, name="braincorl")
    return run_app(root, list(args))


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPEC, encoding="utf-8")
    return path


def test_train_writes_a_usable_model_folder(spec, tmp_path, capsys):
    out = tmp_path / "model"
    assert _conform("braincorl", "train", str(spec), "--out", str(out), "--quiet") == 0
    assert "Meta-trained 15 steps" in capsys.readouterr().out
    for name in ("model.safetensors", "config.json", "model_card.md", "loss_curve.png",
                 "training_state.pt"):
        assert (out / name).is_file(), name
    checkpoint = load_checkpoint(out)
    assert checkpoint.feature_space == "precomputed" and checkpoint.embed_dim == 8
    config = json.loads((out / "config.json").read_text())
    training = config["training"]
    assert training["subjects"] == ["sub-01", "sub-02"]
    assert training["validation_subjects"] == ["sub-03"]
    assert training["stimulus_counts"]["sub-01"]["stimuli"] == 72
    assert len(config["excluded_stimuli"]) == 18 and "description" in training
    assert [v["step"] for v in config["validation"]] == [0, 5, 10, 15]
    assert "[[stages]]" in training["spec"]
    card = (out / "model_card.md").read_text()
    for text in ("`precomputed`", "sub-01", "| prior | prior | 5 | 8 |", "Validation curve",
                 'encoder = {plugin = "braincorl", params = {checkpoint = '):
        assert text in card, text


def test_train_refuses_a_non_empty_folder_then_resumes_or_overwrites(spec, tmp_path, capsys):
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _conform("braincorl", "train", str(spec), "--out", str(out), "--quiet") == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--resume" in err and "--overwrite" in err
    assert "Traceback" not in err
    assert _conform("braincorl", "train", str(spec), "--out", str(out), "--resume") == 2
    assert "Cannot resume" in capsys.readouterr().err
    assert _conform("braincorl", "train", str(spec), "--out", str(out), "--overwrite",
                    "--quiet") == 0
    assert (out / "notes.txt").read_text() == "mine"  # only the model's files are replaced
    assert _conform("braincorl", "train", str(spec), "--out", str(out), "--resume",
                    "--quiet") == 0  # a finished run: nothing left to do


def test_train_reports_a_bad_spec_in_one_line(spec, tmp_path, capsys):
    spec.write_text(TINY_SPEC.replace('validation_subjects = ["sub-03"]',
                                      'validation_subjects = ["sub-3"]'))
    assert _conform("braincorl", "train", str(spec), "--out", str(tmp_path / "m")) == 2
    err = capsys.readouterr().err
    assert "no subject 'sub-3'" in err and "Did you mean 'sub-03'" in err
    assert "Traceback" not in err and not (tmp_path / "m").exists()


def test_train_refuses_a_gpu_that_is_not_there(spec, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert _conform("braincorl", "train", str(spec), "--out", str(tmp_path / "m"),
                    "--device", "cuda") == 2
    assert "--device cpu" in capsys.readouterr().err


def test_import_official_converts_a_state_dict(tmp_path, capsys):
    network = BraInCoRLNetwork(preset_config("tiny", embed_dim=8))
    weights = tmp_path / "official.pth"
    torch.save({"state_dict": {f"model.{k}": v for k, v in network.state_dict().items()}},
               weights)
    out = tmp_path / "converted"
    assert _conform("braincorl", "import-official", str(weights), "--preset", "tiny",
                    "--embed-dim", "8", "--feature-space", "clip:test:0", "--out",
                    str(out)) == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint.feature_space == "clip:test:0"
    for name, value in network.state_dict().items():
        assert torch.equal(value, checkpoint.network.state_dict()[name])
    assert "official" in (out / "model_card.md").read_text()
    capsys.readouterr()
    assert _conform("braincorl", "import-official", str(weights), "--preset", "tiny",
                    "--embed-dim", "16", "--out", str(tmp_path / "other")) == 2
    assert "do not fit" in capsys.readouterr().err


def test_help_texts_teach(capsys):
    assert _conform("braincorl", "--help") == 0
    text = capsys.readouterr().out
    assert "train" in text and "import-official" in text
    assert _conform("braincorl", "train", "--help") == 0
    text = capsys.readouterr().out
    assert "--resume" in text and "--overwrite" in text and "checkpoint_every" in text


def test_set_changes_the_data_and_refuses_the_rest(spec, tmp_path, capsys):
    out = tmp_path / "model"
    assert _conform("braincorl", "train", str(spec), "--out", str(out), "--quiet",
                    "--set", "dataset.n_units=12") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["stimulus_counts"]["sub-01"]["voxels"] == 12
    assert "# --set dataset.n_units=12" in config["training"]["spec"]
    capsys.readouterr()
    assert _conform("braincorl", "train", str(spec), "--out", str(tmp_path / "b"),
                    "--set", "training.lr=1") == 2
    assert "sets the data only" in capsys.readouterr().err
    assert _conform("braincorl", "train", str(spec), "--out", str(tmp_path / "c"),
                    "--set", "dataset.n_units=0") == 2
    err = capsys.readouterr().err
    assert "n_units" in err and "--set dataset.n_units=VALUE" in err
