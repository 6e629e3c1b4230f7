"""The speed shortcuts give bit-identical results to the straightforward numpy code."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conform_psn._diagnostics import row_corr, split_half_r
from conform_psn._linalg import trial_mean
from conform_psn._validation import TrialLayout, check_constant_units

from conform_core.exceptions import ShapeError


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_dtype", [None, np.float64])
@pytest.mark.parametrize("n_trials", [2, 3, 5, 7, 8, 11])
def test_trial_mean_is_numpy_mean(rng, dtype, out_dtype, n_trials):
    scale = 10.0 ** rng.uniform(-4, 4, (20, 1, 1))
    data = (rng.standard_normal((20, 150, n_trials)) * scale).astype(dtype)
    for view in (data, data[:, :, ::2], data[:, :, 1::2]):
        mine, ref = trial_mean(view, out_dtype), view.mean(axis=2, dtype=out_dtype)
        assert mine.dtype == ref.dtype
        assert np.array_equal(mine, ref)


def _row_corr_masked(x, y):
    """The masked formula (the path for non-finite values), applied to everything."""
    mask = np.isfinite(x) & np.isfinite(y)
    count = mask.sum(axis=1)
    xm, ym = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = np.where(mask, xm - xm.sum(1, keepdims=True) / count[:, None], 0.0)
        yc = np.where(mask, ym - ym.sum(1, keepdims=True) / count[:, None], 0.0)
        den = np.sqrt((xc**2).sum(1) * (yc**2).sum(1))
        r = (xc * yc).sum(1) / den
    r[(count < 2) | ~(den > 0)] = np.nan
    return r


@pytest.mark.parametrize("dx", [np.float32, np.float64])
@pytest.mark.parametrize("n_cols", [0, 1, 2, 40])
def test_row_corr_finite_path_matches_masked(rng, dx, n_cols):
    x = rng.standard_normal((12, n_cols)).astype(dx)
    y = rng.standard_normal((12, n_cols))
    if n_cols:
        x[4] = 3.0  # constant row -> NaN
    assert np.array_equal(row_corr(x, y), _row_corr_masked(x, y), equal_nan=True)


def test_split_half_without_nan_matches_nanmean(rng):
    data = rng.standard_normal((15, 80, 5))
    means = data.mean(axis=(1, 2))
    filt = rng.standard_normal((15, 15)) * 0.1 + np.eye(15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        halves = [np.nanmean(data[:, :, s::2], axis=2) for s in (0, 1)]
    den = [filt @ (h - means[:, None]) + means[:, None] for h in halves]
    both = 0.5 * (_row_corr_masked(halves[0], den[1]) + _row_corr_masked(den[0], halves[1]))
    assert split_half_r(data, filt, means) == float(np.nanmedian(both))


def test_constant_unit_fast_path(rng):
    data = rng.standard_normal((6, 30, 3))
    layout = TrialLayout(np.ones((30, 3), dtype=bool))
    check_constant_units(data, layout, who="t")  # all vary: no error
    data[4] = rng.standard_normal((30, 1))  # differs across conditions, not across trials
    with pytest.raises(ShapeError, match=r"unit\(s\) \[4\]"):
        check_constant_units(data, layout, who="t")
