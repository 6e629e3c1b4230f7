"""Ground-truth simulator: multi-subject vision fMRI studies with known signal.

:func:`simulate_study` returns a :class:`SimulatedStudy` in memory;
:func:`write_study` writes one to disk in the format of ``docs/formats.md`` (what
``conform simulate`` does) and :func:`read_study_subject` reads a subject back.
"""

from __future__ import annotations

from ._noise import grid_shape
from ._params import SimulationParams
from ._reader import read_stimuli, read_study, read_study_info, read_study_subject
from ._study import (
    SimulatedStudy,
    StudyPlan,
    plan_study,
    simulate_study,
    simulate_subject,
    subject_name,
)
from ._writer import FORMAT_NAME, FORMAT_VERSION, write_study

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SimulatedStudy",
    "SimulationParams",
    "StudyPlan",
    "grid_shape",
    "plan_study",
    "read_stimuli",
    "read_study",
    "read_study_info",
    "read_study_subject",
    "simulate_study",
    "simulate_subject",
    "subject_name",
    "write_study",
]
