"""Per-unit scores and noise ceilings.

Conventions: arrays of responses are (n_samples, n_units) (scikit-learn's ``Y``);
every score is returned per unit. Noise ceilings are in percent of variance (0-100),
as in NSD, GLMsingle and MOSAIC.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .data import ConditionTrials, TrialData, mean_over_trials
from .exceptions import ParameterError, ShapeError
from .validation import check_choice, check_float_array

__all__ = [
    "SIGNAL_VARIANCES",
    "ncsnr",
    "noise_ceiling",
    "noise_ceiling_from_trials",
    "normalized_r2",
    "pearson_r",
    "r2_score",
]


def _pair(y_true: Any, y_pred: Any) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    a = check_float_array(np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1), ndim=2,
                          name="y_true", axes="(samples, units)")
    b = check_float_array(np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1), ndim=2,
                          name="y_pred", axes="(samples, units)")
    if a.shape != b.shape:
        raise ShapeError(
            f"y_true and y_pred must have the same shape; got {a.shape} and {b.shape}."
        )
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


SIGNAL_VARIANCES: tuple[str, ...] = ("condition_means", "single_trials")
"""The two estimators of the signal variance that :func:`ncsnr` offers."""


def ncsnr(
    trials: ConditionTrials | TrialData | NDArray[np.floating],
    *,
    signal_variance: str = "condition_means",
    undefined: float = 0.0,
) -> NDArray[np.float64]:
    """Noise-ceiling signal-to-noise ratio per unit from repeated trials.

    The one ncsnr estimator of conform (NSD, Allen et al. 2022; GLMsingle; MOSAIC), for
    equal or unequal repeats. Per unit:

    - noise variance: the across-repeat variance (ddof 1) of every condition with at least
      2 trials, pooled with weights ``n_c - 1`` (NSD's mean of the per-image variances when
      every image has the same number of repeats);
    - signal variance, by ``signal_variance``:

      ``"condition_means"`` (default)
          ``var_c(condition means) - noise variance x mean_c(1 / n_c)`` (ddof 1 over
          conditions): unbiased for any repeat counts; the univariate form of GSN's
          ``cS = cD - cN / n``.
      ``"single_trials"``
          ``var(every single trial) - noise variance`` (ddof 1 over trials): NSD's
          definition (its betas are z-scored, so the total variance is 1) as MOSAIC
          computes it (``ComputeNoiseceiling``, mosaic-preprocessing). With ``C``
          conditions of ``n`` repeats it estimates the signal variance times
          ``1 - (n - 1) / (nC - 1)``; the two agree as ``C`` grows.

      A negative estimate is clipped to 0;
    - ``ncsnr = sqrt(signal variance) / sqrt(noise variance)``.

    Parameters
    ----------
    trials : ConditionTrials, TrialData, or ndarray of shape (n_units, n_conditions, n_trials)
        Repeated trials: per condition (NaN marks a missing trial), or one row per trial
        with repeats sharing a stimulus id (NaN marks a unit not measured on that trial).
        A missing value is left out of every variance of that unit.
    signal_variance : {"condition_means", "single_trials"}, default="condition_means"
        How the signal variance is estimated (above).
    undefined : float, default=0.0
        The value where the ncsnr is undefined: the noise variance is 0 (no condition has 2
        trials of the unit, or its repeats are identical) or the signal variance cannot be
        estimated (fewer than 2 values). MOSAIC stores NaN there.

    Returns
    -------
    ndarray of shape (n_units,)
        Non-negative, or ``undefined``.

    Raises
    ------
    ParameterError
        For an unknown ``signal_variance``.
    ShapeError
        When an array ``trials`` is not 3-D or holds infinite values.

    See Also
    --------
    noise_ceiling : the noise ceiling of an average of trials, from the ncsnr.

    Examples
    --------
    >>> import numpy as np
    >>> from conform_core.metrics import ncsnr
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((1, 500, 1))
    >>> trials = signal + rng.standard_normal((1, 500, 2))   # ncsnr 1
    >>> bool(abs(ncsnr(trials)[0] - 1) < 0.15)
    True
    """
    signal_variance = check_choice(
        signal_variance, SIGNAL_VARIANCES, name="signal_variance", owner="ncsnr"
    )
    if not isinstance(undefined, numbers.Real) or isinstance(undefined, bool):
        raise ParameterError(
            param="undefined",
            value=undefined,
            owner="ncsnr",
            allowed="a number (0.0 or NaN, typically)",
        )
    if isinstance(trials, TrialData):
        n, means, sq = _grouped_stats(trials)
        x = np.asarray(trials.betas, dtype=np.float64)
    else:
        data = (
            trials.data
            if isinstance(trials, ConditionTrials)
            else check_float_array(
                trials,
                ndim=3,
                name="trials",
                axes="(units, conditions, trials)",
                allow_nan=True,
                nan_meaning="missing trial",
            )
        )
        data = np.asarray(data, dtype=np.float64)
        n, means, sq = _padded_stats(data)
        x = data.reshape(data.shape[0], -1).T  # every (condition, trial) cell as a row
    dof = np.clip(n - 1, 0, None)
    noise_var = np.where(dof.sum(axis=1) > 0, sq.sum(axis=1) / np.maximum(dof.sum(axis=1), 1), 0.0)
    if signal_variance == "single_trials":
        total = _variance_of_rows(x)
        signal_var = np.clip(total - noise_var, 0, None)
    else:
        has = n > 0
        cond_means = np.where(has, means, np.nan)
        n_means = has.sum(axis=1)
        mean_var = _nan_stat(np.nanvar, cond_means, n_means >= 2, ddof=1)
        inv_n = np.where(has, 1.0 / np.maximum(n, 1), np.nan)
        signal_var = np.clip(
            mean_var - noise_var * _nan_stat(np.nanmean, inv_n, n_means >= 1), 0, None
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(signal_var) / np.sqrt(noise_var)
    out[~np.isfinite(out)] = undefined
    return out


def _variance_of_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the variance (ddof 1) of each column over its finite rows.

    A column without NaN gets ``np.var``'s exact result whatever the other columns hold.
    """
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    gaps = count < x.shape[0]
    if x.shape[0] < 2:
        return np.full(x.shape[1], np.nan)
    with np.errstate(invalid="ignore"):
        out = np.var(x, axis=0, ddof=1)
    if gaps.any():
        out[gaps] = _nan_stat(np.nanvar, x[:, gaps].T, count[gaps] >= 2, ddof=1)
    return out


