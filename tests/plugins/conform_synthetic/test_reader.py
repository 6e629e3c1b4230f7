"""read_study / read_study_subject on damaged or missing files: a DataFileError naming the file
and the fix, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from conform_synthetic import read_study, read_study_subject, simulate_study, write_study

from conform_core.exceptions import DataFileError


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "study"
    write_study(out, simulate_study(n_subjects=1, n_units=9, n_stimuli=12, n_repeats=2,
                                    random_state=0))
    return out


def _unknown_compression(data: bytes) -> bytes:
    """Set the compression method of the first central-directory entry to an unknown one."""
    b = bytearray(data)
    at = b.index(b"PK\x01\x02")
    b[at + 10:at + 12] = (99).to_bytes(2, "little")
    return bytes(b)


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2],  # an interrupted copy
    lambda b: b[:100],
    _unknown_compression,  # zipfile raises NotImplementedError for it
], ids=["half", "first-100-bytes", "unknown-compression"])
def test_truncated_or_damaged_trials_file_names_the_file(study: Path, tmp_path: Path,
                                                         damage) -> None:
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    path = copy / "sub-01" / "sub-01_trials.npz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataFileError, match=r"sub-01_trials\.npz.*conform simulate"):
        read_study_subject(copy, "sub-01")


@pytest.fixture
def written(tmp_path: Path) -> Path:
    study = simulate_study(n_subjects=2, n_units=12, n_stimuli=24, n_repeats=2, timeseries=True,
                           trials_per_run=16)
    return write_study(tmp_path / "s", study)


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda p: (p / "study.json").unlink(), "study.json' is missing"),
        (lambda p: (p / "study.json").write_text("{not json"), "is not valid JSON"),
        (
            lambda p: (p / "study.json").write_text('{"format": "other"}'),
            "is not a conform synthetic study",
        ),
        (
            lambda p: (p / "sub-01" / "sub-01_trials.npz").write_bytes(b"PK\x03\x04 truncated"),
            "sub-01_trials.npz",
        ),
        (lambda p: (p / "sub-01" / "sub-01_trials.npz").unlink(), "sub-01_trials.npz' is missing"),
        (
            lambda p: (p / "stimuli_embeddings.npy").write_bytes(b"garbage"),
            "stimuli_embeddings.npy",
        ),
        (
            lambda p: (
                p / "sub-01" / "func" / "sub-01_task-conform_run-01_bold.nii.gz"
            ).write_bytes(b"\x1f\x8bxx"),
            "run-01_bold.nii.gz",
        ),
        (
            lambda p: (p / "sub-01" / "func" / "sub-01_task-conform_run-01_events.tsv").write_text(
                "onset\n1\n"
            ),
            "columns ['onset', 'duration', 'trial_type', 'stimulus_id']",
        ),
    ],
)
def test_damaged_files_raise_data_file_error_naming_file_and_fix(
    written: Path, damage, fragment: str
) -> None:
    damage(written)
    with pytest.raises(DataFileError) as info:
        read_study_subject(written, "sub-01")
    assert fragment in str(info.value)
    assert "conform simulate" in str(info.value)


def test_missing_folder_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="conform simulate"):
        read_study(tmp_path / "nowhere")
