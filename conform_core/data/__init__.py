"""Validated, read-only data containers passed between stages."""

from __future__ import annotations

from .conditions import ConditionData
from .stimuli import StimulusSet
from .subject import GroundTruth, Subject
from .timeseries import Events, TimeSeriesData
from .trials import ConditionTrials, TrialData, mean_over_trials
from .units import Units

__all__ = [
    "ConditionData",
    "ConditionTrials",
    "Events",
    "GroundTruth",
    "StimulusSet",
    "Subject",
    "TimeSeriesData",
    "TrialData",
    "Units",
    "mean_over_trials",
]
