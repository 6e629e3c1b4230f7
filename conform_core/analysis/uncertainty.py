"""Uncertainty of the summary: a bootstrap over test stimuli, and the rank-0 check of a denoiser.

Every cell of one subject resamples the same test stimuli (the resamples are drawn from
the analysis seed and the subject only), so the difference between two methods can be
bootstrapped paired: resample ``b`` of method A minus resample ``b`` of method B.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["N_RESAMPLES", "resample_weights", "weighted_scores", "weighted_nmse",
           "summarise_resamples", "Interval", "summary_interval", "difference_interval",
           "is_rank_zero", "RANK_ZERO"]

N_RESAMPLES = 1000
"""Bootstrap resamples of the test stimuli per subject."""

RANK_ZERO = "rank 0: predicts each unit's mean"
"""How the summary flags a denoiser whose output does not vary over stimuli."""

_FLAT = 1e-10  # output variance over stimuli below this share of the input's is "constant"


def resample_weights(seed: int, subject: str, n_stimuli: int,
                     n_resamples: int = N_RESAMPLES) -> NDArray[np.float64]:
    """Return bootstrap counts of ``n_stimuli`` test stimuli, shape (n_resamples, n_stimuli).

    Row ``b`` says how often each stimulus is drawn in resample ``b`` (``n_stimuli`` draws
    with replacement). Seeded by ``SeedSequence([seed, 0xB007, crc32(subject)])``: every
    denoiser, encoder and re-run of a subject gets the same resamples, so differences
    between methods are paired.
    """
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), 0xB007, zlib.crc32(subject.encode())])
    )
    return rng.multinomial(n_stimuli, np.full(n_stimuli, 1.0 / n_stimuli),
                           size=n_resamples).astype(np.float64)


def weighted_scores(y_true: NDArray[np.floating], y_pred: NDArray[np.floating],
                    weights: NDArray[np.float64], ceiling: NDArray[np.floating] | None = None,
                    metrics: tuple[str, ...] = ("pearson_r", "r2", "nc_r2")
                    ) -> dict[str, NDArray[np.float64]]:
    """Per-unit ``pearson_r``, ``r2`` and ``nc_r2`` on resampled stimuli.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_stimuli, n_units)
    weights : ndarray of shape (n_resamples, n_stimuli)
        Bootstrap counts (:func:`resample_weights`).
    ceiling : ndarray of shape (n_units,) or None
        Noise ceiling (percent) for ``nc_r2``; held fixed over resamples.
    metrics : tuple of str
        Which of the three to return.

    Returns
    -------
    dict of str to ndarray of shape (n_resamples, n_units)
        NaN where a resample leaves a unit's true (or predicted, for r) responses constant.
    """
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = (w @ a) / total, (w @ b) / total
        saa = w @ (a * a) - total * ma**2
        sbb = w @ (b * b) - total * mb**2
        sab = w @ (a * b) - total * ma * mb
        out: dict[str, NDArray[np.float64]] = {}
        if "pearson_r" in metrics:
            r = sab / np.sqrt(saa * sbb)
            out["pearson_r"] = np.where((saa > 1e-12 * np.abs(w @ (a * a))) & (sbb > 0), r,
                                        np.nan)
        r2 = 1.0 - (w @ ((a - b) ** 2)) / saa
        r2 = np.where(saa > 0, r2, np.nan)
        if "r2" in metrics:
            out["r2"] = r2
        if "nc_r2" in metrics and ceiling is not None:
            c = np.asarray(ceiling, dtype=np.float64) / 100.0
            out["nc_r2"] = np.where(c > 0, r2 / np.where(c > 0, c, 1.0), np.nan)
    return out


def weighted_nmse(estimate: NDArray[np.floating], truth: NDArray[np.floating],
                  weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """``denoise_truth_nmse`` per unit on resampled stimuli, shape (n_resamples, n_units).

    ``estimate`` and ``truth`` are (n_units, n_stimuli), as the denoiser's output.
    """
    est = np.asarray(estimate, dtype=np.float64)
    tru = np.asarray(truth, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = (w @ ((est - tru) ** 2).T) / total
        var = (w @ (tru**2).T) / total - ((w @ tru.T) / total) ** 2
        out = mse / var
    return np.where(var > 1e-12 * np.abs(out.max(initial=1.0)), out, np.nan)


def summarise_resamples(per_unit: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median over finite units of each resample (row): the ROI "all" value per resample."""
    values = np.asarray(per_unit, dtype=np.float64)
    finite = np.isfinite(values)
    out = np.full(values.shape[0], np.nan)
    some = finite.any(axis=1)
    if some.any():
        out[some] = np.nanmedian(values[some], axis=1)
    return out


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval (95 % unless said) of a summary value."""

    low: float
    high: float

    def excludes_zero(self) -> bool:
        """Return whether both ends are finite and on the same side of 0."""
        return bool(np.isfinite(self.low) and np.isfinite(self.high)
                    and (self.low > 0 or self.high < 0))

    def text(self, digits: int = 3) -> str:
        """``[low, high]``, or ``""`` when undefined."""
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return ""
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _over_subjects(draws: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Median over subjects of each resample (subjects' resamples paired by index)."""
    stacked = np.vstack(draws)
    out = np.full(stacked.shape[1], np.nan)
    some = np.isfinite(stacked).any(axis=0)
    out[some] = np.nanmedian(stacked[:, some], axis=0)
    return out


