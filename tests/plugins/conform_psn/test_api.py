"""The functional API: call forms, option precedence, caching, NaN and dtype handling."""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import perform_gsn, psn


@pytest.fixture
def data(rng):
    signal = rng.standard_normal((10, 3)) @ rng.standard_normal((3, 60))
    return signal[:, :, None] + 0.8 * rng.standard_normal((10, 60, 4))


def test_call_forms_agree(data):
    a = psn(data, "aggressive")
    b = psn(data, {"basis": "difference", "criterion": "prediction"})
    c = psn(data, opt={"basis": "difference", "criterion": "prediction"})
    d = psn(data, basis="difference", criterion="prediction")
    for other in (b, c, d):
        np.testing.assert_array_equal(a["denoiser"], other["denoiser"])


def test_keywords_override_dict_override_preset(data):
    out = psn(data, "aggressive", {"criterion": "variance"}, criterion="prediction")
    assert out["opt_used"]["criterion"] == "prediction"
    out = psn(data, "aggressive", {"threshold_method": "hybrid"})
    assert out["opt_used"]["basis"] == "difference"
    assert out["opt_used"]["threshold_method"] == "hybrid"


def test_preset_names_are_case_insensitive(data):
    assert psn(data, "Standard")["best_threshold"] == psn(data)["best_threshold"]


def test_caller_options_untouched(data):
    opt = {"basis": "signal", "criterion": "prediction"}
    psn(data, opt)
    assert opt == {"basis": "signal", "criterion": "prediction"}


def test_gsn_cache_skips_gsn_and_gives_the_same_result(data, tmp_path):
    first = psn(data)
    again = psn(data, gsn_result=first["gsn_result"])
    np.testing.assert_array_equal(first["denoiser"], again["denoiser"])
    path = tmp_path / "gsn.npz"
    np.savez(path, **first["gsn_result"])
    from_file = psn(data, gsn_result=str(path))
    np.testing.assert_array_equal(first["denoiser"], from_file["denoiser"])


def test_cached_eigenbasis_is_used(data):
    gsn = perform_gsn(data, {"returns": ["cSb", "cNb", "eigvecs_signal", "eigvals_signal"]})
    a = psn(data, gsn_result=gsn)
    b = psn(data)
    assert a["best_threshold"] == b["best_threshold"]
    np.testing.assert_allclose(a["denoiser"], b["denoiser"], atol=1e-10)


def test_denoiser_applies_transposed(data):
    out = psn(data, threshold_method="hybrid")
    avg = data.mean(axis=2)
    mu = out["unit_means"]
    expected = out["denoiser"].T @ (avg - mu[:, None]) + mu[:, None]
    np.testing.assert_allclose(out["denoiseddata"], expected, atol=1e-12)
    np.testing.assert_allclose(out["residuals"], data - expected[:, :, None], atol=1e-12)


def test_missing_trials_residuals_keep_nan(data):
    data[:, 5, 3] = np.nan
    data[:, 7, 2:] = np.nan
    out = psn(data)
    assert np.isfinite(out["denoiseddata"]).all()
    assert (
        np.isnan(out["residuals"][:, 5, 3]).all() and np.isfinite(out["residuals"][:, 5, :3]).all()
    )


def test_float32_data_gives_float32_denoised(data):
    out = psn(data.astype(np.float32))
    assert out["denoiseddata"].dtype == np.float32


def test_every_preset_runs(data):
    for preset in ("standard", "conservative", "aggressive", "compare", "wiener"):
        out = psn(data, preset)
        assert out["denoiser"].shape == (10, 10)
        assert np.isfinite(out["denoiseddata"]).all()


@pytest.mark.parametrize("basis", ["signal", "difference", "noise", "pca", "random"])
@pytest.mark.parametrize("criterion", ["prediction", "max-tradeoff", "variance"])
def test_threshold_options_run(data, basis, criterion):
    out = psn(data, basis=basis, criterion=criterion, skip_split_half=True)
    k = out["best_threshold"]
    assert 0 <= k <= 10
    if k:
        np.testing.assert_allclose(out["denoiser"], out["signalsubspace"] @ out["signalsubspace"].T)


def test_alpha_spans_prediction_to_all(data):
    k_pred = psn(data, criterion="prediction")["best_threshold"]
    assert psn(data, alpha=0.0)["best_threshold"] == k_pred
    assert psn(data, alpha=1.0)["best_threshold"] >= psn(data, alpha=0.5)["best_threshold"]


def test_single_allowable_threshold_forces_k_and_global(data):
    out = psn(data, threshold_method="hybrid", allowable_thresholds=4)
    assert out["best_threshold"] == 4 and out["opt_used"]["threshold_method"] == "global"


def test_removed_component_adds_back_to_trial_average(data):
    out = psn(data)
    removed = data.mean(axis=2) - out["denoiseddata"]
    np.testing.assert_allclose(out["denoiseddata"] + removed, data.mean(axis=2))


def test_legacy_options(data):
    from conform_psn import psn_cv

    unit = psn_cv(data, 0, {"cv_threshold_per": "unit"})
    assert unit["best_threshold"].shape == (10,)
    trials = psn_cv(data, 3, {"cv_threshold_per": "population", "denoisingtype": 1})
    assert trials["denoiseddata"].shape == data.shape
    mag = psn_cv(data, 0, {"cv_mode": -1, "mag_frac": 0.9})
    assert mag["dimsretained"] == len(mag["best_threshold"])
    custom = psn_cv(
        data,
        np.linalg.qr(np.random.default_rng(0).standard_normal((10, 10)))[0],
        {
            "cv_threshold_per": "population",
            "cv_scoring_fn": lambda x, y: -np.mean((x - y) ** 2, axis=0),
        },
    )
    fast = psn_cv(data, custom["fullbasis"], {"cv_threshold_per": "population"})
    # the Gram-matrix shortcut for the default score equals direct evaluation
    np.testing.assert_allclose(fast["cv_scores"], custom["cv_scores"], rtol=1e-10, atol=1e-12)
