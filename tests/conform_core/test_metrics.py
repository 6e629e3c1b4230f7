from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conform_core import ConditionTrials, ParameterError, ShapeError
from conform_core.data import TrialData
from conform_core.metrics import (
    ncsnr,
    noise_ceiling,
    noise_ceiling_from_trials,
    normalized_r2,
    pearson_r,
    r2_score,
)


def test_pearson_and_r2_match_numpy_and_sklearn(rng):
    from sklearn.metrics import r2_score as sk_r2

    a = rng.standard_normal((50, 3))
    b = a + rng.standard_normal((50, 3))
    np.testing.assert_allclose(
        pearson_r(a, b), [np.corrcoef(a[:, i], b[:, i])[0, 1] for i in range(3)]
    )
    np.testing.assert_allclose(r2_score(a, b), sk_r2(a, b, multioutput="raw_values"))


def test_constant_unit_gives_nan_not_error():
    a = np.ones((5, 1))
    assert np.isnan(pearson_r(a, np.arange(5.0)[:, None])[0])
    assert np.isnan(r2_score(a, a)[0])


def test_shape_mismatch_is_named():
    with pytest.raises(ShapeError, match=r"same shape; got \(3, 1\) and \(4, 1\)"):
        pearson_r(np.zeros(3), np.zeros(4))


@given(st.floats(0, 50), st.integers(1, 10))
def test_noise_ceiling_lies_in_0_100(snr, n):
    nc = noise_ceiling([snr], n)[0]
    assert 0 <= nc <= 100


def test_noise_ceiling_formula_and_unequal_repeats():
    # NSD: NC = 100 snr^2 / (snr^2 + 1/n); with repeats (1, 3): c = mean(1, 1/3)
    assert noise_ceiling([1.0], 3)[0] == pytest.approx(75.0)
    assert noise_ceiling([1.0], [1, 3])[0] == pytest.approx(100 / (1 + 2 / 3))


def test_ncsnr_recovers_simulated_snr(rng):
    n_units, n_cond, n_trials, snr = 200, 400, 3, 0.8
    signal = rng.standard_normal((n_units, n_cond)) * snr
    data = signal[:, :, None] + rng.standard_normal((n_units, n_cond, n_trials))
    est = ncsnr(ConditionTrials(data, np.arange(n_cond)))
    # sampling sd of the estimate with 400 conditions x 3 trials is ~0.04; the median over
    # 200 units is far tighter, so 5 % is a generous bound
    assert np.median(est) == pytest.approx(snr, rel=0.05)


def test_ncsnr_ignores_missing_trials(rng):
    data = rng.standard_normal((10, 50, 3)) + rng.standard_normal((10, 50, 1))
    with_nan = data.copy()
    with_nan[:, :10, 2] = np.nan
    a = ncsnr(ConditionTrials(with_nan, np.arange(50)))
    assert np.isfinite(a).all()
    nc = noise_ceiling_from_trials(ConditionTrials(with_nan, np.arange(50)))
    assert ((nc >= 0) & (nc <= 100)).all()


def _unequal_repeats(rng, n_units=7, n_stimuli=40):
    """Trial rows of stimuli with 1-4 repeats (ncsnr about 1), some stimuli once only."""
    reps = rng.integers(1, 5, n_stimuli)
    ids = np.repeat(np.arange(n_stimuli), reps).astype(str)
    signal = rng.standard_normal((n_stimuli, n_units))
    betas = np.repeat(signal, reps, axis=0) + rng.standard_normal((ids.size, n_units))
    order = rng.permutation(ids.size)  # trials interleaved, as presented
    return TrialData(betas[order], ids[order])