def _nan_stat(
    func: Any, rows: NDArray[np.float64], defined: NDArray[np.bool_], **kwargs: Any
) -> NDArray[np.float64]:
    """Return ``func(rows, axis=1)`` on the rows where it is ``defined``, NaN elsewhere.

    So numpy warns about nothing: an undefined ncsnr is a documented result, not a surprise.
    """
    if defined.all():
        return np.asarray(func(rows, axis=1, **kwargs), dtype=np.float64)
    out = np.full(rows.shape[0], np.nan)
    out[defined] = func(rows[defined], axis=1, **kwargs)
    return out


def _padded_stats(data: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Return trial counts, means and sums of squared deviations of padded trials.

    Each is (n_units, n_conditions), of a (units, conditions, trials) array padded with NaN.
    """
    finite = np.isfinite(data)
    n = finite.sum(axis=2)
    means = mean_over_trials(data)
    with np.errstate(invalid="ignore"):
        sq = (np.where(finite, data - means[:, :, None], 0.0) ** 2).sum(axis=2)
    return n, means, sq


def _grouped_stats(trials: TrialData) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Return what :func:`_padded_stats` does, from trial rows grouped by stimulus id.

    Without padding: a MOSAIC split as units x conditions x repeats can be several times its
    betas.
    """
    x = np.asarray(trials.betas, dtype=np.float64)
    if x.shape[0] == 0:
        return (
            np.zeros((x.shape[1], 0), np.int64),
            np.zeros((x.shape[1], 0)),
            np.zeros((x.shape[1], 0)),
        )
    _, group, counts = np.unique(trials.stimulus_ids, return_inverse=True, return_counts=True)
    order = np.argsort(group.ravel(), kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = x[order]
    finite = np.isfinite(rows)
    if finite.all():
        n = np.broadcast_to(counts[:, None], (counts.size, x.shape[1]))
        means = np.add.reduceat(rows, starts, axis=0) / counts[:, None]
        deviation = rows - np.repeat(means, counts, axis=0)
    else:
        n = np.add.reduceat(finite, starts, axis=0, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.add.reduceat(np.where(finite, rows, 0.0), starts, axis=0) / n
            deviation = np.where(finite, rows - np.repeat(means, counts, axis=0), 0.0)
    sq = np.add.reduceat(deviation * deviation, starts, axis=0)
    return n.T, means.T, sq.T


def noise_ceiling(ncsnr: Any, n_trials: Any = 1) -> NDArray[np.float64]:
    """Noise ceiling (percent of variance explainable) for an average of ``n_trials``.

    ``NC = 100 * ncsnr**2 / (ncsnr**2 + c)`` with ``c = mean(1 / n_trials)`` over the
    conditions of the target data (NSD, Allen et al. 2022; MOSAIC for unequal repeats).
    The one noise-ceiling formula of conform: plugins call it rather than writing their own.

    Parameters
    ----------
    ncsnr : array-like of shape (n_units,)
        ncsnr per unit (see :func:`ncsnr`). NaN gives NaN.
    n_trials : float or array-like of shape (n_conditions,), default=1
        Trials averaged per condition of the target data: one number for all conditions,
        or each condition's count (unequal repeats).

    Returns
    -------
    ndarray of shape (n_units,)
        In [0, 100]; 0 where ncsnr is 0.

    Raises
    ------
    ParameterError
        When ``n_trials`` is empty or holds a count below 1 (or NaN).

    Examples
    --------
    >>> from conform_core.metrics import noise_ceiling
    >>> noise_ceiling([1.0], 3)          # 100 * 1 / (1 + 1/3)
    array([75.])
    >>> noise_ceiling([1.0], [1, 3])     # c = mean(1, 1/3)
    array([60.])
    """
    snr = np.asarray(ncsnr, dtype=np.float64)
    n = np.atleast_1d(np.asarray(n_trials, dtype=np.float64))
    if n.size == 0 or not (n >= 1).all():
        raise ParameterError(
            param="n_trials",
            owner="noise_ceiling",
            allowed="a number >= 1 or per-condition counts >= 1",
            value=n_trials,
            fix="Pass the number of trials averaged in the target data (1 for single trials).",
        )
    c = float(np.mean(1.0 / n))
    return 100.0 * snr**2 / (snr**2 + c)


def noise_ceiling_from_trials(trials: ConditionTrials, n_trials: Any = None) -> NDArray[np.float64]:
    """Noise ceiling of the trial average of ``trials`` (per unit, percent).

    Shorthand for ``noise_ceiling(ncsnr(trials), n_trials)``; ``n_trials`` defaults to each
    condition's own trial count.
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
