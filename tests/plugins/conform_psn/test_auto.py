"""PSN's conform preset ``auto`` against the simulator's truth, the oracle and the official presets.

``auto`` (the default of :class:`PSNDenoiser`) chooses among the official presets, rank-limited
whitened Wiener filters and the unit means by cross-validation over training conditions, and
shrinks toward the unit means. The oracle is the Wiener filter with the simulator's true signal
and noise covariances. NMSE is computed as ``conform fit`` does (per unit: MSE over held-out
stimuli / true signal variance; median over units).
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import PSNDenoiser, psn
from conform_psn._auto import (
    _holdout_pairs,
    _score_family,
    _score_matrix,
    _Scores,
    _shrinkers,
    _whitened_eig,
    _wiener_family,
)
from conform_psn.components import _canonical
from threadpoolctl import threadpool_limits

simulation = pytest.importorskip("conform_synthetic")

OFFICIAL = ("standard", "conservative", "aggressive", "compare", "wiener", "cv")
INDEPENDENT = {"noise_rank": 0, "lowrank_fraction": 0.0, "spatial_fraction": 0.0}


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def _true_noise_cov(study, index: int = 0) -> np.ndarray:
    """The simulator's single-trial noise covariance of a subject (its noise model, exactly)."""
    return simulation.noise_covariance(study, index)


def _nmse(estimate, truth) -> float:
    var = truth.var(axis=1)
    return float(np.median(((estimate - truth) ** 2).mean(axis=1)[var > 0] / var[var > 0]))


def _setting(snr: float, n_repeats: int, independent: bool, seed: int = 0):
    kw = dict(n_subjects=1, n_units=100, n_stimuli=240, n_repeats=n_repeats, snr=snr,
              random_state=seed, **(INDEPENDENT if independent else {}))
    study = simulation.simulate_study(**kw)
    subject = study.subjects[0]
    train = subject.trials.select(subject.train_ids).by_condition()
    test = subject.trials.select(subject.test_ids).by_condition()
    truth = np.asarray(subject.truth.signal.select(test.stimulus_ids).data, np.float64)
    return study, subject, train, test, truth


def _scores(snr: float, n_repeats: int, independent: bool) -> dict[str, float]:
    study, subject, train, test, truth = _setting(snr, n_repeats, independent)
    out = {}
    for preset in ("auto", *OFFICIAL):
        den = PSNDenoiser(preset=preset).fit(train)
        out[preset] = _nmse(np.asarray(den.transform(test).data, np.float64), truth)
    means = np.nanmean(np.asarray(train.data, np.float64), axis=2).mean(axis=1)
    out["mean"] = _nmse(np.repeat(means[:, None], truth.shape[1], axis=1), truth)
    # oracle: the Wiener filter with the true covariances, on the same training means
    signal = np.asarray(subject.truth.signal.data, np.float64)
    cs, cn = np.cov(signal), _true_noise_cov(study)
    wiener = cs @ np.linalg.inv(cs + cn / n_repeats)
    dev = np.nanmean(np.asarray(test.data, np.float64), axis=2) - means[:, None]
    out["oracle"] = _nmse(wiener @ dev + means[:, None], truth)
    return out


# Measured on these settings (100 units, 240 stimuli, seed 0; one subject):
#   snr trials noise        auto   oracle  best official   mean   auto / oracle
#   0.3   3    structured   0.29   0.11    0.50 (wiener)   1.02   2.7
#   0.3   2    structured   0.54   0.16    0.85 (wiener)   1.02   3.4
#   1.0   2    independent  0.063  0.040   0.090 (cv)      1.01   1.6
# Bounds: the targets where they hold here (<= 1.10 x the best official preset;
# <= 1.05 x the mean). The 2x-the-oracle target is for the grid median and is not
# reached (docs/psn.md, "Which preset?": the subspace estimated from the training
# conditions is the limit, and the oracle knows it exactly), so the oracle bound is the
# measured ratio plus 15 %, room for BLAS-level differences that move the chosen rank by one.
SETTINGS = [(0.3, 3, False, 3.1), (0.3, 2, False, 3.95), (1.0, 2, True, 1.85)]


