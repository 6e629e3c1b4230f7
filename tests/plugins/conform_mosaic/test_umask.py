"""MOSAIC files (write_subject, write_merged) honour the umask: lab colleagues can read them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conform_mosaic import write_merged, write_subject
from conform_mosaic.testing import TOY_METADATA

from conform_core.data import TrialData, Units


def _small_trials() -> TrialData:
    rng = np.random.default_rng(3)
    units = Units(ids=np.array(["a", "b", "c"]), space="fsLR32k", indices=np.array([5, 7, 9]))
    return TrialData(rng.standard_normal((4, 3)), np.array(["x.jpg", "x.jpg", "y.jpg", "y.jpg"]),
                     subject="sub-02_NEW", units=units)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"),
                         [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)], ids=["022", "077"])
def test_subject_and_merged_files_get_the_umask_mode(tmp_path: Path, umask, assert_modes, mask,
                                                     file_mode, dir_mode) -> None:
    umask(mask)
    out = tmp_path / "mosaic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the vertex subset's dense-attribute warning
        path = write_subject(out, _small_trials(), phases=["train"] * 4,
                             metadata=TOY_METADATA | {"subjectID": "sub-02"},
                             noise_ceilings=False)
        write_merged([path], out / "merged" / "mosaic_ind.hdf5", layout="ind")
    # the subject file, the side tables beside it and the merged file
    assert assert_modes(out, files=file_mode, folders=dir_mode) >= 5
    assert sorted(p.name for p in out.rglob("*") if p.name.startswith(".")) == []  # no temp left
