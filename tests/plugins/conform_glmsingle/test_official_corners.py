"""The official package's corners (quirks="official"), HRFs and output files, against the package.

Runs only where the official package (cvnlab/GLMsingle) is importable: it is not a conform
dependency (install it by hand in a scratch environment: ``pip install --no-deps <GLMsingle
checkout> fracridge`` plus numba). test_quirks.py, test_hrf.py and test_outputs.py check the
same corners everywhere against hand computations and checksums. Each case is a small study
(20 units, 3 runs of 100 TRs): a few seconds per official fit.

Tolerances: betas within 1e-4 of each unit's largest |beta| (the official package computes in
float32; we observe <= 1e-5 here), R² within 1e-3 percentage points, discrete choices equal.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from conform_glmsingle import GLM_single
from conform_glmsingle._hrf import (
    canonical_table,
    library_table,
    official_canonical,
    official_library,
)
from conform_glmsingle._io import load_output
from conform_glmsingle._official import official_available
from conform_glmsingle._options import resolve_options
from conform_glmsingle._quirks import OfficialQuirkWarning

from .conftest import small_study

pytestmark = pytest.mark.skipif(
    not official_available(),
    reason="the official glmsingle package is not importable (not a conform dependency; install "
           "it from github.com/cvnlab/GLMsingle in a scratch environment to run these checks)",
)

QUICK = {"verbose": False, "n_pcs": 3, "fracs": [1.0, 0.6, 0.3]}
BETA_TOL = 1e-4


@pytest.fixture(scope="module")
def study():
    return small_study(4, n_units=20, n_runs=3, n_time=100, n_cond=12)


def _both(study, params, design=None, runs=None, native_dir=None, official_dir=None):
    """(native, official) results of the same fit; warnings of both are swallowed."""
    args = (study["design"] if design is None else design,
            study["runs"] if runs is None else runs, study["stimdur"], study["tr"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native = GLM_single({**QUICK, **params}).fit(*args, outputdir=native_dir)
        official = GLM_single({**QUICK, **params, "engine": "official"}).fit(
            *args, outputdir=official_dir)
    return native, official


def _unit_rel(ours, theirs):
    a = np.asarray(ours, np.float64).reshape(np.shape(theirs)[0], -1)
    b = np.asarray(theirs, np.float64).reshape(a.shape[0], -1)
    keep = np.isfinite(b).all(axis=1)
    return (np.abs(a - b)[keep].max(axis=1) / np.abs(b)[keep].max(axis=1)).max()


# -- point 2: quirks ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["maxpolydeg", "extras", "extras_of_different_widths"])
def test_lss_with_per_run_nuisance_matches_official(study, case):
    """Official LSS uses run 0's nuisance in every run; quirks="official" does too."""
    rng = np.random.default_rng(5)
    nuisance = {"maxpolydeg": {"maxpolydeg": [1, 3, 0]},
                "extras": {"extra_regressors": [rng.normal(size=(100, 2)) for _ in range(3)]},
                "extras_of_different_widths": {
                    "extra_regressors": [rng.normal(size=(100, k)) for k in (1, 3, 2)]}}[case]
    params = {"wantlss": 1, "wantglmdenoise": 0, "wantfracridge": 0,
              "wantmemoryoutputs": [0, 1, 0, 0], **nuisance}
    native, official = _both(study, params)
    np.testing.assert_array_equal(native["typeb"]["HRFindex"], official["typeb"]["HRFindex"])
    assert _unit_rel(native["typeb"]["betasmd"], official["typeb"]["betasmd"]) < BETA_TOL
    fixed = GLM_single({**QUICK, **params, "quirks": "fixed"}).fit(
        study["design"], study["runs"], study["stimdur"], study["tr"])
    assert _unit_rel(fixed["typeb"]["betasmd"], official["typeb"]["betasmd"]) > 1e-2


def test_all_zero_units_match_official(study):
    """Every output of an all-zero unit equals the official one, NaN included."""
    runs = [r.copy() for r in study["runs"]]
    for r in runs:
        r[[4, 13]] = 0
    native, official = _both(study, {}, runs=runs)
    for key, theirs in official.items():
        for name, val in theirs.items():
            if not (isinstance(val, np.ndarray) and val.ndim and val.shape[0] == 20):
                continue
            ours = np.asarray(native[key][name], np.float64)[[4, 13]]
            np.testing.assert_array_equal(ours, np.asarray(val, np.float64)[[4, 13]],
                                          err_msg=f"{key} {name}")
        keep = np.setdiff1d(np.arange(20), [4, 13])
        assert _unit_rel(native[key]["betasmd"][keep], theirs["betasmd"][keep]) < BETA_TOL, key


@pytest.mark.parametrize("extra", [{}, {"pcstop": -2}, {"fracs": 0.5}])
def test_design_without_repeats_matches_official(study, extra, tmp_path):
    d0, d1 = study["design"][:2]
    design = [np.c_[d0, np.zeros_like(d0)], np.c_[np.zeros_like(d1), d1]]
    with pytest.warns(OfficialQuirkWarning):
        GLM_single({**QUICK, **extra}).fit(design, study["runs"][:2], 3.0, 1.0)
    native, official = _both(study, extra, design, study["runs"][:2],
                             tmp_path / "native", tmp_path / "official")
    assert set(native) == set(official)
    for key in official:
        assert _unit_rel(native[key]["betasmd"], official[key]["betasmd"]) < BETA_TOL, key
    ours, theirs = (np.load(tmp_path / d / "DESIGNINFO.npy", allow_pickle=True).item()["params"]
                    for d in ("native", "official"))
    assert (ours["wantglmdenoise"], ours["wantfracridge"]) == (
        theirs["wantglmdenoise"], theirs["wantfracridge"])


