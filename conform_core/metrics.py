"""Per-unit scores and noise ceilings.

Conventions: arrays of responses are (n_samples, n_units) (scikit-learn's ``Y``);
every score is returned per unit. Noise ceilings are in percent of variance (0-100),
as in NSD, GLMsingle and MOSAIC.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .data import ConditionTrials, TrialData, mean_over_trials
from .exceptions import ParameterError, ShapeError
from .validation import check_choice, check_float_array

__all__ = [
    "SIGNAL_VARIANCES",
    "HeldoutTerms",
    "heldout_trial_nmse",
    "heldout_trial_terms",
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


@dataclass(frozen=True, eq=False)
class HeldoutTerms:
    """Per unit and test stimulus: the pieces :func:`heldout_trial_nmse` is computed from.

    Kept apart so that the metric can be recomputed on resampled stimuli (a bootstrap over
    test stimuli weights the columns, see :meth:`nmse`). Every array is
    (n_units, n_conditions).

    Attributes
    ----------
    excess : ndarray
        Leave-one-trial-out error of the stimulus, less the jackknife variance of its
        leave-one-out outputs: ``mean_k (d_k - y_k)**2 - var_k(d_k)`` (NaN where the unit
        has fewer than 2 trials of the stimulus). Its expectation is the squared error of
        the denoised average of all trials to the true signal, plus the noise variance.
    sq : ndarray
        Sum of squared deviations of the stimulus's trials from their mean.
    n : ndarray of int
        Trials of the stimulus measured in the unit.
    means : ndarray
        Trial average of the stimulus (NaN without any trial).
    """

    excess: NDArray[np.float64]
    sq: NDArray[np.float64]
    n: NDArray[np.int64]
    means: NDArray[np.float64]

    def _parts(
        self, weights: NDArray[np.floating] | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
        """Return (error, signal variance), each (n_resamples, n_units), and whether 1-D."""
        single = weights is None or np.ndim(weights) == 1
        w = np.atleast_2d(
            np.ones(self.n.shape[1]) if weights is None else np.asarray(weights, np.float64)
        )
        dof = np.clip(self.n - 1, 0, None).astype(np.float64)
        usable = np.isfinite(self.excess)
        has = self.n > 0
        means = np.where(has, self.means, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            noise = (w @ self.sq.T) / (w @ dof.T)
            error = (w @ np.where(usable, self.excess, 0.0).T) / (w @ usable.T.astype(float))
            error = error - noise
            n_means = w @ has.T.astype(np.float64)
            centre = (w @ means.T) / n_means
            spread = (w @ (means**2).T) / n_means - centre**2
            inv_n = (w @ np.where(has, 1.0 / np.maximum(self.n, 1), 0.0).T) / n_means
            signal = spread - noise * inv_n * (n_means - 1) / n_means
        return error, signal, single

    def mse(self, weights: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
        """Return the estimated mean squared error to the true signal per unit (data units).

        Unbiased for the mean over the usable stimuli of ``(denoised - truth)**2`` (see
        :func:`heldout_trial_nmse`); NaN for a unit without a stimulus of 2 trials.
        ``weights`` as in :meth:`nmse`.
        """
        error, _, single = self._parts(weights)
        error = np.where(np.isfinite(error), error, np.nan)
        return error[0] if single else error

    def nmse(self, weights: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
        """Return the held-out-trial NMSE per unit, the stimuli weighted by ``weights``.

        Parameters
        ----------
        weights : ndarray of shape (n_conditions,) or (n_resamples, n_conditions), optional
            How often each stimulus counts (bootstrap counts); all 1 when None.

        Returns
        -------
        ndarray of shape (n_units,) or (n_resamples, n_units)
            NaN where it is undefined (see :func:`heldout_trial_nmse`).
        """
        error, signal, single = self._parts(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = error / signal
        out = np.where((signal > 0) & np.isfinite(out), out, np.nan)
        return out[0] if single else out


def heldout_trial_terms(denoiser: Any, trials: ConditionTrials) -> HeldoutTerms:
    """Denoise every leave-one-trial-out average of ``trials``; return the per-stimulus terms.

    For each trial index ``k``, every stimulus that has trial ``k`` and at least one other
    trial is given to ``denoiser.transform`` with trial ``k`` set missing (NaN), so the
    denoiser sees the average of the other trials ``d_k``; ``d_k`` is compared with the
    left-out trial ``y_k``. See :func:`heldout_trial_nmse`.

    Parameters
    ----------
    denoiser : fitted Denoiser
        Anything whose ``transform`` maps a :class:`ConditionTrials` to a
        :class:`~conform_core.data.ConditionData` of the same units and stimuli (a
        trial-level denoiser fitted on other stimuli: the training trials).
    trials : ConditionTrials
        Held-out test trials.

    Returns
    -------
    HeldoutTerms
    """
    data = np.asarray(trials.data, dtype=np.float64)
    n, means, sq = _padded_stats(data)
    valid = trials.valid_trials()
    counts = valid.sum(axis=1)
    out = np.full(data.shape, np.nan)
    for k in range(data.shape[2]):
        conds = np.flatnonzero(valid[:, k] & (counts >= 2))
        if conds.size == 0:
            continue
        rest = data[:, conds].copy()
        rest[:, :, k] = np.nan
        left_out = trials.take_conditions(conds).with_data(rest.astype(trials.data.dtype))
        denoised = np.asarray(denoiser.transform(left_out).data, dtype=np.float64)
        if denoised.shape != (data.shape[0], conds.size):
            raise ShapeError(
                f"{type(denoiser).__name__}.transform returned shape {denoised.shape} for "
                f"{conds.size} stimuli of {data.shape[0]} units; the held-out-trial error needs "
                "one denoised response per unit and stimulus."
            )
        out[:, conds, k] = denoised
    pair = np.isfinite(out) & np.isfinite(data)
    m = pair.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.where(pair, (out - data) ** 2, 0.0).sum(axis=2) / m
        centre = np.where(pair, out, 0.0).sum(axis=2) / m
        spread = np.where(pair, (out - centre[:, :, None]) ** 2, 0.0).sum(axis=2) / m
    excess = np.where((m >= 2) & (n >= 2), error - spread, np.nan)
    return HeldoutTerms(excess=excess, sq=sq, n=n.astype(np.int64), means=means)


def heldout_trial_nmse(denoiser: Any, trials: ConditionTrials) -> NDArray[np.float64]:
    """Truth-free error of a fitted denoiser on held-out trials, per unit (NMSE).

    Estimates the error of ``denoiser.transform(trials)`` to the true signal, normalised
    like ``denoise_truth_nmse`` (mean squared error over stimuli / variance of the true
    signal over stimuli; 1 = predicting each unit's mean, 0 = perfect), without the truth.

    For each test stimulus with ``n >= 2`` trials and each trial ``k``: ``d_k``, the
    denoiser's output for the average of the other ``n - 1`` trials, is compared with the
    left-out trial ``y_k``. With trials independent given the stimulus,
    ``E (d_k - y_k)**2 = E (d_k - s)**2 + sigma**2`` (``s`` the true signal, ``sigma**2``
    the single-trial noise variance). Two corrections make it estimate the error of the
    output for the average of all ``n`` trials, the one ``conform fit`` uses:

    - ``d_k`` averages ``n - 1`` trials, not ``n``: its noise term is larger by
      ``1/(n-1) - 1/n``. The jackknife variance of the leave-one-out outputs,
      ``(n-1)/n sum_k (d_k - mean d)**2``, estimates the variance of the ``n``-trial output,
      so ``mean_k (d_k - y_k)**2 - var_k(d_k)`` (``var`` with ddof 0) has the expectation
      ``E (d - s)**2 + sigma**2``, exactly for any denoiser affine in the trial average
      (trial average, PCA, PSN, Wiener), approximately otherwise;
    - ``sigma**2`` is then subtracted: per unit, the within-stimulus variance of the test
      trials pooled with weights ``n_c - 1`` (the noise variance of :func:`ncsnr`).

    The mean of these over stimuli is divided by an unbiased estimate of the variance of
    the true signal over the test stimuli (ddof 0, as ``denoise_truth_nmse``):
    ``var_c(trial averages) - sigma**2 mean_c(1/n_c) (C - 1)/C`` over the ``C`` test
    stimuli of the unit.

    Parameters
    ----------
    denoiser : fitted Denoiser
        A trial-level denoiser fitted on other stimuli (the training trials); its
        ``transform`` takes :class:`ConditionTrials` and denoises their trial averages.
    trials : ConditionTrials
        Held-out test trials (NaN marks a missing trial).

    Returns
    -------
    ndarray of shape (n_units,)
        NaN for a unit without a usable estimate: no test stimulus with 2 trials, or an
        estimated signal variance that is not positive. The estimate can be below 0 (its
        error is unbiased, so it is not clipped); a ratio of estimates, it is noisy for
        units with little signal, so summarise it by a median over units.

    See Also
    --------
    heldout_trial_terms : the per-stimulus terms (for resampling stimuli).

    Examples
    --------
    >>> import numpy as np
    >>> from conform_core import ConditionTrials
    >>> from conform_core.metrics import heldout_trial_nmse
    >>> class Average:                      # the trial-average denoiser
    ...     def transform(self, trials):
    ...         return trials.mean()
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((200, 400, 1))
    >>> trials = ConditionTrials(signal + rng.standard_normal((200, 400, 2)),
    ...                          np.array([f"s{i}" for i in range(400)]))
    >>> nmse = heldout_trial_nmse(Average(), trials)   # truth: noise / 2 / signal = 0.5
    >>> bool(abs(np.median(nmse) - 0.5) < 0.05)
    True
    """
    return heldout_trial_terms(denoiser, trials).nmse()
