"""write_study (`conform simulate`): exact round trip, BIDS files, atomic folder, file modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conform_synthetic import read_study, simulate_study, write_study

from conform_core.exceptions import DataFileError

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
    assert (
        json.loads((func / "sub-01_task-conform_run-01_bold.json").read_text())["RepetitionTime"]
        == 1.5
    )


def test_existing_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataFileError, match="already exists"):
        write_study(out, simulate_study(**SMALL))
    assert (out / "keep.txt").read_text() == "mine"


def test_crash_while_writing_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the first subject is written leaves no folder, not half a study."""
    from conform_synthetic import _writer

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


def test_simulated_study_is_readable_by_group_and_others(
    tmp_path: Path, umask, assert_modes
) -> None:
    """Every file and folder `conform simulate --timeseries` writes, under the usual umask."""
    umask(0o022)  # inherited by the subprocess
    out = tmp_path / "study"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "conform_core",
            "simulate",
            str(out),
            "--subjects",
            "1",
            "--units",
            "9",
            "--stimuli",
            "12",
            "--repeats",
            "2",
            "--timeseries",
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    count = assert_modes(out, files=0o644, folders=0o755)
    assert count >= 12 and (out / "sub-01" / "func").is_dir()  # the nested NIfTI folder too