@pytest.mark.parametrize(("snr", "n_repeats", "independent", "oracle_ratio"), SETTINGS,
                         ids=[f"snr{s}-t{t}-{'indep' if i else 'struct'}"
                              for s, t, i, _ in SETTINGS])
def test_auto_beats_every_official_preset_and_nears_the_oracle(snr, n_repeats, independent,
                                                               oracle_ratio):
    scores = _scores(snr, n_repeats, independent)
    best = min(scores[p] for p in OFFICIAL)
    assert scores["auto"] <= 1.10 * best, scores
    assert scores["auto"] <= 1.05 * scores["mean"], scores
    assert scores["auto"] <= oracle_ratio * scores["oracle"], scores


@pytest.mark.parametrize("independent", [False, True], ids=["struct", "indep"])
def test_auto_weak_signal_is_no_worse_than_the_mean(independent):
    # SNR 0.1 with 2 trials: no official preset beats the mean here (1.0-23x its NMSE);
    # 1.05 x the mean is the allowance for estimation noise (measured: 1.00)
    study, subject, train, test, truth = _setting(0.1, 2, independent)
    den = PSNDenoiser().fit(train)
    means = den.unit_means_
    mean_nmse = _nmse(np.repeat(means[:, None], truth.shape[1], axis=1), truth)
    assert _nmse(np.asarray(den.transform(test).data, np.float64), truth) <= 1.05 * mean_nmse


@pytest.mark.parametrize("independent", [False, True], ids=["struct", "indep"])
@pytest.mark.parametrize("seed", range(3))
def test_auto_on_pure_noise_returns_about_the_mean(independent, seed):
    study, subject, train, test, truth = _setting(0.0, 3, independent, seed)
    den = PSNDenoiser().fit(train)
    average = np.nanmean(np.asarray(test.data, np.float64), axis=2) - den.unit_means_[:, None]
    out = np.asarray(den.transform(test).data, np.float64) - den.unit_means_[:, None]
    # the truth is constant, so NMSE is undefined: measure what is left of the noise instead.
    # Measured: the mean in 11 of 12 fits (6 seeds x 2 noises, 100 units); the exception kept
    # 5 % of a projection (shrinkage 0.95), i.e. < 0.05 of the noise; 0.1 bounds it
    assert np.linalg.norm(out) <= 0.1 * np.linalg.norm(average)
    if den.returns_mean_:
        assert den.chosen_ == "mean" and den.shrinkage_ == 1.0
        np.testing.assert_array_equal(den.denoiser_, 0.0)


def test_auto_fitted_attributes_say_what_was_chosen():
    study, subject, train, test, truth = _setting(0.3, 3, False)
    den = PSNDenoiser().fit(train)
    assert den.preset is None and den._preset() == "auto"
    assert den.chosen_ in den.cv_scores_
    assert {"mean", "standard", "conservative", "aggressive", "wiener"} <= set(den.cv_scores_)
    assert den.cv_scores_["mean"] == pytest.approx(1.0)
    assert den.cv_scores_[den.chosen_] == min(den.cv_scores_.values())
    assert 0.0 <= den.shrinkage_ <= 1.0 and den.returns_mean_ is False
    assert den.results_["chosen"] == den.chosen_
    assert set(den.results_["betas"]) == set(den.cv_scores_)
    n = train.n_units
    assert den.denoiser_.shape == (n, n) and den.unit_means_.shape == (n,)
    assert den.ncsnr_.shape == (n,)
    # transform applies the denoiser as PSN does
    dev = np.nanmean(np.asarray(test.data, np.float64), axis=2) - den.unit_means_[:, None]
    np.testing.assert_allclose(den.transform(test).data,
                               den.denoiser_.T @ dev + den.unit_means_[:, None], rtol=1e-5,
                               atol=1e-6)


