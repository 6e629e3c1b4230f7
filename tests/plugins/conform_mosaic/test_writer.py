"""Writing MOSAIC files: round trip against the independent toy file, atomicity, merged layouts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conform_mosaic import MosaicDataset, validate, write_merged, write_subject
from conform_mosaic.testing import TOY_METADATA, toy_folder

from conform_core.data import TrialData, Units
from conform_core.exceptions import DataFileError, ParameterError, ShapeError

from .conftest import ATTRS, N

ALL = ("train", "test", "artificial")


def _read_toy(folder: Path) -> tuple[TrialData, np.ndarray, dict[str, object]]:
    ds = MosaicDataset(location=str(folder), rois="grayordinates", nan_vertices="keep", phases=ALL)
    trials = ds.load_subject("sub-01_TOY").trials
    split = ds.trial_table("sub-01_TOY")["split"].to_numpy()
    return trials, split, ds.attributes("sub-01_TOY")


def _datasets(path: Path) -> dict[str, tuple[np.ndarray, dict[str, object], h5py.Dataset]]:
    out = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, item: object) -> None:
            if isinstance(item, h5py.Dataset):
                out[name] = (
                    item[()],
                    dict(item.attrs),
                    (item.dtype, item.compression, item.shuffle),
                )

        f.visititems(visit)
        out["/attrs"] = (None, dict(f.attrs), None)
        out["/keys"] = (
            None,
            {"betas": list(f["betas"]), "noiseceilings": list(f["noiseceilings"])},
            None,
        )
    return out


@pytest.fixture(scope="module")
def round_trip(toy_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    trials, split, attrs = _read_toy(toy_master)
    out = tmp_path_factory.mktemp("written")
    return write_subject(out, trials, phases=split, metadata=attrs, source="Toy")


def test_round_trip_reproduces_every_key_in_order(toy_master: Path, round_trip: Path) -> None:
    ours, theirs = _datasets(round_trip), _datasets(toy_master / "sub-01_TOY.hdf5")
    assert ours["/keys"][1]["betas"] == theirs["/keys"][1]["betas"]
    assert sorted(ours["/keys"][1]["noiseceilings"]) == sorted(theirs["/keys"][1]["noiseceilings"])
    assert sorted(ours) == sorted(theirs)


def test_round_trip_reproduces_root_attributes(round_trip: Path) -> None:
    attrs = _datasets(round_trip)["/attrs"][1]
    assert attrs == ATTRS
    assert isinstance(attrs["visual_angle"], float)


def test_round_trip_reproduces_values_attributes_and_dtypes(
    toy_master: Path, round_trip: Path
) -> None:
    ours, theirs = _datasets(round_trip), _datasets(toy_master / "sub-01_TOY.hdf5")
    for name, (values, attrs, kind) in theirs.items():
        if name.startswith("/"):
            continue
        got_values, got_attrs, got_kind = ours[name]
        if name == "nan_indices_all":
            assert (
                sorted(got_values.tolist()) == sorted(values.tolist())
                and got_values.dtype == np.int64
            )
            continue
        assert got_kind == kind == (np.dtype("float64"), "gzip", True), name
        tol = 1e-12 if name.startswith("noiseceilings/") else 0
        np.testing.assert_allclose(got_values, values, rtol=tol, atol=tol, err_msg=name)
        assert sorted(got_attrs) == sorted(attrs), name
        for key, value in attrs.items():
            np.testing.assert_array_equal(got_attrs[key], value, err_msg=f"{name}:{key}")
            assert np.asarray(got_attrs[key]).dtype.kind == np.asarray(value).dtype.kind, (
                f"{name}:{key}"
            )


def test_round_trip_side_tables(toy_master: Path, round_trip: Path) -> None:
    for name in ("train_naturalistic.json", "test_naturalistic.json", "test_artificial.json"):
        ours = json.loads((round_trip.parent / name).read_text())
        theirs = json.loads((toy_master / name).read_text())
        assert ours == theirs, name
    ours = pd.read_csv(round_trip.parent / "toy_stiminfo.tsv", sep="\t")
    theirs = pd.read_csv(toy_master / "toy_stiminfo.tsv", sep="\t")
    pd.testing.assert_frame_equal(
        ours.sort_values("filename").reset_index(drop=True),
        theirs.sort_values("filename").reset_index(drop=True),
    )


def test_written_file_passes_validate(round_trip: Path) -> None:
    assert validate(round_trip) == []


def test_independent_toy_file_passes_validate(toy_master: Path) -> None:
    assert validate(toy_master / "sub-01_TOY.hdf5") == []


def test_writer_renames_a_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials, split, attrs = _read_toy(toy_folder())
    moves = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        moves.append((Path(src), Path(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = write_subject(tmp_path, trials, phases=split, metadata=attrs, side_tables=False)
    src, dst = moves[0]
    assert dst == path and src.parent == path.parent and src.name.startswith(".sub-01_TOY.hdf5.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub-01_TOY.hdf5"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    trials, split, attrs = _read_toy(toy_folder())
    with pytest.raises(ParameterError, match="noise_ceilings"):
        write_subject(
            tmp_path,
            trials,
            phases=split,
            metadata=attrs,
            noise_ceilings={"train_n-1": np.zeros(3)},
        )
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    trials, split, attrs = _read_toy(toy_folder())
    write_subject(tmp_path, trials, phases=split, metadata=attrs, side_tables=False)
    with pytest.raises(DataFileError, match="overwrite=True"):
        write_subject(tmp_path, trials, phases=split, metadata=attrs, side_tables=False)


def test_writer_needs_required_metadata(tmp_path: Path) -> None:
    trials, split, attrs = _read_toy(toy_folder())
    attrs = {k: v for k, v in attrs.items() if k != "owner_email"}
    with pytest.raises(ParameterError, match=r"\['owner_email'\]"):
        write_subject(tmp_path, trials, phases=split, metadata=attrs)


def test_writer_scatters_a_vertex_subset_as_nan_elsewhere(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    units = Units(ids=np.array(["a", "b", "c"]), space="fsLR32k", indices=np.array([5, 7, 9]))
    trials = TrialData(
        rng.standard_normal((4, 3)),
        np.array(["x.jpg", "x.jpg", "y.jpg", "y.jpg"]),
        subject="sub-02_NEW",
        units=units,
    )
    with pytest.warns(UserWarning, match="dense attribute storage"):
        path = write_subject(
            tmp_path,
            trials,
            phases=["train"] * 4,
            metadata=TOY_METADATA | {"subjectID": "sub-02"},
            noise_ceilings=False,
        )
    assert validate(path) == []
    back = MosaicDataset(location=str(tmp_path), rois=[5, 7, 9], nan_vertices="keep").load_subject(
        "sub-02_NEW"
    )
    np.testing.assert_array_equal(back.trials.betas, trials.betas)


def test_writer_rejects_units_that_are_not_grayordinates(tmp_path: Path) -> None:
    trials = TrialData(np.zeros((2, 10)), np.array(["a.jpg", "a.jpg"]), subject="sub-01_X")
    with pytest.raises(ShapeError, match="91282 fsLR 91k grayordinates"):
        write_subject(tmp_path, trials, phases=["test", "test"], metadata=TOY_METADATA)


def test_writer_rejects_codes_with_underscores(tmp_path: Path) -> None:
    trials = TrialData(np.zeros((2, N)), np.array(["a.jpg", "a.jpg"]), subject="sub-01")
    with pytest.raises(ParameterError, match="without '_'"):
        write_subject(
            tmp_path, trials, phases=["test", "test"], metadata=TOY_METADATA, code="MY_SET"
        )


@pytest.mark.parametrize("layout", ["chunks", "ind"])
def test_merged_layout_reads_like_the_subject_file(
    toy_master: Path, tmp_path: Path, layout: str
) -> None:
    merged = write_merged(
        [toy_master / "sub-01_TOY.hdf5"], tmp_path / f"mosaic_{layout}.hdf5", layout=layout
    )
    assert validate(merged) == []
    params = {
        "rois": list(range(1000, 1512)) + [24576],
        "nan_vertices": "keep",
        "phases": ALL,
        "split": "file",
    }
    a = MosaicDataset(location=str(toy_master), **params)
    b = MosaicDataset(location=str(merged), **params)
    assert b.subjects() == ["sub-01_TOY"]
    ta, tb = a.load_subject("sub-01_TOY").trials, b.load_subject("sub-01_TOY").trials
    assert (
        b.trial_table("sub-01_TOY")["key"].tolist() == a.trial_table("sub-01_TOY")["key"].tolist()
    )
    np.testing.assert_array_equal(tb.stimulus_ids, ta.stimulus_ids)
    tol = 1e-6 if layout == "chunks" else 0  # float32 storage: ~6e-8 relative, |beta| < 6
    np.testing.assert_allclose(tb.betas, ta.betas, rtol=tol, atol=tol)
    for key, value in a.noise_ceilings("sub-01_TOY").items():
        np.testing.assert_array_equal(b.noise_ceilings("sub-01_TOY")[key], value)
