"""One participant's data as a dataset plugin yields it, with optional ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ShapeError
from ..validation import check_ids, check_int_array, describe, read_only
from .conditions import ConditionData
from .stimuli import StimulusSet
from .timeseries import TimeSeriesData
from .trials import TrialData

__all__ = ["GroundTruth", "Subject"]


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """What a simulator knows and an experiment does not.

    Parameters
    ----------
    signal : ConditionData
        The noise-free response of every unit to every stimulus (units x stimuli).
    trial_amplitudes : ndarray of shape (n_trials, n_units), or None
        True single-trial amplitudes, in the trial order of the subject's data (for time
        series: runs in order, events in time order).
    hrf_index : ndarray of shape (n_units,), dtype int, or None
        0-based index of each unit's true HRF in the library used to simulate it.
    noise_ceiling : ndarray of shape (n_units,), or None
        True noise ceiling (percent of variance explainable) of a single trial.
    shared_space : ConditionData or None
        The subject's true responses in the space shared by every subject (latent
        dimensions x stimuli), on exactly the stimuli of ``signal``, in the same order:
        what a perfect cross-subject aligner recovers (up to an invertible linear map).
    unit_positions : ndarray of shape (n_units, 2), or None
        Where on a common 2-D sheet each unit samples the shared tuning (for a simulated
        subject with misregistration: its grid position plus its displacement).
    """

    signal: ConditionData
    trial_amplitudes: NDArray[np.floating] | None = None
    hrf_index: NDArray[np.int64] | None = None
    noise_ceiling: NDArray[np.floating] | None = None
    shared_space: ConditionData | None = None
    unit_positions: NDArray[np.floating] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.signal, ConditionData):
            raise ShapeError(
                f"GroundTruth.signal must be a ConditionData; got {describe(self.signal)}."
            )
        n = self.signal.n_units
        if self.trial_amplitudes is not None:
            amp = np.asarray(self.trial_amplitudes)
            if amp.ndim != 2 or amp.shape[1] != n:
                raise ShapeError(
                    f"GroundTruth.trial_amplitudes must be (n_trials, {n}); got {describe(amp)}."
                )
            object.__setattr__(self, "trial_amplitudes", read_only(amp))
        if self.hrf_index is not None:
            object.__setattr__(
                self,
                "hrf_index",
                read_only(check_int_array(self.hrf_index, n=n, name="GroundTruth.hrf_index")),
            )
        if self.noise_ceiling is not None:
            nc = np.asarray(self.noise_ceiling, dtype=np.float64)
            if nc.shape != (n,):
                raise ShapeError(f"GroundTruth.noise_ceiling must be ({n},); got {describe(nc)}.")
            object.__setattr__(self, "noise_ceiling", read_only(nc))
        if self.shared_space is not None:
            shared = self.shared_space
            if not isinstance(shared, ConditionData):
                raise ShapeError(
                    f"GroundTruth.shared_space must be a ConditionData or None; got "
                    f"{describe(shared)}."
                )
            if not np.array_equal(shared.stimulus_ids, self.signal.stimulus_ids):
                raise ShapeError(
                    f"GroundTruth.shared_space must hold the stimuli of GroundTruth.signal "
                    f"({self.signal.n_conditions}), in the same order; got "
                    f"{shared.n_conditions} stimuli that differ. Pass "
                    "shared_space.select(signal.stimulus_ids)."
                )
        if self.unit_positions is not None:
            pos = np.asarray(self.unit_positions, dtype=np.float64)
            if pos.shape != (n, 2) or not np.isfinite(pos).all():
                raise ShapeError(
                    f"GroundTruth.unit_positions must be a finite ({n}, 2) array (one 2-D "
                    f"position per unit of signal); got {describe(pos)}."
                )
            object.__setattr__(self, "unit_positions", read_only(pos))


@dataclass(frozen=True, eq=False)
class Subject:
    """One participant: data at one or both levels, stimuli, split and optional ground truth.

    Parameters
    ----------
    name : str
        Subject label, e.g. ``"sub-01"``.
    stimuli : StimulusSet
        Every stimulus this subject saw (at least).
    trials : TrialData or None
        Single-trial responses, if the dataset provides them.
    timeseries : TimeSeriesData or None
        Raw runs, if the dataset provides them. At least one of ``trials`` and
        ``timeseries`` is required.
    train_ids, test_ids : ndarray of str
        The dataset's own split of stimuli (disjoint). Both empty when it has none.
    truth : GroundTruth or None
        Ground truth, for simulated data.
    """

    name: str
    stimuli: StimulusSet
    trials: TrialData | None = None
    timeseries: TimeSeriesData | None = None
    train_ids: NDArray[np.str_] = None  # type: ignore[assignment]  # None -> empty
    test_ids: NDArray[np.str_] = None  # type: ignore[assignment]  # None -> empty
    truth: GroundTruth | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stimuli, StimulusSet):
            raise ShapeError(
                f"Subject.stimuli must be a StimulusSet; got {describe(self.stimuli)}."
            )
        if self.trials is None and self.timeseries is None:
            raise ShapeError(
                f"Subject {self.name!r} has neither trials nor timeseries. "
                "A dataset must give at least one of them."
            )
        if self.trials is not None and not isinstance(self.trials, TrialData):
            raise ShapeError(
                f"Subject.trials must be a TrialData or None; got {describe(self.trials)}."
            )
        if self.timeseries is not None and not isinstance(self.timeseries, TimeSeriesData):
            raise ShapeError(
                f"Subject.timeseries must be a TimeSeriesData or None; got {describe(self.timeseries)}."
            )
        split = {}
        for name in ("train_ids", "test_ids"):
            value = getattr(self, name)
            ids = (
                np.array([], dtype=str)
                if value is None
                else check_ids(value, n=None, name=f"Subject.{name}")
            )
            split[name] = ids
            object.__setattr__(self, name, read_only(ids))
        overlap = np.intersect1d(split["train_ids"], split["test_ids"])
        if overlap.size:
            raise ShapeError(
                f"Subject {self.name!r}: train and test stimuli overlap ({overlap[:5].tolist()}). "
                "A stimulus belongs to one side of the split."
            )
        known = set(self.stimuli.ids.tolist())
        if self.trials is not None:
            shown = self.trials.stimulus_ids
        else:
            assert self.timeseries is not None  # checked above
            shown = self.timeseries.stimulus_ids()
        unknown = sorted(set(np.unique(shown).tolist()) - known)
        if unknown:
            raise ShapeError(
                f"Subject {self.name!r} shows stimulus id(s) {unknown[:5]} that are not in its "
                "StimulusSet. Add them to the stimuli table."
            )
        if self.truth is not None and not isinstance(self.truth, GroundTruth):
            raise ShapeError(
                f"Subject.truth must be a GroundTruth or None; got {describe(self.truth)}."
            )
        object.__setattr__(self, "name", str(self.name))

    @property
    def has_split(self) -> bool:
        """Whether the dataset supplies a train/test split."""
        return bool(self.train_ids.size and self.test_ids.size)
