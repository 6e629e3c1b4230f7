"""Single-trial responses (trials x units) and their per-condition view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ShapeError
from ..validation import check_float_array, check_ids, check_int_array, read_only
from .conditions import ConditionData, positions_of
from .units import Units, resolve_units

__all__ = ["TrialData", "ConditionTrials", "mean_over_trials"]


@dataclass(frozen=True, eq=False)
class ConditionTrials:
    """Responses of units to repeated presentations of conditions (the input of GSN and PSN).

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        float32 or float64. A trial that is NaN for every unit is a trial the condition
        did not get (conditions with fewer repeats are padded with NaN). NaN in some units
        only marks units not measured on that trial.
    stimulus_ids : ndarray of shape (n_conditions,), dtype str
        Unique stimulus id of each condition, in the order of axis 1.
    subject : str, default=""
        Whose responses these are.
    units : Units or None
        Unit metadata; default ids when None.
    """

    data: NDArray[np.floating]
    stimulus_ids: NDArray[np.str_]
    subject: str = ""
    units: Units = None  # type: ignore[assignment]  # None -> default units

    def __post_init__(self) -> None:
        data = check_float_array(self.data, ndim=3, name="ConditionTrials.data",
                                 axes="(units, conditions, trials)", allow_nan=True,
                                 nan_meaning="missing trial")
        ids = check_ids(self.stimulus_ids, n=data.shape[1], name="ConditionTrials.stimulus_ids",
                        axis_name="conditions, axis 1 of data")
        object.__setattr__(self, "data", read_only(data))
        object.__setattr__(self, "stimulus_ids", read_only(ids))
        object.__setattr__(self, "subject", str(self.subject))
        object.__setattr__(
            self, "units", resolve_units(self.units, data.shape[0], "ConditionTrials")
        )

    @property
    def n_units(self) -> int:
        """Number of units (axis 0)."""
        return int(self.data.shape[0])

    @property
    def n_conditions(self) -> int:
        """Number of conditions (axis 1)."""
        return int(self.data.shape[1])

    @property
    def n_trials(self) -> int:
        """Largest number of trials of any condition (axis 2)."""
        return int(self.data.shape[2])

    def valid_trials(self) -> NDArray[np.bool_]:
        """Mask of shape (n_conditions, n_trials): True where the trial exists (some unit is finite)."""
        return ~np.all(np.isnan(self.data), axis=0)

    def trial_counts(self) -> NDArray[np.int64]:
        """Return the number of existing trials per condition, shape (n_conditions,)."""
        return self.valid_trials().sum(axis=1).astype(np.int64)

    def mean(self) -> ConditionData:
        """Average over trials, ignoring missing (NaN) trials.

        Raises
        ------
        ShapeError
            If a condition has no trial at all.
        """
        counts = self.trial_counts()
        if (counts == 0).any():
            bad = self.stimulus_ids[counts == 0][:5].tolist()
            raise ShapeError(
                f"Condition(s) {bad} have no valid trial, so they have no mean. "
                "Drop them with .select(...) before averaging."
            )
        mean = mean_over_trials(self.data, dtype=self.data.dtype)
        return ConditionData(mean, self.stimulus_ids, self.subject, self.units)

    def select(self, stimulus_ids: Sequence[str] | NDArray[np.str_]) -> ConditionTrials:
        """Return the conditions with these stimulus ids, in the order given."""
        return self.take_conditions(
            positions_of(self.stimulus_ids, stimulus_ids, what="ConditionTrials")
        )

    def take_conditions(self, index: NDArray[np.integer]) -> ConditionTrials:
        """Return the conditions at integer positions ``index``."""
        index = np.asarray(index)
        return ConditionTrials(
            self.data[:, index], self.stimulus_ids[index], self.subject, self.units
        )

    def take_units(self, index: NDArray[np.integer] | NDArray[np.bool_]) -> ConditionTrials:
        """Return the units at ``index`` (positions or boolean mask)."""
        index = np.asarray(index)
        return ConditionTrials(
            self.data[index], self.stimulus_ids, self.subject, self.units.take(index)
        )

    def with_data(self, data: NDArray[np.floating]) -> ConditionTrials:
        """Return a copy with new data of the same shape (same ids, subject and units)."""
        if np.shape(data) != self.data.shape:
            raise ShapeError(
                f"with_data needs data of shape {self.data.shape}; got {np.shape(data)}."
            )
        return ConditionTrials(data, self.stimulus_ids, self.subject, self.units)


@dataclass(frozen=True, eq=False)
class TrialData:
    """Single-trial responses (e.g. GLMsingle betas), one row per trial.

    Parameters
    ----------
    betas : ndarray of shape (n_trials, n_units)
        float32 or float64. NaN marks a unit not measured on that trial.
    stimulus_ids : ndarray of shape (n_trials,), dtype str
        Stimulus shown on each trial; repeats share an id.
    sessions : ndarray of shape (n_trials,), dtype int, or None
        Session of each trial (0 for all when None).
    runs : ndarray of shape (n_trials,), dtype int, or None
        Run of each trial within the study (0 for all when None).
    subject : str, default=""
        Whose responses these are.
    units : Units or None
        Unit metadata; default ids when None.
    """

    betas: NDArray[np.floating]
    stimulus_ids: NDArray[np.str_]
    sessions: NDArray[np.int64] = None  # type: ignore[assignment]  # None -> zeros
    runs: NDArray[np.int64] = None  # type: ignore[assignment]  # None -> zeros
    subject: str = ""
    units: Units = None  # type: ignore[assignment]  # None -> default units

    def __post_init__(self) -> None:
        betas = check_float_array(
            self.betas,
            ndim=2,
            name="TrialData.betas",
            axes="(trials, units)",
            allow_nan=True,
            nan_meaning="unit not measured on that trial",
        )
        n = betas.shape[0]
        ids = check_ids(
            self.stimulus_ids,
            n=n,
            name="TrialData.stimulus_ids",
            axis_name="trials, axis 0 of betas",
            unique=False,
        )
        for name in ("sessions", "runs"):
            value = getattr(self, name)
            value = (
                np.zeros(n, np.int64)
                if value is None
                else check_int_array(value, n=n, name=f"TrialData.{name}")
            )
            object.__setattr__(self, name, read_only(value))
        object.__setattr__(self, "betas", read_only(betas))
        object.__setattr__(self, "stimulus_ids", read_only(ids))
        object.__setattr__(self, "subject", str(self.subject))
        object.__setattr__(self, "units", resolve_units(self.units, betas.shape[1], "TrialData"))

    @property
    def n_trials(self) -> int:
        """Number of trials (axis 0)."""
        return int(self.betas.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units (axis 1)."""
        return int(self.betas.shape[1])

    def unique_stimulus_ids(self) -> NDArray[np.str_]:
        """Stimulus ids in order of first presentation."""
        _, first = np.unique(self.stimulus_ids, return_index=True)
        return self.stimulus_ids[np.sort(first)]

    def by_condition(
        self,
        stimulus_ids: Sequence[str] | NDArray[np.str_] | None = None,
        *,
        n_trials: int | None = None,
    ) -> ConditionTrials:
        """Arrange the trials as units x conditions x trials, padding with NaN.

        Parameters
        ----------
        stimulus_ids : sequence of str or None
            Conditions to include, in this order (default: order of first presentation).
            Every id must have at least one trial.
        n_trials : int or None
            Size of the trial axis (default: the largest repeat count). Extra repeats
            beyond ``n_trials`` are dropped, in presentation order.

        Returns
        -------
        ConditionTrials
            Repeats of a condition appear in presentation order along axis 2.
        """
        ids = (
            self.unique_stimulus_ids()
            if stimulus_ids is None
            else np.asarray(stimulus_ids).astype(str)
        )
        cond_of_trial = {sid: i for i, sid in enumerate(ids.tolist())}
        cond = np.array(
            [cond_of_trial.get(s, -1) for s in self.stimulus_ids.tolist()], dtype=np.int64
        )
        counts = np.bincount(cond[cond >= 0], minlength=len(ids))
        if (counts == 0).any():
            missing = ids[counts == 0][:5].tolist()
            raise ShapeError(
                f"TrialData has no trial of stimulus id(s) {missing}. "
                "Ask only for ids in .stimulus_ids."
            )
        keep = np.flatnonzero(cond >= 0)
        order = keep[np.argsort(cond[keep], kind="stable")]
        sorted_cond = cond[order]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(order)) - starts[sorted_cond]
        depth = int(counts.max()) if n_trials is None else int(n_trials)
        ok = rank < depth
        out = np.full((self.n_units, len(ids), depth), np.nan, dtype=self.betas.dtype)
        out[:, sorted_cond[ok], rank[ok]] = self.betas[order[ok]].T
        return ConditionTrials(out, ids, self.subject, self.units)

    def mean(self) -> ConditionData:
        """Average the repeats of each stimulus (conditions in order of first presentation)."""
        return self.by_condition().mean()

    def select(self, stimulus_ids: Sequence[str] | NDArray[np.str_]) -> TrialData:
        """Return the trials whose stimulus is in ``stimulus_ids`` (trial order kept)."""
        mask = np.isin(self.stimulus_ids, np.asarray(stimulus_ids).astype(str))
        return self.take_trials(np.flatnonzero(mask))

    def take_trials(self, index: NDArray[np.integer]) -> TrialData:
        """Return the trials at integer positions ``index``."""
        index = np.asarray(index)
        return TrialData(
            self.betas[index],
            self.stimulus_ids[index],
            self.sessions[index],
            self.runs[index],
            self.subject,
            self.units,
        )

    def take_units(self, index: NDArray[np.integer] | NDArray[np.bool_]) -> TrialData:
        """Return the units at ``index`` (positions or boolean mask)."""
        index = np.asarray(index)
        return TrialData(
            self.betas[:, index],
            self.stimulus_ids,
            self.sessions,
            self.runs,
            self.subject,
            self.units.take(index),
        )


def mean_over_trials(
    data: NDArray[np.floating], *, dtype: Any = np.float64
) -> NDArray[np.floating]:
    """Mean over the last axis (trials), ignoring missing (NaN) trials.

    The one NaN-aware trial mean of conform: :meth:`ConditionTrials.mean` uses it, and
    plugins that work on raw ``(units, conditions, trials)`` arrays (cross-validation
    folds, say) call it rather than writing their own.

    Parameters
    ----------
    data : ndarray of shape (..., n_trials)
        NaN marks a missing trial.
    dtype : dtype, default=float64
        Dtype of the result (the sums are accumulated in ``data``'s dtype).

    Returns
    -------
    ndarray of shape data.shape[:-1]
        NaN where every trial is missing.
    """
    finite = np.isfinite(data)
    total = np.where(finite, data, 0).sum(axis=-1)
    n = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / n).astype(dtype)
