"""Baseline denoisers and the ridge encoder against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from conform_baselines import PCADenoiser, RidgeEncoder, TrialAverageDenoiser
from conform_synthetic import simulate_study

from conform_core.metrics import noise_ceiling_from_trials, pearson_r


def _split(snr: float, **noise):
    study = simulate_study(n_subjects=1, n_units=100, n_stimuli=800, n_repeats=3, snr=snr,
                           random_state=0, **noise)
    s = study.subjects[0]
    train = s.trials.by_condition(s.train_ids)
    test = s.trials.by_condition(s.test_ids)
    return s, train, test


def _nmse(estimate, truth) -> float:
    """Median over units of MSE / variance of the true signal across conditions."""
    tru = np.asarray(truth.data)
    return float(np.median(((np.asarray(estimate.data) - tru) ** 2).mean(1) / tru.var(1)))


@pytest.mark.parametrize("noise", [{"lowrank_fraction": 0.0, "spatial_fraction": 0.0}, {}],
                         ids=["independent-noise", "structured-noise"])
def test_pca_beats_trial_average_against_truth_at_low_snr(noise):
    s, train, test = _split(0.3, **noise)
    truth = s.truth.signal.select(test.stimulus_ids)
    pca = PCADenoiser().fit(train)
    err_pca = _nmse(pca.transform(test), truth)
    err_avg = _nmse(TrialAverageDenoiser().fit(train).transform(test), truth)
    # at SNR 0.3 with 3 trials, the trial average's NMSE is about 1 / (3 x 0.09) ~ 3.7;
    # a useful denoiser must at least halve it
    assert err_pca < 0.5 * err_avg


def test_pca_finds_the_signal_rank_with_independent_noise():
    _, train, _ = _split(0.3, lowrank_fraction=0.0, spatial_fraction=0.0)
    pca = PCADenoiser().fit(train)
    # 8 latent dimensions, several too weak to beat the noise of a 2-trial mean; the axes
    # come from a noisy mean, so the signal spreads over a few more of them (each kept with a
    # small weight: measured 10 axes, the last two with weights 0.12 and 0.03)
    assert 2 <= pca.n_components_ <= 12
    assert np.all((pca.shrinkage_ > 0) & (pca.shrinkage_ <= 1))


def test_ridge_held_out_r_approaches_the_noise_ceiling():
    s, train, test = _split(0.3)
    x_train = s.stimuli.select(train.stimulus_ids).embeddings
    x_test = s.stimuli.select(test.stimulus_ids).embeddings
    target = test.mean().as_targets()
    predicted = RidgeEncoder().fit(x_train, train.mean().as_targets()).predict(x_test)
    ceiling_r = np.sqrt(noise_ceiling_from_trials(test) / 100)
    r = pearson_r(target, predicted)
    # the tuning is a mildly nonlinear function of the features, so a linear encoder cannot
    # reach the ceiling exactly; 80 % of the ceiling's r (measured: ~91 %) is "approaching"
    assert np.median(r) > 0.8 * np.median(ceiling_r)
    truth_r = pearson_r(s.truth.signal.select(test.stimulus_ids).as_targets(), predicted)
    assert np.median(truth_r) > 0.8


def test_pca_fixed_rank_and_bad_rank_message():
    _, train, test = _split(1.0)
    pca = PCADenoiser(n_components=3).fit(train)
    assert pca.components_.shape == (100, 3) and pca.signal_variance_ is None
    with pytest.raises(
        ValueError, match=r"'n_components' parameter of PCADenoiser must be an int in \[0, 100\]"
    ):
        PCADenoiser(n_components=500).fit(train)


def test_denoisers_refuse_other_units():
    _, train, _ = _split(1.0)
    fitted = TrialAverageDenoiser().fit(train)
    with pytest.raises(ValueError, match="fitted on 100 units but got 10"):
        fitted.transform(train.take_units(np.arange(10)))
