"""fMRI time series: runs of units x time, with the events of each run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ShapeError
from ..validation import check_float_array, check_ids, check_int_array, describe, read_only
from .units import Units, resolve_units

__all__ = ["Events", "TimeSeriesData"]


@dataclass(frozen=True, eq=False)
class Events:
    """The stimulus events of one run (a BIDS ``events.tsv`` without the null trials).

    Parameters
    ----------
    onset : ndarray of shape (n_events,)
        Onset of each event in seconds from the start of the run (the first volume).
    duration : ndarray of shape (n_events,)
        Duration of each event in seconds (> 0).
    stimulus_ids : ndarray of shape (n_events,), dtype str
        Stimulus shown at each event; repeats share an id.
    """

    onset: NDArray[np.floating]
    duration: NDArray[np.floating]
    stimulus_ids: NDArray[np.str_]

    def __post_init__(self) -> None:
        onset = check_float_array(self.onset, ndim=1, name="Events.onset", axes="(events,)")
        n = onset.shape[0]
        duration = check_float_array(
            self.duration, ndim=1, name="Events.duration", axes="(events,)"
        )
        if duration.shape[0] != n:
            raise ShapeError(
                f"Events.duration must have one value per event ({n}); got {duration.shape[0]}."
            )
        if (duration <= 0).any():
            raise ShapeError(
                f"Events.duration must be > 0 s; got {duration[duration <= 0][:3].tolist()}. "
                "Give each event its stimulus duration."
            )
        if (onset < 0).any():
            raise ShapeError(f"Events.onset must be >= 0 s; got {onset[onset < 0][:3].tolist()}.")
        ids = check_ids(
            self.stimulus_ids, n=n, name="Events.stimulus_ids", axis_name="events", unique=False
        )
        object.__setattr__(self, "onset", read_only(onset.astype(np.float64)))
        object.__setattr__(self, "duration", read_only(duration.astype(np.float64)))
        object.__setattr__(self, "stimulus_ids", read_only(ids))

    @property
    def n_events(self) -> int:
        """Number of events."""
        return int(self.onset.shape[0])


@dataclass(frozen=True, eq=False)
class TimeSeriesData:
    """fMRI runs of one subject, each units x time, with their events.

    Parameters
    ----------
    runs : sequence of ndarray of shape (n_units, n_timepoints_r)
        One array per run (float32 or float64; runs may differ in length, not in units).
    events : sequence of Events
        One Events per run, in the same order.
    tr : float
        Repetition time in seconds.
    sessions : ndarray of shape (n_runs,), dtype int, or None
        Session of each run (0 for all when None); GLMsingle's session indicator.
    subject : str, default=""
        Whose data these are.
    units : Units or None
        Unit metadata; default ids when None.
    confounds : sequence of ndarray of shape (n_timepoints_r, n_confounds), or None
        Nuisance time courses per run (e.g. fMRIPrep's motion parameters), the same columns
        in every run; a GLM stage fits them as extra regressors. None (the default) or
        zero columns: none.
    confound_names : sequence of str, or None
        Name of each confound column (default ``c0``, ``c1``, ...).
    """

    runs: Sequence[NDArray[np.floating]]
    events: Sequence[Events]
    tr: float
    sessions: NDArray[np.int64] = None  # type: ignore[assignment]  # None -> zeros
    subject: str = ""
    units: Units = None  # type: ignore[assignment]  # None -> default units
    confounds: Sequence[NDArray[np.floating]] | None = None
    confound_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.runs, np.ndarray)
            or not isinstance(self.runs, Sequence)
            or not self.runs
        ):
            raise ShapeError(
                f"TimeSeriesData.runs must be a non-empty list of 2-D arrays (units x time); "
                f"got {describe(self.runs)}. Pass one array per run."
            )
        runs = tuple(
            read_only(
                check_float_array(r, ndim=2, name=f"TimeSeriesData.runs[{i}]", axes="(units, time)")
            )
            for i, r in enumerate(self.runs)
        )
        n_units = runs[0].shape[0]
        for i, r in enumerate(runs):
            if r.shape[0] != n_units:
                raise ShapeError(
                    f"TimeSeriesData.runs[{i}] has {r.shape[0]} units but run 0 has {n_units}. "
                    "All runs must hold the same units in the same order."
                )
        tr_value: Any = self.tr
        is_number = isinstance(tr_value, (int, float, np.integer, np.floating)) and not isinstance(
            tr_value, bool
        )
        tr = float(tr_value) if is_number else float("nan")
        if not np.isfinite(tr) or tr <= 0:
            raise ShapeError(
                f"TimeSeriesData.tr must be a positive number of seconds; got {self.tr!r}."
            )
        events = tuple(self.events) if isinstance(self.events, Sequence) else ()
        if len(events) != len(runs):
            raise ShapeError(
                f"TimeSeriesData needs one Events per run: {len(runs)} run(s) but "
                f"{len(events)} event table(s). Pass the events of every run, in run order."
            )
        for i, (r, ev) in enumerate(zip(runs, events)):
            if not isinstance(ev, Events):
                raise ShapeError(
                    f"TimeSeriesData.events[{i}] must be an Events; got {describe(ev)}."
                )
            length = r.shape[1] * tr
            late = ev.onset >= length
            if late.any():
                raise ShapeError(
                    f"Run {i} lasts {length:g} s ({r.shape[1]} volumes x TR {tr:g} s) but has events "
                    f"starting at {ev.onset[late][:3].tolist()} s. Check the TR and the onsets."
                )
        sessions = (
            np.zeros(len(runs), np.int64)
            if self.sessions is None
            else check_int_array(self.sessions, n=len(runs), name="TimeSeriesData.sessions")
        )
        object.__setattr__(self, "runs", runs)
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "tr", tr)
        object.__setattr__(self, "sessions", read_only(sessions))
        object.__setattr__(self, "subject", str(self.subject))
        object.__setattr__(self, "units", resolve_units(self.units, n_units, "TimeSeriesData"))
        self._set_confounds(runs)

    def _set_confounds(self, runs: tuple[NDArray[np.floating], ...]) -> None:
        """Validate ``confounds`` against the runs and store them read-only (None if empty)."""
        if self.confounds is None:
            if self.confound_names:
                raise ShapeError(
                    "TimeSeriesData.confound_names was given without confounds. Pass the "
                    "confound time courses too, or leave both None."
                )
            object.__setattr__(self, "confound_names", None)
            return
        if isinstance(self.confounds, np.ndarray) or not isinstance(self.confounds, Sequence):
            raise ShapeError(
                f"TimeSeriesData.confounds must be a list with one (time x confounds) array per "
                f"run; got {describe(self.confounds)}."
            )
        if len(self.confounds) != len(runs):
            raise ShapeError(
                f"TimeSeriesData.confounds has {len(self.confounds)} entries but there are "
                f"{len(runs)} runs. Pass one (time x confounds) array per run, in run order."
            )
        arrays = []
        for i, (c, r) in enumerate(zip(self.confounds, runs)):
            arr = check_float_array(c, ndim=2, name=f"TimeSeriesData.confounds[{i}]",
                                    axes="(time, confounds)")
            if arr.shape[0] != r.shape[1]:
                raise ShapeError(
                    f"TimeSeriesData.confounds[{i}] has {arr.shape[0]} time points but run {i} "
                    f"has {r.shape[1]}. Give one confound row per volume."
                )
            if arr.shape[1] != np.shape(self.confounds[0])[1]:
                raise ShapeError(
                    f"TimeSeriesData.confounds[{i}] has {arr.shape[1]} columns but run 0 has "
                    f"{np.shape(self.confounds[0])[1]}. Use the same confounds in every run."
                )
            arrays.append(read_only(arr.astype(np.float64)))
        k = arrays[0].shape[1]
        names = (tuple(f"c{j}" for j in range(k)) if self.confound_names is None
                 else tuple(str(n) for n in self.confound_names))
        if len(names) != k:
            raise ShapeError(
                f"TimeSeriesData.confound_names has {len(names)} names for {k} confound "
                "columns. Name every column once."
            )
        object.__setattr__(self, "confounds", tuple(arrays) if k else None)
        object.__setattr__(self, "confound_names", names if k else None)

    @property
    def n_runs(self) -> int:
        """Number of runs."""
        return len(self.runs)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.runs[0].shape[0])

    @property
    def n_events(self) -> int:
        """Total number of events over all runs."""
        return sum(ev.n_events for ev in self.events)

    @property
    def n_confounds(self) -> int:
        """Number of confound columns per run (0 without confounds)."""
        return 0 if self.confounds is None else int(self.confounds[0].shape[1])

    def stimulus_ids(self) -> NDArray[np.str_]:
        """Stimulus id of every event, runs in order and events in time order within a run."""
        parts = [ev.stimulus_ids[np.argsort(ev.onset, kind="stable")] for ev in self.events]
        return np.concatenate(parts) if parts else np.array([], dtype=str)
