"""Against known truth: type D beats the canonical-HRF single-trial fit; HRFs are recovered."""

from __future__ import annotations

import numpy as np
import pytest
from conform_glmsingle import GLM_single, GLMsingleDenoiser

from .conftest import small_study


def _median_r(betas: np.ndarray, truth: np.ndarray) -> float:
    """Median over units of the Pearson r across trials (units x trials inputs)."""
    b = betas - betas.mean(axis=1, keepdims=True)
    t = truth - truth.mean(axis=1, keepdims=True)
    return float(np.median((b * t).sum(1) / np.sqrt((b * b).sum(1) * (t * t).sum(1))))


@pytest.fixture(scope="module")
def simulated():
    """The simulator's time series when available, else a study built here from conform_core.hrf."""
    try:
        from conform_synthetic import simulate_study

        study = simulate_study(n_subjects=1, n_units=120, n_stimuli=60, timeseries=True,
                               snr=0.5, timeseries_noise=1.5, random_state=3)
        subject = study.subjects[0]
        return {"timeseries": subject.timeseries, "amplitudes": subject.truth.trial_amplitudes.T,
                "hrf_index": subject.truth.hrf_index}
    except (ImportError, TypeError, AttributeError):  # simulator absent or changed
        return None


def test_type_d_beats_assumed_hrf_on_small_study():
    """Shared noise + varied HRFs: GLMsingle's gain over the canonical-HRF fit (paper, Fig. 3).

    Official figures on reference case c1: median r 0.71 (type D) vs 0.28 (assume-HRF). This
    study is smaller and easier; we require a clear margin (0.1) that random fluctuations of
    a 60-unit study (sd of a median r ~0.02) cannot produce.
    """
    s = small_study(1, n_units=60)

    def fit(p):
        return GLM_single({"verbose": False, **p}).fit(s["design"], s["runs"], 3.0, 1.0)

    d = fit({"wantmemoryoutputs": [0, 0, 0, 1]})["typed"]
    base = fit({"wantlibrary": 0, "wantglmdenoise": 0, "wantfracridge": 0,
                "wantmemoryoutputs": [0, 1, 0, 0]})["typeb"]
    r_d = _median_r(d["betasmd"].reshape(60, -1), s["amplitudes"])
    r_base = _median_r(base["betasmd"].reshape(60, -1), s["amplitudes"])
    assert r_d > r_base + 0.1
    # HRF index within +-1 of the truth: chance is ~0.145 for 20 HRFs (glmsingle.md 9)
    err = np.abs(d["HRFindex"].ravel() - s["hrf_index"])
    assert np.mean(err <= 1) > 0.4


def test_denoiser_on_simulator_timeseries(simulated):
    if simulated is None:
        pytest.skip("conform_synthetic.simulate_study(timeseries=True) is not available")
    ts = simulated["timeseries"]
    truth = simulated["amplitudes"]
    d = GLMsingleDenoiser().fit_transform(ts)
    base = GLMsingleDenoiser(model="B", wantlibrary=0, wantglmdenoise=0,
                             wantfracridge=0).fit_transform(ts)
    assert d.betas.shape == (ts.n_events, ts.n_units)
    r_d = _median_r(d.betas.T, truth)
    r_base = _median_r(base.betas.T, truth)
    assert r_d > r_base + 0.08  # observed 0.67 vs 0.49 (seed 3); the margin leaves room for noise
    hrf = GLMsingleDenoiser().fit(ts).hrf_index_
    assert np.mean(np.abs(hrf - simulated["hrf_index"]) <= 1) > 0.4  # chance ~0.145
