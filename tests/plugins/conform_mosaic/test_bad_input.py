"""Every bad input named in issue 7 raises a ConformError naming the file, the key and the fix;
``validate`` lists the same problems."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from conform_mosaic import MosaicDataset, validate

from conform_core.exceptions import ConformError, DataFileError

from .conftest import NAN_KEY

SUBSET = list(range(1000, 1512)) + [24576, 24577]
OTHER_KEY = "sub-01_TOY_stimulus-toy_test_001_phase-test_rep-2"


def _load(folder: Path) -> None:
    MosaicDataset(
        location=str(folder),
        rois=SUBSET,
        nan_vertices="keep",
        phases=("train", "test", "artificial"),
    ).load_subject("sub-01_TOY")


def _edit(folder: Path) -> h5py.File:
    return h5py.File(folder / "sub-01_TOY.hdf5", "r+")


def _expect(folder: Path, *fragments: str) -> str:
    with pytest.raises(ConformError) as info:
        _load(folder)
    message = str(info.value)
    assert str(folder / "sub-01_TOY.hdf5") in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_nan_indices_that_miss_a_nan(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        f["betas"][NAN_KEY].attrs["nan_indices"] = np.array([24576], dtype=np.int64)
    _expect(
        toy_dir,
        NAN_KEY,
        "nan_indices that disagree",
        "non-finite but not listed: [24577]",
        "np.flatnonzero(~np.isfinite(beta))",
    )
    assert any(NAN_KEY in p and "nan_indices" in p for p in validate(toy_dir / "sub-01_TOY.hdf5"))


def test_nan_indices_that_list_a_finite_vertex(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        f["betas"][OTHER_KEY].attrs["nan_indices"] = np.array([1005], dtype=np.int64)
    _expect(toy_dir, OTHER_KEY, "listed but finite: [1005]")


def test_missing_required_root_attribute(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        del f.attrs["owner_email"]
    _expect(toy_dir, "owner_email", "f.attrs['owner_email'] = ...")
    problems = validate(toy_dir / "sub-01_TOY.hdf5")
    assert problems == [
        (
            f"{toy_dir / 'sub-01_TOY.hdf5'}: root attribute 'owner_email' is missing. "
            "Add it (f.attrs['owner_email'] = ...; a str)."
        )
    ]


def test_missing_trial_attribute(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        del f["betas"][OTHER_KEY].attrs["presented_stimulus_filename"]
    _expect(toy_dir, OTHER_KEY, "presented_stimulus_filename", "write_subject")


def test_beta_of_the_wrong_length(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        attrs = dict(f["betas"][OTHER_KEY].attrs)
        del f["betas"][OTHER_KEY]
        d = f["betas"].create_dataset(OTHER_KEY, data=np.zeros(64984))
        for k, v in attrs.items():
            d.attrs[k] = v
    _expect(toy_dir, OTHER_KEY, "shape (64984,)", "(91282,)", "Resample")
    assert any("shape (64984,)" in p for p in validate(toy_dir / "sub-01_TOY.hdf5"))


def test_key_that_does_not_parse(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        f["betas"].move(OTHER_KEY, "sub-01_TOY_toy_test_001_rep2")
    _expect(
        toy_dir,
        "'sub-01_TOY_toy_test_001_rep2'",
        "sub-XX_<CODE>_stimulus-<stem>_phase-<train|test>_rep-<r>",
        "Rename",
    )
    assert any("does not parse" in p for p in validate(toy_dir / "sub-01_TOY.hdf5"))


def test_truncated_file(toy_dir: Path) -> None:
    path = toy_dir / "sub-01_TOY.hdf5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _expect(toy_dir, "truncated")
    assert "crc32" in message
    assert validate(path) and "truncated" in validate(path)[0]


def test_file_that_is_not_hdf5(toy_dir: Path) -> None:
    (toy_dir / "sub-01_TOY.hdf5").write_text("not an HDF5 file\n")
    _expect(toy_dir, "is not an HDF5 file", "Re-download")


def test_phase_attribute_that_contradicts_the_key(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        f["betas"][OTHER_KEY].attrs["phase"] = "train"
    problems = validate(toy_dir / "sub-01_TOY.hdf5")
    assert len(problems) == 1 and OTHER_KEY in problems[0] and "phase='train'" in problems[0]


def test_validate_reports_every_problem_at_once(toy_dir: Path) -> None:
    with _edit(toy_dir) as f:
        del f.attrs["beta_pipeline"]
        f.attrs["owner_email"] = "nobody"
        f["betas"][OTHER_KEY].attrs["repetition"] = np.int64(7)
    problems = validate(toy_dir / "sub-01_TOY.hdf5")
    assert len(problems) == 3, problems
    assert any("'beta_pipeline' is missing" in p for p in problems)
    assert any("owner_email 'nobody'" in p for p in problems)
    assert any("repetition=7" in p for p in problems)


def test_validate_flags_groups_that_lose_key_order(tmp_path: Path, toy_master: Path) -> None:
    path = tmp_path / "sub-01_TOY.hdf5"
    with h5py.File(toy_master / "sub-01_TOY.hdf5", "r") as src, h5py.File(path, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        group = dst.create_group("betas")  # no track_order: keys come back alphabetically
        for key in src["betas"]:
            src.copy(src["betas"][key], group, key)
        src.copy(src["noiseceilings"], dst, "noiseceilings")
        src.copy(src["nan_indices_all"], dst, "nan_indices_all")
    problems = validate(path)
    assert len(problems) == 1 and "track_order=True" in problems[0]


def test_missing_file_is_a_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        MosaicDataset(location=str(tmp_path / "sub-01_TOY.hdf5")).subjects()
