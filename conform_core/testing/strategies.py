"""Hypothesis strategies for conform's containers (public, like xarray's)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..data import ConditionData, ConditionTrials, TrialData

__all__ = ["stimulus_ids", "condition_trials", "condition_data", "trial_data"]

_values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


def stimulus_ids(n: int) -> st.SearchStrategy[np.ndarray]:
    """``n`` unique stimulus ids."""
    return st.lists(st.text("abcdefghij0123456789", min_size=1, max_size=6), min_size=n,
                    max_size=n, unique=True).map(lambda ids: np.array(ids, dtype=str))


@st.composite
def condition_trials(draw: st.DrawFn, max_units: int = 6, max_conditions: int = 8,
                     max_trials: int = 4, dtype: type = np.float64,
                     missing: bool = True) -> ConditionTrials:
    """Draw a ConditionTrials; with ``missing``, some conditions lose trials (never all of them)."""
    shape = (draw(st.integers(1, max_units)), draw(st.integers(1, max_conditions)),
             draw(st.integers(1, max_trials)))
    data = draw(hnp.arrays(dtype, shape, elements=_values))
    if missing and shape[2] > 1:
        drop = draw(hnp.arrays(bool, shape[1:]))
        drop[:, 0] = False
        data[:, drop] = np.nan
    return ConditionTrials(data, draw(stimulus_ids(shape[1])))


@st.composite
def condition_data(draw: st.DrawFn, max_units: int = 6, max_conditions: int = 8,
                   dtype: type = np.float64) -> ConditionData:
    """Draw a ConditionData without NaN."""
    shape = (draw(st.integers(1, max_units)), draw(st.integers(1, max_conditions)))
    return ConditionData(draw(hnp.arrays(dtype, shape, elements=_values)),
                         draw(stimulus_ids(shape[1])))


@st.composite
def trial_data(draw: st.DrawFn, max_units: int = 5, max_stimuli: int = 6,
               max_repeats: int = 3) -> TrialData:
    """Draw a TrialData whose stimuli are repeated 1..max_repeats times in shuffled order."""
    n_stim = draw(st.integers(1, max_stimuli))
    ids = draw(stimulus_ids(n_stim))
    repeats = draw(st.lists(st.integers(1, max_repeats), min_size=n_stim, max_size=n_stim))
    trial_ids = np.repeat(ids, repeats)
    order = draw(st.permutations(range(len(trial_ids))))
    trial_ids = trial_ids[np.array(order, dtype=int)]
    n_units = draw(st.integers(1, max_units))
    betas = draw(hnp.arrays(np.float64, (len(trial_ids), n_units), elements=_values))
    return TrialData(betas, trial_ids)
