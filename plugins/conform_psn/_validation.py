"""Input checks for GSN and PSN: data arrays, and the constraints their option tables use.

The option tables themselves (``_options.PSN_CONSTRAINTS``, ``_options.LEGACY_CONSTRAINTS``,
``_gsn.GSN_CONSTRAINTS``) are checked by :mod:`conform_core.constraints`.

The official packages reject some inputs (fewer than 2 trials, a condition without a
complete trial, a non-numeric array) and let others through (Inf, all-NaN units,
constant units), which then fail deep inside or silently degrade the estimate. Here
every one of them is rejected at the boundary with a message that names the value
and the fix. Errors derive from ``ValueError`` as the official ones do.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.constraints import AnyValue, Constraint, Options, PathLike
from conform_core.exceptions import ShapeError
from conform_core.validation import describe

__all__ = ["TrialLayout", "check_data", "check_constant_units", "IGNORED", "FiniteNumbers",
           "NpzPath", "Preset", "WholeNumbers"]


class TrialLayout:
    """Which trials exist: the validity mask and its counts.

    Parameters
    ----------
    valid : ndarray of shape (n_conditions, n_trials), dtype bool
        True where a trial is complete (no unit is NaN).
    """

    def __init__(self, valid: NDArray[np.bool_]) -> None:
        self.valid = valid
        self.counts = valid.sum(axis=1).astype(np.int64)
        self.has_nans = not bool(valid.all())

    @property
    def n_trials_avg(self) -> float:
        """PSN's trial-count divisor (``sum of counts > 1`` / n_conditions, floored at 1)."""
        if not self.has_nans:
            return float(self.valid.shape[1])
        value = float(self.counts[self.counts > 1].sum() / self.counts.size)
        return max(value, 1.0)


