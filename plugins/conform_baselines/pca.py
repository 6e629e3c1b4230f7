"""PCA denoising: keep the leading dimensions of the condition means, rank by cross-validation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core import ConditionData, ConditionTrials, Denoiser, ShapeError
from conform_core.constraints import Interval
from conform_core.data import mean_over_trials
from conform_core.validation import check_int_param

__all__ = ["PCADenoiser"]

_N_COMPONENTS_FIX = "Use None to choose the rank by cross-validation."


def _basis(means: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return unit means and principal axes (units x components) of condition means.

    ``means`` is (units x conditions).
    """
    center = means.mean(axis=1, keepdims=True)
    u, s, _ = np.linalg.svd(means - center, full_matrices=False)
    return center, u[:, s > s[0] * 1e-10] if s.size and s[0] > 0 else u[:, :0]


class PCADenoiser(Denoiser):
    """Project condition means onto their leading principal components.

    The rank is chosen by leave-one-trial-out cross-validation: for each trial index t,
    the principal axes of the mean of the other trials are computed, that mean is
    projected onto its first k axes, and the projection is compared with trial t. The
    expected error against a held-out trial is the error against the true signal plus the
    (constant) noise variance, so the k that minimises it is the best rank for the signal.

    Parameters
    ----------
    n_components : int or None, default=None
        Fixed rank; None chooses it by cross-validation.
    max_components : int or None, default=None
        Largest rank tried by cross-validation (default: all).

    Attributes
    ----------
    n_components_ : int
        The rank used.
    components_ : ndarray of shape (n_units, n_components_)
        Orthonormal principal axes in unit space.
    center_ : ndarray of shape (n_units,)
        Mean response of each unit over the training conditions.
    cv_error_ : ndarray of shape (n_candidates,) or None
        Cross-validated squared error for ranks 0, 1, ... (None when the rank is fixed).
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
        "max_components": "Use None to try every rank.",
    }

    def __init__(self, n_components: int | None = None, max_components: int | None = None):
        self.n_components = n_components
        self.max_components = max_components

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
        k_max = self.max_components
        self.cv_error_ = None
        if k_fixed is None:
            k_max = limit if k_max is None else min(k_max, limit)
            self.cv_error_ = self._cross_validate(arr, k_max)
            k_fixed = int(np.argmin(self.cv_error_))
        center, axes = _basis(mean_over_trials(arr))
        self.n_components_ = min(k_fixed, axes.shape[1])
        self.components_ = axes[:, : self.n_components_].astype(data.data.dtype)
        self.center_ = center[:, 0].astype(data.data.dtype)
        return self

    @staticmethod
    def _cross_validate(arr: NDArray[np.float64], k_max: int) -> NDArray[np.float64]:
        n_trials = arr.shape[2]
        if n_trials < 2:
            raise ShapeError(
                "PCADenoiser chooses its rank by leave-one-trial-out cross-validation, which needs "
                f"at least 2 trials per condition; got {n_trials}. Pass n_components=K instead."
            )
        errors = np.zeros(k_max + 1)
        for t in range(n_trials):
            held = arr[:, :, t]
            rest = mean_over_trials(np.delete(arr, t, axis=2))
            ok = np.isfinite(held).all(axis=0) & np.isfinite(rest).all(axis=0)
            if ok.sum() < 2:
                continue
            center, axes = _basis(rest[:, ok])
            scores = axes.T @ (rest[:, ok] - center)  # components x conditions
            resid = held[:, ok] - center
            # error of rank-k reconstruction against the held-out trial, for every k at once
            base = (resid**2).sum()
            cross = (scores * (axes.T @ resid)).sum(axis=1)
            gain = np.cumsum(2 * cross - (scores**2).sum(axis=1))
            curve = np.concatenate([[base], base - gain])[: k_max + 1]
            errors[: curve.size] += curve
            errors[curve.size :] += curve[-1]
        return errors

    def _transform(self, data: ConditionTrials) -> ConditionData:
        means = data.mean()
        x = np.asarray(means.data, dtype=self.components_.dtype)
        resid = x - self.center_[:, None]
        out = self.center_[:, None] + self.components_ @ (self.components_.T @ resid)
        return means.with_data(out.astype(means.data.dtype))