@pytest.mark.parametrize("signal_variance", ["condition_means", "single_trials"])
def test_ncsnr_of_trial_rows_equals_ncsnr_of_the_padded_conditions(rng, signal_variance):
    trials = _unequal_repeats(rng)
    # same sums in another order: the signal variance is a difference of two O(1) sums, so
    # agreement is to ~1e-14 relative; 1e-10 leaves room for cancellation
    np.testing.assert_allclose(
        ncsnr(trials, signal_variance=signal_variance),
        ncsnr(trials.by_condition(), signal_variance=signal_variance),
        rtol=1e-10,
    )


def test_single_trials_is_nsd_formula_on_zscored_betas(rng):
    """NSD (Allen et al. 2022): betas z-scored, noise sd = sqrt(mean over images of the
    across-repeat variance), signal sd = sqrt(max(1 - noise sd^2, 0))."""
    signal = rng.standard_normal((300, 5))
    betas = np.repeat(signal, 3, axis=0) + 1.3 * rng.standard_normal((900, 5))
    betas = (betas - betas.mean(axis=0)) / betas.std(axis=0, ddof=1)
    ids = np.repeat(np.arange(300), 3).astype(str)
    noise_var = np.mean([betas[ids == i].var(axis=0, ddof=1) for i in np.unique(ids)], axis=0)
    nsd = np.sqrt(np.maximum(1 - noise_var, 0)) / np.sqrt(noise_var)
    np.testing.assert_allclose(
        ncsnr(TrialData(betas, ids), signal_variance="single_trials"), nsd, rtol=1e-12
    )


def test_condition_means_is_the_unequal_repeat_formula_written_out(rng):
    trials = _unequal_repeats(rng)
    groups = [trials.betas[trials.stimulus_ids == i] for i in np.unique(trials.stimulus_ids)]
    noise = sum(g.var(axis=0, ddof=1) * (len(g) - 1) for g in groups if len(g) > 1) / sum(
        len(g) - 1 for g in groups
    )
    means = np.array([g.mean(axis=0) for g in groups])
    signal = np.maximum(
        means.var(axis=0, ddof=1) - noise * np.mean([1 / len(g) for g in groups]), 0
    )
    np.testing.assert_allclose(ncsnr(trials), np.sqrt(signal / noise), rtol=1e-12)


def test_ncsnr_where_undefined_is_0_or_the_value_asked_for():
    identical = np.ones((1, 4, 2))  # repeats identical: noise 0
    single = np.full((1, 4, 2), np.nan)
    single[:, :, 0] = np.arange(4.0)  # no condition has 2 trials
    for array in (identical, single):
        for signal_variance in ("condition_means", "single_trials"):
            assert ncsnr(array, signal_variance=signal_variance)[0] == 0.0
            assert np.isnan(ncsnr(array, signal_variance=signal_variance, undefined=np.nan)[0])


def test_ncsnr_names_an_unknown_estimator():
    with pytest.raises(ParameterError, match="signal_variance.*single_trials.*Did you mean"):
        ncsnr(np.zeros((1, 2, 2)), signal_variance="single_trial")
    with pytest.raises(ParameterError, match="undefined"):
        ncsnr(np.zeros((1, 2, 2)), undefined="nan")


@pytest.mark.parametrize("n_trials", [0, [1, 0.5], [], np.nan])
def test_noise_ceiling_names_a_bad_trial_count(n_trials):
    with pytest.raises(ParameterError, match="n_trials.*noise_ceiling"):
        noise_ceiling([1.0], n_trials)


@given(st.floats(0, 50), st.floats(1, 20))
def test_noise_ceiling_of_one_count_is_the_single_n_formula(snr, n):
    """Bit for bit the ``100 snr^2 / (snr^2 + 1/n)`` that plugins used to write themselves."""
    snr2 = np.float64(snr) ** 2
    assert noise_ceiling([snr], n)[0] == 100.0 * snr2 / (snr2 + 1.0 / n)


def test_normalized_r2_divides_by_ceiling_fraction():
    np.testing.assert_allclose(normalized_r2([0.25, 0.1], [50.0, 0.0]), [0.5, np.nan])
