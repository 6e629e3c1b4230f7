"""Maps in the input's space (NIfTI, GIFTI per hemisphere, CIFTI) and the output formats."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from conform_glmsingle._export import write_maps
from conform_glmsingle._io import (
    group_hemispheres,
    load_output,
    load_run,
    load_runs,
    run_header,
    save_output,
)

from conform_core.exceptions import DataFileError


def test_nifti_maps_keep_the_input_grid_affine_and_header(tmp_path):
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = [-10, 20, 5]
    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(3, 4, 2, 10)).astype(np.float32),
                          affine)
    img.header.set_qform(affine, code=4)
    img.header.set_sform(affine, code=4)  # MNI
    img.header.set_zooms((2.0, 2.5, 3.0, 1.5))
    nib.save(img, tmp_path / "run_bold.nii.gz")
    data, meta = load_run(tmp_path / "run_bold.nii.gz")
    assert run_header([tmp_path / "run_bold.nii.gz"]) == {"n_units": 24, "n_times": 10,
                                                          "tr": 1.5, "kind": "nifti"}
    maps = np.arange(24 * 3, dtype=np.float32).reshape(24, 3)
    [path] = write_maps(tmp_path, "m", maps, meta)
    back = nib.load(path)
    assert back.shape == (3, 4, 2, 3)
    np.testing.assert_array_equal(back.affine, affine)
    assert int(back.header["sform_code"]) == 4
    assert back.header.get_zooms()[:3] == (2.0, 2.5, 3.0)
    np.testing.assert_array_equal(np.asarray(back.dataobj).reshape(24, 3), maps)


def _gifti(path, n_vertices, n_time, structure=None):
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure} if structure else {})
    arrays = [nib.gifti.GiftiDataArray(np.full(n_vertices, t, np.float32),
                                       datatype="NIFTI_TYPE_FLOAT32") for t in range(n_time)]
    nib.save(nib.gifti.GiftiImage(darrays=arrays, meta=meta), str(path))
    return path


def test_gifti_hemispheres_pair_into_one_run_and_export_one_file_each(tmp_path):
    left = _gifti(tmp_path / "sub-01_run-1_hemi-L_bold.func.gii", 5, 8)
    right = _gifti(tmp_path / "sub-01_run-1_hemi-R_bold.func.gii", 7, 8)
    other = _gifti(tmp_path / "sub-01_run-2_hemi-L_bold.func.gii", 5, 8)
    groups = group_hemispheres([right, left])
    assert groups == [[left, right]]
    with pytest.raises(DataFileError, match="other hemisphere"):
        group_hemispheres([left, right, other])
    data, meta = load_runs(groups[0])
    assert data.shape == (12, 8)
    assert meta["hemispheres"] == [("CortexLeft", 5), ("CortexRight", 7)]
    maps = np.arange(24, dtype=np.float32).reshape(12, 2)
    paths = write_maps(tmp_path, "condition_mean", maps, meta, names=["a", "b"])
    assert [p.name for p in paths] == ["condition_mean_hemi-L.func.gii",
                                       "condition_mean_hemi-R.func.gii"]
    for path, rows, structure in zip(paths, (slice(0, 5), slice(5, 12)),
                                     ("CortexLeft", "CortexRight")):
        img = nib.load(path)
        assert img.meta["AnatomicalStructurePrimary"] == structure
        np.testing.assert_array_equal(np.stack([d.data for d in img.darrays], 1), maps[rows])
        assert [d.meta["Name"] for d in img.darrays] == ["a", "b"]


def test_cifti_maps_are_a_dscalar_with_the_input_brain_models(tmp_path):
    models = nib.cifti2.BrainModelAxis.from_mask(np.ones(6, bool), name="CortexLeft")
    series = nib.cifti2.SeriesAxis(start=0, step=0.8, size=9)
    nib.save(nib.cifti2.Cifti2Image(np.ones((9, 6), np.float32), header=(series, models)),
             tmp_path / "run.dtseries.nii")
    data, meta = load_run(tmp_path / "run.dtseries.nii")
    assert data.shape == (6, 9) and meta["tr"] == pytest.approx(0.8)
    maps = np.arange(12, dtype=np.float32).reshape(6, 2)
    [path] = write_maps(tmp_path, "t", maps, meta, names=["cond-a", "cond-b"])
    img = nib.load(path)
    assert path.name == "t.dscalar.nii"
    assert list(img.header.get_axis(0).name) == ["cond-a", "cond-b"]
    assert img.header.get_axis(1) == models
    np.testing.assert_array_equal(np.asarray(img.dataobj).T, maps)


OBJ = {"betasmd": np.arange(6, dtype=np.float32).reshape(2, 1, 1, 3), "pcnum": 3,
       "noisepool": None, "pcregressors": [np.ones((4, 2)), np.zeros((5, 2))],
       "params": {"fracs": [0.5, 1.0], "name": "x", "flag": True}, "stimorder": [0, 1, 0]}


@pytest.mark.parametrize("fmt", ["npy", "hdf5", "npy-pickle"])
def test_formats_round_trip(tmp_path, fmt):
    path = save_output(tmp_path, "TYPED", OBJ, fmt)
    back = load_output(path)
    np.testing.assert_array_equal(back["betasmd"], OBJ["betasmd"])
    assert back["noisepool"] is None and int(back["pcnum"]) == 3
    assert [a.shape for a in back["pcregressors"]] == [(4, 2), (5, 2)]
    np.testing.assert_array_equal(back["params"]["fracs"], [0.5, 1.0])
    assert str(back["params"]["name"]) == "x"
    np.testing.assert_array_equal(back["stimorder"], [0, 1, 0])


def test_npy_folder_needs_no_pickle_and_memory_maps(tmp_path):
    folder = save_output(tmp_path, "TYPED", OBJ, "npy")
    files = sorted(folder.rglob("*.npy"))
    assert files
    for f in files:
        np.load(f, allow_pickle=False)  # raises if anything was pickled
    mm = np.load(folder / "betasmd.npy", mmap_mode="r")  # read a slice of a huge file lazily
    assert mm.shape == (2, 1, 1, 3)
    assert json.loads((folder / "index.json").read_text())["noisepool"] == "none"
