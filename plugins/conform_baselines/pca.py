"""PCA denoising: principal axes of the condition means, kept and shrunk by a held-out trial."""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core import ConditionData, ConditionTrials, Denoiser, ShapeError
from conform_core.constraints import Interval
from conform_core.data import mean_over_trials
from conform_core.validation import check_int_param

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["PCADenoiser"]

_N_COMPONENTS_FIX = "Use None to choose the components by a held-out trial."

#: Family-wise false-positive rate of the test that keeps an axis: the z threshold is
#: Bonferroni-corrected for the number of axes tried, so in pure noise all axes are dropped
#: (and the mean returned) with probability about 1 - _ALPHA.
_ALPHA = 0.05


def _axes(centered: NDArray[np.float64]) -> NDArray[np.float64]:
    """Principal axes (units x components) of centred condition means: the one SVD of a fit."""
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    return u[:, s > s[0] * 1e-10] if s.size and s[0] > 0 else u[:, :0]


def _split_last_trial(
    arr: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean of all but the last valid trial, and the last valid trial, per unit and condition.

    NaN in the first output where a unit has a single trial of a condition.
    """
    valid = np.isfinite(arr)
    n_trials = arr.shape[2]
    last = n_trials - 1 - np.argmax(valid[:, :, ::-1], axis=2)
    held = np.take_along_axis(arr, last[:, :, None], axis=2)[:, :, 0]
    rest = arr.copy()
    np.put_along_axis(rest, last[:, :, None], np.nan, axis=2)
    return mean_over_trials(rest), held


class PCADenoiser(Denoiser):
    """Project condition means onto principal axes that carry signal, shrunk towards the mean.

    With ``n_components=None`` (the default) one trial of every condition is held out:
    the principal axes of the mean of the other trials are computed (the fit's only
    decomposition), and each axis is judged on the held-out trial, whose noise is
    independent of the axes. Along axis ``k`` with condition scores ``a`` (other trials)
    and ``b`` (held-out trial), both centred over conditions,

    - the signal variance is ``s_k = <a, b> / (C - 1)`` (the noise of the two parts is
      independent, so it cancels in expectation) with standard error ``se_k``;
    - the noise variance of one trial is ``n_k = var(b) - s_k``.

    An axis is kept when ``s_k > z se_k``, with ``z`` Bonferroni-corrected for the number
    of axes tried (family-wise rate 5 %), and shrunk by the Wiener weight
    ``w_k = s'_k / (s'_k + n_k / T)`` with the lower bound ``s'_k = s_k - z se_k`` (so a
    barely significant axis gets a small weight), ``T`` being the number of trials
    averaged. The output is ``center + sum_k w_k u_k u_k^T (x - center)``. Axes are judged
    one by one, not as a leading block, so strong structured noise in the first axes
    cannot hide the signal behind it; when no axis passes, the denoiser returns each
    unit's training mean (``rank_zero_``).

    Parameters
    ----------
    n_components : int or None, default=None
        Fixed rank: the leading principal axes of the mean of all trials, unshrunk.
        None chooses and shrinks the axes by the held-out trial.
    max_components : int or None, default=None
        Number of leading axes tried by the held-out selection (default: all).

    Attributes
    ----------
    n_components_ : int
        Number of axes kept (0: the denoiser returns the training mean).
    components_ : ndarray of shape (n_units, n_components_)
        Orthonormal kept axes in unit space, by decreasing estimated signal variance.
    shrinkage_ : ndarray of shape (n_components_,)
        Weight in (0, 1] applied along each kept axis (all 1 with a fixed rank).
    center_ : ndarray of shape (n_units,)
        Mean response of each unit over the training conditions.
    signal_variance_, noise_variance_ : ndarray of shape (n_candidates,) or None
        Held-out estimates of the signal variance and of the single-trial noise variance
        along every axis tried, in the order of the axes (None with a fixed rank).
    rank_zero_ : bool
        True when no axis was kept, so the output is each unit's training mean.
    n_units_ : int
        Number of units.
    """

    # the upper bounds (the number of units and conditions) are checked in fit
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_components": [Interval(int, 0, None), None],
        "max_components": [Interval(int, 1, None), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "n_components": _N_COMPONENTS_FIX,
        "max_components": "Use None to try every axis.",
    }

    def __init__(self, n_components: int | None = None, max_components: int | None = None):
        self.n_components = n_components
        self.max_components = max_components

    def peak_memory(self, size: DataSize) -> int:
        """Return the peak bytes of ``fit`` plus ``transform`` on data of ``size``.

        For U units, C conditions, T trials and r = min(U, C) axes, in float64:
        ``8 * (3 U C T + 3 U C + 2 U r)`` when the axes are chosen by the held-out trial
        (the data in float64, the copy with the held-out trial removed and its NaN mask;
        the held-out trial, the mean of the others and its centred copy; the SVD's copy of
        its input and its U x r axes), ``8 * (1.5 U C T + 2 U C + 2 U r)`` with a fixed
        ``n_components`` (the data in float64 and its mask, the means and their centred
        copy, the SVD).
        """
        u, c, t = int(size.n_units), int(size.n_conditions), max(int(size.n_trials), 1)
        r = min(u, c)
        if self.n_components is None:
            return int(8 * (3 * u * c * t + 3 * u * c + 2 * u * r))
        return int(8 * (1.5 * u * c * t + 2 * u * c + 2 * u * r))

    def _fit(self, data: ConditionTrials) -> PCADenoiser:
        arr = np.asarray(data.data, dtype=np.float64)
        if np.isnan(arr).all(axis=2).any():
            raise ShapeError(
                "PCADenoiser needs every unit and condition to have at least one trial; "
                "drop conditions without trials before fitting."
            )
        limit = min(data.n_units, data.n_conditions - 1)
        # types and lower bounds were checked by check_params; the bound from the data is here
        k_fixed = check_int_param(
            self.n_components,
            name="n_components",
            owner=self,
            low=0,
            high=limit,
            none_ok=True,
            fix=_N_COMPONENTS_FIX,
        )
        means = mean_over_trials(arr)
        center = means.mean(axis=1)
        self.signal_variance_: NDArray[np.float64] | None = None
        self.noise_variance_: NDArray[np.float64] | None = None
        if k_fixed is None:
            k_max = limit if self.max_components is None else min(self.max_components, limit)
            axes, weights = self._select(arr, k_max)
        else:
            axes = _axes(means - center[:, None])[:, :k_fixed]
            weights = np.ones(axes.shape[1])
        dtype = data.data.dtype
        self.n_components_ = int(axes.shape[1])
        self.components_ = axes.astype(dtype)
        self.shrinkage_ = weights.astype(dtype)
        self.center_ = center.astype(dtype)
        self.rank_zero_ = self.n_components_ == 0
        return self

    def _select(
        self, arr: NDArray[np.float64], k_max: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Axes kept by the held-out trial and their Wiener weights (see the class notes)."""
        n_units, _, n_trials = arr.shape
        if n_trials < 2:
            raise ShapeError(
                "PCADenoiser chooses its components with a held-out trial, which needs at "
                f"least 2 trials per condition; got {n_trials}. Pass n_components=K instead."
            )
        rest, held = _split_last_trial(arr)
        ok = np.isfinite(rest).all(axis=0) & np.isfinite(held).all(axis=0)
        n_ok = int(ok.sum())
        empty = (np.zeros((n_units, 0)), np.zeros(0))
        if n_ok < 3:  # no variance, and no standard error, to estimate
            self.signal_variance_ = self.noise_variance_ = np.zeros(0)
            return empty
        rest, held = rest[:, ok], held[:, ok]
        rest_c = rest - rest.mean(axis=1, keepdims=True)
        held_c = held - held.mean(axis=1, keepdims=True)
        axes = _axes(rest_c)[:, :k_max]
        a = axes.T @ rest_c  # candidates x conditions
        b = axes.T @ held_c
        prod = a * b
        signal = prod.sum(axis=1) / (n_ok - 1)
        se = prod.std(axis=1, ddof=1) / np.sqrt(n_ok)
        noise = np.maximum((b**2).sum(axis=1) / (n_ok - 1) - signal, 0.0)
        self.signal_variance_, self.noise_variance_ = signal, noise
        if axes.shape[1] == 0:
            return empty
        z = NormalDist().inv_cdf(1 - _ALPHA / axes.shape[1])
        lower = signal - z * se
        keep = np.flatnonzero(lower > 0)
        keep = keep[np.argsort(-signal[keep], kind="stable")]
        # the trial count of the averages the denoiser will see: the training one
        finite = np.isfinite(arr).any(axis=0)
        n_avg = 1.0 / np.mean(1.0 / finite.sum(axis=1))
        weights = lower[keep] / (lower[keep] + noise[keep] / n_avg)
        return axes[:, keep], weights

    def _transform(self, data: ConditionTrials) -> ConditionData:
        means = data.mean()
        x = np.asarray(means.data, dtype=self.components_.dtype)
        resid = x - self.center_[:, None]
        scores = self.shrinkage_[:, None] * (self.components_.T @ resid)
        out = self.center_[:, None] + self.components_ @ scores
        return means.with_data(out.astype(means.data.dtype))
