"""heldout_trial_nmse: the truth-free denoising error, checked against known expectations."""

from __future__ import annotations

import numpy as np
import pytest

from conform_core import ConditionData, ConditionTrials
from conform_core.metrics import heldout_trial_nmse, heldout_trial_terms


class Shrink:
    """An affine denoiser: ``a * (trial average - m) + m`` (a=1: the trial average)."""

    def __init__(self, a: float, m: float = 0.0) -> None:
        self.a, self.m = a, m

    def transform(self, trials: ConditionTrials) -> ConditionData:
        mean = trials.mean()
        return mean.with_data(self.a * (np.asarray(mean.data) - self.m) + self.m)


class Constant:
    """Ignores the trials: the same prediction ``c`` for every stimulus."""

    def __init__(self, c: np.ndarray) -> None:
        self.c = c

    def transform(self, trials: ConditionTrials) -> ConditionData:
        mean = trials.mean()
        return mean.with_data(self.c[:, : mean.data.shape[1]].copy())


def _study(rng, n_units=400, n_cond=60, n_trials=2, noise=1.0):
    signal = rng.standard_normal((n_units, n_cond))
    data = signal[:, :, None] + noise * rng.standard_normal((n_units, n_cond, n_trials))
    ids = np.array([f"s{i:03d}" for i in range(n_cond)])
    return signal, ConditionTrials(data, ids)


def _truth_mse(denoiser, trials, signal):
    out = np.asarray(denoiser.transform(trials).data, dtype=float)
    return ((out - signal) ** 2).mean(axis=1)


@pytest.mark.parametrize("n_trials", [2, 3, 4])
@pytest.mark.parametrize("a", [1.0, 0.5, 0.0])
def test_error_estimate_is_unbiased_for_affine_denoisers(rng, n_trials, a):
    """Mean over units of the estimated MSE matches the MSE to the truth.

    Without the jackknife term the trial average (a=1) would come out n/(n-1) times too
    large (2x with 2 trials), far outside this tolerance.
    """
    signal, trials = _study(rng, n_trials=n_trials)
    den = Shrink(a)
    est = heldout_trial_terms(den, trials).mse()
    diff = est - _truth_mse(den, trials, signal)
    # both are means over 60 stimuli of unit variance terms; 4 standard errors of the mean
    # difference over 400 units bounds a false alarm at ~6e-5
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_a_denoiser_that_ignores_the_trials_is_scored_without_bias(rng):
    signal, trials = _study(rng, n_trials=3)
    den = Constant(signal * 0.8 + 0.2)
    diff = heldout_trial_terms(den, trials).mse() - _truth_mse(den, trials, signal)
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_nmse_of_the_trial_average_is_noise_over_n_signal(rng):
    """Signal variance 1, noise 1, 2 trials: truth NMSE 0.5 per unit."""
    signal, trials = _study(rng, n_units=300, n_cond=400, n_trials=2)
    nmse = heldout_trial_nmse(Shrink(1.0), trials)
    truth = _truth_mse(Shrink(1.0), trials, signal) / signal.var(axis=1)
    # 400 stimuli: each per-unit estimate has sd ~0.08; the median over 300 units ~0.006
    assert np.median(nmse) == pytest.approx(np.median(truth), abs=0.03)
    assert np.isfinite(nmse).all()


def test_ranking_by_the_estimate_follows_the_truth(rng):
    """Shrinkage towards the mean: best near a = 1 / (1 + noise / (n signal)) = 0.67."""
    signal, trials = _study(rng, n_units=300, n_cond=100, n_trials=2)
    grid = [0.0, 0.3, 0.67, 1.0, 1.5]
    est = [np.nanmedian(heldout_trial_nmse(Shrink(a), trials)) for a in grid]
    truth = [np.median(_truth_mse(Shrink(a), trials, signal) / signal.var(axis=1)) for a in grid]
    assert np.argsort(est).tolist() == np.argsort(truth).tolist()
    assert est[0] == pytest.approx(1.0, abs=0.1)  # predicting the mean: NMSE 1


def test_stimuli_with_one_trial_are_skipped_and_units_without_any_are_nan(rng):
    signal, trials = _study(rng, n_units=5, n_cond=30, n_trials=3)
    data = np.array(trials.data)
    data[:, :10, 1:] = np.nan  # 10 stimuli with one trial (padded)
    data[0, :, 1:] = np.nan  # unit 0: one trial of every stimulus
    terms = heldout_trial_terms(Shrink(1.0), trials.with_data(data))
    assert np.isnan(terms.excess[:, :10]).all()
    assert np.isfinite(terms.excess[1:, 10:]).all()
    nmse = terms.nmse()
    assert np.isnan(nmse[0]) and np.isfinite(nmse[1:]).all()


def test_no_signal_gives_nan_not_a_ratio_of_noise(rng):
    data = rng.standard_normal((50, 40, 2))  # pure noise: the signal variance estimate is ~0
    trials = ConditionTrials(data, np.array([f"s{i}" for i in range(40)]))
    nmse = heldout_trial_nmse(Shrink(1.0), trials)
    finite = np.isfinite(nmse)
    assert 0 < (~finite).sum() < 50  # about half the units have a non-positive estimate


def test_weights_of_one_reproduce_the_plain_estimate_and_resamples_have_their_shape(rng):
    _, trials = _study(rng, n_units=20, n_cond=30, n_trials=2)
    terms = heldout_trial_terms(Shrink(0.7), trials)
    np.testing.assert_allclose(terms.nmse(np.ones(30)), terms.nmse())
    w = rng.multinomial(30, np.full(30, 1 / 30), size=7).astype(float)
    assert terms.nmse(w).shape == (7, 20)
