"""The fast read path (issue 7 point 4): low-level attribute and beta reads, the per-row NaN
check in every read path, and memory bounded by the output array."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from conform_mosaic import MosaicDataset
from conform_mosaic import _source as src

from conform_core import validation
from conform_core.data import TrialData
from conform_core.exceptions import DataFileError, ShapeError

from .conftest import NAN_AT, NAN_KEY, N, toy_betas

ALL_PHASES = ("train", "test", "artificial")
OTHER_KEY = "sub-01_TOY_stimulus-toy_test_001_phase-test_rep-2"
# the three per-subject read paths: one span, one hyperslab per run (<= 4096 runs), and a
# span read into a buffer then indexed (> 4096 runs)
ROIS = {
    "contiguous": list(range(24000, 25000)),
    "runs": list(range(1000, 1512)) + NAN_AT + [40000],
    "spread": list(range(0, 20000, 2)) + NAN_AT,
}


def _load(folder: Path, rois: list[int], **kwargs: object) -> TrialData:
    params = {"location": str(folder), "rois": rois, "nan_vertices": "keep", "phases": ALL_PHASES}
    params.update(kwargs)
    return MosaicDataset(**params).load_subject("sub-01_TOY").trials


def _expected(rois: list[int]) -> np.ndarray:
    return np.array([v[np.sort(rois)] for (_, _, _, v) in toy_betas().values()])


@pytest.mark.parametrize("path", list(ROIS))
def test_every_read_path_returns_the_written_values(toy_master: Path, path: str) -> None:
    trials = _load(toy_master, ROIS[path])
    np.testing.assert_array_equal(trials.betas, _expected(ROIS[path]))


@pytest.mark.parametrize("path", list(ROIS))
def test_every_read_path_checks_nan_indices(toy_dir: Path, path: str) -> None:
    with h5py.File(toy_dir / "sub-01_TOY.hdf5", "r+") as f:
        f["betas"][NAN_KEY].attrs["nan_indices"] = np.array([NAN_AT[0]], dtype=np.int64)
    with pytest.raises(DataFileError) as info:
        _load(toy_dir, ROIS[path])
    message = str(info.value)
    for fragment in (
        str(toy_dir / "sub-01_TOY.hdf5"),
        NAN_KEY,
        f"non-finite but not listed: [{NAN_AT[1]}]",
        "np.flatnonzero(~np.isfinite(beta))",
    ):
        assert fragment in message


@pytest.mark.parametrize("path", list(ROIS))
def test_a_listed_vertex_that_is_finite_is_found_on_a_clean_row(toy_dir: Path, path: str) -> None:
    """The fast path (finite row sum) still compares the row with its nan_indices."""
    vertex = sorted(ROIS[path])[3]
    with h5py.File(toy_dir / "sub-01_TOY.hdf5", "r+") as f:
        f["betas"][OTHER_KEY].attrs["nan_indices"] = np.array([vertex], dtype=np.int64)
    with pytest.raises(DataFileError, match=rf"listed but finite: \[{vertex}\]"):
        _load(toy_dir, ROIS[path])


def test_listed_nans_outside_the_roi_are_ignored(toy_master: Path) -> None:
    trials = _load(toy_master, list(range(1000, 1512)))
    assert np.isfinite(trials.betas).all()


def test_listed_infinities_become_nan(toy_dir: Path) -> None:
    with h5py.File(toy_dir / "sub-01_TOY.hdf5", "r+") as f:
        data = f["betas"][NAN_KEY]
        values = data[()]
        values[NAN_AT] = [np.inf, -np.inf]
        data[...] = values
    trials = _load(toy_dir, ROIS["runs"])
    row = list(toy_betas()).index(NAN_KEY)
    cols = np.flatnonzero(np.isin(np.sort(ROIS["runs"]), NAN_AT))
    assert np.isnan(trials.betas[row, cols]).all()
    assert np.isfinite(np.delete(trials.betas, row, axis=0)).all()


def test_attributes_of_other_writers_read_the_same(toy_dir: Path, toy_master: Path) -> None:
    """int32 nan_indices, fixed-length and ASCII variable-length file names (the direct
    attribute read only takes the types h5py writes; the rest go through h5py's attrs)."""
    with h5py.File(toy_dir / "sub-01_TOY.hdf5", "r+") as f:
        for i, key in enumerate(f["betas"]):
            attrs = f["betas"][key].attrs
            nan = attrs["nan_indices"]
            name = attrs["presented_stimulus_filename"]
            del attrs["nan_indices"], attrs["presented_stimulus_filename"]
            attrs["nan_indices"] = nan.astype(np.int32)
            attrs["presented_stimulus_filename"] = (
                np.bytes_(name.encode())
                if i % 2
                else np.array(name.encode(), dtype=h5py.string_dtype("ascii"))
            )
    ours = MosaicDataset(location=str(toy_dir), rois=ROIS["runs"], nan_vertices="keep")
    reference = MosaicDataset(location=str(toy_master), rois=ROIS["runs"], nan_vertices="keep")
    a, b = ours.load_subject("sub-01_TOY"), reference.load_subject("sub-01_TOY")
    assert a.trials.stimulus_ids.tolist() == b.trials.stimulus_ids.tolist()
    np.testing.assert_array_equal(a.trials.betas, b.trials.betas)
    assert (
        ours.trial_table("sub-01_TOY")["n_nan"] == reference.trial_table("sub-01_TOY")["n_nan"]
    ).all()


def test_a_group_among_the_betas_is_a_clear_error(toy_dir: Path) -> None:
    with h5py.File(toy_dir / "sub-01_TOY.hdf5", "r+") as f:
        f.move(f"betas/{OTHER_KEY}", "moved_out")
        f["betas"].create_group(OTHER_KEY)
    with pytest.raises(DataFileError) as info:
        _load(toy_dir, ROIS["runs"])
    message = str(info.value)
    assert str(toy_dir / "sub-01_TOY.hdf5") in message
    assert OTHER_KEY in message and "is not a dataset" in message


def test_reading_needs_little_more_than_the_output(toy_master: Path) -> None:
    """Python-side allocations while reading every grayordinate of every trial: the output
    plus small buffers (no full-size mask, no per-trial copies). TrialData's own check is
    covered by test_finite_check_never_allocates_a_full_size_mask."""
    source = src.discover(toy_master)[0]
    with src.open_h5(source.path) as h5:
        n = len(src.beta_keys(h5, source))
        tracemalloc.start()
        try:
            _, betas = src.read_subject(
                h5, source, np.ones(n, bool), np.arange(N), np.dtype(np.float64)
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert betas.shape == (18, N) and np.isnan(betas).sum() == len(NAN_AT)
    assert peak < betas.nbytes + 3_000_000, (peak, betas.nbytes)


@pytest.mark.parametrize("block", [7, 1000, 1 << 20])
def test_finite_check_in_blocks_reports_the_first_offending_index(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(validation, "_FINITE_BLOCK", block)
    betas = np.zeros((300, 50))
    betas[5, 3] = np.nan
    betas[200, 7] = np.inf
    betas[250, 1] = -np.inf
    with pytest.raises(ShapeError, match=r"2 infinite value\(s\) \(first at index \(200, 7\)\)"):
        TrialData(betas, np.arange(300).astype(str))
    betas[[200, 250], [7, 1]] = np.nan
    assert np.isnan(TrialData(betas, np.arange(300).astype(str)).betas).sum() == 3
    with pytest.raises(ShapeError, match=r"3 NaN value\(s\) \(first at index \(5, 3\)\)"):
        validation.check_float_array(betas, ndim=2, name="x", allow_nan=False)
    strided = np.zeros((300, 100))[:, ::2]
    strided[299, 49] = np.inf
    with pytest.raises(ShapeError, match=r"first at index \(299, 49\)"):
        validation.check_float_array(strided, ndim=2, name="x")


def test_finite_check_never_allocates_a_full_size_mask() -> None:
    betas = np.zeros((400, 20000))  # 64 MB; a full mask would be 8 MB
    betas[::7, 11] = np.nan  # non-finite in (almost) every block: the exact check runs
    tracemalloc.start()
    try:
        validation.check_float_array(betas, ndim=2, name="x", allow_nan=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak
