from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conform_core import ConditionTrials, ShapeError
from conform_core.metrics import ncsnr, noise_ceiling, noise_ceiling_from_trials, normalized_r2, pearson_r, r2_score


def test_pearson_and_r2_match_numpy_and_sklearn(rng):
    from sklearn.metrics import r2_score as sk_r2

    a = rng.standard_normal((50, 3))
    b = a + rng.standard_normal((50, 3))
    np.testing.assert_allclose(pearson_r(a, b), [np.corrcoef(a[:, i], b[:, i])[0, 1] for i in range(3)])
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


def test_normalized_r2_divides_by_ceiling_fraction():
    np.testing.assert_allclose(normalized_r2([0.25, 0.1], [50.0, 0.0]), [0.5, np.nan])
