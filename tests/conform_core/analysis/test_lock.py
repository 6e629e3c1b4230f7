"""Input fingerprints of a locked analysis cover every file the analysis reads."""

from __future__ import annotations

from pathlib import Path

from conform_core.analysis.lock import input_checksums, path_inputs
from conform_core.analysis.plan import Plan
from conform_core.spec import StageEntry


def _plan(tmp_path: Path, **feature_params: object) -> Plan:
    return Plan(stages={"dataset": (StageEntry("synthetic", {"atlas": str(tmp_path / "atlas.npy"),
                                                              "rois": "visual"}),),
                        "denoiser": (StageEntry("pca"), StageEntry("psn")),
                        "features": (StageEntry("clip", dict(feature_params)),)},
                location=str(tmp_path / "data"), subjects=("sub-01",), rois=(), seed=0,
                metrics=("r2",), classes={})


def test_path_parameters_are_inputs(tmp_path):
    (tmp_path / "atlas.npy").write_bytes(b"atlas")
    (tmp_path / "weights.pt").write_bytes(b"w")
    found = path_inputs(
        _plan(tmp_path, weights=str(tmp_path / "weights.pt"), model="ViT-B-32").stages
    )
    # existing paths only; a plain word ("visual", "ViT-B-32") is not a path
    assert found == {
        "dataset.atlas": str(tmp_path / "atlas.npy"),
        "features.weights": str(tmp_path / "weights.pt"),
    }


def test_every_file_is_covered_beyond_the_hash_budget(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(30):
        (data / "sub" / f"f{i:02d}.txt").write_text("x" * 10)
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    (stimuli / "a.png").write_bytes(b"png")
    prints = input_checksums(
        str(data),
        inputs={"dataset.stimuli_dir": str(stimuli), "dataset.inside": str(data / "sub")},
        hash_budget=100,
    )
    assert len([k for k in prints if k.startswith("sub/")]) == 30  # no file left out
    hashed = [v for k, v in prints.items() if k.startswith("sub/") and len(v) == 64]
    assert len(hashed) == 10  # 10 x 10 bytes = budget
    assert prints["dataset.stimuli_dir:a.png"].startswith("size-mtime:")  # budget spent
    assert not any(k.startswith("dataset.inside:") for k in prints)  # already under location


def test_a_changed_stimulus_changes_the_fingerprint(tmp_path):
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    (stimuli / "a.png").write_bytes(b"png")
    before = input_checksums(None, inputs={"dataset.stimuli_dir": str(stimuli)})
    (stimuli / "a.png").write_bytes(b"PNG")
    assert input_checksums(None, inputs={"dataset.stimuli_dir": str(stimuli)}) != before


def test_large_inputs_are_fingerprinted_by_size_and_time(tmp_path):
    (tmp_path / "small.txt").write_text("abc")
    (tmp_path / "big.bin").write_bytes(b"x" * 100)
    prints = input_checksums(str(tmp_path), full_hash_below=10)
    assert len(prints["small.txt"]) == 64
    assert prints["big.bin"].startswith("size-mtime:100:")


def test_conform_outputs_inside_the_dataset_are_not_inputs(tmp_path):
    """BIDS keeps results under the study (derivatives/conform/): they are written, not read,
    so results folders, GLMsingle outputs and folders being built are left out."""
    data = tmp_path / "study"
    (data / "sub-01" / "func").mkdir(parents=True)
    (data / "sub-01" / "func" / "events.tsv").write_text("onset\n0\n")
    before = input_checksums(str(data))
    results = data / "derivatives" / "conform" / "sub-01"
    (results / "parts").mkdir(parents=True)
    (results / "spec.lock.toml").write_text("x")
    (results / "parts" / "arrays.npz").write_bytes(b"x")
    glm = data / "derivatives" / "glmsingle" / "sub-01"
    glm.mkdir(parents=True)
    (glm / "provenance.json").write_text("{}")
    (glm / "trials.tsv").write_text("trial\n")
    building = data / "derivatives" / "conform" / ".sub-02.abc123.tmp"
    building.mkdir()
    (building / "results.csv").write_text("x")
    assert input_checksums(str(data)) == before
    (data / "derivatives" / "notes.txt").write_text("an input like any other")
    assert set(input_checksums(str(data))) == {*before, "derivatives/notes.txt"}
