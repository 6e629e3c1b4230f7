"""Per-unit scores and noise ceilings.

Conventions: arrays of responses are (n_samples, n_units) (scikit-learn's ``Y``);
every score is returned per unit. Noise ceilings are in percent of variance (0-100),
as in NSD, GLMsingle and MOSAIC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .data import ConditionTrials
from .exceptions import ShapeError
from .validation import check_float_array

__all__ = [
    "pearson_r",
    "r2_score",
    "ncsnr",
    "noise_ceiling",
    "noise_ceiling_from_trials",
    "normalized_r2",
]


def _pair(y_true: Any, y_pred: Any) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    a = check_float_array(np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1), ndim=2,
                          name="y_true", axes="(samples, units)")
    b = check_float_array(np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1), ndim=2,
                          name="y_pred", axes="(samples, units)")
    if a.shape != b.shape:
        raise ShapeError(f"y_true and y_pred must have the same shape; got {a.shape} and {b.shape}.")
    if a.shape[0] < 2:
        raise ShapeError(f"Scores need at least 2 samples per unit; got {a.shape[0]}.")
    return a, b


def pearson_r(y_true: Any, y_pred: Any) -> NDArray[np.float64]:
    """Pearson correlation per unit (column).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_units) or (n_samples,)

    Returns
    -------
    ndarray of shape (n_units,)
        NaN for a unit whose true or predicted responses are constant.
    """
    a, b = _pair(y_true, y_pred)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / denom
    r[denom == 0] = np.nan
    return r


def r2_score(y_true: Any, y_pred: Any) -> NDArray[np.float64]:
    """Coefficient of determination per unit: ``1 - SS_res / SS_tot`` (can be negative).

    Returns
    -------
    ndarray of shape (n_units,)
        NaN for a unit whose true responses are constant (as ``sklearn`` with
        ``force_finite=False``).
    """
    a, b = _pair(y_true, y_pred)
    ss_res = ((a - b) ** 2).sum(axis=0)
    ss_tot = ((a - a.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    r2[ss_tot == 0] = np.nan
    return r2


def ncsnr(trials: ConditionTrials | NDArray[np.floating]) -> NDArray[np.float64]:
    """Noise-ceiling signal-to-noise ratio per unit from repeated trials.

    The NSD/GLMsingle univariate estimator generalised to unequal repeats (MOSAIC):
    noise variance = across-repeat variance (ddof 1) of every condition with >= 2 trials,
    pooled with weights ``n_c - 1``; signal variance = max(var over conditions of the
    condition means (ddof 1) - noise variance x mean_c(1/n_c), 0);
    ``ncsnr = sqrt(signal variance) / sqrt(noise variance)``.

    Parameters
    ----------
    trials : ConditionTrials or ndarray of shape (n_units, n_conditions, n_trials)
        NaN marks missing trials.

    Returns
    -------
    ndarray of shape (n_units,)
        0 where the noise variance is 0 or no condition has 2 trials.
    """
    data = trials.data if isinstance(trials, ConditionTrials) else check_float_array(
        trials, ndim=3, name="trials", axes="(units, conditions, trials)", allow_nan=True)
    data = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(data)
    n = finite.sum(axis=2)  # units x conditions
    filled = np.where(finite, data, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = filled.sum(axis=2) / n
        sq = (np.where(finite, data - means[:, :, None], 0.0) ** 2).sum(axis=2)
    dof = np.clip(n - 1, 0, None)
    noise_var = np.where(dof.sum(axis=1) > 0, sq.sum(axis=1) / np.maximum(dof.sum(axis=1), 1), 0.0)
    has = n > 0
    cond_means = np.where(has, means, np.nan)
    mean_var = np.nanvar(cond_means, axis=1, ddof=1)
    inv_n = np.where(has, 1.0 / np.maximum(n, 1), np.nan)
    signal_var = np.clip(mean_var - noise_var * np.nanmean(inv_n, axis=1), 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(signal_var) / np.sqrt(noise_var)
    out[~np.isfinite(out)] = 0.0
    return out


def noise_ceiling(snr: Any, n_trials: Any = 1) -> NDArray[np.float64]:
    """Noise ceiling (percent of variance explainable) for an average of ``n_trials``.

    ``NC = 100 * ncsnr**2 / (ncsnr**2 + c)`` with ``c = mean(1 / n_trials)`` (NSD,
    Allen et al. 2022; MOSAIC for unequal repeats).

    Parameters
    ----------
    snr : array-like of shape (n_units,)
        ncsnr per unit (see :func:`ncsnr`).
    n_trials : int or array-like of shape (n_conditions,), default=1
        Trials averaged per condition of the target data.
    """
    snr = np.asarray(snr, dtype=np.float64)
    n = np.atleast_1d(np.asarray(n_trials, dtype=np.float64))
    if (n < 1).any():
        raise ShapeError(f"n_trials must be >= 1; got {n[n < 1][:3].tolist()}.")
    c = float(np.mean(1.0 / n))
    return 100.0 * snr**2 / (snr**2 + c)


def noise_ceiling_from_trials(trials: ConditionTrials, n_trials: Any = None) -> NDArray[np.float64]:
    """Noise ceiling of the trial average of ``trials`` (per unit, percent).

    ``n_trials`` defaults to each condition's own trial count.
    """
    counts = trials.trial_counts() if n_trials is None else n_trials
    return noise_ceiling(ncsnr(trials), np.maximum(counts, 1))


def normalized_r2(r2: Any, ceiling: Any) -> NDArray[np.float64]:
    """R² as a fraction of the noise ceiling: ``r2 / (ceiling / 100)``; NaN where ceiling is 0."""
    r2 = np.asarray(r2, dtype=np.float64)
    ceiling = np.asarray(ceiling, dtype=np.float64) / 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = r2 / ceiling
    return np.where(ceiling > 0, out, np.nan)