def test_psn_options_without_a_preset_keep_the_official_default():
    _, _, train, _, _ = _setting(0.3, 3, False)
    den = PSNDenoiser(threshold_method="hybrid").fit(train)
    assert den.chosen_ == "standard" and den.cv_scores_ is None and den.shrinkage_ == 0.0
    official = psn(np.asarray(_canonical(train).data), "standard", threshold_method="hybrid")
    np.testing.assert_allclose(den.denoiser_, official["denoiser"])


def test_auto_handles_missing_trials_and_float32():
    study = simulation.simulate_study(n_subjects=1, n_units=40, n_stimuli=120, n_repeats=3,
                                      snr=0.5, missing_fraction=0.2, random_state=3)
    subject = study.subjects[0]
    train = subject.trials.select(subject.train_ids).by_condition()
    assert np.isnan(train.data).any()
    den = PSNDenoiser().fit(train)
    out = den.transform(train)
    assert out.data.dtype == train.data.dtype and np.all(np.isfinite(out.data))
    assert np.isfinite(list(den.cv_scores_.values())).all()


def test_family_scores_match_explicit_filters():
    # the cumulative-sum shortcut of the Wiener family equals scoring each filter directly
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((12, 3)) @ rng.standard_normal((3, 30))
    x = signal[:, :, None] + rng.standard_normal((12, 30, 3))
    from conform_psn import perform_gsn

    held = np.arange(0, 30, 5)
    train = np.setdiff1d(np.arange(30), held)
    g = perform_gsn(x[:, train], {"returns": ["cSb", "cNb"]})
    lam, b, a = _whitened_eig(g["cSb"], g["cNb"])
    shrink = _shrinkers(lam[:6], 3.0, 2.0, 12, train.size)
    means = x[:, train].mean(axis=2).mean(axis=1)
    inputs, targets, mask, owners = _holdout_pairs(x, held, means)
    weights = rng.uniform(0.5, 2.0, 12)
    fast, slow = _Scores(12, 30), _Scores(12, 30)
    _score_family(fast, shrink, b, a, inputs, targets, mask, weights, owners, held, 6)
    partial = mask.copy()
    partial[0, 0] = False  # forces the explicit (masked) path ...
    targets_masked = np.where(partial, targets, 0.0)
    masked = _Scores(12, 30)
    _score_family(masked, shrink, b, a, inputs, targets_masked, partial, weights, owners, held, 6)
    for rule, f in shrink.items():
        for k in (1, 3, 6):
            name = f"wiener-k{k}-{rule}"
            _score_matrix(slow, name, _wiener_family(b, a, f, k), inputs, targets, mask,
                          weights, owners, held)
            np.testing.assert_allclose(fast.cross[name], slow.cross[name], atol=1e-10)
            np.testing.assert_allclose(fast.power[name], slow.power[name], atol=1e-10)
            for i in range(2):
                np.testing.assert_allclose(fast.by_cond[name][i], slow.by_cond[name][i],
                                           atol=1e-10)
            ref = _Scores(12, 30)  # ... which equals the explicit filter with the same mask
            _score_matrix(ref, name, _wiener_family(b, a, f, k), inputs, targets_masked,
                          partial, weights, owners, held)
            np.testing.assert_allclose(masked.power[name], ref.power[name], atol=1e-10)
            np.testing.assert_allclose(masked.cross[name], ref.cross[name], atol=1e-10)


def test_auto_rejects_psn_options_and_too_few_conditions():
    from conform_core.exceptions import ParameterError, ShapeError
    from conform_core.testing.fakes import make_condition_trials

    with pytest.raises(ParameterError, match="basis"):
        PSNDenoiser(preset="auto", basis="signal").check_params()
    with pytest.raises(ParameterError, match="n_folds"):
        PSNDenoiser(preset="auto", options={"n_fold": 3}).check_params()
    with pytest.raises(ShapeError, match="at least 6"):
        PSNDenoiser().fit(make_condition_trials(n_units=5, n_conditions=4))
