"""read_study_subject on damaged subject files: a DataFileError naming the file, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from conform_core.exceptions import DataFileError
from conform_core.simulation import read_study_subject, simulate_study, write_study


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
