"""conform_core: contracts, containers and machinery of conform-fmri.

Importing this package loads no plugin; plugins are found through the ``conform``
entry-point group the first time a component is asked for.
"""

from __future__ import annotations

from .components import Aligner, Component, Dataset, Denoiser, Encoder, Features, check_is_fitted
from .data import (
    ConditionData,
    ConditionTrials,
    Events,
    GroundTruth,
    StimulusSet,
    Subject,
    TimeSeriesData,
    TrialData,
    Units,
)
from .exceptions import (
    ConformError,
    ConformWarning,
    DataFileError,
    NotFittedError,
    ParameterError,
    PluginError,
    PluginLoadError,
    ShapeError,
    SpecError,
    UnknownComponentError,
)
from .hookspecs import hookimpl
from .plugins import default_registry, get_component, make_plugin_manager
from .registry import ComponentRegistry

__version__ = "0.1.0"

__all__ = [
    "Aligner", "Component", "ComponentRegistry", "ConditionData", "ConditionTrials",
    "ConformError", "ConformWarning", "DataFileError", "Dataset", "Denoiser", "Encoder",
    "Events", "Features", "GroundTruth", "NotFittedError", "ParameterError", "PluginError",
    "PluginLoadError", "ShapeError", "SpecError", "StimulusSet", "Subject", "TimeSeriesData",
    "TrialData", "Units", "UnknownComponentError", "check_is_fitted", "default_registry",
    "get_component", "hookimpl", "make_plugin_manager", "__version__",
]
