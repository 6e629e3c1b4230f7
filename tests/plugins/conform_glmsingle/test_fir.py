"""The run-wise FIR diagnostic (RUNWISEFIR.npy, glmsingle.md section 5.0)."""

from __future__ import annotations

import numpy as np
from conform_glmsingle import GLM_single

from .conftest import case_inputs, case_params, small_study


def _fir_fit(design, runs, stimdur, tr, params, outdir):
    params = dict(params, wantmemoryoutputs=[1, 0, 0, 0], wantfileoutputs=[1, 0, 0, 0],
                  wantglmdenoise=0, wantfracridge=0)
    glm = GLM_single(params)
    glm.fit(design, runs, stimdur, tr, outputdir=outdir)
    assert outdir / "RUNWISEFIR.npy" in glm.written_
    return np.load(outdir / "RUNWISEFIR.npy", allow_pickle=True).item()


def test_runwise_fir_matches_reference_grand_average(case, tmp_path):
    """Official quirk included: every run uses run 0's polynomial degree and extra regressors."""
    name, ref = case
    design, runs, stimdur, tr = case_inputs(ref)
    fir = _fir_fit(design, runs, stimdur, tr, case_params(name, ref), tmp_path)
    official = ref["out_FIR_grandavg"]
    n_lags = int(np.floor(30 / tr)) + 1
    assert fir["firgrandavg"].shape == official.shape == (n_lags,)
    assert fir["firtcs"].shape == (len(runs), runs[0].shape[0], 1, 1, 1, n_lags)
    assert fir["firR2"].shape == (len(runs), runs[0].shape[0], 1, 1)
    np.testing.assert_allclose(fir["firgrandavg"], official, atol=1e-5 * np.abs(official).max())


def test_runwise_fir_recovers_the_mean_response(tmp_path):
    """On simulated data the top units' FIR time course peaks a few seconds after onset."""
    s = small_study(1, n_units=60)
    fir = _fir_fit(s["design"], s["runs"], s["stimdur"], s["tr"], {"verbose": False}, tmp_path)
    peak = int(np.argmax(fir["firgrandavg"]))
    assert 3 <= peak * s["tr"] <= 12
    assert fir["firgrandavg"][peak] > 0
    assert np.all(np.isfinite(fir["firR2"]))


def test_no_outputdir_writes_no_fir(tmp_path, monkeypatch):
    s = small_study(1, n_units=20)
    monkeypatch.chdir(tmp_path)
    GLM_single(
        {
            "verbose": False,
            "wantglmdenoise": 0,
            "wantfracridge": 0,
            "wantmemoryoutputs": [1, 1, 0, 0],
        }
    ).fit(s["design"], s["runs"], s["stimdur"], s["tr"])
    assert list(tmp_path.iterdir()) == []