def _where(mask: NDArray[np.bool_], limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    text = ", ".join(str(i) for i in idx[:limit])
    return f"[{text}{', ...' if idx.size > limit else ''}] ({idx.size} in all)"


def check_data(data: Any, *, who: str, min_conditions: int = 1,
               allow_nan: bool = True) -> tuple[NDArray[np.floating], TrialLayout]:
    """Validate a (units, conditions, trials) array and describe its missing trials.

    Parameters
    ----------
    data : array-like of shape (n_units, n_conditions, n_trials)
        Responses; NaN marks a missing trial (NaN in every unit of that trial).
    who : str
        Name of the calling function, used in messages.
    min_conditions : int, default=1
        Smallest allowed number of conditions.
    allow_nan : bool, default=True
        Whether missing trials are allowed at all.

    Returns
    -------
    data : ndarray
        float32 or float64 (other numeric types are cast to float64).
    layout : TrialLayout
        The validity mask and per-condition trial counts.

    Raises
    ------
    ShapeError
        For the wrong type, dimensionality or dtype, fewer than 2 trials, too few
        conditions, Inf values, a unit that is NaN everywhere, a condition without a
        complete trial, or units with no trial-to-trial variance.
    """
    if not isinstance(data, np.ndarray) or data.ndim != 3 or data.dtype.kind not in "fiu":
        raise ShapeError(
            f"{who} needs data as a 3-D numeric array of shape (units, conditions, trials); "
            f"got {describe(data)}. Pass np.asarray(x, dtype=float) with that axis order "
            "(a ConditionTrials' .data has it)."
        )
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    n_units, n_conditions, n_trials = data.shape
    if n_trials < 2:
        raise ShapeError(
            f"{who} needs at least 2 trials per condition to estimate noise; got data of "
            f"shape {data.shape} (n_trials={n_trials}). Collect or keep repeated trials."
        )
    if n_conditions < min_conditions:
        raise ShapeError(
            f"{who} needs at least {min_conditions} conditions to estimate a covariance; "
            f"got data of shape {data.shape}. Add conditions."
        )
    if n_units < 1:
        raise ShapeError(f"{who} needs at least one unit; got data of shape {data.shape}.")
    if np.isinf(data).any():
        raise ShapeError(
            f"{who}: data contains {int(np.isinf(data).sum())} infinite value(s). Only NaN "
            "(a missing trial) is allowed; replace Inf with NaN or drop those units."
        )
    nan = np.isnan(data)
    if not nan.any():
        return data, TrialLayout(np.ones((n_conditions, n_trials), dtype=bool))
    if not allow_nan:
        raise ShapeError(
            f"{who} does not accept missing trials (NaN); got {int(nan.sum())} NaN value(s). "
            "Drop incomplete trials, or use the current API (psn(data)) which handles NaN."
        )
    all_nan_units = nan.all(axis=(1, 2))
    if all_nan_units.any():
        raise ShapeError(
            f"{who}: unit(s) {_where(all_nan_units)} are NaN in every trial. Drop them first, "
            "e.g. data[keep] or ConditionTrials.take_units(keep)."
        )
    valid = ~nan.any(axis=0)
    layout = TrialLayout(valid)
    if (layout.counts < 1).any():
        raise ShapeError(
            f"{who}: condition(s) {_where(layout.counts < 1)} have no trial that is valid for "
            "all units (NaN marks a missing trial). Drop those conditions, or drop the units "
            "that are missing there."
        )
    if not (layout.counts >= 2).any():
        raise ShapeError(
            f"{who}: no condition has 2 or more complete trials, so noise cannot be "
            "estimated. At least some conditions need repeated trials."
        )
    return data, layout


def check_constant_units(data: NDArray[np.floating], layout: TrialLayout, *, who: str) -> None:
    """Reject units with zero trial-to-trial variance (their noise covariance is singular)."""
    if not layout.has_nans:
        # max - min > 0 somewhere  <=>  some trial differs from the first (finite data);
        # comparing trial slices avoids numpy's slow per-row reduction over a short axis.
        varies = np.zeros(data.shape[0], dtype=bool)
        first = data[:, :, 0]
        for k in range(1, data.shape[2]):
            varies |= (data[:, :, k] != first).any(axis=1)
        flat = ~varies
    else:
        complete = data[:, layout.counts >= 2]
        complete = np.where(layout.valid[layout.counts >= 2][None], complete, np.nan)
        spread = np.nanmax(complete, axis=2) - np.nanmin(complete, axis=2)
        flat = ~(np.nanmax(spread, axis=1) > 0)
    if flat.any():
        raise ShapeError(
            f"{who}: unit(s) {_where(flat)} have no trial-to-trial variability (constant or "
            "noise-free), so the noise covariance is singular and GSN's shrinkage cannot be "
            "chosen. Drop those units (e.g. data[keep] or ConditionTrials.take_units(keep))."
        )


IGNORED = AnyValue("any value (accepted for compatibility; ignored)")
"""An option accepted for compatibility with the official function and ignored."""


class Preset(Options):
    """A preset name, matched case-insensitively (``"Aggressive"`` is ``"aggressive"``)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and value.lower() in self.options

    def hint(self, value: Any) -> str:
        return super().hint(value.lower()) if isinstance(value, str) else ""


class WholeNumbers(Constraint):
    """Non-negative whole numbers: one, or a 1-D list of them (ints, or floats such as 2.0).

    Parameters
    ----------
    what : str
        How to describe the accepted values.
    scalar_ok : bool, default=True
        Whether a single number is accepted as well as a list.
    min_size : int, default=1
        Fewest numbers.
    increasing : bool, default=False
        Whether they must be strictly increasing.
    """

    def __init__(self, what: str, *, scalar_ok: bool = True, min_size: int = 1,
                 increasing: bool = False) -> None:
        self.what, self.scalar_ok, self.min_size = what, scalar_ok, min_size
        self.increasing = increasing

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)):
            return False
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            return False
        if arr.dtype.kind not in "iuf" or arr.ndim > 1 or (arr.ndim == 0 and not self.scalar_ok):
            return False
        arr = arr.ravel()
        if arr.size < self.min_size or not np.all(np.isfinite(arr)):
            return False
        if np.any(arr < 0) or not np.all(arr == np.floor(arr)):
            return False
        return not (self.increasing and np.any(np.diff(arr) <= 0))

    def describe(self) -> str:
        return self.what

    def invalid_value(self) -> Any:
        return [-1]


class FiniteNumbers(Constraint):
    """A non-empty list (or array, or one number) of finite numbers."""

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)):
            return False
        try:
            arr = np.asarray(value, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            return False
        return arr.size > 0 and bool(np.all(np.isfinite(arr)))

    def describe(self) -> str:
        return "a non-empty list of finite numbers"

    def invalid_value(self) -> Any:
        return []


class NpzPath(PathLike):
    """The path of an existing ``.npz`` file (a GSN result saved with ``np.savez``)."""

    def __init__(self) -> None:
        super().__init__("file")

    def is_satisfied_by(self, value: Any) -> bool:
        return super().is_satisfied_by(value) and os.fspath(value).endswith(".npz")

    def describe(self) -> str:
        return "the path of an existing .npz file"