def _interval(values: NDArray[np.float64], centre: float, level: float = 0.95) -> Interval:
    """Percentile interval of ``values``, shifted so that their median falls on ``centre``.

    A median over units of per-unit ratios (r, R², NMSE) computed on resampled stimuli is
    itself biased (a resample repeats stimuli, which shrinks the variances it divides by),
    so the raw percentile interval can miss the estimate; the shift removes that bias and
    keeps the interval's width and asymmetry.
    """
    v = values[np.isfinite(values)]
    if v.size < 10 or not np.isfinite(centre):
        return Interval(float("nan"), float("nan"))
    tail = 100 * (1 - level) / 2
    low, mid, high = np.percentile(v, [tail, 50, 100 - tail])
    return Interval(float(low - mid + centre), float(high - mid + centre))


def summary_interval(boot: Mapping[tuple[str, ...], NDArray[np.float64]],
                     key: tuple[str, str, str, str], estimate: float) -> Interval:
    """95 % interval of a summary value: median over subjects of each subject's median.

    ``boot`` maps (subject, denoiser, aligner, encoder, metric) to that subject's
    resampled ROI "all" values; ``key`` is (denoiser, aligner, encoder, metric);
    ``estimate`` the summary value itself (the interval is centred on it, see
    :func:`_interval`).
    """
    draws = [v for k, v in boot.items() if tuple(k[1:]) == key]
    if not draws:
        return Interval(float("nan"), float("nan"))
    return _interval(_over_subjects(draws), estimate)


def difference_interval(boot: Mapping[tuple[str, ...], NDArray[np.float64]],
                        first: tuple[str, str, str, str],
                        second: tuple[str, str, str, str], estimate: float) -> Interval:
    """95 % paired interval of summary(first) - summary(second), over the subjects both have.

    ``estimate`` is that difference on the data (the interval is centred on it).
    """
    subjects = sorted({k[0] for k in boot if tuple(k[1:]) == first}
                      & {k[0] for k in boot if tuple(k[1:]) == second})
    if not subjects:
        return Interval(float("nan"), float("nan"))
    a = _over_subjects([boot[(s, *first)] for s in subjects])
    b = _over_subjects([boot[(s, *second)] for s in subjects])
    return _interval(a - b, estimate)


def is_rank_zero(denoiser: Any, denoised: NDArray[np.floating],
                 averages: NDArray[np.floating]) -> bool:
    """Whether a fitted denoiser predicts each unit's mean whatever the stimulus.

    True when the denoiser exposes its rank as 0 (``n_components_``, or PSN's
    ``best_threshold_`` all 0), or else when, for at least 99 % of the units, its output on
    the test stimuli varies over stimuli by less than 1e-10 of the variance of the test
    averages it was given (a constant up to rounding).

    Parameters
    ----------
    denoiser : fitted Denoiser
    denoised, averages : ndarray of shape (n_units, n_stimuli)
        Its output for the test stimuli, and their trial averages.
    """
    for name in ("n_components_", "best_threshold_"):
        rank = getattr(denoiser, name, None)
        if rank is None or isinstance(rank, bool):
            continue
        try:
            values = np.asarray(rank, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if values.size and np.all(values == 0):
            return True
    out = np.asarray(denoised, dtype=np.float64)
    inp = np.asarray(averages, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] < 2:
        return False
    with np.errstate(invalid="ignore"):
        flat = np.nanvar(out, axis=1) <= _FLAT * np.nanvar(inp, axis=1)
    return bool(flat.mean() >= 0.99)