# -- point 3: the HRFs -----------------------------------------------------------------------

def _official_tables():
    import glmsingle.hrf.gethrf as gethrf

    tsv = Path(gethrf.__file__).with_name("getcanonicalhrflibrary.tsv")
    return tsv, np.genfromtxt(tsv), gethrf.basichrf()


def test_generated_tables_equal_the_official_files():
    _, lib, basic = _official_tables()
    np.testing.assert_array_equal(library_table(), lib)
    np.testing.assert_array_equal(canonical_table().astype(np.float32), basic)


def test_resampled_hrfs_match_official_within_1e6():
    """Every (stimdur, tr) of a grid: same length, values within 1e-6 of the peak (float32)."""
    from glmsingle.hrf.gethrf import getcanonicalhrf, getcanonicalhrflibrary
    from glmsingle.hrf.normalisemax import normalisemax

    for sd, tr in itertools.product([0, 0.35, 0.5, 1, 1.5, 2.55, 3, 4], [0.5, 0.8, 1, 1.6, 2]):
        theirs = normalisemax(getcanonicalhrflibrary(sd, tr).T, 0)
        ours = official_library(sd, tr)
        assert ours.shape == theirs.shape, (sd, tr)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6, err_msg=f"{sd}, {tr}")
        theirs = normalisemax(getcanonicalhrf(sd, tr), dim="global")
        ours = official_canonical(sd, tr)
        assert ours.shape == theirs.shape, (sd, tr)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6, err_msg=f"{sd}, {tr}")


def test_official_library_file_as_hrflibrary_gives_the_default():
    """A user passing the official TSV gets exactly the default library."""
    tsv, _, _ = _official_tables()
    default = resolve_options({}, stimdur=2.0, tr=1.5, n_times=[100])
    given = resolve_options({"hrflibrary": str(tsv)}, stimdur=2.0, tr=1.5, n_times=[100])
    np.testing.assert_array_equal(given.hrflibrary, default.hrflibrary)


# -- point 4: output files -----------------------------------------------------------------------

def _kind(value):
    if value is None:
        return "none"
    if isinstance(value, list):
        return "list"
    return "array" if isinstance(value, np.ndarray) and value.ndim else "scalar"


@pytest.mark.parametrize("params", [{}, {"pcstop": -2, "wantfracridge": 0}])
def test_hdf5_outputs_load_with_the_official_loader(study, tmp_path, params):
    """Our .hdf5 files, read by the official loader, hold what its own files hold."""
    from glmsingle.utils.h5_utils import load_glmsingle_outputs_h5

    runs = [*study["runs"][:2], study["runs"][2][:, :90]]  # ragged pcregressors
    design = [*study["design"][:2], study["design"][2][:90]]
    _both(study, {"wanthdf5": 1, **params}, design, runs, tmp_path / "n", tmp_path / "o")
    files = sorted(p.name for p in (tmp_path / "o").glob("*.hdf5"))
    assert files == sorted(p.name for p in (tmp_path / "n").glob("*.hdf5")) and files
    for name in files:
        ours = load_glmsingle_outputs_h5(str(tmp_path / "n" / name))
        theirs = load_glmsingle_outputs_h5(str(tmp_path / "o" / name))
        assert set(ours) == set(theirs), name
        for key, val in theirs.items():
            assert _kind(ours[key]) == _kind(val), (name, key)
            if key == "pcregressors":
                assert [np.shape(p) for p in ours[key]] == [np.shape(p) for p in val]
            elif _kind(val) in ("array", "scalar"):
                assert np.shape(ours[key]) == np.shape(val), (name, key)
        np.testing.assert_equal(ours.get("pcnum"), theirs.get("pcnum"))
        assert _unit_rel(ours["betasmd"], theirs["betasmd"]) < BETA_TOL
        # and ours reads the official files like the official loader
        back = load_output(tmp_path / "o" / name)
        assert set(back) == set(theirs) and _kind(back.get("noisepool")) == _kind(
            theirs.get("noisepool"))


def test_designinfo_params_match_official(study, tmp_path):
    params = {"maxpolydeg": [2, 1, 2], "sessionindicator": [1, 1, 2]}
    _both(study, params, native_dir=tmp_path / "n", official_dir=tmp_path / "o")
    ours, theirs = (np.load(tmp_path / d / "DESIGNINFO.npy", allow_pickle=True).item()["params"]
                    for d in ("n", "o"))
    assert set(theirs) <= set(ours)
    for key, val in theirs.items():
        if key == "seed":  # the official default is the time it was imported
            continue
        if key in ("hrflibrary", "hrftoassume"):
            np.testing.assert_allclose(ours[key], val, rtol=0, atol=1e-6, err_msg=key)
        elif key == "extra_regressors":
            assert ours[key] == val
        else:
            np.testing.assert_array_equal(np.asarray(ours[key], dtype=object if isinstance(
                val, str) else None), np.asarray(val, dtype=object if isinstance(val, str)
                                                 else None), err_msg=key)
