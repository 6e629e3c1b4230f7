"""The official package's corners under quirks="official", checked against hand computations.

These run everywhere (no official package needed); test_official_corners.py compares the
same corners with the official package where it is installed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conform_glmsingle import GLM_single, GLMsingleDenoiser
from conform_glmsingle._hrf import official_library
from conform_glmsingle._nuisance import default_maxpolydeg, polynomial_basis
from conform_glmsingle._quirks import OfficialQuirkWarning

from conform_core.exceptions import ParameterError

from .conftest import small_study
from .test_component import _timeseries

QUICK = {"verbose": False, "n_pcs": 3, "fracs": [1.0, 0.6, 0.3]}


@pytest.fixture(scope="module")
def study():
    return small_study(0, n_units=20, n_runs=3, n_time=100, n_cond=12)


def _fit(study, params, design=None, runs=None, **kw):
    return GLM_single({**QUICK, **params}).fit(
        study["design"] if design is None else design, study["runs"] if runs is None else runs,
        study["stimdur"], study["tr"], **kw)


def _no_repeats(study):
    """Two runs whose conditions differ (each condition in one run only)."""
    d0, d1 = study["design"][:2]
    return [np.c_[d0, np.zeros_like(d0)], np.c_[np.zeros_like(d1), d1]], study["runs"][:2]


# -- no condition repeated across runs -----------------------------------------------------

def test_no_repeats_switch_c_and_d_off_with_a_warning(study):
    """As the official package: types C and D are not computed; A and B are unchanged."""
    design, runs = _no_repeats(study)
    with pytest.warns(OfficialQuirkWarning, match=r"no condition occurs in more than one run.*"
                      r"GLMdenoise .*and ridge regression .*are switched off.*pcstop=-K"):
        res = _fit(study, {}, design, runs)
    assert set(res) == {"typea", "typeb"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfficialQuirkWarning)  # nothing to switch off here
        ab = _fit(study, {"wantglmdenoise": 0, "wantfracridge": 0}, design, runs)
    for key in ("typea", "typeb"):
        np.testing.assert_array_equal(res[key]["betasmd"], ab[key]["betasmd"])


def test_no_repeats_keep_what_needs_no_crossvalidation(study):
    """A fixed PC count keeps type C; a single fraction keeps type D (0 PCs)."""
    design, runs = _no_repeats(study)
    with pytest.warns(OfficialQuirkWarning, match=r"ridge regression \(wantfracridge=0: no type D\) "
                      "is switched off"):
        res = _fit(study, {"pcstop": -2}, design, runs)
    assert set(res) == {"typea", "typeb", "typec"} and res["typec"]["pcnum"] == 2
    with pytest.warns(OfficialQuirkWarning, match=r"GLMdenoise \(wantglmdenoise=0: no type C\)"):
        res = _fit(study, {"fracs": 0.5}, design, runs)
    assert set(res) == {"typea", "typeb", "typed"} and res["typed"]["pcnum"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfficialQuirkWarning)
        assert set(_fit(study, {"pcstop": -2, "fracs": 0.5}, design, runs)) == set(
            ("typea", "typeb", "typec", "typed"))


def test_single_run_is_a_design_without_repeats(study):
    with pytest.warns(OfficialQuirkWarning, match="there is a single run"):
        res = _fit(study, {}, study["design"][:1], study["runs"][:1])
    assert set(res) == {"typea", "typeb"}


def test_denoiser_says_why_its_model_was_not_computed(study):
    design, runs = _no_repeats(study)
    ts = _timeseries({**study, "design": design}, runs=list(runs))
    den = GLMsingleDenoiser(n_pcs=3, fracs=[1.0, 0.5], options={"quirks": "official"})
    with pytest.warns(OfficialQuirkWarning), pytest.raises(
            ParameterError, match=r"model='D' was not computed.*Use model='B'"):
        den.fit(ts)
    with pytest.raises(ParameterError, match="no condition occurs in more than one run"):
        GLMsingleDenoiser(n_pcs=3).fit(ts)  # quirks="fixed", the denoiser's default


# -- LSS with nuisance regressors that differ between runs -----------------------------------

def _lss_by_hand(study, hrf_index, degrees, extras, units, run_means):
    """LSS betas in percent signal change by least squares per trial.

    Percent of each run's own mean (``run_means``, the official LSS) or of the mean over runs.
    """
    lib = official_library(study["stimdur"], study["tr"]).astype(np.float64)
    grand = np.mean([y.astype(np.float64).mean(axis=1) for y in study["runs"]], axis=0)
    out = []
    for r, (d, y) in enumerate(zip(study["design"], study["runs"])):
        onsets = np.flatnonzero(d.sum(axis=1))
        n_t = d.shape[0]
        nuis = polynomial_basis(n_t, degrees[r])
        if extras[r] is not None:
            nuis = np.c_[nuis, extras[r]]
        per_unit = []
        for u in units:
            h = lib[:, hrf_index[u]]
            cols = np.stack([np.convolve(np.eye(n_t)[o], h)[:n_t] for o in onsets], axis=1)
            yy = y[u].astype(np.float64)
            betas = []
            for j in range(onsets.size):
                x = np.c_[cols[:, j], np.delete(cols, j, axis=1).sum(axis=1), nuis]
                betas.append(np.linalg.lstsq(x, yy, rcond=None)[0][0])
            mean = yy.mean() if run_means else grand[u]
            per_unit.append(np.array(betas) * 100 / abs(mean))
        out.append(np.stack(per_unit))
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("case", ["maxpolydeg", "extra_regressors"])
def test_lss_uses_run_0_nuisance_under_official_quirks(study, case):
    """Official: every run's LSS fit has run 0's polynomial degree and extra regressors.

    Checked against per-trial least squares (float64) on 4 units; float32 outputs and the
    official PSC of LSS (each run's own mean) give ~1e-6 of the betas' scale.
    """
    rng = np.random.default_rng(3)
    extras = [rng.normal(size=(100, k)) for k in (2, 1, 3)] if case == "extra_regressors" else None
    params = {"wantlss": 1, "wantglmdenoise": 0, "wantfracridge": 0,
              "wantmemoryoutputs": [0, 1, 0, 0]}
    params.update(maxpolydeg=[1, 3, 0]) if case == "maxpolydeg" else params.update(
        extra_regressors=extras)
    with pytest.warns(OfficialQuirkWarning, match=r"LSS betas of run\(s\) \[1, 2\] use run 0's"):
        off = _fit(study, params)["typeb"]
    fixed = _fit(study, {**params, "quirks": "fixed"})["typeb"]
    degrees = [1, 3, 0] if case == "maxpolydeg" else [default_maxpolydeg(100, 1.0)] * 3
    own = extras or [None] * 3
    units = [0, 5, 11, 19]
    hidx = off["HRFindex"].ravel()
    scale = np.abs(off["betasmd"].reshape(20, -1)[units]).max(axis=1, keepdims=True)
    want = _lss_by_hand(study, hidx, [degrees[0]] * 3, [own[0]] * 3, units, run_means=True)
    np.testing.assert_allclose(off["betasmd"].reshape(20, -1)[units] / scale, want / scale,
                               atol=1e-5)
    hidx = fixed["HRFindex"].ravel()
    want = _lss_by_hand(study, hidx, degrees, own, units, run_means=False)
    np.testing.assert_allclose(fixed["betasmd"].reshape(20, -1)[units] / scale, want / scale,
                               atol=1e-5)
    if extras is not None:  # the runs whose own extra regressors left the LSS fit
        eb = off["extrabetas"]
        assert np.all(np.isfinite(eb[0])) and np.all(np.isnan(eb[1])) and np.all(np.isnan(eb[2]))
        assert all(np.all(np.isfinite(b)) for b in fixed["extrabetas"])


def test_lss_without_differences_does_not_warn(study):
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfficialQuirkWarning)
        _fit(study, {"wantlss": 1, "wantglmdenoise": 0, "wantfracridge": 0, "maxpolydeg": 2,
                     "wantmemoryoutputs": [0, 1, 0, 0]})


# -- units whose data are all zero -----------------------------------------------------------

@pytest.mark.parametrize("fracs", [[1.0, 0.6, 0.3], [0.8, 0.4], 0.5])
def test_all_zero_units_get_nan_scaleoffset_and_rrbadness(study, fracs):
    """The official ridge is 0/0 on a unit without data: its scale, offset and badness are NaN."""
    runs = [r.copy() for r in study["runs"]]
    for r in runs:
        r[[2, 9]] = 0
    d = _fit(study, {"fracs": fracs}, runs=runs)["typed"]
    so = d["scaleoffset"].reshape(20, 2)
    assert np.all(np.isnan(so[[2, 9]])) and np.all(np.isfinite(np.delete(so, [2, 9], axis=0)))
    if np.size(fracs) > 1:
        bad = d["rrbadness"].reshape(20, -1)
        assert np.all(np.isnan(bad[[2, 9]])) and np.all(np.isfinite(np.delete(bad, [2, 9], 0)))
    # the official choice for them: the first candidate fraction
    first = np.max(fracs) if np.size(fracs) > 1 else fracs
    np.testing.assert_array_equal(d["FRACvalue"].ravel()[[2, 9]], np.float32(first))
    assert np.all(np.isnan(d["betasmd"].reshape(20, -1)[[2, 9]]))  # 0 / |meanvol = 0|
