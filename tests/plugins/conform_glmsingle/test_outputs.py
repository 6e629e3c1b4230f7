"""Output files: HDF5 the official loader reads, DESIGNINFO's resolved params, outputdir checks."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from conform_glmsingle import GLM_single
from conform_glmsingle._io import load_output

from conform_core.exceptions import DataFileError

from .conftest import small_study

QUICK = {"verbose": False, "n_pcs": 3, "fracs": [1.0, 0.6, 0.3]}


@pytest.fixture(scope="module")
def study():
    return small_study(1, n_units=20, n_runs=3, n_time=100, n_cond=12)


def _fit(study, params, runs_to=None, **kw):
    design, runs = study["design"], study["runs"]
    if runs_to is not None:  # shorten the last run: runs of different lengths
        design = [*design[:-1], design[-1][:runs_to]]
        runs = [*runs[:-1], runs[-1][:, :runs_to]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short end buffers
        return GLM_single({**QUICK, **params}).fit(design, runs, study["stimdur"], study["tr"],
                                                   **kw)


@pytest.mark.parametrize("runs_to", [None, 90])
def test_hdf5_has_the_official_layout(study, tmp_path, runs_to):
    """None as an empty dataset, scalars as attributes, lists of arrays stacked or marked ragged.

    That is what the official ``load_glmsingle_outputs_h5`` reads (test_official_corners.py
    loads our files with it); ``load_output`` gives back the in-memory results.
    """
    res = _fit(study, {"wanthdf5": 1, "pcstop": -2, "wantfileoutputs": [0, 0, 1, 1]},
               runs_to=runs_to, outputdir=tmp_path)
    path = tmp_path / "TYPEC_FITHRF_GLMDENOISE.hdf5"
    with h5py.File(path) as f:
        for key in ("glmbadness", "pcvoxels", "xvaltrend"):
            assert f[key].shape is None, key  # h5py.Empty: None
        assert f.attrs["pcnum"] == 2
        pcs = f["pcregressors"]
        if runs_to is None:
            assert isinstance(pcs, h5py.Dataset) and pcs.shape == (3, 100, 4)
        else:
            assert isinstance(pcs, h5py.Group) and pcs.attrs["__glmsingle_ragged_list__"]
            assert [pcs[str(i)].shape for i in range(3)] == [(100, 4), (100, 4), (90, 4)]
    back = load_output(path)
    assert set(back) == set(res["typec"])
    assert back["glmbadness"] is None and back["xvaltrend"] is None and back["pcnum"] == 2
    assert isinstance(back["pcregressors"], list) and len(back["pcregressors"]) == 3
    for a, b in zip(back["pcregressors"], res["typec"]["pcregressors"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back["betasmd"], res["typec"]["betasmd"])
    d = load_output(tmp_path / "TYPED_FITHRF_GLMDENOISE_RR.hdf5")
    np.testing.assert_array_equal(d["scaleoffset"], res["typed"]["scaleoffset"])


def test_designinfo_holds_the_resolved_options(study, tmp_path):
    """As the official DESIGNINFO: defaults filled in, per-run values, HRFs at the TR."""
    _fit(study, {"maxpolydeg": 2, "fracs": [0.3, 1.0, 0.6]}, outputdir=tmp_path)
    params = np.load(tmp_path / "DESIGNINFO.npy", allow_pickle=True).item()["params"]
    np.testing.assert_array_equal(params["xvalscheme"], np.arange(3))
    np.testing.assert_array_equal(params["sessionindicator"], np.ones((1, 3)))
    assert params["maxpolydeg"] == [2, 2, 2]
    np.testing.assert_array_equal(params["fracs"], [1.0, 0.6, 0.3])
    assert params["hrflibrary"].shape == (53, 20) and params["hrftoassume"].shape == (52,)
    assert params["extra_regressors"] == [False] and params["wantlibrary"] == 1
    assert params["brainR2"] == [] and params["n_boots"] == 100  # official-only, unused
    assert params["quirks"] == "official" and params["n_pcs"] == 3


def test_designinfo_shows_the_flags_a_design_without_repeats_switched_off(study, tmp_path):
    d0, d1 = study["design"][:2]
    design = [np.c_[d0, np.zeros_like(d0)], np.c_[np.zeros_like(d1), d1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GLM_single(QUICK).fit(design, study["runs"][:2], 3.0, 1.0, outputdir=tmp_path)
    params = np.load(tmp_path / "DESIGNINFO.npy", allow_pickle=True).item()["params"]
    assert params["wantglmdenoise"] == 0 and params["wantfracridge"] == 0
    assert not (tmp_path / "TYPED_FITHRF_GLMDENOISE_RR.npy").exists()


def test_outputdir_that_is_a_file_is_refused_before_the_fit(study, tmp_path):
    """Checked first: here the design is also wrong (3 runs for 3), and nothing is written."""
    path = tmp_path / "results.npy"
    path.write_text("not a folder")
    with pytest.raises(DataFileError, match=r"outputdir '.*results\.npy' is an existing file, "
                       r"not a folder; nothing was fitted\. Pass the path of a folder"):
        GLM_single(QUICK).fit(study["design"][:2], study["runs"], 3.0, 1.0, outputdir=path)
    with pytest.raises(DataFileError, match=r"cannot be created: '.*results\.npy' is a file"):
        GLM_single(QUICK).fit(study["design"], study["runs"], 3.0, 1.0,
                              outputdir=path / "sub" / "dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.npy"]
    assert path.read_text() == "not a folder"
