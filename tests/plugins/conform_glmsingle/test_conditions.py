"""Condition-level outputs: means, counts, trial index and the t-like map."""

from __future__ import annotations

import numpy as np
import pytest
from conform_glmsingle._conditions import condition_betas, conditions_table
from scipy import stats

from conform_core.exceptions import ShapeError


def test_means_counts_and_t_match_a_one_sample_t_test():
    rng = np.random.default_rng(0)
    labels = np.array(["b", "a", "b", "c", "a", "b"])
    betas = rng.normal(1.0, 1.0, size=(7, 1, 1, labels.size)).astype(np.float32)
    out = condition_betas(betas, labels)
    assert out.conditions.tolist() == ["a", "b", "c"]
    assert out.trial_condition.tolist() == [1, 0, 1, 2, 0, 1]
    assert out.n_trials.tolist() == [2, 3, 1]
    assert out.mean.shape == (7, 1, 1, 3)
    flat = betas.reshape(7, -1).astype(np.float64)
    for c, name in enumerate(out.conditions):
        x = flat[:, labels == name]
        # float32 outputs: relative error of float32 rounding (~6e-8), 1e-5 leaves room
        np.testing.assert_allclose(out.mean.reshape(7, 3)[:, c], x.mean(axis=1), rtol=1e-5)
        if x.shape[1] > 1:
            t_ref = stats.ttest_1samp(x, 0.0, axis=1).statistic
            np.testing.assert_allclose(out.t.reshape(7, 3)[:, c], t_ref, rtol=1e-5)
    assert np.isnan(out.t[..., 2]).all() and np.isnan(out.sd[..., 2]).all()  # n = 1


def test_given_conditions_order_and_absent_conditions():
    out = condition_betas(np.ones((2, 3)), ["x", "x", "y"], conditions=["y", "z", "x"])
    assert out.n_trials.tolist() == [1, 0, 2]
    assert np.isnan(out.mean[:, 1]).all()
    assert np.isnan(out.t[:, 2]).all()  # sd == 0: no finite t
    with pytest.raises(ShapeError, match="not among the 2 conditions"):
        condition_betas(np.ones((2, 3)), ["x", "x", "q"], conditions=["x", "y"])
    with pytest.raises(ShapeError, match="3 trials .* but 2 trial labels"):
        condition_betas(np.ones((2, 3)), ["x", "y"])


def test_conditions_table_counts_runs_and_sessions():
    out = condition_betas(np.zeros((1, 4)), ["a", "a", "b", "a"])
    text = conditions_table(out, trial_run=[0, 1, 1, 2], run_session=[1, 1, 2])
    assert text.splitlines() == ["condition_index\tcondition\tn_trials\tn_runs\tn_sessions",
                                 "0\ta\t3\t3\t2", "1\tb\t1\t1\t1"]


def test_condition_means_recover_the_true_response_better_than_single_trials():
    """Ground truth: averaging repeats brings betas closer to the true condition response."""
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(200, 10))  # units x conditions
    labels = np.repeat(np.arange(10), 4).astype(str)
    trials = truth[:, labels.astype(int)] + rng.normal(scale=1.0, size=(200, 40))
    out = condition_betas(trials, labels)
    r_mean = np.corrcoef(out.mean.ravel(), truth[:, np.argsort(out.conditions.astype(int))].ravel())
    r_single = np.corrcoef(trials.ravel(), truth[:, labels.astype(int)].ravel())
    # 4 repeats halve the noise SD: r rises from ~0.71 to ~0.89 (analytic, unit variances)
    assert r_mean[0, 1] > r_single[0, 1] + 0.1
