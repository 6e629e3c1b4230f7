"""The bootstrap over test stimuli and the rank-0 check behind the summary."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from conform_core.analysis.uncertainty import (
    difference_interval,
    is_rank_zero,
    resample_weights,
    summarise_resamples,
    summary_interval,
    weighted_nmse,
    weighted_scores,
)
from conform_core.metrics import pearson_r, r2_score


def test_resamples_are_seeded_by_seed_and_subject_only():
    a = resample_weights(0, "sub-01", 30, n_resamples=50)
    assert a.shape == (50, 30) and (a.sum(axis=1) == 30).all()
    np.testing.assert_array_equal(a, resample_weights(0, "sub-01", 30, n_resamples=50))
    assert not np.array_equal(a, resample_weights(0, "sub-02", 30, n_resamples=50))
    assert not np.array_equal(a, resample_weights(1, "sub-01", 30, n_resamples=50))


def test_weights_of_one_give_the_plain_scores(rng):
    y = rng.standard_normal((40, 6))
    p = y + rng.standard_normal((40, 6))
    ones = np.ones((1, 40))
    got = weighted_scores(y, p, ones, ceiling=np.full(6, 50.0))
    np.testing.assert_allclose(got["pearson_r"][0], pearson_r(y, p))
    np.testing.assert_allclose(got["r2"][0], r2_score(y, p))
    np.testing.assert_allclose(got["nc_r2"][0], r2_score(y, p) / 0.5)
    truth = rng.standard_normal((6, 40))
    est = truth + 0.5 * rng.standard_normal((6, 40))
    expected = ((est - truth) ** 2).mean(axis=1) / truth.var(axis=1)
    np.testing.assert_allclose(weighted_nmse(est, truth, ones)[0], expected)


def test_a_resample_counts_each_stimulus_as_often_as_drawn(rng):
    y = rng.standard_normal((5, 3))
    p = rng.standard_normal((5, 3))
    w = np.array([[2.0, 0, 1, 1, 1]])
    rows = [0, 0, 2, 3, 4]
    np.testing.assert_allclose(weighted_scores(y, p, w)["r2"][0], r2_score(y[rows], p[rows]))


def _boot(values: dict[tuple[str, ...], np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
    return {k: summarise_resamples(v) for k, v in values.items()}


def test_intervals_cover_the_estimate_and_a_paired_difference_is_sharper(rng):
    """Two methods whose per-stimulus scores share most of their variation: the interval of
    their difference is much narrower than either's, and excludes 0 for a real gap."""
    shared = rng.standard_normal((1000, 1))
    boot = {}
    for s in ("a", "b"):
        boot[(s, "x", "none", "ridge", "r2")] = 0.5 + shared + 0.05 * rng.standard_normal((1000, 1))
        boot[(s, "y", "none", "ridge", "r2")] = 0.4 + shared + 0.05 * rng.standard_normal((1000, 1))
    boot = _boot(boot)
    one = summary_interval(boot, ("x", "none", "ridge", "r2"), 0.5)
    assert one.low < 0.5 < one.high and one.high - one.low > 2
    diff = difference_interval(boot, ("x", "none", "ridge", "r2"), ("y", "none", "ridge", "r2"),
                               0.1)
    assert diff.excludes_zero() and diff.high - diff.low < 0.5


def test_rank_zero_from_the_fitted_rank_or_a_constant_output(rng):
    averages = rng.standard_normal((10, 8))
    varying = averages * 0.5
    constant = np.repeat(rng.standard_normal((10, 1)), 8, axis=1)
    assert is_rank_zero(SimpleNamespace(n_components_=0), varying, averages)
    assert not is_rank_zero(SimpleNamespace(n_components_=3), varying, averages)
    assert is_rank_zero(SimpleNamespace(best_threshold_=np.zeros(10)), varying, averages)
    assert is_rank_zero(SimpleNamespace(), constant, averages)
    assert not is_rank_zero(SimpleNamespace(), varying, averages)
