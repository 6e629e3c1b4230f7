"""write_study / read_study: exact round trip, atomic folder, clear errors for damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conform_core.exceptions import DataFileError
from conform_core.simulation import read_study, read_study_subject, simulate_study, write_study

SMALL = dict(n_subjects=2, n_units=12, n_stimuli=24, n_shared=8, n_repeats=2, n_features=8,
             n_latent=3, missing_fraction=0.1, trials_per_run=16)


def assert_same_subject(a, b) -> None:
    assert a.name == b.name
    np.testing.assert_array_equal(a.trials.betas, b.trials.betas)
    for field in ("stimulus_ids", "sessions", "runs"):
        np.testing.assert_array_equal(getattr(a.trials, field), getattr(b.trials, field))
    np.testing.assert_array_equal(a.trials.units.ids, b.trials.units.ids)
    np.testing.assert_array_equal(a.train_ids, b.train_ids)
    np.testing.assert_array_equal(a.test_ids, b.test_ids)
    np.testing.assert_array_equal(a.stimuli.ids, b.stimuli.ids)
    np.testing.assert_array_equal(a.stimuli.embeddings, b.stimuli.embeddings)
    np.testing.assert_array_equal(a.truth.signal.data, b.truth.signal.data)
    np.testing.assert_array_equal(a.truth.signal.stimulus_ids, b.truth.signal.stimulus_ids)
    np.testing.assert_array_equal(a.truth.noise_ceiling, b.truth.noise_ceiling)
    np.testing.assert_array_equal(a.truth.trial_amplitudes, b.truth.trial_amplitudes)
    if a.timeseries is None:
        assert b.timeseries is None and b.truth.hrf_index is None
        return
    np.testing.assert_array_equal(a.truth.hrf_index, b.truth.hrf_index)
    assert a.timeseries.tr == b.timeseries.tr
    np.testing.assert_array_equal(a.timeseries.sessions, b.timeseries.sessions)
    for x, y in zip(a.timeseries.runs, b.timeseries.runs, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.timeseries.events, b.timeseries.events, strict=True):
        np.testing.assert_array_equal(x.onset, y.onset)
        np.testing.assert_array_equal(x.duration, y.duration)
        np.testing.assert_array_equal(x.stimulus_ids, y.stimulus_ids)


@pytest.mark.parametrize("timeseries", [False, True])
def test_round_trip_is_exact(tmp_path: Path, timeseries: bool) -> None:
    study = simulate_study(**SMALL, timeseries=timeseries, random_state=3)
    write_study(tmp_path / "study", study)
    back = read_study(tmp_path / "study")
    assert back.params == study.params
    np.testing.assert_array_equal(back.latent, study.latent)
    np.testing.assert_array_equal(back.shared_ids, study.shared_ids)
    np.testing.assert_array_equal(back.test_ids, study.test_ids)
    for a, b in zip(study.subjects, back.subjects, strict=True):
        assert_same_subject(a, b)


def test_writing_from_params_equals_writing_the_study(tmp_path: Path) -> None:
    study = simulate_study(**SMALL, random_state=3)
    write_study(tmp_path / "streamed", dict(study.params))
    back = read_study(tmp_path / "streamed")
    for a, b in zip(study.subjects, back.subjects, strict=True):
        assert_same_subject(a, b)


def test_bids_files_and_nifti_header(tmp_path: Path) -> None:
    import nibabel as nib

    write_study(tmp_path / "s", simulate_study(**SMALL, timeseries=True, tr=1.5))
    func = tmp_path / "s" / "sub-01" / "func"
    image = nib.load(str(func / "sub-01_task-conform_run-01_bold.nii.gz"))
    assert image.shape[:3] == (3, 4, 1) and image.header.get_zooms()[3] == pytest.approx(1.5)
    header = (func / "sub-01_task-conform_run-01_events.tsv").read_text().splitlines()[0]
    assert header.split("\t") == ["onset", "duration", "trial_type", "stimulus_id"]
    assert json.loads((func / "sub-01_task-conform_run-01_bold.json").read_text())["RepetitionTime"] == 1.5


def test_existing_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataFileError, match="already exists"):
        write_study(out, simulate_study(**SMALL))
    assert (out / "keep.txt").read_text() == "mine"


def test_crash_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the first subject is written leaves no folder, not half a study."""
    from conform_core.simulation import _writer

    original, calls = _writer._write_subject, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(_writer, "_write_subject", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_study(tmp_path / "s", simulate_study(**SMALL))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def written(tmp_path: Path) -> Path:
    return write_study(tmp_path / "s", simulate_study(**SMALL, timeseries=True))


@pytest.mark.parametrize(("damage", "fragment"), [
    (lambda p: (p / "study.json").unlink(), "study.json' is missing"),
    (lambda p: (p / "study.json").write_text("{not json"), "is not valid JSON"),
    (lambda p: (p / "study.json").write_text('{"format": "other"}'), "is not a conform synthetic study"),
    (lambda p: (p / "sub-01" / "sub-01_trials.npz").write_bytes(b"PK\x03\x04 truncated"), "sub-01_trials.npz"),
    (lambda p: (p / "sub-01" / "sub-01_trials.npz").unlink(), "sub-01_trials.npz' is missing"),
    (lambda p: (p / "stimuli_embeddings.npy").write_bytes(b"garbage"), "stimuli_embeddings.npy"),
    (lambda p: (p / "sub-01" / "func" / "sub-01_task-conform_run-01_bold.nii.gz").write_bytes(b"\x1f\x8bxx"),
     "run-01_bold.nii.gz"),
    (lambda p: (p / "sub-01" / "func" / "sub-01_task-conform_run-01_events.tsv").write_text("onset\n1\n"),
     "columns ['onset', 'duration', 'trial_type', 'stimulus_id']"),
])
def test_damaged_files_raise_data_file_error_naming_file_and_fix(written: Path, damage, fragment: str) -> None:
    damage(written)
    with pytest.raises(DataFileError) as info:
        read_study_subject(written, "sub-01")
    assert fragment in str(info.value)
    assert "conform simulate" in str(info.value)


def test_missing_folder_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="conform simulate"):
        read_study(tmp_path / "nowhere")
